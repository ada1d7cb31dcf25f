package badgerstore

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/weirmq/weir/mqtt"
	"github.com/weirmq/weir/store"
)

func openTest(t testing.TB, o Options) *Store {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func msg(id uint64) *store.Message {
	return &store.Message{ID: id, Topic: "sensors/1", Payload: []byte(fmt.Sprintf("payload %d", id)), QoS: 1}
}

// publish returns the batch a broker commits for a QoS 1 message queued
// for one subscriber.
func publish(client string, id uint64) *store.Batch {
	b := new(store.Batch)
	b.PutMessage(msg(id))
	b.Enqueue(client, store.QueueEntry{Seq: id, MsgID: id, QoS: 1})
	return b
}

// commitTimeout is generous: the race detector on a loaded 2-core CI
// machine makes an oversized batch take tens of seconds.
const commitTimeout = 3 * time.Minute

func commit(t testing.TB, s *Store, b *store.Batch) error {
	t.Helper()
	ch := make(chan error, 1)
	s.Commit(b, func(err error) { ch <- err })
	select {
	case err := <-ch:
		return err
	case <-time.After(commitTimeout):
		t.Fatalf("done not called within %v", commitTimeout)
		return nil
	}
}

func mustCommit(t testing.TB, s *Store, b *store.Batch) {
	t.Helper()
	if err := commit(t, s, b); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// pausedWriter returns hooks whose first group blocks until release is
// called, and a channel closed once the writer is blocked there.
func pausedWriter() (h *testHooks, blocked <-chan struct{}, release func()) {
	in, rel := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h = &testHooks{beforeGroup: func() {
		once.Do(func() {
			close(in)
			<-rel
		})
	}}
	var relOnce sync.Once
	return h, in, func() { relOnce.Do(func() { close(rel) }) }
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(commitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGroupCommitOneTxnForQueuedBatches: batches from many goroutines
// queued while the writer is busy are written in one Badger transaction
// and, in Sync mode, one sync; their done callbacks run in commit order.
func TestGroupCommitOneTxnForQueuedBatches(t *testing.T) {
	hooks, blocked, release := pausedWriter()
	s := openTest(t, Options{Durability: Sync, hooks: hooks})
	defer release()

	var wg sync.WaitGroup
	wg.Add(1)
	s.Commit(publish("first", 1), func(error) { wg.Done() })
	<-blocked // the writer holds the first group

	const goroutines, per = 64, 10
	var mu sync.Mutex
	var order []string
	var errs []error
	for g := range goroutines {
		wg.Add(per)
		go func() {
			client := fmt.Sprintf("c%d", g)
			for i := range per {
				id := uint64(1000*(g+1) + i)
				s.Commit(publish(client, id), func(err error) {
					mu.Lock()
					order = append(order, fmt.Sprintf("%s/%d", client, i))
					if err != nil {
						errs = append(errs, err)
					}
					mu.Unlock()
					wg.Done()
				})
			}
		}()
	}
	waitFor(t, "all batches queued", func() bool { return s.Stats().Batches == 1+goroutines*per })
	release()
	wg.Wait()
	for _, err := range errs {
		t.Errorf("done(%v)", err)
	}
	// Per goroutine, done calls come in commit order.
	next := make(map[string]int)
	for _, o := range order {
		client, i, _ := strings.Cut(o, "/")
		if want := fmt.Sprint(next[client]); i != want {
			t.Fatalf("done of %s/%s before %s/%s", client, i, client, want)
		}
		next[client]++
	}
	st := s.Stats()
	t.Logf("stats: %+v", st)
	if st.Groups != 2 || st.Txns != 2 || st.Syncs != 2 {
		t.Errorf("%d batches in 2 groups: %d groups, %d transactions, %d syncs; want 2 each",
			1+goroutines*per, st.Groups, st.Txns, st.Syncs)
	}
	if got := len(readQueue(t, s, "c7", 0)); got != per {
		t.Errorf("queue of c7 has %d entries, want %d", got, per)
	}
}

// TestGroupCommitUnderLoad: goroutines that each wait for their done
// before committing again (as connections waiting for a PUBACK do) share
// transactions and syncs: far fewer than batches, and in Sync mode
// exactly one sync per transaction.
func TestGroupCommitUnderLoad(t *testing.T) {
	for _, d := range []Durability{Process, Sync} {
		t.Run(d.String(), func(t *testing.T) {
			s := openTest(t, Options{Durability: d})
			const goroutines, per = 64, 20
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range per {
						if err := commit(t, s, publish(fmt.Sprintf("c%d", g), uint64(g*per+i+1))); err != nil {
							t.Errorf("commit: %v", err)
							return
						}
					}
				}()
			}
			wg.Wait()
			st := s.Stats()
			t.Logf("%d batches: %+v (%.1f batches per transaction)", goroutines*per, st, float64(st.Batches)/float64(st.Txns))
			if st.Txns*4 > st.Batches {
				t.Errorf("%d transactions for %d batches: want at most a quarter", st.Txns, st.Batches)
			}
			switch d {
			case Sync:
				if st.Syncs != st.Txns || st.Syncs != st.Groups {
					t.Errorf("Sync mode: %d syncs, %d transactions, %d groups: want one sync per group", st.Syncs, st.Txns, st.Groups)
				}
			case Process:
				if st.Syncs != 0 {
					t.Errorf("Process mode: %d group syncs, want 0", st.Syncs)
				}
			}
		})
	}
}

// TestGroupSplitAtBatchBoundaries: a group larger than one Badger
// transaction is committed in several, each holding whole batches.
func TestGroupSplitAtBatchBoundaries(t *testing.T) {
	hooks, blocked, release := pausedWriter()
	s := openTest(t, Options{hooks: hooks})
	defer release()
	var wg sync.WaitGroup
	wg.Add(1)
	s.Commit(&store.Batch{}, func(error) { wg.Done() })
	<-blocked
	// 3 writes per batch (message, entry, max id): 6000 batches are 18000
	// writes, more than one transaction holds (about 13000).
	const n = 6000
	var failed int
	var mu sync.Mutex
	for i := range n {
		wg.Add(1)
		s.Commit(publish("c", uint64(i+1)), func(err error) {
			if err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
			}
			wg.Done()
		})
	}
	release()
	wg.Wait()
	if failed > 0 {
		t.Fatalf("%d batches failed", failed)
	}
	st := s.Stats()
	if st.Txns < 2 || st.Oversized != 0 {
		t.Errorf("stats %+v: want the group in 2 or more transactions and no oversized batch", st)
	}
	if got := len(readQueue(t, s, "c", 0)); got != n {
		t.Errorf("queue has %d entries, want %d", got, n)
	}
	if got := s.MessageCount(); got != n {
		t.Errorf("MessageCount = %d, want %d", got, n)
	}
}

// TestFailedBatchIsRolledBackAlone: a batch that fails half-way (here on
// a corrupt queue entry) leaves no trace, and the batches around it in the
// same group are written.
func TestFailedBatchIsRolledBackAlone(t *testing.T) {
	s := openTest(t, Options{})
	mustCommit(t, s, publish("c", 1))
	key, _ := queueKey("c", 1)
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(key, []byte{1, 2}) }); err != nil {
		t.Fatal(err)
	}
	// Hold the writer in the done of an empty batch, so that the next
	// three land in one group.
	hold := make(chan struct{})
	s.Commit(&store.Batch{}, func(error) { <-hold })
	var wg sync.WaitGroup
	errs := make([]error, 3)
	wg.Add(3)
	ok1 := publish("ok1", 2)
	bad := new(store.Batch)
	bad.PutSession(&store.SessionRecord{ClientID: "bad"})
	bad.PutMessage(msg(3))
	bad.Enqueue("bad", store.QueueEntry{Seq: 1, MsgID: 3})
	bad.Dequeue("c", 1) // corrupt
	ok2 := publish("ok2", 4)
	for i, b := range []*store.Batch{ok1, bad, ok2} {
		s.Commit(b, func(err error) { errs[i] = err; wg.Done() })
	}
	before := s.Stats().Txns
	close(hold)
	wg.Wait()
	if errs[0] != nil || errs[2] != nil {
		t.Errorf("good batches: done(%v), done(%v)", errs[0], errs[2])
	}
	if !errors.Is(errs[1], ErrCorrupt) || !strings.Contains(errs[1].Error(), `q/"c"/1`) {
		t.Errorf("bad batch: done(%v), want a corruption error naming q/\"c\"/1", errs[1])
	}
	if n := s.Stats().Txns - before; n != 1 {
		t.Errorf("%d transactions for the group, want 1", n)
	}
	sessions := readSessions(t, s)
	if _, ok := sessions["bad"]; ok {
		t.Error("the failed batch's session was written")
	}
	if q := readQueue(t, s, "bad", 0); len(q) != 0 {
		t.Errorf("the failed batch's queue entry was written: %v", q)
	}
	if len(readQueue(t, s, "ok1", 0)) != 1 || len(readQueue(t, s, "ok2", 0)) != 1 {
		t.Error("a good batch of the group is missing")
	}
	if got := s.MessageCount(); got != 3 { // 1 (corrupt entry's), 2, 4
		t.Errorf("MessageCount = %d, want 3", got)
	}
}

