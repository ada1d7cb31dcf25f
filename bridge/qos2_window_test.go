package bridge_test

import (
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weirmq/weir/bridge"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

// QoS 2 upstream between the bridge's PUBREL and upstream's PUBCOMP: if the
// link or Weir dies there, the bridge must send PUBREL again, not the
// message, to an upstream that kept its session — otherwise upstream,
// which completed the first exchange's packet id at PUBREL, takes the
// re-sent PUBLISH as a new message and delivers it twice.

// pubcompCutter is a TCP proxy from the bridge to upstream that reads
// upstream's packets and, on every cutEvery-th PUBCOMP, either closes
// both connections without passing it on (cut) or, with hold, passes
// nothing more from upstream on that connection (the bridge waits for
// PUBCOMPs that never come).
type pubcompCutter struct {
	t        *testing.T
	ln       net.Listener
	upstream string
	cutEvery int
	hold     atomic.Bool

	mu     sync.Mutex
	comps  int // PUBCOMPs seen
	cuts   int // connections cut or held
	conns  []net.Conn
	closed bool
}

func newPubcompCutter(t *testing.T, upstream string, cutEvery int) *pubcompCutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pubcompCutter{t: t, ln: ln, upstream: upstream, cutEvery: cutEvery}
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *pubcompCutter) addr() string { return "tcp://" + p.ln.Addr().String() }

func (p *pubcompCutter) close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

func (p *pubcompCutter) cutCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts
}

func (p *pubcompCutter) accept() {
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
		if err != nil {
			down.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			down.Close()
			up.Close()
			return
		}
		p.conns = append(p.conns, down, up)
		p.mu.Unlock()
		go func() { io.Copy(up, down); up.Close() }()
		go p.fromUpstream(up, down)
	}
}

// fromUpstream passes upstream's packets on one by one, watching for
// PUBCOMP.
func (p *pubcompCutter) fromUpstream(up, down net.Conn) {
	defer down.Close()
	defer up.Close()
	rd := mqtt.NewReader(up, 0)
	for {
		pkt, err := rd.ReadPacket()
		if err != nil {
			return
		}
		if mqtt.PacketType(pkt[0]>>4) == mqtt.PUBCOMP {
			p.mu.Lock()
			p.comps++
			cut := p.comps%p.cutEvery == 0
			if cut {
				p.cuts++
			}
			p.mu.Unlock()
			if cut {
				if p.hold.Load() {
					io.Copy(io.Discard, up) // until the bridge's side goes
				}
				return
			}
		}
		if _, err := down.Write(pkt); err != nil {
			return
		}
	}
}

// TestQoS2ReleaseWindow cuts the bridge's upstream connection at every
// 25th PUBCOMP (the bridge has sent PUBREL, upstream completed and
// forgot the packet id) during a QoS 2 stream, with the upstream session
// kept: every message reaches the upstream subscriber exactly once.
func TestQoS2ReleaseWindow(t *testing.T) {
	for _, v := range []mqtt.Version{mqtt.V5, mqtt.V311} {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			up := startMosquitto(t)
			c := newCollector()
			subscribeCollector(t, up, "gw/#", 2, c)
			cut := newPubcompCutter(t, up.Addr, 25)
			local := localBroker(t, nil)
			br := startBridge(t, local, bridge.Config{
				Name: "up", Address: cut.addr(), Version: v, ClientID: "weir-gw", SessionExpiry: time.Hour,
				Out: []bridge.OutRule{{Filter: "s/#", AddPrefix: "gw/", QoS: 2, Policy: bridge.DropOldest}},
			})
			waitConnected(t, br)
			const publishers, perTopic = 4, 100
			var acked atomic.Int64
			publishStream(t, local, publishers, perTopic, 2, &acked)
			total := publishers * perTopic
			brokertest.Eventually(t, 30*time.Second, func() error {
				if u, _ := c.count(); u != total {
					return fmt.Errorf("%d of %d messages upstream", u, total)
				}
				return nil
			})
			c.checkOrder(t, publishers, perTopic)
			if cut.cutCount() == 0 {
				t.Fatal("no connection was cut after a PUBCOMP: the test did not test the window")
			}
			brokertest.Eventually(t, 10*time.Second, func() error {
				if st := br.Status(); st.OutboxMessages != 0 || st.InFlight != 0 {
					return fmt.Errorf("outbox not empty: %+v", st)
				}
				return nil
			})
			time.Sleep(200 * time.Millisecond) // a late second copy would show now
			_, dups := c.count()
			t.Logf("%d cuts after PUBCOMP; %d duplicates upstream (%d with DUP)", cut.cutCount(), dups, c.dupFlag)
			if dups != 0 {
				t.Errorf("%d messages reached upstream twice", dups)
			}
		})
	}
}

// TestQoS2ReleaseWindowCrash holds back upstream's PUBCOMPs (so the bridge
// has released messages waiting for completion), SIGKILLs weir, restarts
// it: the released messages are completed with PUBREL from the stored
// state, and none reaches upstream twice.
func TestQoS2ReleaseWindowCrash(t *testing.T) {
	t.Parallel()
	up := startMosquitto(t)
	c := newCollector()
	subscribeCollector(t, up, "gw/#", 2, c)
	cut := newPubcompCutter(t, up.Addr, 20)
	cut.hold.Store(true)
	child := brokertest.StartChild(t, brokertest.ChildOptions{Config: map[string]any{
		"bridges": []map[string]any{{
			"name": "up", "address": cut.addr(), "version": "5", "client_id": "weir-gw",
			"min_backoff": "20ms", "max_backoff": "200ms",
			"out": []map[string]any{{"filter": "s/#", "add_prefix": "gw/", "qos": 2}},
		}},
	}})
	const total = 200
	pub := brokertest.ConnectPaho311(t, &brokertest.Broker{Addr: child.Addr()}, tcp, "pub", nil)
	for k := range total {
		tok := pub.Publish("s/0", 2, false, fmt.Sprintf("0:%d", k))
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("message %d not acknowledged: %v", k, tok.Error())
		}
	}
	// The 20th PUBCOMP is held: from then on the bridge's window fills
	// with messages upstream has (PUBREC held) and released ones.
	brokertest.Eventually(t, 10*time.Second, func() error {
		if cut.cutCount() == 0 {
			return errNotYet
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond) // let the window fill with PUBRELs sent
	pub.Disconnect(0)
	child.Kill()
	cut.hold.Store(false)
	child.Restart()
	brokertest.Eventually(t, 30*time.Second, func() error {
		if u, _ := c.count(); u != total {
			return fmt.Errorf("%d of %d messages upstream", u, total)
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond)
	c.checkOrder(t, 1, total)
	_, dups := c.count()
	t.Logf("%d held connections; %d duplicates upstream (%d with DUP)", cut.cutCount(), dups, c.dupFlag)
	if dups != 0 {
		t.Errorf("%d messages reached upstream twice", dups)
	}
}
