package badgerstore

import (
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/weirmq/weir/store"
)

// The writer: one goroutine owns every write to Badger. It takes all the
// batches queued at that moment (a group), applies them in order to one
// Badger transaction, commits it, and then calls their done callbacks in
// order. That one commit is what makes the whole group durable:
//
//   - Process mode: Txn.Commit returns only after Badger's write goroutine
//     has copied the entries into the memtable's write-ahead log (.mem) and
//     values over the threshold into the value log (.vlog). Both are
//     memory-mapped shared files, so the bytes are in the kernel's page
//     cache by then and the kernel writes them back even if this process
//     is killed the next instant (SIGKILL does not discard the page cache);
//     on the next Open Badger replays the .mem logs. TestCrashKill checks
//     this by killing a child process mid-stream.
//   - Sync mode: Badger runs with SyncWrites, so the commit also syncs the
//     log and value log before it returns: one sync per group.
//
// Reference counts. A message (m/<id>) is stored once and referred to by
// queue entries. The number of entries referring to it is not stored (that
// would rewrite a counter, or the message, on every enqueue and dequeue);
// Open counts the queue entries instead (refs.go). While the store runs,
// the writer keeps in memory only the counts of messages referred to by
// two or more entries (Store.refs): every stored message has at least one
// reference, because the writer deletes a message in the same transaction
// that removes its last reference, so an m/ key that is not in refs has
// exactly one. Whether a message is released is decided at the end of each
// batch, from the counts left after all its ops, like the memory store.

func (s *Store) writeLoop() {
	defer close(s.writerDone)
	var buf []request
	for {
		group, closed := s.take(buf[:0])
		if len(group) == 0 {
			if closed {
				return
			}
			select {
			case <-s.wake:
			case <-s.closing:
			}
			continue
		}
		if d := s.opt.MaxBatchDelay; d > 0 && !closed {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-s.closing:
				t.Stop()
			}
			group, _ = s.take(group)
		}
		if h := s.hooks.beforeGroup; h != nil {
			h()
		}
		s.commitGroup(group)
		clear(group)
		buf = group
	}
}

// take appends the queued requests to group.
func (s *Store) take(group []request) ([]request, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	group = append(group, s.pending...)
	clear(s.pending)
	s.pending = s.pending[:0]
	return group, s.closed
}

// commitGroup writes the batches of group and then calls their done
// callbacks in order.
func (s *Store) commitGroup(group []request) {
	g := &groupTxn{s: s, errs: make([]error, len(group)), maxID: s.maxID.Load()}
	space := s.admission()
	for i := range group {
		switch {
		case s.broken != nil:
			g.errs[i] = s.broken
		case group[i].b.Empty():
		default:
			if err := space.admit(group[i].b); err != nil {
				g.errs[i] = err
				continue
			}
			g.add(i, group[i].b)
		}
	}
	g.commit()
	if g.txns > 0 {
		s.stats.groups.Add(1)
		s.dirty.Store(true)
		if err := s.hwm.note(s.maxID.Load()); err != nil {
			s.log.Warn("writing the high-water mark failed", "err", err)
		}
	}
	for i := range group {
		if done := group[i].done; done != nil {
			done(g.errs[i])
		}
	}
}

// groupTxn is the Badger transaction the writer is filling for a group,
// and what it needs to roll one batch back out of it: Badger cannot take a
// write back out of a transaction, so the writes of every batch in it are
// kept, and a rollback discards the transaction and replays the others.
type groupTxn struct {
	s       *Store
	errs    []error // per request of the group
	txn     *badger.Txn
	members []member          // batches in txn, in order
	refs    map[uint64]msgRef // messages whose references txn changes
	maxID   uint64            // MaxMessageID including txn
	txns    int               // transactions committed for the group
}

type member struct {
	idx    int
	writes []write
}

type write struct {
	key, val []byte
	del      bool
}

func (w *write) to(txn *badger.Txn) error {
	if w.del {
		return txn.Delete(w.key)
	}
	return txn.Set(w.key, w.val)
}

// msgRef is what the writer knows of a message while it applies a batch.
type msgRef struct {
	exists bool // m/<id> is stored (or put by the batch)
	count  int  // queue entries referring to it
}

func (g *groupTxn) begin() {
	if g.txn == nil {
		g.txn = g.s.db.NewTransaction(true)
	}
}