// TestOversizedBatch: a batch larger than a Badger transaction is spread
// over several and is complete afterwards, also its release decisions.
func TestOversizedBatch(t *testing.T) {
	s := openTest(t, Options{})
	const n = 20000
	b := new(store.Batch)
	b.PutSession(&store.SessionRecord{ClientID: "big"})
	for i := uint64(1); i <= n; i++ {
		b.PutMessage(msg(i))
		b.Enqueue("big", store.QueueEntry{Seq: i, MsgID: i, QoS: 1})
		b.Enqueue("other", store.QueueEntry{Seq: i, MsgID: i, QoS: 1})
	}
	mustCommit(t, s, b)
	if st := s.Stats(); st.Oversized != 1 || st.Txns < 3 {
		t.Errorf("stats %+v: want 1 oversized batch in 3 or more transactions", st)
	}
	if got := len(readQueue(t, s, "big", 0)); got != n {
		t.Errorf("queue has %d entries, want %d", got, n)
	}
	// Deleting the session of a long queue is oversized too; the messages
	// stay, referred to by "other".
	b = new(store.Batch)
	b.DeleteSession("big")
	mustCommit(t, s, b)
	if got := s.MessageCount(); got != n {
		t.Errorf("MessageCount = %d after deleting one of two queues, want %d", got, n)
	}
	b = new(store.Batch)
	b.DeleteSession("other")
	mustCommit(t, s, b)
	if got := s.MessageCount(); got != 0 {
		t.Errorf("MessageCount = %d after deleting both queues, want 0", got)
	}
	if st := s.Stats(); st.Oversized != 3 {
		t.Errorf("stats %+v: want 3 oversized batches", st)
	}
}

