package badgerstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/weirmq/weir/store"
)

// Store is the Badger-backed store.Store. Create it with Open; it is safe
// for concurrent use. Done callbacks run on the store's writer goroutine:
// they may call Commit and the read methods, but must not block for long
// (the next group commit waits for them) and must not call Close.
type Store struct {
	db  *badger.DB
	opt Options
	log *slog.Logger

	mu      sync.Mutex
	pending []request // queued by Commit, taken by the writer
	closed  bool      // Commit reports ErrClosed
	wake    chan struct{}
	closing chan struct{} // closed by Close: the writer drains and stops

	writerDone chan struct{}
	bgStop     chan struct{}
	bgWG       sync.WaitGroup

	// readMu is held shared by every read around its use of db, and
	// exclusively by Close to close db, so a read never touches a closed
	// Badger (which panics).
	readMu   sync.RWMutex
	dbClosed bool

	maxID atomic.Uint64 // highest message id committed
	dirty atomic.Bool   // written since the last background sync

	// Owned by the writer goroutine (and by Open before it starts).
	refs map[uint64]int // queue references of messages referenced more than once
	hwm  *hwm           // the high-water mark file (hwm.go)

	trimmer *trimmer // nil if MappedMemoryLimit < 0 or not on Linux
	broken  error    // set when in-memory state may no longer match the disk
	// diskFull: the last batch storing a message was refused for lack of
	// disk space; spaceUnknown: free space cannot be measured (diskspace.go).
	diskFull, spaceUnknown bool

	stats     counters
	hooks     *testHooks
	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

type request struct {
	b    *store.Batch
	done func(error)
}

// testHooks let tests in this package watch and pause the writer.
type testHooks struct {
	beforeGroup func()           // before the writer applies a group
	afterCommit func(split bool) // after each Badger transaction commit
	freeSpace   func() (int64, error)
}

// Open opens (or creates) the store in o.Dir. It rebuilds the reference
// counts of queued messages from the queue entries and deletes messages
// that no entry refers to (there are some only after a crash in the middle
// of an oversized batch; how many is logged), so it reads every queue
// entry: Open takes time proportional to the number of queued messages.
func Open(o Options) (*Store, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	start := time.Now()
	if free, err := freeBytes(o.Dir); err == nil && o.DiskReserve > 0 && free < o.DiskReserve {
		o.Logger.Warn("less free disk space than the store's reserve: writes that store messages are refused until space is freed",
			"store", "badger", "dir", o.Dir, "free_bytes", free, "reserve_bytes", o.DiskReserve)
	}
	warnManifestLosses(o.Dir, o.Logger)
	s := &Store{
		opt:        o,
		log:        o.Logger.With("store", "badger", "dir", o.Dir),
		wake:       make(chan struct{}, 1),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
		bgStop:     make(chan struct{}),
		hooks:      o.hooks,
	}
	if s.hooks == nil {
		s.hooks = &testHooks{}
	}
	// Opening reads the whole store (Badger replays its logs, rebuildRefs
	// reads every queue entry): the trimmer runs from the start.
	s.trimmer = startTrimmer(o.Dir, o.MappedMemoryLimit, &s.stats, s.bgStop, &s.bgWG)
	fail := func(err error) (*Store, error) {
		close(s.bgStop)
		s.bgWG.Wait()
		if s.db != nil {
			s.db.Close()
		}
		s.hwm.close()
		return nil, fmt.Errorf("badgerstore: open %s: %w", o.Dir, err)
	}
	db, err := badger.Open(o.badgerOptions())
	if err != nil {
		return fail(err)
	}
	s.db = db
	if err := s.checkSchema(); err != nil {
		return fail(err)
	}
	rs, err := s.rebuildRefs()
	if err != nil {
		return fail(err)
	}
	s.stats.orphans.Store(uint64(rs.orphans))
	if err := s.checkHWM(); err != nil {
		return fail(err)
	}
	lsm, vlog := db.Size()
	s.log.Info("store opened",
		"durability", o.Durability.String(),
		"messages", rs.messages, "queue_entries", rs.entries,
		"orphaned_messages_removed", rs.orphans,
		"max_message_id", s.maxID.Load(),
		"lsm_bytes", lsm, "vlog_bytes", vlog,
		"took", time.Since(start).Round(time.Millisecond))
	if rs.dangling > 0 {
		s.log.Warn("queue entries refer to messages that are not stored; Queue skips them",
			"entries", rs.dangling)
	}

	go s.writeLoop()
	s.startBackground()
	return s, nil
}

// checkSchema stores the schema version in a new store and refuses a
// store written with another one.
func (s *Store) checkSchema() error {
	return s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(keySchema)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return txn.Set(keySchema, []byte{schemaVersion})
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) != 1 || v[0] != schemaVersion {
				return fmt.Errorf("badgerstore: %w: store has key schema %x, this version of Weir reads %d",
					ErrCorrupt, v, schemaVersion)
			}
			return nil
		})
	})
}

