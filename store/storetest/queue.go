package storetest

import (
	"math"
	"testing"
	"time"

	"github.com/weirmq/weir/store"
)

// sharedSetup commits one full message (id 1) queued for s1, s2 and s3
// with different entry fields, and returns the entries.
func sharedSetup(h *harness) (m *store.Message, e1, e2, e3 store.QueueEntry) {
	h.t.Helper()
	m = fullMessage(1, "shared/topic")
	e1 = store.QueueEntry{Seq: 1, MsgID: 1, QoS: 1, SubIDs: []int{1, 2}}
	e2 = store.QueueEntry{Seq: 10, MsgID: 1, QoS: 2, Retain: true, SubIDs: []int{268435455}, PacketID: 7, State: store.EntrySent,
		Group: "$share/g/shared/topic", Queued: time.Date(2026, 11, 25, 21, 0, 0, 0, time.UTC)}
	e3 = store.QueueEntry{Seq: 256, MsgID: 1, QoS: 2, PacketID: 65535, State: store.EntryReleased}
	b := new(store.Batch)
	b.PutMessage(m)
	b.Enqueue("s1", e1)
	b.Enqueue("s2", e2)
	b.Enqueue("s3", e3)
	h.mustCommit(b)
	return m, e1, e2, e3
}

// testQueueShared: a message put once and queued for three sessions is
// returned by Queue for each with that session's entry fields, and stored
// once.
func testQueueShared(h *harness) {
	m, e1, e2, e3 := sharedSetup(h)
	// More messages, queued in another batch, to see the order.
	m2, m3 := plainMessage(2, "other"), fullMessage(3, "third")
	e1b := store.QueueEntry{Seq: 2, MsgID: 2, QoS: 0}
	e2b := store.QueueEntry{Seq: 11, MsgID: 3, QoS: 1, SubIDs: []int{4}}
	e3b := store.QueueEntry{Seq: 255, MsgID: 2, QoS: 1}
	b := new(store.Batch)
	b.PutMessage(m2)
	b.PutMessage(m3)
	b.Enqueue("s1", e1b)
	b.Enqueue("s2", e2b)
	b.Enqueue("s3", e3b)
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkQueue(t, s, "s1", 0, []queued{{e1, m}, {e1b, m2}})
		checkQueue(t, s, "s2", 0, []queued{{e2, m}, {e2b, m3}})
		checkQueue(t, s, "s3", 0, []queued{{e3b, m2}, {e3, m}})
		checkMessageCount(t, s, 3)
	})
}

// orderSeqs are Seqs that a store encoding them in anything but big-endian
// or comparing them as strings would list in the wrong order.
var orderSeqs = []uint64{
	1, 2, 9, 10, 11, 100, 255, 256, 257, 1000, 65535, 65536,
	1 << 32, 1<<32 + 1, 1 << 56, 1<<63 - 1, 1 << 63, math.MaxUint64,
}

// testQueueOrder: Queue yields entries in Seq order whatever the order
// they were queued in, across batches.
func testQueueOrder(h *harness) {
	var want []queued
	for i, seq := range orderSeqs {
		m := plainMessage(uint64(i+1), "t")
		want = append(want, queued{store.QueueEntry{Seq: seq, MsgID: m.ID, QoS: 1}, m})
	}
	// Queue them in a scrambled order, in three batches.
	perm := []int{7, 0, 17, 3, 12, 5, 9, 1, 16, 11, 4, 14, 2, 8, 15, 6, 13, 10}
	for start := 0; start < len(perm); start += 6 {
		b := new(store.Batch)
		for _, i := range perm[start:min(start+6, len(perm))] {
			b.PutMessage(want[i].m)
			b.Enqueue("c", want[i].e)
		}
		h.mustCommit(b)
	}
	h.check(func(t *testing.T, s store.Store) {
		checkQueue(t, s, "c", 0, want)
	})
}

