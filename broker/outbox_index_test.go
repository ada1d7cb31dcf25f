package broker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
	"github.com/weirmq/weir/store"
	badgerstore "github.com/weirmq/weir/store/badger"
)

// KeepLastPerTopic over the whole outbox: with a memory window of 4
// messages nearly all of the outbox is on disk, and what gives way must
// still be an older message — of the same topic, else a superseded one —
// never the latest value of a topic while an older one is queued.

const keepLastID = broker.InternalPrefix + "keeplast"

// keepLastSize is the Size of every message these tests publish: topics of
// 5 bytes, payloads of 5, publisher "pub".
var keepLastSize = (&store.Message{Topic: "t/000", Payload: []byte("00000"), Origin: "pub"}).Size()

// keepLast is one broker with a keep-last-per-topic internal session.
type keepLast struct {
	t     *testing.T
	b     *brokertest.Broker
	pub   *brokertest.Paho311
	drops *atomic.Int64 // OnDrop calls
	n     int           // messages published
}

// register sets up the internal session: a budget of budget messages,
// everything kept last per topic, drops counted.
func registerKeepLast(t *testing.T, srv *broker.Server, budget int, drops *atomic.Int64) {
	t.Helper()
	err := srv.RegisterInternal(broker.InternalOptions{ID: keepLastID, MaxBytes: int64(budget * keepLastSize),
		Policy: func(string) broker.OverflowPolicy { return broker.KeepLastPerTopic },
		OnDrop: func(_ string, p broker.OverflowPolicy) {
			if p != broker.KeepLastPerTopic {
				t.Errorf("dropped by policy %d", p)
			}
			drops.Add(1)
		}})
	if err != nil {
		t.Fatal(err)
	}
}

func newKeepLast(t *testing.T, b *brokertest.Broker, budget int, drops *atomic.Int64, subscribe bool) *keepLast {
	t.Helper()
	registerKeepLast(t, b.Server, budget, drops)
	if subscribe {
		r := dialInternal(t, b.Server, keepLastID, 10)
		r.Send(t, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "#", QoS: 1}}})
		r.Expect(t, mqtt.SUBACK)
		r.Send(t, &mqtt.Disconnect{})
		r.Conn.Close()
	}
	return &keepLast{t: t, b: b, drops: drops, pub: brokertest.ConnectPaho311(t, b, brokertest.Transports()[0], "pub", nil)}
}

// publish publishes one message on topic; payloads count up over the test.
func (k *keepLast) publish(topic string) string {
	payload := fmt.Sprintf("%05d", k.n)
	k.n++
	// The budget never refuses the publisher: MustPublish wants the PUBACK.
	k.pub.MustPublish(topic, 1, false, payload)
	return payload
}

// drain connects the internal session and receives want messages, then
// checks that no more come; it returns the payloads by topic.
func drainKeepLast(t *testing.T, b *brokertest.Broker, want int) map[string][]string {
	t.Helper()
	r := dialInternal(t, b.Server, keepLastID, 10)
	got := map[string][]string{}
	for range want {
		p := r.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
		got[string(p.Topic)] = append(got[string(p.Topic)], string(p.Payload))
		r.Send(t, &mqtt.Puback{PacketID: p.PacketID})
	}
	if p, err := r.Read(300 * time.Millisecond); err == nil {
		t.Fatalf("unexpected %v after %d messages", p, want)
	}
	return got
}

// checkKept checks the drained messages against the expected ones and
// the drop count against what did not arrive; srv counted all drops but
// before (made by an earlier server on the same store).
func checkKept(t *testing.T, got, want map[string][]string, published int, drops int64, srv *broker.Server, before int64) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("received %v\nwant %v", got, want)
	}
	received := 0
	for _, v := range got {
		received += len(v)
	}
	if int(drops) != published-received {
		t.Errorf("%d drops counted, %d of %d messages did not arrive", drops, published-received, published)
	}
	if n := srv.Stats().Dropped["outbox_full"]; n != drops-before {
		t.Errorf("server counts %d outbox_full drops, OnDrop %d", n, drops-before)
	}
}

