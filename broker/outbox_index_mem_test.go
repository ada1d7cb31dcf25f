package broker_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"runtime"
	"testing"
	"time"

	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
	"github.com/weirmq/weir/store"
	badgerstore "github.com/weirmq/weir/store/badger"
)

// TestKeepLastIndexMemory measures the topic index of an outbox of 101,000
// messages on 1,000 topics, restored from a Badger store with the default
// memory window (1,000 in memory, 100,000 on disk): the heap it adds (at
// most 48 bytes per message on disk; see the README's bridge section for
// the figure) and the time the one pass over the store takes.
func TestKeepLastIndexMemory(t *testing.T) {
	if testing.Short() || keepLastRace {
		t.Skip("writes 101,000 messages; measures the heap (not under the race detector)")
	}
	const n, topics, window = 101_000, 1000, 1000
	dir := t.TempDir()
	st, err := badgerstore.Open(badgerstore.Options{Dir: dir, GCInterval: -1, Logger: brokertest.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	size := 0
	var b store.Batch
	b.PutSession(&store.SessionRecord{ClientID: keepLastID, Version: mqtt.V5, ExpirySeconds: 0xFFFFFFFF,
		Subscriptions: []store.Subscription{{Filter: "#", Options: mqtt.Subscription{Filter: "#", QoS: 1}}}})
	for i := 1; i <= n; i++ {
		m := &store.Message{ID: uint64(i), Topic: fmt.Sprintf("m/%04d", i%topics), Payload: []byte("0123456789abcdef"),
			QoS: 1, Origin: "pub"}
		b.PutMessage(m)
		b.Enqueue(keepLastID, store.QueueEntry{Seq: uint64(i), MsgID: m.ID, QoS: 1, Size: m.Size()})
		size = m.Size()
		if len(b.Ops) >= 2000 || i == n {
			done := make(chan error, 1)
			st.Commit(&b, func(err error) { done <- err })
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			b = store.Batch{}
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st, err = badgerstore.Open(badgerstore.Options{Dir: dir, GCInterval: -1, Logger: brokertest.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	srv, err := broker.New(&broker.Options{Store: st, QueueMemoryWindow: window,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	var drops int64
	err = srv.RegisterInternal(broker.InternalOptions{ID: keepLastID, MaxBytes: int64(n * size),
		Policy: func(string) broker.OverflowPolicy { return broker.KeepLastPerTopic },
		OnDrop: func(string, broker.OverflowPolicy) { drops++ }})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		st.Close()
	}()
	pub := brokertest.ConnectPaho311(t, &brokertest.Broker{Server: srv, Addr: l.Addr().String()}, brokertest.Transports()[0], "pub", nil)

	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	// A topic not queued: the message in memory cannot give way by
	// topic, the search goes to disk and builds the index.
	pub.MustPublish("x/0000", 1, false, "0123456789abcdef")
	after := heap()
	line := regexp.MustCompile(`msg="outbox topic index built".*`).FindString(logs.String())
	if line == "" {
		t.Fatalf("index not built:\n%s", logs.tail(2000))
	}
	if drops != 1 {
		t.Errorf("%d drops, want 1", drops)
	}
	onDisk := n - window
	perMsg := float64(int64(after)-int64(before)) / float64(onDisk)
	t.Logf("%d messages on disk, %d topics: heap %+.0f KiB, %.1f bytes per message on disk; %s",
		onDisk, topics, float64(int64(after)-int64(before))/1024, perMsg, line)
	if perMsg > 48 {
		t.Errorf("index costs %.1f bytes per message on disk, want at most 48", perMsg)
	}
}