// add applies batch idx to the transaction. A batch that does not fit
// goes into a transaction of its own, after the earlier batches of the
// group are committed; one that does not fit alone is spread over several
// (applyOversized).
func (g *groupTxn) add(idx int, b *store.Batch) {
	g.begin()
	a := g.newApplier(false)
	err := a.apply(b)
	if err == nil {
		g.accept(idx, a)
		return
	}
	g.rollback()
	if !errors.Is(err, badger.ErrTxnTooBig) {
		g.errs[idx] = err
		return
	}
	if len(g.members) > 0 {
		g.commit()
		g.begin()
		a = g.newApplier(false)
		if err = a.apply(b); err == nil {
			g.accept(idx, a)
			return
		}
		g.rollback()
		if !errors.Is(err, badger.ErrTxnTooBig) {
			g.errs[idx] = err
			return
		}
	}
	g.discard()
	g.errs[idx] = g.applyOversized(b)
}

func (g *groupTxn) accept(idx int, a *applier) {
	g.members = append(g.members, member{idx: idx, writes: a.writes})
	if g.refs == nil {
		g.refs = make(map[uint64]msgRef, len(a.local))
	}
	for id, r := range a.local {
		g.refs[id] = *r
	}
	g.maxID = a.maxID
}

// rollback drops the writes of the batch being applied: it discards the
// transaction and replays those of the batches accepted before.
func (g *groupTxn) rollback() {
	g.discard()
	g.begin()
	for _, m := range g.members {
		for j := range m.writes {
			if err := m.writes[j].to(g.txn); err != nil {
				// They fitted before, in the same order: this cannot
				// happen. Fail them rather than lose them silently.
				g.failMembers(fmt.Errorf("badgerstore: replaying a rolled back transaction: %w", err))
				g.discard()
				g.refs = nil
				g.maxID = g.s.maxID.Load()
				return
			}
		}
	}
}

func (g *groupTxn) discard() {
	if g.txn != nil {
		g.txn.Discard()
		g.txn = nil
	}
}

func (g *groupTxn) failMembers(err error) {
	for _, m := range g.members {
		g.errs[m.idx] = err
	}
	g.members = nil
}

// commit commits the transaction with the batches accepted so far and, if
// that worked, makes their effect on reference counts and MaxMessageID
// the writer's state.
func (g *groupTxn) commit() {
	if len(g.members) == 0 {
		g.discard()
		return
	}
	err := g.commitTxn(false)
	if err != nil {
		g.failMembers(fmt.Errorf("badgerstore: commit: %w", err))
		g.refs = nil
		g.maxID = g.s.maxID.Load()
		return
	}
	g.s.applyRefs(g.refs)
	g.s.maxID.Store(g.maxID)
	g.members = nil
	g.refs = nil
}

// commitTxn commits g.txn and counts it.
func (g *groupTxn) commitTxn(split bool) error {
	err := g.txn.Commit()
	g.txn = nil
	g.txns++
	g.s.stats.txns.Add(1)
	if g.s.opt.Durability == Sync {
		g.s.stats.syncs.Add(1)
	}
	if h := g.s.hooks.afterCommit; h != nil {
		h(split)
	}
	return err
}

// applyRefs records the counts of committed messages: only counts of two
// or more are kept (see the comment at the top of this file).
func (s *Store) applyRefs(refs map[uint64]msgRef) {
	for id, r := range refs {
		if r.exists && r.count >= 2 {
			s.refs[id] = r.count
		} else {
			delete(s.refs, id)
		}
	}
}

// applyOversized applies a batch that does not fit in one Badger
// transaction (more than about 15% of MemTableSize: say DeleteSession of a
// session with a long queue, or tens of thousands of ops). Its writes are
// spread over as many transactions as needed, committed one after the
// other, in the order of its ops; the MaxMessageID update comes first and
// the deletion of released messages last. So:
//
//   - other batches never interleave with it (there is one writer), but a
//     read running meanwhile may see part of it;
//   - a crash in the middle leaves a prefix of its writes: some of its
//     ops applied and not the rest (a session partly deleted, some queue
//     entries put), but never a queue entry whose message was deleted —
//     at worst messages that nothing refers to yet or any more, which
//     Open deletes. done was not called, so nobody was told the batch
//     was written; the broker re-sends what it did not acknowledge.
//
// If a commit fails in the middle, the writer recounts references from
// the disk as Open does; if that fails too, the store refuses further
// commits until it is reopened.
func (g *groupTxn) applyOversized(b *store.Batch) error {
	s := g.s
	s.stats.oversized.Add(1)
	g.begin()
	a := g.newApplier(true)
	err := a.apply(b)
	if err == nil {
		err = g.commitTxn(true)
	}
	g.discard()
	if err == nil {
		g.s.applyRefs(derefAll(a.local))
		s.maxID.Store(a.maxID)
		return nil
	}
	err = fmt.Errorf("badgerstore: oversized batch of %d ops: %w", len(b.Ops), err)
	if a.committed {
		s.log.Error("oversized batch failed after part of it was committed; recounting references", "err", err)
		if _, rerr := s.rebuildRefs(); rerr != nil {
			s.broken = fmt.Errorf("badgerstore: store state unknown after a failed oversized batch, reopen it: %w",
				errors.Join(err, rerr))
			s.log.Error("recounting references failed; refusing further commits", "err", s.broken)
		}
	}
	return err
}