// Commit implements store.Store: it queues b for the writer and returns.
// done is called once b is durable at the store's Durability, or with the
// error that kept it from being written. Batches are applied, and their
// done called, in the order of their Commit calls.
func (s *Store) Commit(b *store.Batch, done func(error)) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		if done != nil {
			done(store.ErrClosed)
		}
		return
	}
	s.pending = append(s.pending, request{b, done})
	s.mu.Unlock()
	s.stats.batches.Add(1)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Close implements store.Store. It stops taking commits, waits until the
// writer has written every batch queued before (and called its done), runs
// value-log GC once, and closes Badger. Later calls return the first
// call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.closing)
		<-s.writerDone
		close(s.bgStop)
		s.bgWG.Wait()
		s.runValueLogGC("close")
		var errs []error
		if s.opt.Durability == Process {
			if err := s.db.Sync(); err != nil {
				errs = append(errs, fmt.Errorf("badgerstore: sync on close: %w", err))
			}
		}
		if err := s.hwm.close(); err != nil {
			errs = append(errs, fmt.Errorf("badgerstore: close: %w", err))
		}
		s.readMu.Lock()
		s.dbClosed = true
		if err := s.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("badgerstore: close: %w", err))
		}
		s.readMu.Unlock()
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Size reports the bytes Badger's LSM tree and value log take on disk (as
// Badger last measured them; it refreshes this about once a minute).
func (s *Store) Size() (lsm, vlog int64) {
	return s.db.Size()
}

// Stats are counters of the store's work since Open.
type Stats struct {
	Batches        uint64 // Commit calls
	Groups         uint64 // group commits that wrote something
	Txns           uint64 // Badger transactions committed
	Syncs          uint64 // group commits synced to the device (Sync mode)
	BackgroundSync uint64 // background syncs (Process mode)
	Oversized      uint64 // batches spread over several transactions
	OrphansRemoved uint64 // messages without references deleted by Open
	DiskFull       uint64 // batches refused for lack of disk space (Options.DiskReserve)
	Trims          uint64 // mappings whose resident pages were dropped (Options.MappedMemoryLimit)
	// LostMessageIDs is how many message ids Open found committed (by the
	// high-water mark, hwm.go) but missing from what Badger recovered.
	LostMessageIDs uint64
}

type counters struct {
	batches, groups, txns, syncs, bgSyncs, oversized, orphans, diskFull, trims, lost atomic.Uint64
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	c := &s.stats
	return Stats{
		Batches:        c.batches.Load(),
		Groups:         c.groups.Load(),
		Txns:           c.txns.Load(),
		Syncs:          c.syncs.Load(),
		BackgroundSync: c.bgSyncs.Load(),
		Oversized:      c.oversized.Load(),
		OrphansRemoved: c.orphans.Load(),
		DiskFull:       c.diskFull.Load(),
		Trims:          c.trims.Load(),
		LostMessageIDs: c.lost.Load(),
	}
}

// view runs fn in a read-only Badger transaction unless the store is
// closed.
func (s *Store) view(fn func(txn *badger.Txn) error) error {
	s.readMu.RLock()
	defer s.readMu.RUnlock()
	if s.dbClosed {
		return store.ErrClosed
	}
	return s.db.View(fn)
}

// Reads go page by page: each page is read in a short read-only
// transaction whose iterator is closed before fn sees the page, so a slow
// fn holds neither a Badger iterator (which would pin memtables and tables
// on disk) nor more than a page in memory. The price is that a read
// running during commits sees each page as of its own moment, not the
// whole listing as of one instant.
const (
	pageEntries = 256
	pageBytes   = 1 << 20
)

