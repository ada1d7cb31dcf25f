package broker

import (
	"slices"
	"strings"
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
// not saved: after a restart it is built again when needed. From then on it
// follows the backlog under ss.mu: an entry is added when a delivery spills
// to the store (deliverLocked), removed when the refill reads it back into
// memory or when the budget drops it. Entries on disk are never in flight,
// so no acknowledgement touches it.
//
// Cost: per message on disk, its seq and size (12 bytes, up to twice that
// while a topic's slices have room to grow); per topic on disk, one copy of
// the topic name and about 120 bytes of map entry and slice headers.

// multiScan bounds how many topics with several messages on disk a
// search for a superseded message looks at (supersededLocked).
const multiScan = 1024

// outboxIndex indexes the backlog of an internal session by topic.
type outboxIndex struct {
	built  bool
	topics map[string]*diskTopic
	multi  map[*diskTopic]struct{} // topics with two or more messages on disk
	n      int                     // messages indexed: ss.backlog once built

	// Messages dropped from disk whose dequeue may not be applied in the
	// store yet, oldest batch first: a refill or a build that reads the
	// store meanwhile must skip them. An entry leaves when its batch has
	// been committed (gen <= applied) or the refill has passed its seq.
	dropped []droppedEntry
	gen     uint64        // batches of disk drops made so far
	applied atomic.Uint64 // highest of those committed (set from the store's callback)
}

// diskTopic is one topic's messages on disk, oldest first.
type diskTopic struct {
	topic string
	seqs  []uint64
	sizes []uint32 // store.Message.Size of each
}

type droppedEntry struct{ seq, gen uint64 }

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
	applied := x.applied.Load()
	x.dropped = slices.DeleteFunc(x.dropped, func(d droppedEntry) bool { return d.gen <= applied || d.seq <= loaded })
	if len(x.dropped) == 0 {
		x.dropped = nil
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

// markApplied records that batch gen of disk drops is committed. Called
// from the store's callback, without ss.mu.
func (x *outboxIndex) markApplied(gen uint64) {
	for {
		old := x.applied.Load()
		if old >= gen || x.applied.CompareAndSwap(old, gen) {
			return
		}
	}
}

// spilledLocked indexes a delivery that went to the backlog.
func (ss *session) spilledLocked(seq uint64, m *store.Message) {
	if x := ss.topicIndex; x != nil && x.built {
		x.add(m.Topic, seq, m.Size())
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

// indexLocked returns the built index of the backlog, building it first
// if needed; nil if the store could not be read.
func (ss *session) indexLocked() *outboxIndex {
	x := ss.topicIndex
	if x == nil {
		x = &outboxIndex{}
		ss.topicIndex = x
	}
	x.pruneDropped(ss.loadedSeq)
	if x.built {
		return x
	}
	// One pass over the backlog, under ss.mu like the refill: the session
	// waits for it (see README, bridge memory and timing).
	start := time.Now()
	scanned := 0
	err := ss.srv.store.Queue(ss.id, ss.loadedSeq, func(e store.QueueEntry, m *store.Message) bool {
		scanned++
		// In flight (restored at start-up), live (in memory already),
		// dropped, or not yet delivered (deliverLocked indexes it): not
		// backlog.
		if e.PacketID != 0 || ss.isLiveLocked(e.Seq) || x.isDropped(e.Seq) || !ss.deliveredLocked(e.Seq) {
			return true
		}
		x.add(m.Topic, e.Seq, m.Size())
		return true
	})
	if err != nil {
		x.reset()
		ss.srv.log.Error("reading the outbox to index it by topic", "client", ss.id, "err", err)
		return nil
	}
	x.built = true
	ss.srv.log.Info("outbox topic index built", "client", ss.id, "scanned", scanned, "messages", x.n,
		"topics", len(x.topics), "took", time.Since(start).Round(time.Microsecond))
	if x.n != ss.backlog {
		ss.srv.log.Warn("outbox topic index does not match the backlog count", "client", ss.id, "indexed", x.n,
			"backlog", ss.backlog)
	}
	return x
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
