package storetest

import (
	"errors"
	"testing"

	"github.com/weirmq/weir/mqtt"
	"github.com/weirmq/weir/store"
)

// fullSession returns a session record with every field set.
func fullSession(clientID string) *store.SessionRecord {
	will := fullMessage(0, "will/"+clientID)
	will.Retain = false
	return &store.SessionRecord{
		ClientID:       clientID,
		Version:        mqtt.V5,
		ExpirySeconds:  0xFFFFFFFF,
		DisconnectedAt: disconnectedAt,
		Subscriptions: []store.Subscription{
			{
				Filter:  "a/+/c",
				Options: mqtt.Subscription{Filter: "a/+/c", QoS: 1, NoLocal: true, RetainAsPublished: true, RetainHandling: 1},
				ID:      7,
			},
			{
				Filter:  "$share/group/x/#",
				Options: mqtt.Subscription{Filter: "$share/group/x/#", QoS: 2, RetainHandling: 2},
				ID:      268435455, // the largest Subscription Identifier
			},
			{
				Filter:  "plain",
				Options: mqtt.Subscription{Filter: "plain"},
			},
		},
		Will:        &store.Will{Message: will, Delay: 30},
		Username:    "user-" + clientID,
		HasUsername: true,
	}
}

// testSessionPutReplaceDelete: sessions are put, replaced by a put with the
// same client id, and deleted; Sessions lists exactly the stored ones.
func testSessionPutReplaceDelete(h *harness) {
	a, b, c := fullSession("a"), &store.SessionRecord{ClientID: "b", Version: mqtt.V311}, fullSession("c")
	batch := new(store.Batch)
	batch.PutSession(a)
	batch.PutSession(b)
	batch.PutSession(c)
	h.mustCommit(batch)
	h.check(func(t *testing.T, s store.Store) { checkSessions(t, s, a, b, c) })

	// Replace a with a record that has less in it: nothing of the old one
	// may remain.
	a2 := &store.SessionRecord{
		ClientID:      "a",
		Version:       mqtt.V31,
		ExpirySeconds: 60,
		Subscriptions: []store.Subscription{{Filter: "z", Options: mqtt.Subscription{Filter: "z", QoS: 1}}},
	}
	batch = new(store.Batch)
	batch.PutSession(a2)
	h.mustCommit(batch)
	h.check(func(t *testing.T, s store.Store) { checkSessions(t, s, a2, b, c) })

	batch = new(store.Batch)
	batch.DeleteSession("b")
	batch.DeleteSession("no-such-session")
	h.mustCommit(batch)
	h.check(func(t *testing.T, s store.Store) { checkSessions(t, s, a2, c) })

	batch = new(store.Batch)
	batch.DeleteSession("a")
	batch.DeleteSession("c")
	h.mustCommit(batch)
	h.check(func(t *testing.T, s store.Store) { checkSessions(t, s) })
}

// testSessionFields: every field of a session record comes back: version,
// expiry, DisconnectedAt (Equal, zero stays zero), subscriptions with
// their options and identifiers in order, the will with its message.
func testSessionFields(h *harness) {
	full := fullSession("full")
	// An empty user name is a user name (a CONNECT may carry one).
	connected := &store.SessionRecord{ClientID: "connected", Version: mqtt.V311, HasUsername: true}
	will0 := &store.SessionRecord{
		ClientID:       "will-without-props",
		Version:        mqtt.V311,
		DisconnectedAt: expiryAt, // with a monotonic reading
		Will:           &store.Will{Message: plainMessage(0, "lwt")},
	}
	b := new(store.Batch)
	b.PutSession(full)
	b.PutSession(connected)
	b.PutSession(will0)
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) { checkSessions(t, s, full, connected, will0) })
}

// testSessionsStopsOnError: an error from fn stops Sessions, which returns
// it.
func testSessionsStopsOnError(h *harness) {
	b := new(store.Batch)
	for _, id := range []string{"a", "b", "c"} {
		b.PutSession(&store.SessionRecord{ClientID: id})
	}
	h.mustCommit(b)
	stop := errors.New("stop")
	calls := 0
	err := h.s.Sessions(func(*store.SessionRecord) error { calls++; return stop })
	if !errors.Is(err, stop) {
		h.t.Errorf("Sessions = %v, want the error fn returned", err)
	}
	if calls != 1 {
		h.t.Errorf("fn called %d times after returning an error, want 1", calls)
	}
}

