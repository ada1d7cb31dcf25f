package badgerstore

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/weirmq/weir/store"
)

// Disk space.
//
// Badger writes its write-ahead logs (.mem), value logs (.vlog) and tables
// through memory-mapped files that it creates at their full size as sparse
// files: the file system allocates their blocks only when a mapped page is
// first written. When the file system is full that allocation fails inside
// a memory copy, the kernel sends SIGBUS and the Go runtime kills the
// process ("unexpected fault address"); Badger never gets to return an
// error. (broker.TestDiskFull crashed this way on a full tmpfs before this
// check existed.)
//
// So the writer measures the free space of the file system holding Dir
// before each group, and refuses a batch that stores a message when writing
// it would leave less than Options.DiskReserve free; any other batch
// (acknowledgements, session state: small) is refused when it would leave
// less than the reserve minus smallWriteRoom. A refused batch fails with
// an error wrapping syscall.ENOSPC (errors.Is(err, syscall.ENOSPC)); the
// store stays usable and writes resume as soon as space is freed, without
// a restart.
//
// The default reserve covers what Badger may still write without being
// able to report an error: the unwritten rest of the current .mem
// (2×MemTableSize) and .vlog (2×ValueLogFileSize) files, the level-0
// tables of the memtables waiting to be flushed (2×MemTableSize), and
// 8 MiB for compaction, the manifest and the discard statistics. It does
// not protect against another process filling the file system between two
// checks.

// smallWriteRoom is the part of the reserve that batches storing no
// message may still use.
const smallWriteRoom = 4 << 20

// defaultDiskReserve is the default Options.DiskReserve (see above).
func defaultDiskReserve(memTableSize, valueLogFileSize int64) int64 {
	return 4*memTableSize + 2*valueLogFileSize + 8<<20
}

// freeSpace returns the bytes available to this process on the file
// system holding Dir.
func (s *Store) freeSpace() (int64, error) {
	if h := s.hooks.freeSpace; h != nil {
		return h()
	}
	return freeBytes(s.opt.Dir)
}

// admission decides, batch by batch, what one group may write.
type admission struct {
	s    *Store
	free int64 // free bytes left after the batches admitted so far; < 0: no check
}

// admission measures the free space before a group.
func (s *Store) admission() admission {
	if s.opt.DiskReserve < 0 || s.spaceUnknown {
		return admission{s: s, free: -1}
	}
	free, err := s.freeSpace()
	if err != nil {
		// Without a measure there is nothing to decide on: write, as
		// Badger alone would, and say so once.
		s.spaceUnknown = true
		s.log.Warn("cannot measure free disk space; writes are no longer checked against the disk reserve", "err", err)
		return admission{s: s, free: -1}
	}
	return admission{s: s, free: max(free, 0)}
}

// admit reports whether b may be written, and counts its bytes if so.
func (a *admission) admit(b *store.Batch) error {
	if a.free < 0 {
		return nil
	}
	s := a.s
	size, stores := batchBytes(b)
	need := s.opt.DiskReserve
	switch {
	case !stores:
		need = max(need-smallWriteRoom, need/2)
	case s.diskFull:
		// Hysteresis: once full, messages are stored again only when
		// resumeRoom more is free, not as soon as a smaller batch (or a
		// few freed bytes) happens to fit, which would make publishers
		// see refusals and acceptances alternate.
		need += resumeRoom
	}
	if a.free-size < need {
		s.stats.diskFull.Add(1)
		if !s.diskFull {
			s.diskFull = true
			s.log.Error("disk almost full: refusing writes that store messages until space is freed",
				"free_bytes", a.free, "reserve_bytes", s.opt.DiskReserve)
		}
		return fmt.Errorf("badgerstore: %w: %d bytes free on the file system of %s, %d needed for this batch and the reserve (DiskReserve)",
			ErrDiskFull, a.free, s.opt.Dir, size+need)
	}
	if s.diskFull && stores {
		s.diskFull = false
		s.log.Info("disk space available again: writing messages resumed", "free_bytes", a.free)
	}
	a.free -= size
	return nil
}

// resumeRoom is the free space beyond the reserve that a full store needs
// before it stores messages again.
const resumeRoom = 1 << 20

// ErrDiskFull is wrapped by the error of a batch refused because the file
// system holding the store has less free space than Options.DiskReserve.
// It wraps syscall.ENOSPC.
var ErrDiskFull = fmt.Errorf("disk full: %w", syscall.ENOSPC)

// batchBytes estimates what b adds to Badger's logs, and whether it stores
// a message.
func batchBytes(b *store.Batch) (n int64, storesMessage bool) {
	const perOp = 64 // key, entry header, checksum
	for i := range b.Ops {
		op := &b.Ops[i]
		n += perOp
		switch op.Kind {
		case store.OpPutMessage, store.OpPutRetained:
			if op.Message != nil {
				n += int64(op.Message.Size())
			}
			storesMessage = true
		case store.OpPutSession:
			n += 256
			if op.Session != nil {
				n += int64(len(op.Session.Subscriptions)) * 64
			}
		case store.OpEnqueue:
			n += 8 * int64(len(op.Entry.SubIDs))
		}
	}
	return n, storesMessage
}

var errNoStatfs = errors.New("measuring free disk space is not supported on this platform")
