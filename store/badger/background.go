package badgerstore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func (s *Store) startBackground() {
	if d := s.opt.GCInterval; d > 0 {
		s.bgWG.Add(1)
		go s.every(d, func() { s.runValueLogGC("periodic") })
	}
	if d := s.opt.ProcessSyncInterval; d > 0 && s.opt.Durability == Process {
		var fs fileSyncer
		s.bgWG.Add(1)
		go s.every(d, func() {
			if s.dirty.Swap(false) {
				if err := fs.sync(s); err != nil {
					s.log.Warn("background sync failed", "err", err)
				}
				s.stats.bgSyncs.Add(1)
			}
		})
	}
}

func (s *Store) every(d time.Duration, fn func()) {
	defer s.bgWG.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-s.bgStop:
			return
		case <-t.C:
			fn()
		}
	}
}

// runValueLogGC rewrites value-log files that are at least half garbage,
// at most gcRounds of them per run so that one run is bounded.
func (s *Store) runValueLogGC(why string) {
	for i := 0; i < gcRounds; i++ {
		err := s.db.RunValueLogGC(gcDiscardRatio)
		switch {
		case err == nil:
			continue
		case errors.Is(err, badger.ErrNoRewrite), errors.Is(err, badger.ErrRejected):
		default:
			s.log.Warn("value-log GC failed", "when", why, "err", err)
		}
		if i > 0 {
			s.log.Debug("value-log GC", "when", why, "files_rewritten", i)
		}
		return
	}
}

// fileSyncer makes everything written so far durable in Process mode.
// db.Sync() alone syncs only the current memtable log and value-log file;
// a file that was current at the previous sync, or was created and
// rotated since, may hold writes too. So it also fsyncs every .mem and
// .vlog file that was not there at the previous sync, and those that were
// the newest then.
type fileSyncer struct {
	seen map[string]bool
	last []string // newest .mem and .vlog at the previous sync
}

func (fs *fileSyncer) sync(s *Store) error {
	var errs []error
	if err := s.db.Sync(); err != nil {
		errs = append(errs, err)
	}
	entries, err := os.ReadDir(s.opt.Dir)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	seen := make(map[string]bool, len(entries))
	var newestMem, newestVlog string
	var toSync []string
	for _, e := range entries {
		name := e.Name()
		isMem, isVlog := strings.HasSuffix(name, ".mem"), strings.HasSuffix(name, ".vlog")
		if !isMem && !isVlog {
			continue
		}
		seen[name] = true
		if !fs.seen[name] { // all of them the first time
			toSync = append(toSync, name)
		}
		// Names are zero-padded numbers: the greatest is the newest.
		if isMem && name > newestMem {
			newestMem = name
		}
		if isVlog && name > newestVlog {
			newestVlog = name
		}
	}
	toSync = append(toSync, fs.last...)
	for _, name := range toSync {
		if err := fsyncFile(filepath.Join(s.opt.Dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	fs.seen = seen
	fs.last = fs.last[:0]
	for _, n := range []string{newestMem, newestVlog} {
		if n != "" {
			fs.last = append(fs.last, n)
		}
	}
	return errors.Join(errs...)
}

func fsyncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