type queued struct {
	e store.QueueEntry
	m *store.Message
}

// Queue implements store.Store. It streams: memory use is bounded by one
// page (256 entries or 1 MiB of messages), whatever the queue's length.
// An entry whose message is not stored is skipped.
func (s *Store) Queue(clientID string, after uint64, fn func(store.QueueEntry, *store.Message) bool) error {
	err := scanQueue(s, clientID, after, func(txn *badger.Txn, e store.QueueEntry) (queued, int, bool, error) {
		m, err := getMessage(txn, e.MsgID)
		if m == nil || err != nil {
			return queued{}, 0, false, err
		}
		return queued{e, m}, m.Size(), true, nil
	}, func(q queued) bool { return fn(q.e, q.m) })
	if err != nil {
		return fmt.Errorf("badgerstore: queue of %q: %w", clientID, err)
	}
	return nil
}

// QueueEntries implements store.Store. It reads only the entries (small
// values in the LSM tree), except for entries written before entries
// recorded their message's size, whose message it reads for the size.
func (s *Store) QueueEntries(clientID string, after uint64, fn func(store.QueueEntry) bool) error {
	err := scanQueue(s, clientID, after, func(txn *badger.Txn, e store.QueueEntry) (store.QueueEntry, int, bool, error) {
		if e.Size == 0 {
			m, err := getMessage(txn, e.MsgID)
			if err != nil {
				return e, 0, false, err
			}
			if m != nil {
				e.Size = m.Size()
			}
		}
		return e, 64, true, nil
	}, fn)
	if err != nil {
		return fmt.Errorf("badgerstore: queue entries of %q: %w", clientID, err)
	}
	return nil
}

// scanQueue pages through the queue entries of clientID with Seq > after
// (see scanPages): get turns an entry into what fn receives, with its size
// in memory, or skips it.
func scanQueue[T any](s *Store, clientID string, after uint64, get func(*badger.Txn, store.QueueEntry) (T, int, bool, error), fn func(T) bool) error {
	if after == math.MaxUint64 {
		return nil
	}
	prefix, err := clientPrefix(prefixQueue, clientID, 8)
	if err != nil {
		return err
	}
	seek := binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), after+1)
	return scanPages(s, prefix, seek, func(txn *badger.Txn, key, val []byte) (T, int, bool, error) {
		var zero T
		if len(key) != len(prefix)+8 {
			return zero, 0, false, errors.New("queue key of the wrong length")
		}
		e, err := decodeEntry(val)
		if err != nil {
			return zero, 0, false, err
		}
		e.Seq = binary.BigEndian.Uint64(key[len(prefix):])
		return get(txn, e)
	}, fn)
}

// getMessage reads message id; nil if it is not stored.
func getMessage(txn *badger.Txn, id uint64) (*store.Message, error) {
	key := messageKey(id)
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m *store.Message
	err = item.Value(func(v []byte) (err error) {
		m, err = decodeMessage(v)
		if err == nil && m.ID != id {
			err = fmt.Errorf("value holds message id %d", m.ID)
		}
		return err
	})
	if err != nil {
		return nil, corrupt(key, err)
	}
	return m, nil
}