// testQueueAfter: Queue(after) yields only the entries with Seq > after.
func testQueueAfter(h *harness) {
	var all []queued
	b := new(store.Batch)
	for i, seq := range orderSeqs {
		m := plainMessage(uint64(i+1), "t")
		e := store.QueueEntry{Seq: seq, MsgID: m.ID, QoS: 2}
		b.PutMessage(m)
		b.Enqueue("c", e)
		all = append(all, queued{e, m})
	}
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		for i, seq := range orderSeqs {
			checkQueue(t, s, "c", seq, all[i+1:])
			checkQueue(t, s, "c", seq-1, all[i:])
		}
		checkQueue(t, s, "c", 3, all[2:]) // between Seqs 2 and 9
		checkQueue(t, s, "c", 1<<40, all[14:])
	})
}

// testQueueStops: Queue stops as soon as fn returns false and returns nil.
func testQueueStops(h *harness) {
	b := new(store.Batch)
	for i := uint64(1); i <= 10; i++ {
		b.PutMessage(plainMessage(i, "t"))
		b.Enqueue("c", store.QueueEntry{Seq: i, MsgID: i, QoS: 1})
	}
	h.mustCommit(b)
	for _, stopAt := range []int{1, 3, 10} {
		var got []uint64
		err := h.s.Queue("c", 0, func(e store.QueueEntry, _ *store.Message) bool {
			got = append(got, e.Seq)
			return len(got) < stopAt
		})
		if err != nil {
			h.t.Errorf("Queue: %v", err)
		}
		if len(got) != stopAt || got[0] != 1 || got[len(got)-1] != uint64(stopAt) {
			h.t.Errorf("fn returning false at call %d: fn saw Seqs %v", stopAt, got)
		}
	}
	// Stopping mid-way leaves the store usable.
	b = new(store.Batch)
	b.Dequeue("c", 1)
	h.mustCommit(b)
	if got := readQueue(h.t, h.s, "c", 0); len(got) != 9 {
		h.t.Errorf("Queue after dequeue: %d entries, want 9", len(got))
	}
}

// testQueueEntries: an entry's recorded Size comes back from Queue and
// QueueEntries, and QueueEntries stops as soon as fn returns false.
func testQueueEntries(h *harness) {
	b := new(store.Batch)
	var want []queued
	for i := uint64(1); i <= 10; i++ {
		m := plainMessage(i, "t")
		e := store.QueueEntry{Seq: i, MsgID: i, QoS: 1, Size: int(1000 + i)}
		b.PutMessage(m)
		b.Enqueue("c", e)
		want = append(want, queued{e, m})
	}
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkQueue(t, s, "c", 0, want)
		checkQueue(t, s, "c", 4, want[4:])
		for _, stopAt := range []int{1, 3, 10} {
			var got []uint64
			err := s.QueueEntries("c", 0, func(e store.QueueEntry) bool {
				got = append(got, e.Seq)
				return len(got) < stopAt
			})
			if err != nil {
				t.Errorf("QueueEntries: %v", err)
			}
			if len(got) != stopAt || got[0] != 1 || got[len(got)-1] != uint64(stopAt) {
				t.Errorf("fn returning false at call %d: fn saw Seqs %v", stopAt, got)
			}
		}
	})
}

// testQueueUpdate: queueing an entry with the Seq of an existing one
// replaces it (a PUBLISH sent: PacketID and State set), and the message
// stays.
func testQueueUpdate(h *harness) {
	m := fullMessage(5, "t")
	e := store.QueueEntry{Seq: 3, MsgID: 5, QoS: 2, SubIDs: []int{1}}
	other := plainMessage(6, "u")
	eo := store.QueueEntry{Seq: 4, MsgID: 6, QoS: 1}
	b := new(store.Batch)
	b.PutMessage(m)
	b.PutMessage(other)
	b.Enqueue("c", e)
	b.Enqueue("c", eo)
	h.mustCommit(b)

	sent := e
	sent.PacketID, sent.State = 42, store.EntrySent
	b = new(store.Batch)
	b.Enqueue("c", sent)
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkQueue(t, s, "c", 0, []queued{{sent, m}, {eo, other}})
		checkMessageCount(t, s, 2)
	})

	released := sent
	released.State = store.EntryReleased
	b = new(store.Batch)
	b.Enqueue("c", released)
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkQueue(t, s, "c", 0, []queued{{released, m}, {eo, other}})
		checkMessageCount(t, s, 2)
	})

	b = new(store.Batch)
	b.Dequeue("c", 3)
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkQueue(t, s, "c", 0, []queued{{eo, other}})
		checkMessageCount(t, s, 1)
	})
}

