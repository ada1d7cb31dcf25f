package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/weirmq/weir/mqtt"
	"github.com/weirmq/weir/store"
)

// testCommitDoneOnce: done is called exactly once (checked when the
// sub-test ends) with a nil error, for an empty and a non-empty batch, and
// what was committed is visible once done was called.
func testCommitDoneOnce(h *harness) {
	h.mustCommit(&store.Batch{})
	h.mustCommit(&store.Batch{Ops: []store.Op{}})

	b := new(store.Batch)
	b.PutSession(&store.SessionRecord{ClientID: "c", Version: mqtt.V5})
	h.mustCommit(b)
	checkSessions(h.t, h.s, &store.SessionRecord{ClientID: "c", Version: mqtt.V5})

	h.mustCommit(&store.Batch{})
	// A second call would come late: give it a moment to show before the
	// counts are checked (when the sub-test ends, after Close).
	time.Sleep(50 * time.Millisecond)
	h.check(func(t *testing.T, s store.Store) {
		checkSessions(t, s, &store.SessionRecord{ClientID: "c", Version: mqtt.V5})
	})
}

// testCommitDoneOrder: batches committed from one goroutine without
// waiting see their done calls in commit order.
func testCommitDoneOrder(h *harness) {
	const n = 300
	var (
		mu    sync.Mutex
		order []int
		errs  []error
		wg    sync.WaitGroup
	)
	want := make([]queued, 0, n)
	for i := range n {
		b := new(store.Batch)
		if i%3 != 0 { // every third batch is empty: those are ordered too
			m := plainMessage(uint64(i+1), "t")
			e := store.QueueEntry{Seq: uint64(i + 1), MsgID: m.ID, QoS: 1}
			b.PutMessage(m)
			b.Enqueue("c", e)
			want = append(want, queued{e, m})
		}
		wg.Add(1)
		h.commitAsync(b, func(err error) {
			mu.Lock()
			order = append(order, i)
			errs = append(errs, err)
			mu.Unlock()
			wg.Done()
		})
	}
	waitGroup(h.t, &wg, h.opts.CommitTimeout, "done calls")
	mu.Lock()
	defer mu.Unlock()
	for i := range order {
		if order[i] != i {
			h.t.Fatalf("done calls in order %v..., want commit order", order[:i+1])
		}
		if errs[i] != nil {
			h.t.Errorf("batch %d: done(%v), want nil", i, errs[i])
		}
	}
	h.check(func(t *testing.T, s store.Store) {
		checkQueue(t, s, "c", 0, want)
	})
}

// testCommitConcurrent: Commit from many goroutines at once; every done
// is called with nil, in commit order per goroutine, and every write is
// there afterwards.
func testCommitConcurrent(h *harness) {
	const goroutines, perG = 16, 60
	var wg sync.WaitGroup
	orders := make([][]int, goroutines)
	var mu sync.Mutex
	var errs []error
	wants := make([][]queued, goroutines)
	sessions := make([]*store.SessionRecord, goroutines)
	for g := range goroutines {
		client := fmt.Sprintf("client-%d", g)
		sessions[g] = &store.SessionRecord{ClientID: client, Version: mqtt.V311, ExpirySeconds: uint32(g)}
		for i := range perG {
			m := plainMessage(uint64(g*1000+i+1), "t/"+client)
			e := store.QueueEntry{Seq: uint64(i + 1), MsgID: m.ID, QoS: 1, SubIDs: []int{g}}
			wants[g] = append(wants[g], queued{e, m})
		}
	}
	for g := range goroutines {
		wg.Add(perG)
		go func() {
			for i := range perG {
				b := new(store.Batch)
				if i == 0 {
					b.PutSession(sessions[g])
				}
				b.PutMessage(wants[g][i].m)
				b.Enqueue(sessions[g].ClientID, wants[g][i].e)
				h.commitAsync(b, func(err error) {
					mu.Lock()
					orders[g] = append(orders[g], i)
					if err != nil {
						errs = append(errs, fmt.Errorf("goroutine %d batch %d: %w", g, i, err))
					}
					mu.Unlock()
					wg.Done()
				})
			}
		}()
	}
	waitGroup(h.t, &wg, h.opts.CommitTimeout, "concurrent commits")
	mu.Lock()
	for _, err := range errs {
		h.t.Errorf("done(%v), want nil", err)
	}
	for g, order := range orders {
		for i := range order {
			if order[i] != i {
				h.t.Errorf("goroutine %d: done calls in order %v, want commit order", g, order)
				break
			}
		}
	}
	mu.Unlock()
	h.check(func(t *testing.T, s store.Store) {
		checkSessions(t, s, sessions...)
		for g := range goroutines {
			checkQueue(t, s, sessions[g].ClientID, 0, wants[g])
		}
		checkMessageCount(t, s, goroutines*perG)
		checkMaxMessageID(t, s, uint64((goroutines-1)*1000+perG))
	})
}

