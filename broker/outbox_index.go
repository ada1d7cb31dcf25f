package broker

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weirmq/weir/store"
)

// The topic index of an outbox lets KeepLastPerTopic reach the part of an
// internal session's queue that is on disk only (the backlog: store entries
// above loadedSeq, read back by refillLocked as the queue drains). Without
// it a long outage, with every message in memory the latest of its topic,
// would drop the new message — the latest value of its topic.
//
// It exists only for sessions that needed it: it is built at the first
// overflow under KeepLastPerTopic that has to search the backlog, by one
// pass over the backlog in the store (topics are in the messages), and is
// not saved: after a restart it is built again when needed. The pass reads
// every message on disk (about 10 µs each on the 2-core test machine), so it runs
// without ss.mu: deliveries, refills and acknowledgements go on meanwhile
// (the store's writer delivers under ss.mu: holding it for the pass would
// stall every commit of the broker), and what changed is reconciled when
// the pass ends (buildIndexLocked); only the publishers whose message
// needs the index wait for it. From then on the index follows the backlog
// under ss.mu: an entry is added when a delivery spills to the store
// (deliverLocked), removed when the refill reads it back into memory or
// when the budget drops it. Entries on disk are never in flight, so no
// acknowledgement touches it.
//
// Cost: per message on disk, its seq and size (12 bytes, up to twice that
// while a topic's slices have room to grow); per topic on disk, one copy of
// the topic name and about 120 bytes of map entry and slice headers.
// Measured (TestKeepLastIndexMemory): 17.2–17.4 bytes of heap per message
// for 100,000 messages on disk on 1,000 topics; the pass over the store
// took 8–12 µs per message there.

// multiScan bounds how many topics with several messages on disk a
// search for a superseded message looks at (supersededLocked).
const multiScan = 1024

// outboxIndex indexes the backlog of an internal session by topic.
type outboxIndex struct {
	built    bool
	building bool       // a pass over the store runs, without ss.mu
	done     *sync.Cond // on ss.mu: the pass ended
	journal  []spill    // deliveries spilled during the pass
	topics   map[string]*diskTopic
	multi    map[*diskTopic]struct{} // topics with two or more messages on disk
	n        int                     // messages indexed: ss.backlog once built

	// Messages dropped from disk whose dequeue may not be applied in the
	// store yet, oldest batch first: a refill or a build that reads the
	// store meanwhile must skip them. An entry leaves when its batch has
	// been committed (gen <= applied, not failed) or the refill has
	// passed its seq.
	dropped []droppedEntry
	gen     uint64        // batches of disk drops made so far
	applied atomic.Uint64 // highest of those committed (set from the store's callback)
	// Batches whose commit failed: their entries are still in the store
	// and stay skipped until the refill passes them (they come back at a
	// restart, as undelivered messages do).
	failMu sync.Mutex
	failed map[uint64]struct{}
}

// diskTopic is one topic's messages on disk, oldest first.
type diskTopic struct {
	topic string
	seqs  []uint64
	sizes []uint32 // store.Message.Size of each
}

type droppedEntry struct{ seq, gen uint64 }

type spill struct {
	seq   uint64
	topic string
	size  int
}

// has reports whether seq of topic is indexed.
func (x *outboxIndex) has(topic string, seq uint64) bool {
	if dt := x.topics[topic]; dt != nil {
		_, ok := slices.BinarySearch(dt.seqs, seq)
		return ok
	}
	return false
}

// add indexes message seq of topic; seqs mostly arrive in order.
func (x *outboxIndex) add(topic string, seq uint64, size int) {
	dt := x.topics[topic]
	if dt == nil {
		if x.topics == nil {
			x.topics = make(map[string]*diskTopic)
			x.multi = make(map[*diskTopic]struct{})
		}
		dt = &diskTopic{topic: strings.Clone(topic)}
		x.topics[dt.topic] = dt
	}
	i := len(dt.seqs)
	for i > 0 && dt.seqs[i-1] > seq {
		i-- // delivered out of order: concurrent publishers
	}
	dt.seqs = slices.Insert(dt.seqs, i, seq)
	dt.sizes = slices.Insert(dt.sizes, i, uint32(size))
	if len(dt.seqs) == 2 {
		x.multi[dt] = struct{}{}
	}
	x.n++
}