// testQueueUnknown: Queue of a client id with nothing queued calls fn
// never and returns nil.
func testQueueUnknown(h *harness) {
	b := new(store.Batch)
	b.PutMessage(plainMessage(1, "t"))
	b.Enqueue("known", store.QueueEntry{Seq: 1, MsgID: 1})
	b.PutSession(&store.SessionRecord{ClientID: "empty"})
	h.mustCommit(b)
	checkQueue(h.t, h.s, "unknown", 0, nil)
	checkQueue(h.t, h.s, "empty", 0, nil)
	checkQueue(h.t, h.s, "", 0, nil)
}

// testReleaseOnDequeue: a message queued for three sessions (and twice for
// one of them) stays until its last entry is dequeued, across restarts.
func testReleaseOnDequeue(h *harness) {
	m, e1, e2, e3 := sharedSetup(h)
	e1twice := store.QueueEntry{Seq: 2, MsgID: 1, QoS: 0} // overlapping subscriptions
	b := new(store.Batch)
	b.Enqueue("s1", e1twice)
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) { checkMessageCount(t, s, 1) })

	b = new(store.Batch)
	b.Dequeue("s1", e1.Seq)
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkQueue(t, s, "s1", 0, []queued{{e1twice, m}})
		checkQueue(t, s, "s2", 0, []queued{{e2, m}})
		checkQueue(t, s, "s3", 0, []queued{{e3, m}})
		checkMessageCount(t, s, 1)
	})

	b = new(store.Batch)
	b.Dequeue("s1", e1twice.Seq)
	b.Dequeue("s2", e2.Seq)
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkQueue(t, s, "s1", 0, nil)
		checkQueue(t, s, "s2", 0, nil)
		checkQueue(t, s, "s3", 0, []queued{{e3, m}})
		checkMessageCount(t, s, 1)
	})

	b = new(store.Batch)
	b.Dequeue("s3", e3.Seq)
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkQueue(t, s, "s3", 0, nil)
		checkMessageCount(t, s, 0)
		checkMaxMessageID(t, s, 1)
	})
}

// testDequeueMissing: dequeuing an entry that is not there (never was,
// already dequeued, wrong session) changes nothing, in particular not the
// reference count of the message.
func testDequeueMissing(h *harness) {
	m, e1, e2, e3 := sharedSetup(h)
	b := new(store.Batch)
	b.Dequeue("s1", e1.Seq)
	h.mustCommit(b)

	for range 2 {
		b = new(store.Batch)
		b.Dequeue("s1", e1.Seq) // again
		b.Dequeue("s1", 99)     // never queued
		b.Dequeue("s2", e3.Seq) // Seq of another session's entry
		b.Dequeue("nobody", 1)  // no such client
		h.mustCommit(b)
	}
	h.check(func(t *testing.T, s store.Store) {
		checkQueue(t, s, "s1", 0, nil)
		checkQueue(t, s, "s2", 0, []queued{{e2, m}})
		checkQueue(t, s, "s3", 0, []queued{{e3, m}})
		checkMessageCount(t, s, 1)
	})
}