// testSessionsOnlyPut: a client id that has queue entries or inbound ids
// but no session record is not listed by Sessions.
func testSessionsOnlyPut(h *harness) {
	rec := &store.SessionRecord{ClientID: "real"}
	m := plainMessage(1, "t")
	e := store.QueueEntry{Seq: 1, MsgID: 1, QoS: 1}
	b := new(store.Batch)
	b.PutSession(rec)
	b.PutMessage(m)
	b.Enqueue("ghost", e)
	b.PutInbound("ghost2", 1)
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkSessions(t, s, rec)
		checkQueue(t, s, "ghost", 0, []queued{{e, m}})
		checkInbound(t, s, "ghost2", 1)
	})
}

// testDeleteAndPutSession: deleting a session and putting a new one with
// the same client id in one batch (a clean start) leaves the new record
// with an empty queue and no inbound ids, and releases the old queue's
// messages.
func testDeleteAndPutSession(h *harness) {
	old := fullSession("x")
	b := new(store.Batch)
	b.PutSession(old)
	for i := uint64(1); i <= 3; i++ {
		b.PutMessage(plainMessage(i, "t"))
		b.Enqueue("x", store.QueueEntry{Seq: i, MsgID: i, QoS: 1})
	}
	b.PutInbound("x", 1)
	b.PutInbound("x", 2)
	h.mustCommit(b)
	checkMessageCount(h.t, h.s, 3)

	fresh := &store.SessionRecord{ClientID: "x", Version: mqtt.V5, ExpirySeconds: 10}
	b = new(store.Batch)
	b.DeleteSession("x")
	b.PutSession(fresh)
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkSessions(t, s, fresh)
		checkQueue(t, s, "x", 0, nil)
		checkInbound(t, s, "x")
		checkMessageCount(t, s, 0)
	})

	// The old entries do not come back when the same Seqs are used again.
	m := plainMessage(9, "t")
	e := store.QueueEntry{Seq: 2, MsgID: 9, QoS: 2}
	b = new(store.Batch)
	b.PutMessage(m)
	b.Enqueue("x", e)
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkQueue(t, s, "x", 0, []queued{{e, m}})
		checkMessageCount(t, s, 1)
	})
}

// testClientIDsOpaque: client ids that are prefixes of one another or
// contain '/' and non-ASCII share no queue entries, inbound ids or
// records, also when one of them is deleted.
func testClientIDsOpaque(h *harness) {
	ids := []string{"a", "a/", "a/b", "a/b/c", "ab", "b", "ä/🙂", "q/a/1"}
	want := make(map[string][]queued)
	inbound := make(map[string]uint16)
	recs := make(map[string]*store.SessionRecord)
	b := new(store.Batch)
	for i, id := range ids {
		recs[id] = &store.SessionRecord{ClientID: id, ExpirySeconds: uint32(i)}
		b.PutSession(recs[id])
		for j := range 3 {
			m := plainMessage(uint64(10*i+j+1), "t/"+id)
			e := store.QueueEntry{Seq: uint64(j + 1), MsgID: m.ID, QoS: 1, SubIDs: []int{i}}
			b.PutMessage(m)
			b.Enqueue(id, e)
			want[id] = append(want[id], queued{e, m})
		}
		inbound[id] = uint16(i + 1)
		b.PutInbound(id, inbound[id])
	}
	h.mustCommit(b)
	verify := func(t *testing.T, s store.Store, ids []string) {
		var rs []*store.SessionRecord
		for _, id := range ids {
			rs = append(rs, recs[id])
		}
		checkSessions(t, s, rs...)
		for _, id := range ids {
			checkQueue(t, s, id, 0, want[id])
			checkInbound(t, s, id, inbound[id])
		}
		checkMessageCount(t, s, 3*len(ids))
	}
	h.check(func(t *testing.T, s store.Store) { verify(t, s, ids) })

	b = new(store.Batch)
	b.DeleteSession("a")
	b.DeleteSession("a/b")
	h.mustCommit(b)
	rest := []string{"a/", "a/b/c", "ab", "b", "ä/🙂", "q/a/1"}
	h.check(func(t *testing.T, s store.Store) {
		verify(t, s, rest)
		for _, id := range []string{"a", "a/b"} {
			checkQueue(t, s, id, 0, nil)
			checkInbound(t, s, id)
		}
	})
}