func derefAll(m map[uint64]*msgRef) map[uint64]msgRef {
	out := make(map[uint64]msgRef, len(m))
	for id, r := range m {
		out[id] = *r
	}
	return out
}

// spill commits the transaction an oversized batch is filling and starts
// the next.
func (g *groupTxn) spill(a *applier) error {
	if err := g.commitTxn(true); err != nil {
		return err
	}
	a.committed = true
	g.begin()
	return nil
}

// applier applies the ops of one batch to the group's transaction.
type applier struct {
	g     *groupTxn
	split bool // oversized: spill to a new transaction when full
	// committed: part of an oversized batch was committed.
	committed bool
	local     map[uint64]*msgRef // messages the batch touches
	writes    []write            // for rollback (not kept when split)
	maxID     uint64
	// maxBefore is MaxMessageID before the batch: no message with a
	// higher id can be stored unless the batch put it.
	maxBefore uint64
}

func (g *groupTxn) newApplier(split bool) *applier {
	return &applier{g: g, split: split, local: make(map[uint64]*msgRef), maxID: g.maxID, maxBefore: g.maxID}
}

func (a *applier) apply(b *store.Batch) error {
	// MaxMessageID first, so that it is in the first transaction of an
	// oversized batch.
	max := a.maxID
	for i := range b.Ops {
		if op := &b.Ops[i]; (op.Kind == store.OpPutMessage || op.Kind == store.OpPutRetained) && op.Message != nil {
			max = maxU64(max, op.Message.ID)
		}
	}
	if max > a.maxID {
		if err := a.set(keyMaxMsgID, encodeMaxID(max)); err != nil {
			return err
		}
		a.maxID = max
	}
	for i := range b.Ops {
		if err := a.op(&b.Ops[i]); err != nil {
			if errors.Is(err, badger.ErrTxnTooBig) {
				return err
			}
			return fmt.Errorf("badgerstore: op %d of %d (kind %d): %w", i, len(b.Ops), b.Ops[i].Kind, err)
		}
	}
	// Release the messages no entry refers to at the end of the batch.
	for id, r := range a.local {
		if r.exists && r.count <= 0 {
			if err := a.del(messageKey(id)); err != nil {
				return err
			}
			r.exists, r.count = false, 0
		}
	}
	return nil
}

func maxU64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

func (a *applier) op(op *store.Op) error {
	switch op.Kind {
	case store.OpPutSession:
		if op.Session == nil {
			return errors.New("PutSession without a session")
		}
		v, err := encodeSession(op.Session)
		if err != nil {
			return err
		}
		return a.set(sessionKey(op.Session.ClientID), v)

	case store.OpDeleteSession:
		if err := a.del(sessionKey(op.ClientID)); err != nil {
			return err
		}
		if err := a.deleteClient(prefixQueue, op.ClientID); err != nil {
			return err
		}
		return a.deleteClient(prefixInbound, op.ClientID)

	case store.OpPutMessage:
		m := op.Message
		if m == nil {
			return errors.New("PutMessage without a message")
		}
		r, err := a.ref(m.ID, false)
		if err != nil || r.exists {
			return err // an existing message is kept as it is
		}
		v, err := encodeMessage(m)
		if err != nil {
			return err
		}
		if err := a.set(messageKey(m.ID), v); err != nil {
			return err
		}
		r.exists, r.count = true, 0
		return nil

	case store.OpEnqueue:
		e := &op.Entry
		key, err := queueKey(op.ClientID, e.Seq)
		if err != nil {
			return err
		}
		v, err := encodeEntry(e)
		if err != nil {
			return err
		}
		old, had, err := a.getEntry(key)
		if err != nil {
			return err
		}
		// An update of an entry (same message) changes no count.
		if !had || old.MsgID != e.MsgID {
			if err := a.addRef(e.MsgID, +1, false); err != nil {
				return err
			}
			if had {
				if err := a.addRef(old.MsgID, -1, true); err != nil {
					return err
				}
			}
		}
		return a.set(key, v)

	case store.OpDequeue:
		key, err := queueKey(op.ClientID, op.Entry.Seq)
		if err != nil {
			return err
		}
		old, had, err := a.getEntry(key)
		if err != nil || !had {
			return err
		}
		if err := a.del(key); err != nil {
			return err
		}
		return a.addRef(old.MsgID, -1, true)

	case store.OpPutInbound:
		key, err := inboundKey(op.ClientID, op.PacketID)
		if err != nil {
			return err
		}
		return a.set(key, nil)

	case store.OpDeleteInbound:
		key, err := inboundKey(op.ClientID, op.PacketID)
		if err != nil {
			return err
		}
		return a.del(key)

	case store.OpPutRetained:
		if op.Message == nil {
			return errors.New("PutRetained without a message")
		}
		v, err := encodeMessage(op.Message)
		if err != nil {
			return err
		}
		return a.set(retainedKey(op.Message.Topic), v)

	case store.OpDeleteRetained:
		return a.del(retainedKey(op.Topic))
	}
	return fmt.Errorf("unknown op kind %d", op.Kind)
}