func TestCorruptValuesReportedWithKey(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir})
	b := publish("c", 1)
	b.PutSession(&store.SessionRecord{ClientID: "c", Version: mqtt.V5})
	b.PutRetained(&store.Message{ID: 2, Topic: "r/t", Payload: []byte("r"), Retain: true})
	mustCommit(t, s, b)

	damage := func(key []byte) {
		t.Helper()
		if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(key, []byte{valueV1, 0xff}) }); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string, err error, key string) {
		t.Helper()
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: %v, want a corruption error naming %s", what, err, key)
		}
	}
	qk, _ := queueKey("c", 1)

	damage(messageKey(1))
	check("Queue with a damaged message", s.Queue("c", 0, func(store.QueueEntry, *store.Message) bool { return true }), "m/1")
	damage(sessionKey("c"))
	check("Sessions", s.Sessions(func(*store.SessionRecord) error { return nil }), `s/"c"`)
	damage(retainedKey("r/t"))
	check("Retained", s.Retained(func(*store.Message) error { return nil }), `r/"r/t"`)
	damage(qk)
	check("Queue with a damaged entry", s.Queue("c", 0, func(store.QueueEntry, *store.Message) bool { return true }), `q/"c"/1`)
	d := new(store.Batch)
	d.Dequeue("c", 1)
	check("Commit of a Dequeue of a damaged entry", commit(t, s, d), `q/"c"/1`)

	// A damaged queue entry makes Open fail: it cannot know which message
	// the entry refers to, and guessing could delete a queued message.
	s.Close()
	_, err := Open(Options{Dir: dir, Logger: testLogger(t)})
	check("Open with a damaged queue entry", err, `q/"c"/1`)
}

