package storetest

import (
	"testing"

	"github.com/weirmq/weir/store"
)

// testInbound: inbound QoS 2 packet ids are recorded (once, however often
// put), listed in increasing order and forgotten on delete.
func testInbound(h *harness) {
	b := new(store.Batch)
	for _, id := range []uint16{300, 2, 65535, 1, 256, 2, 255} {
		b.PutInbound("c", id)
	}
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkInbound(t, s, "c", 1, 2, 255, 256, 300, 65535)
	})

	b = new(store.Batch)
	b.DeleteInbound("c", 256)
	b.DeleteInbound("c", 9) // not there
	b.PutInbound("c", 9)
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkInbound(t, s, "c", 1, 2, 9, 255, 300, 65535)
	})

	b = new(store.Batch)
	for _, id := range []uint16{1, 2, 9, 255, 300, 65535} {
		b.DeleteInbound("c", id)
	}
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkInbound(t, s, "c")
	})
}

// testInboundPerSession: each session has its own inbound ids; deleting
// one session's id or the session keeps the others'.
func testInboundPerSession(h *harness) {
	b := new(store.Batch)
	b.PutSession(&store.SessionRecord{ClientID: "c1"})
	b.PutSession(&store.SessionRecord{ClientID: "c2"})
	b.PutInbound("c1", 1)
	b.PutInbound("c1", 2)
	b.PutInbound("c2", 2)
	b.PutInbound("c2", 3)
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkInbound(t, s, "c1", 1, 2)
		checkInbound(t, s, "c2", 2, 3)
		checkInbound(t, s, "c3")
	})

	b = new(store.Batch)
	b.DeleteInbound("c1", 2)
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkInbound(t, s, "c1", 1)
		checkInbound(t, s, "c2", 2, 3)
	})

	b = new(store.Batch)
	b.DeleteSession("c2")
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkInbound(t, s, "c1", 1)
		checkInbound(t, s, "c2")
	})
}
