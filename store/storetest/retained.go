package storetest

import (
	"errors"
	"testing"

	"github.com/weirmq/weir/store"
)

// testRetainedPutReplaceDelete: a retained message per topic is put,
// replaced by a put on the same topic and deleted; topics that are
// prefixes of one another are independent.
func testRetainedPutReplaceDelete(h *harness) {
	ab, abc, a, sys := fullMessage(1, "a/b"), plainMessage(2, "a/b/c"), plainMessage(3, "a"), plainMessage(4, "$SYS/x")
	b := new(store.Batch)
	b.PutRetained(ab)
	b.PutRetained(abc)
	b.PutRetained(a)
	b.PutRetained(sys)
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) { checkRetained(t, s, ab, abc, a, sys) })

	// Replace with a message that has less in it: nothing of the old one
	// may remain.
	ab2 := plainMessage(5, "a/b")
	ab2.Retain = true
	b = new(store.Batch)
	b.PutRetained(ab2)
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) { checkRetained(t, s, ab2, abc, a, sys) })

	b = new(store.Batch)
	b.DeleteRetained("a")
	b.DeleteRetained("no/such/topic")
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) { checkRetained(t, s, ab2, abc, sys) })

	b = new(store.Batch)
	b.DeleteRetained("a/b")
	b.DeleteRetained("a/b/c")
	b.DeleteRetained("$SYS/x")
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) { checkRetained(t, s) })
}

// testRetainedFields: every field of a retained message comes back:
// payload bytes, QoS, Retain, properties with user properties in order,
// Expiry (Equal; zero stays zero) and Origin.
func testRetainedFields(h *harness) {
	full := fullMessage(1, "sensors/1/temp")
	plain := plainMessage(2, "sensors/2/temp")
	empty := &store.Message{ID: 3, Topic: "ü/🙂/+x", Payload: []byte{0}, QoS: 0}
	b := new(store.Batch)
	b.PutRetained(full)
	b.PutRetained(plain)
	b.PutRetained(empty)
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) { checkRetained(t, s, full, plain, empty) })
}

// testRetainedIndependent: a retained message that is also queued (same
// ID) stays retained when its queue entries go, and stays queued when the
// retained message is replaced or deleted.
func testRetainedIndependent(h *harness) {
	m := fullMessage(1, "r/t")
	e := store.QueueEntry{Seq: 1, MsgID: 1, QoS: 1, Retain: true}
	b := new(store.Batch)
	b.PutMessage(m)
	b.Enqueue("c", e)
	b.PutRetained(m)
	h.mustCommit(b)

	b = new(store.Batch)
	b.Dequeue("c", 1)
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkRetained(t, s, m)
		checkQueue(t, s, "c", 0, nil)
		checkMessageCount(t, s, 0)
	})

	m2 := fullMessage(2, "r/t")
	e2 := store.QueueEntry{Seq: 2, MsgID: 2, QoS: 2}
	b = new(store.Batch)
	b.PutMessage(m2)
	b.Enqueue("c", e2)
	b.PutRetained(m2)
	h.mustCommit(b)
	b = new(store.Batch)
	b.DeleteRetained("r/t")
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkRetained(t, s)
		checkQueue(t, s, "c", 0, []queued{{e2, m2}})
		checkMessageCount(t, s, 1)
	})
}

// testRetainedStopsOnError: an error from fn stops Retained, which
// returns it.
func testRetainedStopsOnError(h *harness) {
	b := new(store.Batch)
	for i, topic := range []string{"a", "b", "c"} {
		b.PutRetained(plainMessage(uint64(i+1), topic))
	}
	h.mustCommit(b)
	stop := errors.New("stop")
	calls := 0
	err := h.s.Retained(func(*store.Message) error { calls++; return stop })
	if !errors.Is(err, stop) {
		h.t.Errorf("Retained = %v, want the error fn returned", err)
	}
	if calls != 1 {
		h.t.Errorf("fn called %d times after returning an error, want 1", calls)
	}
}
