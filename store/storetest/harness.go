package storetest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weirmq/weir/store"
)

// harness holds the store of one sub-test and counts done calls.
type harness struct {
	t      *testing.T
	open   func(*testing.T, string) store.Store
	opts   Options
	dir    string
	s      store.Store
	closed bool // s was closed by the sub-test itself

	mu    sync.Mutex
	calls []*atomic.Int32 // done calls, one counter per Commit
}

func newHarness(t *testing.T, open func(*testing.T, string) store.Store, opts Options) *harness {
	h := &harness{t: t, open: open, opts: opts, dir: t.TempDir()}
	h.s = open(t, h.dir)
	if h.s == nil {
		t.Fatal("open returned a nil store")
	}
	t.Cleanup(h.cleanup)
	return h
}

// cleanup closes the store and checks that every done was called exactly
// once: Close flushes, so no done may still be pending after it.
func (h *harness) cleanup() {
	if !h.closed {
		if err := h.s.Close(); err != nil {
			h.t.Errorf("Close: %v", err)
		}
	}
	h.checkDoneOnce()
}

func (h *harness) checkDoneOnce() {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, n := range h.calls {
		if c := n.Load(); c != 1 {
			h.t.Errorf("Commit #%d: done called %d times, want exactly once", i, c)
		}
	}
}

// close closes the store for good (no reopen).
func (h *harness) close() {
	h.t.Helper()
	h.closed = true
	if err := h.s.Close(); err != nil {
		h.t.Fatalf("Close: %v", err)
	}
}

// commitAsync commits b and calls fn (if not nil) from done, once, even if
// the store calls done more often: the extra calls are reported at the
// end of the sub-test. fn must not call t.Fatal.
func (h *harness) commitAsync(b *store.Batch, fn func(error)) {
	n := new(atomic.Int32)
	h.mu.Lock()
	h.calls = append(h.calls, n)
	h.mu.Unlock()
	h.s.Commit(b, func(err error) {
		if n.Add(1) == 1 && fn != nil {
			fn(err)
		}
	})
}

// commit commits b and returns the error done reported.
func (h *harness) commit(b *store.Batch) error {
	h.t.Helper()
	ch := make(chan error, 1)
	h.commitAsync(b, func(err error) { ch <- err })
	select {
	case err := <-ch:
		return err
	case <-time.After(h.opts.CommitTimeout):
		h.t.Fatalf("done not called within %v", h.opts.CommitTimeout)
		return nil
	}
}

// mustCommit commits b and fails the test unless done reports nil.
func (h *harness) mustCommit(b *store.Batch) {
	h.t.Helper()
	if err := h.commit(b); err != nil {
		h.t.Fatalf("Commit: done(%v), want nil", err)
	}
}

// check runs fn against the store and, when the store is persistent,
// closes it, opens it again on the same dir and runs fn again in a
// sub-test named AfterReopen.
func (h *harness) check(fn func(t *testing.T, s store.Store)) {
	h.t.Helper()
	fn(h.t, h.s)
	if !h.opts.Persistent || h.t.Failed() {
		return
	}
	h.reopen()
	h.t.Run("AfterReopen", func(t *testing.T) { fn(t, h.s) })
}

// reopen closes the store and opens it again on the same dir.
func (h *harness) reopen() {
	h.t.Helper()
	if err := h.s.Close(); err != nil {
		h.t.Fatalf("Close before reopening: %v", err)
	}
	h.checkDoneOnce()
	h.s = h.open(h.t, h.dir)
	if h.s == nil {
		h.t.Fatal("open returned a nil store on reopen")
	}
}

// waitGroup waits for wg or fails the test after d.
func waitGroup(t *testing.T, wg *sync.WaitGroup, d time.Duration, what string) {
	t.Helper()
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("%s: not done within %v", what, d)
	}
}

// Reading helpers. They fail the test when the store reports an error.

type queued struct {
	e store.QueueEntry
	m *store.Message
}

func readQueue(t *testing.T, s store.Store, clientID string, after uint64) []queued {
	t.Helper()
	var out []queued
	err := s.Queue(clientID, after, func(e store.QueueEntry, m *store.Message) bool {
		out = append(out, queued{e, m})
		return true
	})
	if err != nil {
		t.Fatalf("Queue(%q, %d): %v", clientID, after, err)
	}
	return out
}

func readSessions(t *testing.T, s store.Store) map[string]*store.SessionRecord {
	t.Helper()
	out := make(map[string]*store.SessionRecord)
	err := s.Sessions(func(r *store.SessionRecord) error {
		if r == nil {
			t.Errorf("Sessions: fn called with nil record")
			return nil
		}
		if _, dup := out[r.ClientID]; dup {
			t.Errorf("Sessions: %q listed twice", r.ClientID)
		}
		out[r.ClientID] = r
		return nil
	})
	if err != nil {
		t.Fatalf("Sessions: %v", err)
	}
	return out
}

func readInbound(t *testing.T, s store.Store, clientID string) []uint16 {
	t.Helper()
	var out []uint16
	if err := s.Inbound(clientID, func(id uint16) { out = append(out, id) }); err != nil {
		t.Fatalf("Inbound(%q): %v", clientID, err)
	}
	return out
}

