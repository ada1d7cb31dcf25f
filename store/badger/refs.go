package badgerstore

import (
	"errors"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"
)

// trimEvery is how many keys the passes over the whole store read between
// checks of the resident mapped memory (trim_linux.go).
const trimEvery = 4096

type rebuildStats struct {
	entries  int // queue entries
	messages int // messages referred to
	orphans  int // messages nobody referred to, deleted
	dangling int // queue entries whose message is not stored
}

// rebuildRefs counts the queue entries referring to each message, keeps
// the counts of two or more in s.refs, deletes the messages no entry
// refers to (orphans) and sets s.maxID. It runs in Open, and in the writer
// after an oversized batch failed half-way; nothing else writes meanwhile.
//
// Why counts are rebuilt rather than stored: a stored count would be
// rewritten on every enqueue and dequeue (flash wear; a read-modify-write
// of the message or of a counter key per op), and after a crash in the
// middle of an oversized batch it could disagree with the entries anyway.
// Counting costs one pass over the queue entries (values are small and
// kept in the LSM tree) and 8 bytes per entry while Open sorts them.
func (s *Store) rebuildRefs() (rebuildStats, error) {
	var st rebuildStats
	var maxID uint64
	var ids []uint64
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(keyMaxMsgID)
		switch {
		case err == nil:
			if err := item.Value(func(v []byte) (err error) {
				maxID, err = decodeMaxID(v)
				return err
			}); err != nil {
				return corrupt(keyMaxMsgID, err)
			}
		case !errors.Is(err, badger.ErrKeyNotFound):
			return err
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixQueue}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if len(ids)%trimEvery == 0 {
				s.trimmer.check() // this pass maps the whole LSM tree
			}
			item := it.Item()
			if err := item.Value(func(v []byte) error {
				id, err := entryMsgID(v)
				ids = append(ids, id)
				return err
			}); err != nil {
				return corrupt(item.Key(), err)
			}
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("counting message references: %w", err)
	}
	slices.Sort(ids)
	st.entries = len(ids)

	refs := make(map[uint64]int)
	var orphans [][]byte
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixMessage}})
		defer it.Close()
		j, keys := 0, 0
		for it.Rewind(); it.Valid(); it.Next() {
			if keys++; keys%trimEvery == 0 {
				s.trimmer.check()
			}
			key := it.Item().Key()
			id, ok := parseMessageKey(key)
			if !ok {
				return corrupt(key, errors.New("message key of the wrong length"))
			}
			for j < len(ids) && ids[j] < id {
				j++
				st.dangling++
			}
			n := 0
			for j < len(ids) && ids[j] == id {
				j++
				n++
			}
			switch {
			case n == 0:
				orphans = append(orphans, it.Item().KeyCopy(nil))
			case n >= 2:
				refs[id] = n
			}
			if n > 0 {
				st.messages++
			}
			maxID = max(maxID, id)
		}
		st.dangling += len(ids) - j
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("counting message references: %w", err)
	}
	if len(orphans) > 0 {
		wb := s.db.NewWriteBatch()
		defer wb.Cancel()
		for _, k := range orphans {
			if err := wb.Delete(k); err != nil {
				return st, fmt.Errorf("deleting orphaned messages: %w", err)
			}
		}
		if err := wb.Flush(); err != nil {
			return st, fmt.Errorf("deleting orphaned messages: %w", err)
		}
		st.orphans = len(orphans)
		s.log.Info("deleted messages no queue entry refers to", "orphaned_messages", len(orphans))
	}
	s.refs = refs
	s.maxID.Store(maxID)
	return st, nil
}