func TestOpenDeletesOrphanedMessages(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir})
	b := publish("c", 1)
	b.PutMessage(msg(2))
	b.Enqueue("c", store.QueueEntry{Seq: 2, MsgID: 2})
	b.Enqueue("d", store.QueueEntry{Seq: 1, MsgID: 2})
	mustCommit(t, s, b)
	// What a crash in the middle of an oversized batch can leave: messages
	// that no queue entry refers to, and one entry whose message is gone.
	err := s.db.Update(func(txn *badger.Txn) error {
		for _, id := range []uint64{5, 6, 7} {
			v, _ := encodeMessage(msg(id))
			if err := txn.Set(messageKey(id), v); err != nil {
				return err
			}
		}
		k, _ := queueKey("e", 1)
		v, _ := encodeEntry(&store.QueueEntry{MsgID: 99})
		return txn.Set(k, v)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	var logs logBuffer
	s = openTest(t, Options{Dir: dir, Logger: logs.logger()})
	if got := s.Stats().OrphansRemoved; got != 3 {
		t.Errorf("OrphansRemoved = %d, want 3", got)
	}
	if got := s.MessageCount(); got != 2 {
		t.Errorf("MessageCount = %d, want 2", got)
	}
	if !strings.Contains(logs.String(), "orphaned_messages=3") {
		t.Errorf("log does not say how many orphans were deleted:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "refer to messages that are not stored") {
		t.Errorf("log does not warn of the dangling entry:\n%s", logs.String())
	}
	if got := s.MaxMessageID(); got != 7 {
		t.Errorf("MaxMessageID = %d, want 7", got)
	}
	// The counts rebuilt: message 2 has two references, 1 has one.
	d := new(store.Batch)
	d.Dequeue("c", 1)
	d.Dequeue("c", 2)
	mustCommit(t, s, d)
	if got := s.MessageCount(); got != 1 {
		t.Errorf("MessageCount = %d after dequeuing message 1 and one of 2's entries, want 1", got)
	}
	if q := readQueue(t, s, "e", 0); len(q) != 0 {
		t.Errorf("Queue returned an entry whose message is missing: %v", q)
	}
}

// TestQueueDoesNotHoldTheStore: Queue calls fn outside any lock or Badger
// transaction, so a slow fn does not hold up commits (or Close).
func TestQueueDoesNotHoldTheStore(t *testing.T) {
	s := openTest(t, Options{})
	const n = 3000
	b := new(store.Batch)
	for i := uint64(1); i <= n; i++ {
		b.PutMessage(msg(i))
		b.Enqueue("c", store.QueueEntry{Seq: i, MsgID: i, QoS: 1})
	}
	mustCommit(t, s, b)
	var seen []uint64
	err := s.Queue("c", 0, func(e store.QueueEntry, m *store.Message) bool {
		if len(seen) == 0 {
			// Commit while the listing is under way, and wait for it.
			mustCommit(t, s, publish("c", n+1))
		}
		if m.ID != e.MsgID {
			t.Errorf("entry %d: message %d", e.Seq, m.ID)
		}
		seen = append(seen, e.Seq)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != n+1 {
		t.Errorf("saw %d entries, want %d (the one committed during the listing is after the first page)", len(seen), n+1)
	}
	for i := range seen {
		if seen[i] != uint64(i+1) {
			t.Fatalf("entry %d has Seq %d", i, seen[i])
		}
	}
}

func TestCloseDrainsAndRefuses(t *testing.T) {
	s := openTest(t, Options{Durability: Sync})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i := range 500 {
		wg.Add(1)
		s.Commit(publish("c", uint64(i+1)), func(err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			wg.Done()
		})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(errs) != 500 {
		t.Errorf("%d of 500 done calls made by the time Close returned", len(errs))
	}
	for _, err := range errs {
		if err != nil {
			t.Errorf("done(%v) for a batch committed before Close", err)
			break
		}
	}
	mu.Unlock()
	wg.Wait()
	if err := commit(t, s, publish("c", 1000)); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Commit after Close: %v", err)
	}
	if err := s.Queue("c", 0, func(store.QueueEntry, *store.Message) bool { return true }); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Queue after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestBadgerLoggerLevels(t *testing.T) {
	var logs logBuffer
	l := badgerLogger{logs.logger()} // info and above
	l.Errorf("e %d\n", 1)
	l.Warningf("w %d", 2)
	l.Infof("chatty %d", 3)
	l.Debugf("chattier %d", 4)
	out := logs.String()
	for _, want := range []string{`level=ERROR msg="e 1" component=badger`, `level=WARN msg="w 2"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "chatty") {
		t.Errorf("Badger's info or debug message logged at info level:\n%s", out)
	}
}

func TestOptionsValidate(t *testing.T) {
	_, err := Open(Options{Durability: 7, MemTableSize: -1})
	for _, want := range []string{"Dir is empty", "Durability 7", "MemTableSize"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open with bad options: %v, want it to mention %q", err, want)
		}
	}
}

func readQueue(t testing.TB, s *Store, client string, after uint64) []store.QueueEntry {
	t.Helper()
	var out []store.QueueEntry
	if err := s.Queue(client, after, func(e store.QueueEntry, _ *store.Message) bool {
		out = append(out, e)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func readSessions(t testing.TB, s *Store) map[string]*store.SessionRecord {
	t.Helper()
	out := make(map[string]*store.SessionRecord)
	if err := s.Sessions(func(r *store.SessionRecord) error { out[r.ClientID] = r; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}
