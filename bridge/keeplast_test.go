package bridge_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/weirmq/weir/bridge"
	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
	"github.com/weirmq/weir/store"
	badgerstore "github.com/weirmq/weir/store/badger"
)

// keep-last-per-topic over an outbox that is mostly on disk (a memory
// window of 16 messages, a budget of 300), filled by a long outage.

const (
	klTopics = 100 // k/<publisher>/<nn>: 4 publishers, 25 topics each
	klWindow = 16
	klBudget = 300
)

// klSize is the Size of every message: topic k/p/nn, payload nnnnnn,
// publisher pub-p.
var klSize = (&store.Message{Topic: "k/0/00", Payload: []byte("000000"), Origin: "pub-0"}).Size()

// lastCollector records what reaches upstream, per topic.
type lastCollector struct {
	mu     sync.Mutex
	topics map[string][]int // sequence numbers, first arrivals, in arrival order
	seen   map[string]bool
	unique int
}

func subscribeLast(t *testing.T, up *mosquitto) *lastCollector {
	c := &lastCollector{topics: map[string][]int{}, seen: map[string]bool{}}
	sub := brokertest.NewPaho311(t, up.Broker(), tcp, "collector", func(o *paho.ClientOptions) {
		o.SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
			SetMaxReconnectInterval(100 * time.Millisecond).SetOrderMatters(true).
			SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
				n, _ := strconv.Atoi(string(m.Payload()))
				c.mu.Lock()
				defer c.mu.Unlock()
				key := m.Topic() + "/" + string(m.Payload())
				if !c.seen[key] { // a re-delivery after upstream's restart is not new
					c.seen[key] = true
					c.unique++
					c.topics[m.Topic()] = append(c.topics[m.Topic()], n)
				}
			})
	})
	sub.MustConnect()
	sub.MustSubscribe("gw/#", 1)
	return c
}

// klPublisher publishes round-robin over its 25 topics.
type klPublisher struct {
	pub  *brokertest.Paho311
	p    int
	next int
}

// klPublish publishes n messages from each of 4 publishers at once and
// returns the last sequence number of every topic (local topic names).
func klPublish(t *testing.T, pubs []*klPublisher, n int, last map[string]int) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				seq := p.next
				p.next++
				topic := fmt.Sprintf("k/%d/%02d", p.p, seq%(klTopics/len(pubs)))
				// A dropped message is still acknowledged: the
				// budget never refuses the publisher.
				tok := p.pub.Publish(topic, 1, false, fmt.Sprintf("%06d", seq))
				if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
					t.Errorf("%s %d not acknowledged: %v", topic, seq, tok.Error())
					return
				}
				mu.Lock()
				last[topic] = seq
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func klPublishers(t *testing.T, local *brokertest.Broker) []*klPublisher {
	var pubs []*klPublisher
	for p := range 4 {
		pubs = append(pubs, &klPublisher{p: p, pub: brokertest.ConnectPaho311(t, local, tcp, fmt.Sprintf("pub-%d", p), nil)})
	}
	return pubs
}

func klConfig(up *mosquitto) bridge.Config {
	return bridge.Config{
		Name: "up", Address: addr(up), Version: mqtt.V5, ClientID: "weir-gw", SessionExpiry: time.Hour,
		MaxOutboxBytes: int64(klBudget * klSize),
		Out:            []bridge.OutRule{{Filter: "k/#", AddPrefix: "gw/", QoS: 1, Policy: bridge.KeepLastPerTopic}},
	}
}

// check waits until every message left in the outbox has reached
// upstream, then checks that the latest value of every topic arrived,
// that per topic the values arrived in order, and that published −
// arrived = dropped.
// (With live-first backfill per-topic order is not kept by design: only
// that the latest value arrived is checked then.)
func (c *lastCollector) check(t *testing.T, last map[string]int, published int, dropped func() int64, ordered bool) {
	t.Helper()
	brokertest.Eventually(t, 30*time.Second, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if d := dropped(); int64(published-c.unique) != d {
			return fmt.Errorf("%d of %d messages upstream, %d dropped", c.unique, published, d)
		}
		return nil
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.topics) != len(last) {
		t.Errorf("%d topics upstream, want %d", len(c.topics), len(last))
	}
	for topic, seq := range last {
		got := c.topics["gw/"+topic]
		if !ordered {
			if !slices.Contains(got, seq) {
				t.Errorf("%s: arrived %v, not the latest value %d", topic, got, seq)
			}
			continue
		}
		if len(got) == 0 || got[len(got)-1] != seq {
			t.Errorf("%s: arrived %v, the latest value %d is not the last of them", topic, got, seq)
		}
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] {
				t.Errorf("%s: arrived out of order: %v", topic, got)
				break
			}
		}
	}
	if published-c.unique < published/3 {
		t.Errorf("only %d of %d messages dropped: the test did not fill the budget", published-c.unique, published)
	}
}