// testReadsDuringCommits: every read method may run while other goroutines
// commit (run with -race).
func testReadsDuringCommits(h *harness) {
	const writers, perW = 4, 100
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for w := range writers {
		wg.Add(perW)
		go func() {
			client := fmt.Sprintf("w%d", w)
			for i := range perW {
				id := uint64(w*perW + i + 1)
				b := new(store.Batch)
				b.PutSession(&store.SessionRecord{ClientID: client, ExpirySeconds: uint32(i)})
				b.PutMessage(fullMessage(id, "t/"+client))
				b.Enqueue(client, store.QueueEntry{Seq: uint64(i + 1), MsgID: id, QoS: 2, SubIDs: []int{i}})
				if i > 0 {
					b.Enqueue(client, store.QueueEntry{Seq: uint64(i), MsgID: id - 1, QoS: 2, PacketID: uint16(i), State: store.EntrySent})
				}
				if i > 1 {
					b.Dequeue(client, uint64(i-1))
				}
				b.PutInbound(client, uint16(i+1))
				b.DeleteInbound(client, uint16(i))
				b.PutRetained(fullMessage(id, "r/"+client))
				h.commitAsync(b, func(error) { wg.Done() })
			}
		}()
	}
	for r := range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			client := fmt.Sprintf("w%d", r%writers)
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = h.s.Sessions(func(rec *store.SessionRecord) error {
					_ = rec.ExpirySeconds + uint32(len(rec.Subscriptions))
					return nil
				})
				_ = h.s.Queue(client, 0, func(e store.QueueEntry, m *store.Message) bool {
					_ = len(e.SubIDs) + len(m.Payload) + len(m.Topic)
					if m.Props != nil {
						_ = len(m.Props.User)
					}
					return true
				})
				_ = h.s.Inbound(client, func(uint16) {})
				_ = h.s.Retained(func(m *store.Message) error {
					_ = len(m.Payload) + len(m.Topic)
					return nil
				})
				_ = h.s.MaxMessageID()
			}
		}()
	}
	waitGroup(h.t, &wg, h.opts.CommitTimeout, "commits")
	close(stop)
	readers.Wait()
	h.check(func(t *testing.T, s store.Store) {
		var retained []*store.Message
		for w := range writers {
			client := fmt.Sprintf("w%d", w)
			last := uint64((w + 1) * perW)
			checkQueue(t, s, client, 0, []queued{
				{store.QueueEntry{Seq: perW - 1, MsgID: last - 1, QoS: 2, PacketID: perW - 1, State: store.EntrySent}, fullMessage(last-1, "t/"+client)},
				{store.QueueEntry{Seq: perW, MsgID: last, QoS: 2, SubIDs: []int{perW - 1}}, fullMessage(last, "t/"+client)},
			})
			checkInbound(t, s, client, perW)
			retained = append(retained, fullMessage(last, "r/"+client))
		}
		checkRetained(t, s, retained...)
		checkMessageCount(t, s, 2*writers)
		checkMaxMessageID(t, s, writers*perW)
	})
}

// testLargeBatch: one batch of 10,000 messages each queued for a session
// (20,000 ops), then one batch dequeuing them all.
func testLargeBatch(h *harness) {
	const n = 10000
	b := new(store.Batch)
	want := make([]queued, 0, n)
	for i := range n {
		m := plainMessage(uint64(i+1), fmt.Sprintf("sensors/%d/temp", i%97))
		m.Payload = append(m.Payload, make([]byte, 100)...)
		e := store.QueueEntry{Seq: uint64(i + 1), MsgID: m.ID, QoS: 1, SubIDs: []int{1}}
		b.PutMessage(m)
		b.Enqueue("big", e)
		want = append(want, queued{e, m})
	}
	b.PutSession(&store.SessionRecord{ClientID: "big", Version: mqtt.V5, ExpirySeconds: 3600})
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkQueue(t, s, "big", 0, want)
		checkQueue(t, s, "big", n-10, want[n-10:])
		checkMessageCount(t, s, n)
		checkMaxMessageID(t, s, n)
	})

	b = new(store.Batch)
	for i := range n {
		b.Dequeue("big", uint64(i+1))
	}
	h.mustCommit(b)
	h.check(func(t *testing.T, s store.Store) {
		checkQueue(t, s, "big", 0, nil)
		checkMessageCount(t, s, 0)
		checkSessions(t, s, &store.SessionRecord{ClientID: "big", Version: mqtt.V5, ExpirySeconds: 3600})
		checkMaxMessageID(t, s, n)
	})
}