// scanPages calls decode for each key with prefix from seek on, page by
// page (see pageEntries), and then fn for the page's values until fn
// returns false. decode returns the value, its size in memory and whether
// to keep it; an error from decode is reported as damage at that key.
func scanPages[T any](s *Store, prefix, seek []byte, decode func(txn *badger.Txn, key, val []byte) (T, int, bool, error), fn func(T) bool) error {
	var page []T
	for {
		clear(page)
		page = page[:0]
		var next []byte
		err := s.view(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
			defer it.Close()
			size := 0
			for it.Seek(seek); it.Valid(); it.Next() {
				item := it.Item()
				if len(page) == pageEntries || size >= pageBytes {
					next = item.KeyCopy(nil)
					return nil
				}
				var v T
				var n int
				var keep bool
				err := item.Value(func(val []byte) (err error) {
					v, n, keep, err = decode(txn, item.Key(), val)
					return err
				})
				var ce *CorruptError
				if errors.As(err, &ce) {
					return err // already names its key (a message read by decode)
				}
				if err != nil {
					return corrupt(item.Key(), err)
				}
				if keep {
					page = append(page, v)
					size += n
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		s.trimmer.check() // a long listing maps pages fast
		for _, v := range page {
			if !fn(v) {
				return nil
			}
		}
		if next == nil {
			return nil
		}
		seek = next
	}
}

// Sessions implements store.Store.
func (s *Store) Sessions(fn func(*store.SessionRecord) error) error {
	var ferr error
	err := scanPages(s, []byte{prefixSession}, []byte{prefixSession}, func(_ *badger.Txn, key, val []byte) (*store.SessionRecord, int, bool, error) {
		r, err := decodeSession(string(key[1:]), val)
		return r, len(val), true, err
	}, func(r *store.SessionRecord) bool {
		ferr = fn(r)
		return ferr == nil
	})
	return errors.Join(err, ferr)
}

// Retained implements store.Store.
func (s *Store) Retained(fn func(*store.Message) error) error {
	var ferr error
	err := scanPages(s, []byte{prefixRetained}, []byte{prefixRetained}, func(_ *badger.Txn, key, val []byte) (*store.Message, int, bool, error) {
		m, err := decodeMessage(val)
		if err == nil && m.Topic != string(key[1:]) {
			err = fmt.Errorf("value holds topic %q", m.Topic)
		}
		return m, len(val), true, err
	}, func(m *store.Message) bool {
		ferr = fn(m)
		return ferr == nil
	})
	return errors.Join(err, ferr)
}

// Inbound implements store.Store.
func (s *Store) Inbound(clientID string, fn func(packetID uint16)) error {
	prefix, err := clientPrefix(prefixInbound, clientID, 2)
	if err != nil {
		return err
	}
	var ids []uint16 // at most 65535
	err = s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			key := it.Item().Key()
			if len(key) != len(prefix)+2 {
				return corrupt(key, errors.New("inbound key of the wrong length"))
			}
			ids = append(ids, binary.BigEndian.Uint16(key[len(prefix):]))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("badgerstore: inbound of %q: %w", clientID, err)
	}
	for _, id := range ids {
		fn(id)
	}
	return nil
}

// MaxMessageID implements store.Store.
func (s *Store) MaxMessageID() uint64 { return s.maxID.Load() }

// MessageCount returns how many messages are stored for queues (not
// counting retained messages); see storetest.MessageCounter. It scans the
// keys of all messages: meant for tests and diagnostics.
func (s *Store) MessageCount() int {
	n := 0
	_ = s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixMessage}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	return n
}

// checkHWM compares the high-water mark with the highest message id
// Badger recovered (s.maxID, set by rebuildRefs) and opens the mark for
// the writer.
func (s *Store) checkHWM() error {
	h, recorded, found, damaged := openHWM(s.opt.Dir)
	if h == nil {
		return fmt.Errorf("high-water mark: %w", damaged)
	}
	s.hwm = h
	if damaged != nil {
		s.log.Warn("the high-water mark is damaged; a loss of acknowledged messages in the last crash would go unnoticed",
			"err", damaged)
	}
	have := s.maxID.Load()
	if found && recorded > have {
		var mems []string
		if m, err := filepath.Glob(filepath.Join(s.opt.Dir, "*.mem")); err == nil {
			for _, p := range m {
				mems = append(mems, filepath.Base(p))
			}
		}
		s.stats.lost.Store(recorded - have)
		s.log.Error("the store lost acknowledged messages: Badger recovered fewer than were committed "+
			"(a damaged write-ahead log, or a power cut in durability process); the broker continues without them",
			"highest_committed_message_id", recorded, "highest_recovered_message_id", have,
			"message_ids_lost_at_most", recorded-have, "write_ahead_logs", strings.Join(mems, ","))
		// Continue above the mark: a lost id is never given to another
		// message (the bridge's message-id property must stay unique).
		if err := s.db.Update(func(txn *badger.Txn) error {
			return txn.Set(keyMaxMsgID, encodeMaxID(recorded))
		}); err != nil {
			return fmt.Errorf("recording the highest message id: %w", err)
		}
		s.maxID.Store(recorded)
	}
	return h.note(s.maxID.Load())
}