// TestKeepLastOutboxOnDisk fills the outbox of a bridge whose upstream is
// down to five times its budget, 100 topics from 4 publishers, with all
// but 16 of the queued messages on disk; once upstream is back, the
// latest value of every topic arrives, per topic in order, and the
// dropped counters account for every message that did not.
func TestKeepLastOutboxOnDisk(t *testing.T) {
	local := localBroker(t, &broker.Options{QueueMemoryWindow: klWindow})
	up := startMosquitto(t)
	c := subscribeLast(t, up)
	up.Stop()
	br := startBridge(t, local, klConfig(up))
	pubs := klPublishers(t, local)
	last := map[string]int{}
	klPublish(t, pubs, 5*klBudget/len(pubs), last)
	st := br.Status()
	if st.OutboxMessages != klBudget || st.OutboxBytes != int64(klBudget*klSize) {
		t.Errorf("outbox %d messages %d bytes, want %d and %d", st.OutboxMessages, st.OutboxBytes, klBudget, klBudget*klSize)
	}
	if n := local.Server.Stats().Dropped["quota_exceeded"]; n != 0 {
		t.Errorf("%d publishes refused", n)
	}
	up.Start()
	c.check(t, last, 5*klBudget, func() int64 { return br.Status().Dropped["out[0]"]["outbox_full"] }, true)
	if d, n := br.Status().DroppedTotal(), local.Server.Stats().Dropped["outbox_full"]; d != n {
		t.Errorf("bridge counts %d drops, broker %d", d, n)
	}
}

// klLocal is a local broker on a Badger store in dir with a bridge, for a
// restart on the same store.
type klLocal struct {
	b    *brokertest.Broker
	br   *bridge.Bridge
	logs *logBuffer
	stop func()
}