func readRetained(t *testing.T, s store.Store) map[string]*store.Message {
	t.Helper()
	out := make(map[string]*store.Message)
	err := s.Retained(func(m *store.Message) error {
		if m == nil {
			t.Errorf("Retained: fn called with nil message")
			return nil
		}
		if _, dup := out[m.Topic]; dup {
			t.Errorf("Retained: topic %q listed twice", m.Topic)
		}
		out[m.Topic] = m
		return nil
	})
	if err != nil {
		t.Fatalf("Retained: %v", err)
	}
	return out
}

// Checking helpers.

// checkQueue checks that Queue(clientID, after) yields exactly want, in
// order, each entry with its message.
func checkQueue(t *testing.T, s store.Store, clientID string, after uint64, want []queued) {
	t.Helper()
	got := readQueue(t, s, clientID, after)
	for i := range got {
		if got[i].e.Seq <= after {
			t.Errorf("Queue(%q, %d): entry %d has Seq %d <= after", clientID, after, i, got[i].e.Seq)
		}
		if i > 0 && got[i].e.Seq <= got[i-1].e.Seq {
			t.Errorf("Queue(%q, %d): Seq %d after Seq %d, want increasing", clientID, after, got[i].e.Seq, got[i-1].e.Seq)
		}
	}
	if len(got) != len(want) {
		t.Errorf("Queue(%q, %d): %d entries %v, want %d %v", clientID, after, len(got), seqs(got), len(want), seqs(want))
		return
	}
	for i := range want {
		if d := diffEntry(want[i].e, got[i].e); d != "" {
			t.Errorf("Queue(%q, %d): entry %d: %s", clientID, after, i, d)
		}
		if d := diffMessage(want[i].m, got[i].m); d != "" {
			t.Errorf("Queue(%q, %d): message of entry Seq %d: %s", clientID, after, want[i].e.Seq, d)
		}
	}
	checkQueueEntries(t, s, clientID, after, want)
}

// checkQueueEntries checks that QueueEntries yields the entries of want,
// each with its recorded Size or else its message's.
func checkQueueEntries(t *testing.T, s store.Store, clientID string, after uint64, want []queued) {
	t.Helper()
	var got []store.QueueEntry
	if err := s.QueueEntries(clientID, after, func(e store.QueueEntry) bool {
		got = append(got, e)
		return true
	}); err != nil {
		t.Errorf("QueueEntries(%q, %d): %v", clientID, after, err)
		return
	}
	if len(got) != len(want) {
		t.Errorf("QueueEntries(%q, %d): %d entries, want %d", clientID, after, len(got), len(want))
		return
	}
	for i, w := range want {
		e := w.e
		if e.Size == 0 {
			e.Size = w.m.Size()
		}
		if d := diffEntry(e, got[i]); d != "" {
			t.Errorf("QueueEntries(%q, %d): entry %d: %s", clientID, after, i, d)
		}
	}
}

func seqs(q []queued) []uint64 {
	out := make([]uint64, len(q))
	for i := range q {
		out[i] = q[i].e.Seq
	}
	return out
}

// checkSessions checks that Sessions yields exactly want.
func checkSessions(t *testing.T, s store.Store, want ...*store.SessionRecord) {
	t.Helper()
	got := readSessions(t, s)
	for _, w := range want {
		g, ok := got[w.ClientID]
		if !ok {
			t.Errorf("Sessions: %q missing", w.ClientID)
			continue
		}
		if d := diffSession(w, g); d != "" {
			t.Errorf("Sessions: %q: %s", w.ClientID, d)
		}
		delete(got, w.ClientID)
	}
	for id := range got {
		t.Errorf("Sessions: unexpected session %q", id)
	}
}

// checkRetained checks that Retained yields exactly want.
func checkRetained(t *testing.T, s store.Store, want ...*store.Message) {
	t.Helper()
	got := readRetained(t, s)
	for _, w := range want {
		g, ok := got[w.Topic]
		if !ok {
			t.Errorf("Retained: topic %q missing", w.Topic)
			continue
		}
		if d := diffMessage(w, g); d != "" {
			t.Errorf("Retained: topic %q: %s", w.Topic, d)
		}
		delete(got, w.Topic)
	}
	for topic := range got {
		t.Errorf("Retained: unexpected topic %q", topic)
	}
}

// checkInbound checks that Inbound yields exactly want, in this order.
func checkInbound(t *testing.T, s store.Store, clientID string, want ...uint16) {
	t.Helper()
	got := readInbound(t, s, clientID)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Inbound(%q) = %v, want %v", clientID, got, want)
	}
}

// checkMessageCount checks the number of queued messages the store holds
// when it implements MessageCounter.
func checkMessageCount(t *testing.T, s store.Store, want int) {
	t.Helper()
	c, ok := s.(MessageCounter)
	if !ok {
		t.Logf("store does not implement storetest.MessageCounter: cannot check that %d messages are held", want)
		return
	}
	if got := c.MessageCount(); got != want {
		t.Errorf("MessageCount() = %d, want %d", got, want)
	}
}

func checkMaxMessageID(t *testing.T, s store.Store, want uint64) {
	t.Helper()
	if got := s.MaxMessageID(); got != want {
		t.Errorf("MaxMessageID() = %d, want %d", got, want)
	}
}