// testReleaseOnDeleteSession: deleting a session releases the messages
// only it referred to and keeps the others.
func testReleaseOnDeleteSession(h *harness) {
	m, _, e2, e3 := sharedSetup(h)
	own := plainMessage(2, "own")
	b := new(store.Batch)
	b.PutSession(&store.SessionRecord{ClientID: "s1"})
	b.PutMessage(own)
	b.Enqueue("s1", store.QueueEntry{Seq: 5, MsgID: 2, QoS: 1})
	h.mustCommit(b)
	checkMessageCount(h.t, h.s, 2)

	b = new(store.Batch)
	b.DeleteSession("s1")
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkQueue(t, s, "s1", 0, nil)
		checkQueue(t, s, "s2", 0, []queued{{e2, m}})
		checkQueue(t, s, "s3", 0, []queued{{e3, m}})
		checkMessageCount(t, s, 1)
	})

	b = new(store.Batch)
	b.DeleteSession("s2")
	b.DeleteSession("s3")
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkQueue(t, s, "s2", 0, nil)
		checkQueue(t, s, "s3", 0, nil)
		checkMessageCount(t, s, 0)
		checkMaxMessageID(t, s, 2)
	})
}

// testMessageWithoutEntry: a message put in a batch that leaves no queue
// entry referring to it is not kept (a QoS 1 PUBLISH nobody subscribed to),
// while MaxMessageID still counts it.
func testMessageWithoutEntry(h *harness) {
	b := new(store.Batch)
	b.PutMessage(fullMessage(7, "nobody/listens"))
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkMessageCount(t, s, 0)
		checkMaxMessageID(t, s, 7)
	})

	// Queued and dequeued in the same batch: not kept either.
	b = new(store.Batch)
	b.PutMessage(plainMessage(8, "t"))
	b.Enqueue("c", store.QueueEntry{Seq: 1, MsgID: 8, QoS: 1})
	b.Dequeue("c", 1)
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkQueue(t, s, "c", 0, nil)
		checkMessageCount(t, s, 0)
		checkMaxMessageID(t, s, 8)
	})
}

// testReleaseAtEndOfBatch: a batch is atomic, so whether a message is
// released is decided by the entries left at its end: dequeuing the last
// entry and queueing a new one for the message in the same batch keeps it.
func testReleaseAtEndOfBatch(h *harness) {
	m := fullMessage(1, "t")
	e := store.QueueEntry{Seq: 1, MsgID: 1, QoS: 1}
	b := new(store.Batch)
	b.PutMessage(m)
	b.Enqueue("a", e)
	h.mustCommit(b)

	moved := store.QueueEntry{Seq: 1, MsgID: 1, QoS: 2, SubIDs: []int{3}}
	b = new(store.Batch)
	b.Dequeue("a", 1)
	b.Enqueue("b", moved)
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkQueue(t, s, "a", 0, nil)
		checkQueue(t, s, "b", 0, []queued{{moved, m}})
		checkMessageCount(t, s, 1)
	})
}

// testMaxMessageID: MaxMessageID is the highest id of any message or
// retained message ever put, also once they are released or deleted.
func testMaxMessageID(h *harness) {
	checkMaxMessageID(h.t, h.s, 0)

	b := new(store.Batch)
	b.PutMessage(plainMessage(5, "t"))
	b.Enqueue("c", store.QueueEntry{Seq: 1, MsgID: 5, QoS: 1})
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) { checkMaxMessageID(t, s, 5) })

	b = new(store.Batch)
	b.PutMessage(plainMessage(3, "t")) // lower: no change
	b.Enqueue("c", store.QueueEntry{Seq: 2, MsgID: 3, QoS: 1})
	h.mustCommit(b)
	checkMaxMessageID(h.t, h.s, 5)

	b = new(store.Batch)
	b.PutMessage(plainMessage(10, "t")) // released at once
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) { checkMaxMessageID(t, s, 10) })

	b = new(store.Batch)
	b.Dequeue("c", 1)
	b.Dequeue("c", 2)
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkMessageCount(t, s, 0)
		checkMaxMessageID(t, s, 10)
	})

	b = new(store.Batch)
	b.PutRetained(fullMessage(12, "r"))
	h.mustCommit(b)
	checkMaxMessageID(h.t, h.s, 12)
	b = new(store.Batch)
	b.DeleteRetained("r")
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) { checkMaxMessageID(t, s, 12) })

	b = new(store.Batch)
	b.PutMessage(plainMessage(1<<62, "big"))
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) { checkMaxMessageID(t, s, 1<<62) })
}