// ref returns what the batch knows of message id, loading it on first use:
// from the group's transaction, the writer's counts or the disk. inUse
// says that a queue entry referring to it was just read: the message is
// then stored (every stored message has a reference, and only a damaged
// store has entries without a message, where deleting the missing key is
// harmless), so the disk is not read to find out.
func (a *applier) ref(id uint64, inUse bool) (*msgRef, error) {
	if r, ok := a.local[id]; ok {
		return r, nil
	}
	r := new(msgRef)
	if gr, ok := a.g.refs[id]; ok {
		*r = gr
	} else if n, ok := a.g.s.refs[id]; ok {
		r.exists, r.count = true, n
	} else if inUse {
		r.exists, r.count = true, 1
	} else if id <= a.maxBefore {
		_, err := a.g.txn.Get(messageKey(id))
		switch {
		case err == nil:
			r.exists, r.count = true, 1
		case !errors.Is(err, badger.ErrKeyNotFound):
			return nil, err
		}
	}
	a.local[id] = r
	return r, nil
}

// addRef adds delta to the references of message id if it is stored (an
// entry may name a message that is not: it does not keep it alive); inUse
// as for ref.
func (a *applier) addRef(id uint64, delta int, inUse bool) error {
	r, err := a.ref(id, inUse)
	if err == nil && r.exists {
		r.count += delta
	}
	return err
}

func (a *applier) getEntry(key []byte) (store.QueueEntry, bool, error) {
	item, err := a.g.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return store.QueueEntry{}, false, nil
	}
	if err != nil {
		return store.QueueEntry{}, false, err
	}
	var e store.QueueEntry
	err = item.Value(func(v []byte) (err error) {
		e, err = decodeEntry(v)
		return err
	})
	if err != nil {
		return store.QueueEntry{}, false, corrupt(key, err)
	}
	return e, true, nil
}

// scanChunk is how many keys deleteClient collects per iterator.
const scanChunk = 4096

// deleteClient deletes the queue entries (releasing their messages) or the
// inbound ids of client. It collects keys a chunk at a time and closes the
// iterator before deleting them, so that an oversized delete can move on
// to the next transaction between chunks.
func (a *applier) deleteClient(p byte, client string) error {
	prefix, err := clientPrefix(p, client, 0)
	if err != nil {
		return err
	}
	seek := prefix
	for {
		var keys [][]byte
		var ids []uint64
		err := func() error {
			it := a.g.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
			defer it.Close()
			for it.Seek(seek); it.Valid() && len(keys) < scanChunk; it.Next() {
				item := it.Item()
				keys = append(keys, item.KeyCopy(nil))
				if p != prefixQueue {
					continue
				}
				err := item.Value(func(v []byte) error {
					id, err := entryMsgID(v)
					ids = append(ids, id)
					return err
				})
				if err != nil {
					return corrupt(item.Key(), err)
				}
			}
			return nil
		}()
		if err != nil {
			return err
		}
		for i, k := range keys {
			if err := a.del(k); err != nil {
				return err
			}
			if p == prefixQueue {
				if err := a.addRef(ids[i], -1, true); err != nil {
					return err
				}
			}
		}
		if len(keys) < scanChunk {
			return nil
		}
		seek = nextKey(keys[len(keys)-1])
	}
}

func (a *applier) set(key, val []byte) error { return a.write(write{key: key, val: val}) }
func (a *applier) del(key []byte) error      { return a.write(write{key: key, del: true}) }

func (a *applier) write(w write) error {
	err := w.to(a.g.txn)
	if a.split && errors.Is(err, badger.ErrTxnTooBig) {
		if err = a.g.spill(a); err != nil {
			return err
		}
		err = w.to(a.g.txn)
	}
	if err != nil {
		return err
	}
	if !a.split {
		a.writes = append(a.writes, w)
	}
	return nil
}