// remove takes seq out of dt and reports its size (-1 if dt lacks it).
func (x *outboxIndex) remove(dt *diskTopic, seq uint64) int {
	i := 0
	if len(dt.seqs) == 0 || dt.seqs[0] != seq {
		var ok bool
		if i, ok = slices.BinarySearch(dt.seqs, seq); !ok {
			return -1
		}
	}
	size := int(dt.sizes[i])
	if i == 0 {
		dt.seqs, dt.sizes = dt.seqs[1:], dt.sizes[1:] // the usual case: no copy
	} else {
		dt.seqs, dt.sizes = slices.Delete(dt.seqs, i, i+1), slices.Delete(dt.sizes, i, i+1)
	}
	switch len(dt.seqs) {
	case 1:
		delete(x.multi, dt)
	case 0:
		delete(x.topics, dt.topic)
	}
	x.n--
	return size
}

// reset empties the index (it stays built: the backlog is empty).
func (x *outboxIndex) reset() {
	x.topics, x.multi, x.n = nil, nil, 0
}

// pruneDropped forgets the dropped entries whose dequeue is committed or
// that the refill has passed (seq <= loaded).
func (x *outboxIndex) pruneDropped(loaded uint64) {
	if len(x.dropped) == 0 {
		return
	}
	applied := x.applied.Load()
	x.failMu.Lock()
	defer x.failMu.Unlock()
	x.dropped = slices.DeleteFunc(x.dropped, func(d droppedEntry) bool {
		_, failed := x.failed[d.gen]
		return d.seq <= loaded || d.gen <= applied && !failed
	})
	if len(x.dropped) == 0 {
		x.dropped, x.failed = nil, nil
	}
}

func (x *outboxIndex) isDropped(seq uint64) bool {
	for _, d := range x.dropped {
		if d.seq == seq {
			return true
		}
	}
	return false
}

// markApplied records that the commit of batch gen of disk drops is done
// (failed if err is set). Called from the store's callback, without ss.mu.
func (x *outboxIndex) markApplied(gen uint64, err error) {
	if err != nil {
		x.failMu.Lock()
		if x.failed == nil {
			x.failed = make(map[uint64]struct{})
		}
		x.failed[gen] = struct{}{}
		x.failMu.Unlock()
	}
	for {
		old := x.applied.Load()
		if old >= gen || x.applied.CompareAndSwap(old, gen) {
			return
		}
	}
}

// spilledLocked indexes a delivery that went to the backlog.
func (ss *session) spilledLocked(seq uint64, m *store.Message) {
	switch x := ss.topicIndex; {
	case x == nil:
	case x.built:
		x.add(m.Topic, seq, m.Size())
	case x.building:
		x.journal = append(x.journal, spill{seq: seq, topic: m.Topic, size: m.Size()})
	}
}

// refilledLocked is called for each entry the refill reads from the
// backlog: it reports whether the entry was dropped from disk (its dequeue
// not applied yet) and must be skipped; otherwise the entry leaves the
// index, as it goes into memory.
func (ss *session) refilledLocked(seq uint64, m *store.Message) (skip bool) {
	x := ss.topicIndex
	if x == nil {
		return false
	}
	if x.isDropped(seq) {
		return true
	}
	if dt := x.topics[m.Topic]; dt != nil {
		x.remove(dt, seq)
	}
	return false
}

// refillDoneLocked follows the end of a refill.
func (ss *session) refillDoneLocked() {
	x := ss.topicIndex
	if x == nil {
		return
	}
	x.pruneDropped(ss.loadedSeq)
	if !ss.spilling && x.n > 0 {
		ss.srv.log.Warn("outbox topic index out of step with the backlog; emptied", "client", ss.id, "indexed", x.n)
	}
	if !ss.spilling {
		x.reset()
	}
}