// storeKinds runs f with the memory store and with Badger.
func storeKinds(t *testing.T, f func(t *testing.T, st store.Store)) {
	t.Run("memory", func(t *testing.T) { f(t, store.NewMemory()) })
	t.Run("badger", func(t *testing.T) {
		st, err := badgerstore.Open(badgerstore.Options{Dir: t.TempDir(), GCInterval: -1, Logger: brokertest.Discard()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		f(t, st)
	})
}

// TestKeepLastSameTopicOnDisk: 20 topics, a budget of 50 messages, a
// memory window of 4: each new message replaces the oldest of its own
// topic, most of them on disk, so every topic keeps its last 3 or 2
// values (the first 50 messages gave topics 0–9 three, 10–19 two).
// Searching memory only, the new message was dropped instead.
func TestKeepLastSameTopicOnDisk(t *testing.T) {
	storeKinds(t, func(t *testing.T, st store.Store) {
		b := brokertest.Start(t, &broker.Options{Store: st, QueueMemoryWindow: 4})
		var drops atomic.Int64
		k := newKeepLast(t, b, 50, &drops, true)
		want := map[string][]string{}
		for i := range 300 {
			topic := fmt.Sprintf("t/%03d", i%20)
			want[topic] = append(want[topic], k.publish(topic))
		}
		for topic, v := range want {
			keep := 2
			if topic < "t/010" {
				keep = 3
			}
			want[topic] = v[len(v)-keep:]
		}
		if st := b.Server.InternalStatus(keepLastID); st.Queued != 50 || st.QueuedBytes != int64(50*keepLastSize) {
			t.Errorf("status %+v, want 50 messages", st)
		}
		checkKept(t, drainKeepLast(t, b, 50), want, k.n, drops.Load(), b.Server, 0)
	})
}

// TestKeepLastSupersededOnDisk: when the new message's topic has nothing
// queued, the oldest message that has a newer one of its topic gives way,
// on disk as in memory; once every queued message is the latest of its
// topic, the new message is dropped.
func TestKeepLastSupersededOnDisk(t *testing.T) {
	storeKinds(t, func(t *testing.T, st store.Store) {
		b := brokertest.Start(t, &broker.Options{Store: st, QueueMemoryWindow: 4})
		var drops atomic.Int64
		k := newKeepLast(t, b, 50, &drops, true)
		old := map[string][]string{}
		for i := range 100 { // 5 topics: each keeps its last 10
			topic := fmt.Sprintf("o/%03d", i%5)
			old[topic] = append(old[topic], k.publish(topic))
		}
		want := map[string][]string{}
		for i := range 45 {
			// The first 40 replace the 40 oldest (each old topic keeps
			// its last 2), the next 5 the second-to-last of each.
			topic := fmt.Sprintf("n/%03d", i)
			want[topic] = []string{k.publish(topic)}
		}
		for topic, v := range old {
			want[topic] = v[len(v)-1:]
		}
		// Every queued message is now the latest of its topic.
		k.publish("n/045")
		checkKept(t, drainKeepLast(t, b, 50), want, k.n, drops.Load(), b.Server, 0)
	})
}

// TestKeepLastIndexAfterRestart restarts the broker on the same store while
// the outbox is over its budget: the topic index is not rebuilt at start-up
// but at the first overflow after it, and the messages published after the
// restart still replace the oldest of their topics on disk.
func TestKeepLastIndexAfterRestart(t *testing.T) {
	dir := t.TempDir()
	var drops atomic.Int64
	start := func() (*brokertest.Broker, *syncBuffer, func()) {
		st, err := badgerstore.Open(badgerstore.Options{Dir: dir, GCInterval: -1, Logger: brokertest.Discard()})
		if err != nil {
			t.Fatal(err)
		}
		logs := &syncBuffer{}
		srv, err := broker.New(&broker.Options{Store: st, QueueMemoryWindow: 4,
			Logger: slog.New(slog.NewTextHandler(logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(l)
		b := &brokertest.Broker{Server: srv, Addr: l.Addr().String()}
		var once sync.Once
		stop := func() {
			once.Do(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := srv.Shutdown(ctx); err != nil {
					t.Error(err)
				}
				st.Close()
			})
		}
		t.Cleanup(stop)
		return b, logs, stop
	}
	built := func(logs *syncBuffer) int { return strings.Count(logs.String(), "outbox topic index built") }

	b, logs, stop := start()
	k := newKeepLast(t, b, 50, &drops, true)
	want := map[string][]string{}
	for i := range 200 {
		topic := fmt.Sprintf("t/%03d", i%20)
		want[topic] = append(want[topic], k.publish(topic))
	}
	if n := built(logs); n != 1 {
		t.Errorf("index built %d times before the restart, want once:\n%s", n, logs)
	}
	k.pub.Disconnect(250)
	stop()
	before := drops.Load()

	b, logs, stop = start()
	defer stop()
	k2 := newKeepLast(t, b, 50, &drops, false)
	k2.n = k.n
	if st := b.Server.InternalStatus(keepLastID); st.Queued != 50 {
		t.Fatalf("after the restart %+v, want 50 queued", st)
	}
	if n := built(logs); n != 0 {
		t.Fatalf("index built at start-up:\n%s", logs)
	}
	for i := range 100 {
		topic := fmt.Sprintf("t/%03d", i%20)
		want[topic] = append(want[topic], k2.publish(topic))
	}
	if n := built(logs); n != 1 {
		t.Errorf("index built %d times after the restart, want once:\n%s", n, logs)
	}
	for topic, v := range want {
		keep := 2
		if topic < "t/010" {
			keep = 3
		}
		want[topic] = v[len(v)-keep:]
	}
	checkKept(t, drainKeepLast(t, b, 50), want, k2.n, drops.Load(), b.Server, before)
}

// holdStore is a store whose batches of dequeues only can be held back,
// as if the store's writer were slow, and whose next queue read can be
// paused (armed) after its snapshot, as if the store were slow to read.
type holdStore struct {
	store.Store
	mu   sync.Mutex
	hold bool
	fail bool // batches of dequeues only fail instead
	held []func()

	armed  atomic.Bool
	paused chan struct{} // closed when the armed read pauses
	resume chan struct{} // closed to let it go on
}

func (s *holdStore) Queue(id string, after uint64, fn func(store.QueueEntry, *store.Message) bool) error {
	first := true
	return s.Store.Queue(id, after, func(e store.QueueEntry, m *store.Message) bool {
		if first && s.armed.CompareAndSwap(true, false) {
			close(s.paused)
			<-s.resume
		}
		first = false
		return fn(e, m)
	})
}

func (s *holdStore) Commit(b *store.Batch, done func(error)) {
	s.mu.Lock()
	if (s.hold || s.fail) && !b.Empty() {
		dequeues := true
		for _, op := range b.Ops {
			dequeues = dequeues && op.Kind == store.OpDequeue
		}
		if dequeues && s.fail {
			s.mu.Unlock()
			done(errors.New("test: dequeue failed"))
			return
		}
		if dequeues {
			s.held = append(s.held, func() { s.Store.Commit(b, done) })
			s.mu.Unlock()
			return
		}
	}
	s.mu.Unlock()
	s.Store.Commit(b, done)
}

func (s *holdStore) release() {
	s.mu.Lock()
	held := s.held
	s.held, s.hold = nil, false
	s.mu.Unlock()
	for _, f := range held {
		f()
	}
}

// TestKeepLastDroppedNotReadBack: messages dropped from disk whose dequeue
// the store has not applied yet are still in the store when the refill
// reads the backlog: they must not come back.
func TestKeepLastDroppedNotReadBack(t *testing.T) {
	st := &holdStore{Store: store.NewMemory()}
	b := brokertest.Start(t, &broker.Options{Store: st, QueueMemoryWindow: 4})
	t.Cleanup(st.release) // before the broker's shutdown waits for the commits
	var drops atomic.Int64
	k := newKeepLast(t, b, 10, &drops, true)
	var all []string
	for range 10 {
		all = append(all, k.publish("a"))
	}
	st.mu.Lock()
	st.hold = true
	st.mu.Unlock()
	// 4 replace the messages in memory, 3 the oldest on disk.
	for range 7 {
		all = append(all, k.publish("a"))
	}
	if n := drops.Load(); n != 7 {
		t.Fatalf("%d drops, want 7", n)
	}
	got := drainKeepLast(t, b, 10)
	checkKept(t, got, map[string][]string{"a": all[7:]}, k.n, drops.Load(), b.Server, 0)
	st.release()
	brokertest.Eventually(t, 5*time.Second, func() error {
		if s := b.Server.InternalStatus(keepLastID); s.Queued != 0 || s.Inflight != 0 {
			return fmt.Errorf("status %+v", s)
		}
		return nil
	})
}

// TestKeepLastIndexBuiltWhileSessionGoesOn: the topic index is built from
// a read of the store that does not hold the session, which meanwhile
// sends messages (the refill reads part of the backlog back into memory)
// and takes a delivery that spills; the index must come out as the
// backlog is after all that. A stale index would take a message now in
// flight for one on disk; one without the spilled delivery would not find
// it when a newer value of its topic comes.
func TestKeepLastIndexBuiltWhileSessionGoesOn(t *testing.T) {
	st := &holdStore{Store: store.NewMemory(), paused: make(chan struct{}), resume: make(chan struct{})}
	b := brokertest.Start(t, &broker.Options{Store: st, QueueMemoryWindow: 4})
	var drops atomic.Int64
	k := newKeepLast(t, b, 20, &drops, true)
	want := map[string][]string{}
	for i := range 20 { // 4 in memory, 16 on disk
		topic := fmt.Sprintf("t/%02d", i)
		want[topic] = []string{k.publish(topic)}
	}

	// A new topic over the budget: the search needs the disk, the index
	// is built, its read of the store pauses.
	st.armed.Store(true)
	published := make(chan struct{})
	go func() {
		defer close(published)
		// (Not MustPublish: it may not fail the test from this goroutine.)
		if tok := k.pub.Publish("x/00", 1, false, "x0000"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Errorf("x/00 not acknowledged: %v", tok.Error())
		}
	}()
	select {
	case <-st.paused:
	case <-time.After(10 * time.Second):
		t.Fatal("the index build did not read the store")
	}
	// Meanwhile the session drains: 4 acknowledged, t/04 and t/05 in
	// flight, t/06 and t/07 read back into memory.
	r := dialInternal(t, b.Server, keepLastID, 2)
	received := map[string][]string{}
	next := func() *mqtt.Publish {
		t.Helper()
		p := r.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
		received[string(p.Topic)] = append(received[string(p.Topic)], string(p.Payload))
		return p
	}
	inflight := []*mqtt.Publish{next(), next()}
	for range 4 {
		r.Send(t, &mqtt.Puback{PacketID: inflight[0].PacketID})
		inflight = append(inflight[1:], next())
	}
	// ... and a delivery of another publisher spills (it fits).
	other := brokertest.ConnectPaho311(t, b, brokertest.Transports()[0], "pu2", nil)
	other.MustPublish("y/00", 1, false, "y0000")
	close(st.resume)
	<-published
	want["x/00"] = []string{"x0000"}

	for i := range 4 { // fills the budget: 20 queued
		topic, payload := fmt.Sprintf("z/%02d", i), fmt.Sprintf("z%04d", i)
		other.MustPublish(topic, 1, false, payload)
		want[topic] = []string{payload}
	}
	// t/05 is in flight, not queued, and every queued message is the
	// latest of its topic: the new value is dropped.
	other.MustPublish(string(inflight[1].Topic), 1, false, "t0005")
	// y/00 spilled during the build: its older value gives way.
	other.MustPublish("y/00", 1, false, "y0001")
	want["y/00"] = []string{"y0001"}
	if s := b.Server.InternalStatus(keepLastID); s.Queued != 20 || s.Inflight != 2 {
		t.Errorf("status %+v, want 20 queued and 2 in flight", s)
	}
	for _, p := range inflight {
		r.Send(t, &mqtt.Puback{PacketID: p.PacketID})
	}
	for range 20 {
		p := next()
		r.Send(t, &mqtt.Puback{PacketID: p.PacketID})
	}
	if p, err := r.Read(300 * time.Millisecond); err == nil {
		t.Fatalf("unexpected %v", p)
	}
	checkKept(t, received, want, k.n+8, drops.Load(), b.Server, 0)
}

// TestKeepLastDropCommitFails: when the store fails to dequeue messages
// dropped from disk, they are still there for the refill to read: they
// stay skipped (counted as dropped, not sent), and the counts stay right.
func TestKeepLastDropCommitFails(t *testing.T) {
	st := &holdStore{Store: store.NewMemory()}
	b := brokertest.Start(t, &broker.Options{Store: st, QueueMemoryWindow: 4})
	var drops atomic.Int64
	k := newKeepLast(t, b, 10, &drops, true)
	var all []string
	for range 10 {
		all = append(all, k.publish("a"))
	}
	st.mu.Lock()
	st.fail = true
	st.mu.Unlock()
	for range 7 { // 4 replace the messages in memory, 3 the oldest on disk
		all = append(all, k.publish("a"))
	}
	st.mu.Lock()
	st.fail = false
	st.mu.Unlock()
	checkKept(t, drainKeepLast(t, b, 10), map[string][]string{"a": all[7:]}, k.n, drops.Load(), b.Server, 0)
	brokertest.Eventually(t, 5*time.Second, func() error {
		if s := b.Server.InternalStatus(keepLastID); s.Queued != 0 || s.Inflight != 0 {
			return fmt.Errorf("status %+v", s)
		}
		return nil
	})
}