func startKLLocal(t *testing.T, dir string, up *mosquitto, configure ...func(*bridge.Config)) *klLocal {
	t.Helper()
	st, err := badgerstore.Open(badgerstore.Options{Dir: dir, GCInterval: -1, Logger: brokertest.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	srv, err := broker.New(&broker.Options{Store: st, QueueMemoryWindow: klWindow,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	cfg := withBackoff(klConfig(up))
	for _, f := range configure {
		f(&cfg)
	}
	br, err := bridge.New(srv, cfg, brokertest.Discard())
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { br.Run(ctx); close(done) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
			sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer scancel()
			if err := srv.Shutdown(sctx); err != nil {
				t.Error(err)
			}
			st.Close()
		})
	}
	t.Cleanup(stop)
	return &klLocal{b: &brokertest.Broker{Server: srv, Addr: l.Addr().String()}, br: br, logs: logs, stop: stop}
}

func withBackoff(cfg bridge.Config) bridge.Config {
	cfg.MinBackoff, cfg.MaxBackoff = 20*time.Millisecond, 200*time.Millisecond
	return cfg
}

// built counts the log lines of the topic index being built.
func (l *klLocal) built() int { return strings.Count(l.logs.String(), "outbox topic index built") }

// TestKeepLastOutboxRestart restarts the local broker (graceful shutdown,
// same Badger store) while the outbox is over its budget and mostly on
// disk, and publishes more: the topic index is not built at start-up but
// at the first overflow, and after the outage the latest value of every
// topic arrives upstream, in order, with every other message counted as
// dropped (before or after the restart).
func TestKeepLastOutboxRestart(t *testing.T) {
	dir := t.TempDir()
	up := startMosquitto(t)
	c := subscribeLast(t, up)
	up.Stop()

	l := startKLLocal(t, dir, up)
	last := map[string]int{}
	pubs := klPublishers(t, l.b)
	klPublish(t, pubs, 3*klBudget/len(pubs), last)
	if n := l.built(); n != 1 {
		t.Errorf("index built %d times, want once", n)
	}
	before := l.br.Status().Dropped["out[0]"]["outbox_full"]
	next := make([]int, len(pubs))
	for i, p := range pubs {
		next[i] = p.next
		p.pub.Disconnect(250)
	}
	l.stop()

	l = startKLLocal(t, dir, up)
	// (The start-up set-up of the bridge's session takes nothing out.)
	if st := l.br.Status(); st.OutboxMessages != klBudget || st.InFlight != 0 {
		t.Fatalf("after the restart the outbox holds %d messages and %d in flight, want %d and none",
			st.OutboxMessages, st.InFlight, klBudget)
	}
	if n := l.built(); n != 0 {
		t.Fatalf("index built at start-up:\n%s", l.logs)
	}
	pubs = klPublishers(t, l.b)
	for i, p := range pubs {
		p.next = next[i]
	}
	klPublish(t, pubs, 2*klBudget/len(pubs), last)
	if n := l.built(); n != 1 {
		t.Errorf("index built %d times after the restart, want once:\n%s", n, l.logs)
	}
	up.Start()
	c.check(t, last, 5*klBudget, func() int64 { return before + l.br.Status().Dropped["out[0]"]["outbox_full"] }, true)
}

// logBuffer is a log destination safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *logBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *logBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// slowLink is a TCP proxy to upstream that passes what the bridge sends
// at most rate bytes per second: an uplink slower than the publishers,
// so that the outbox stays over its budget while it drains whatever the
// machine's speed (upstream's direction is not slowed).
type slowLink struct {
	ln net.Listener
	wg sync.WaitGroup
}

func newSlowLink(t *testing.T, upstream string, rate int) *slowLink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &slowLink{ln: ln}
	var mu sync.Mutex
	var conns []net.Conn
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			down, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("tcp", upstream, 5*time.Second)
			if err != nil { // upstream is down: so is the link
				down.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, down, up)
			mu.Unlock()
			s.wg.Add(2)
			go func() { defer s.wg.Done(); io.Copy(down, up); down.Close() }()
			go func() {
				defer s.wg.Done()
				defer up.Close()
				buf := make([]byte, 64)
				for {
					n, err := down.Read(buf)
					if n > 0 {
						time.Sleep(time.Duration(n) * time.Second / time.Duration(rate))
						if _, err := up.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *slowLink) addr() string { return "tcp://" + s.ln.Addr().String() }

// TestKeepLastOutboxDrainUnderLoad keeps publishing after upstream is
// back while the backlog drains over an uplink slower than the
// publishers (Badger store): drops from disk, whose dequeues the store
// applies later, interleave with the refill reading the backlog back;
// still the latest value of every topic arrives and every other message
// is counted as dropped — nothing twice, nothing lost outside the policy.
func TestKeepLastOutboxDrainUnderLoad(t *testing.T) {
	for _, backfill := range []bridge.Backfill{bridge.InOrder, bridge.LiveFirst} {
		t.Run(string(backfill), func(t *testing.T) {
			up := startMosquitto(t)
			c := subscribeLast(t, up)
			up.Stop()
			// About 100 messages a second (a PUBLISH is some 25 bytes):
			// with live-first, live messages go ahead of the backlog, so
			// only an uplink slower than the publishers keeps the outbox
			// over its budget once the drain has begun.
			link := newSlowLink(t, up.Addr, 2500)
			l := startKLLocal(t, t.TempDir(), up, func(cfg *bridge.Config) {
				cfg.Address = link.addr()
				cfg.Backfill, cfg.BackfillRate = backfill, 2000
			})
			pubs := klPublishers(t, l.b)
			last := map[string]int{}
			klPublish(t, pubs, 5*klBudget/len(pubs), last)
			drops := func() int64 { return l.br.Status().Dropped["out[0]"]["outbox_full"] }
			before := drops()
			up.Start()
			waitConnected(t, l.br)
			klPublish(t, pubs, 5*klBudget/len(pubs), last)
			if drops() == before {
				t.Errorf("nothing dropped while the outbox drained: the test did not test that")
			}
			c.check(t, last, 10*klBudget, drops, backfill == bridge.InOrder)
			brokertest.Eventually(t, 10*time.Second, func() error {
				if st := l.br.Status(); st.OutboxMessages != 0 || st.InFlight != 0 {
					return fmt.Errorf("outbox not empty: %+v", st)
				}
				return nil
			})
			t.Logf("%d of %d dropped", drops(), 10*klBudget)
		})
	}
}