// buildIndexLocked builds the topic index of the backlog, or waits for
// the build another goroutine runs. It releases ss.mu meanwhile: the
// caller must look at the session afresh. It reports whether the index is
// built (false: the store could not be read).
func (ss *session) buildIndexLocked() bool {
	x := ss.topicIndex
	if x == nil {
		x = &outboxIndex{done: sync.NewCond(&ss.mu)}
		ss.topicIndex = x
	}
	if x.building {
		for x.building {
			x.done.Wait()
		}
		return x.built
	}
	if x.built {
		return true
	}
	x.building = true
	from := ss.loadedSeq
	ss.mu.Unlock()
	// Every entry above from that is not in flight, into an index of
	// our own; the reconciliation below takes out what is not backlog.
	start := time.Now()
	scanned := 0
	y := &outboxIndex{}
	err := ss.srv.store.Queue(ss.id, from, func(e store.QueueEntry, m *store.Message) bool {
		scanned++
		if e.PacketID == 0 { // else in flight (restored at start-up): in memory
			y.add(m.Topic, e.Seq, m.Size())
		}
		return true
	})
	took := time.Since(start)
	ss.mu.Lock()
	defer x.done.Broadcast()
	x.building = false
	journal := x.journal
	x.journal = nil
	if err != nil {
		ss.srv.log.Error("reading the outbox to index it by topic", "client", ss.id, "err", err)
		return false
	}
	ss.reconcileLocked(y, journal)
	x.topics, x.multi, x.n = y.topics, y.multi, y.n
	x.pruneDropped(ss.loadedSeq)
	x.built = true
	if !ss.spilling {
		x.reset()
	}
	ss.srv.log.Info("outbox topic index built", "client", ss.id, "scanned", scanned, "messages", x.n,
		"topics", len(x.topics), "took", took.Round(time.Microsecond))
	if x.n != ss.backlog {
		ss.srv.log.Warn("outbox topic index does not match the backlog count", "client", ss.id, "indexed", x.n,
			"backlog", ss.backlog)
	}
	return true
}

// reconcileLocked makes y, read from the store while the session went on,
// the index of the backlog as it is now: entries the refill has read back
// meanwhile (at or below loadedSeq), live ones (in memory), dropped ones
// (dequeue not yet applied) and those not yet delivered (deliverLocked
// will index them) go; deliveries that spilled during the pass (journal)
// and that the pass did not meet come in.
func (ss *session) reconcileLocked(y *outboxIndex, journal []spill) {
	x := ss.topicIndex
	backlog := func(seq uint64) bool {
		return seq > ss.loadedSeq && !ss.isLiveLocked(seq) && !x.isDropped(seq) && ss.deliveredLocked(seq)
	}
	for _, dt := range y.topics {
		k := 0
		for i, seq := range dt.seqs {
			if backlog(seq) {
				dt.seqs[k], dt.sizes[k] = seq, dt.sizes[i]
				k++
			}
		}
		y.n -= len(dt.seqs) - k
		dt.seqs, dt.sizes = dt.seqs[:k], dt.sizes[:k]
		switch {
		case k == 0:
			delete(y.topics, dt.topic)
			delete(y.multi, dt)
		case k == 1:
			delete(y.multi, dt)
		}
	}
	for _, sp := range journal {
		if backlog(sp.seq) && !y.has(sp.topic, sp.seq) {
			y.add(sp.topic, sp.seq, sp.size)
		}
	}
}

// isLiveLocked reports whether seq is a live message in memory whose entry
// lies in the backlog's range (deliverLiveLocked).
func (ss *session) isLiveLocked(seq uint64) bool {
	_, ok := ss.liveSeqs[seq]
	return ok
}

// deliveredLocked reports whether persisted delivery seq has been handed
// to the session (settleLocked).
func (ss *session) deliveredLocked(seq uint64) bool {
	if len(ss.pending) == 0 || seq < ss.pending[0] {
		return true
	}
	_, ok := ss.pendingDone[seq]
	return ok
}

// dropStoredLocked drops the oldest message of dt from disk for the budget
// of an internal session: a dequeue in b (batch gen of disk drops), off
// the backlog counts and the store budget, counted as dropped by p.
func (ss *session) dropStoredLocked(b *store.Batch, dt *diskTopic, gen uint64, o *InternalOptions, p OverflowPolicy) {
	x := ss.topicIndex
	seq, topic := dt.seqs[0], dt.topic
	size := x.remove(dt, seq)
	x.dropped = append(x.dropped, droppedEntry{seq: seq, gen: gen})
	b.Dequeue(ss.id, seq)
	ss.releaseStoredLocked(size)
	ss.backlog--
	ss.backlogBytes -= size
	ss.dropped(o, topic, p)
}