// testCommitAfterClose: Close returns nil; afterwards Commit reports
// ErrClosed through done, for a non-empty and an empty batch, and writes
// nothing.
func testCommitAfterClose(h *harness) {
	b := new(store.Batch)
	b.PutSession(&store.SessionRecord{ClientID: "before"})
	h.mustCommit(b)
	h.close()

	b = new(store.Batch)
	b.PutSession(&store.SessionRecord{ClientID: "after"})
	if err := h.commit(b); !errors.Is(err, store.ErrClosed) {
		h.t.Errorf("Commit after Close: done(%v), want ErrClosed", err)
	}
	if err := h.commit(&store.Batch{}); !errors.Is(err, store.ErrClosed) {
		h.t.Errorf("Commit of an empty batch after Close: done(%v), want ErrClosed", err)
	}
	if h.opts.Persistent {
		h.closed = false
		h.s = h.open(h.t, h.dir)
		checkSessions(h.t, h.s, &store.SessionRecord{ClientID: "before"})
	}
}

// testCloseFlushes: batches committed without waiting and then Close: by
// the time Close returns every done was called; a batch done reported nil
// for is there after reopening, one it reported an error for is not.
func testCloseFlushes(h *harness) {
	const n = 200
	var mu sync.Mutex
	errs := make(map[int]error)
	for i := range n {
		b := new(store.Batch)
		m := plainMessage(uint64(i+1), "t")
		b.PutMessage(m)
		b.Enqueue("c", store.QueueEntry{Seq: uint64(i + 1), MsgID: m.ID, QoS: 1})
		h.commitAsync(b, func(err error) {
			mu.Lock()
			errs[i] = err
			mu.Unlock()
		})
	}
	h.close()
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != n {
		h.t.Fatalf("after Close returned, %d of %d done calls were made", len(errs), n)
	}
	if !h.opts.Persistent {
		for i, err := range errs {
			if err != nil {
				h.t.Errorf("batch %d: done(%v), want nil", i, err)
			}
		}
		return
	}
	h.closed = false
	h.s = h.open(h.t, h.dir)
	var want []queued
	for i := range n {
		if errs[i] == nil {
			m := plainMessage(uint64(i+1), "t")
			want = append(want, queued{store.QueueEntry{Seq: uint64(i + 1), MsgID: m.ID, QoS: 1}, m})
		}
	}
	checkQueue(h.t, h.s, "c", 0, want)
	checkMessageCount(h.t, h.s, len(want))
}

// testReopenKeepsEverything: a store with every kind of state is the same
// after Close and open, twice (persistent stores only).
func testReopenKeepsEverything(h *harness) {
	if !h.opts.Persistent {
		h.t.Skip("store is not persistent")
	}
	sess := fullSession("s1")
	m1, m2 := fullMessage(41, "a/b"), plainMessage(42, "a/c")
	r := fullMessage(43, "r/1")
	e1 := store.QueueEntry{Seq: 7, MsgID: 41, QoS: 2, Retain: true, SubIDs: []int{3, 4}, PacketID: 9, State: store.EntryReleased}
	e2 := store.QueueEntry{Seq: 8, MsgID: 42, QoS: 1}
	e3 := store.QueueEntry{Seq: 1, MsgID: 42, QoS: 0}
	b := new(store.Batch)
	b.PutSession(sess)
	b.PutMessage(m1)
	b.PutMessage(m2)
	b.Enqueue("s1", e1)
	b.Enqueue("s1", e2)
	b.Enqueue("s2", e3)
	b.PutInbound("s1", 5)
	b.PutInbound("s1", 3)
	b.PutRetained(r)
	b.PutMessage(plainMessage(44, "dropped")) // released at once
	h.mustCommit(b)
	verify := func(t *testing.T, s store.Store) {
		checkSessions(t, s, sess)
		checkQueue(t, s, "s1", 0, []queued{{e1, m1}, {e2, m2}})
		checkQueue(t, s, "s2", 0, []queued{{e3, m2}})
		checkInbound(t, s, "s1", 3, 5)
		checkRetained(t, s, r)
		checkMessageCount(t, s, 2)
		checkMaxMessageID(t, s, 44)
	}
	h.check(verify)
	h.check(verify)
}
