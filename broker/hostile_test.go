package broker_test

// Hostile input: the broker must close connections that send bad or no
// data, without large allocations, while it keeps serving a healthy
// client. All counts and times are bounded; everything is on loopback.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

// hxConnectTimeout is the brokers' Options.ConnectTimeout in these tests.
const hxConnectTimeout = 300 * time.Millisecond

// hxWait bounds every wait for the broker in these tests.
const hxWait = 10 * time.Second

func hxStart(t *testing.T, mod func(*broker.Options)) *brokertest.Broker {
	t.Helper()
	o := &broker.Options{ConnectTimeout: hxConnectTimeout}
	if mod != nil {
		mod(o)
	}
	return brokertest.Start(t, o)
}

// hxConn is a raw MQTT client connection. Its methods return errors
// rather than failing the test, so that it can be used from goroutines.
type hxConn struct {
	net.Conn
	rd *mqtt.Reader
	v  mqtt.Version
}

func hxDial(addr string) (*hxConn, error) {
	c, err := net.DialTimeout("tcp", addr, hxWait)
	if err != nil {
		return nil, err
	}
	return &hxConn{Conn: c, rd: mqtt.NewReader(c, 0), v: mqtt.V311}, nil
}

// hxMustDial dials and closes the connection when the test ends.
func hxMustDial(t testing.TB, addr string) *hxConn {
	t.Helper()
	c, err := hxDial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (c *hxConn) write(b []byte) error {
	c.SetWriteDeadline(time.Now().Add(hxWait))
	_, err := c.Write(b)
	return err
}

func (c *hxConn) send(p mqtt.Packet) error {
	b, err := p.AppendTo(nil, c.v)
	if err != nil {
		return err
	}
	return c.write(b)
}

func (c *hxConn) recv() (mqtt.Packet, error) {
	c.SetReadDeadline(time.Now().Add(hxWait))
	pkt, err := c.rd.ReadPacket()
	if err != nil {
		return nil, err
	}
	return mqtt.Decode(pkt, c.v)
}

// connect sends CONNECT at level v and returns the CONNACK.
func (c *hxConn) connect(v mqtt.Version, id string, keepAlive uint16) (*mqtt.Connack, error) {
	c.v = v
	if err := c.send(&mqtt.Connect{ProtocolLevel: v, CleanStart: true, KeepAlive: keepAlive, ClientID: id}); err != nil {
		return nil, err
	}
	p, err := c.recv()
	if err != nil {
		return nil, fmt.Errorf("waiting for CONNACK: %w", err)
	}
	ack, ok := p.(*mqtt.Connack)
	if !ok {
		return nil, fmt.Errorf("got %v, want CONNACK", p.Type())
	}
	return ack, nil
}

// mustConnect connects and requires the CONNACK to accept.
func (c *hxConn) mustConnect(t testing.TB, v mqtt.Version, id string, keepAlive uint16) {
	t.Helper()
	ack, err := c.connect(v, id, keepAlive)
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	if ack.ReasonCode != 0 {
		t.Fatalf("%s: CONNACK %v, want success", id, ack.ReasonCode)
	}
}

// waitClosed reads until the broker closes the connection, and returns the
// packets it sent before. It fails if the connection is still open after
// timeout. A reset counts as closed.
func (c *hxConn) waitClosed(timeout time.Duration) ([]mqtt.Packet, error) {
	var got []mqtt.Packet
	c.SetReadDeadline(time.Now().Add(timeout))
	for {
		pkt, err := c.rd.ReadPacket()
		if err == nil {
			p, err := mqtt.Decode(pkt, c.v)
			if err != nil {
				return got, fmt.Errorf("broker sent an undecodable packet %x: %v", pkt, err)
			}
			got = append(got, p)
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return got, fmt.Errorf("connection still open after %v (received %d packets)", timeout, len(got))
		}
		var re *mqtt.ReasonError
		if errors.As(err, &re) {
			return got, fmt.Errorf("broker sent bad framing: %v", err)
		}
		return got, nil // io.EOF, io.ErrUnexpectedEOF, connection reset
	}
}

// mustClose requires the broker to close c within hxWait, after sending
// nothing (v3) or at most a DISCONNECT with an error code (v5), and
// returns that code (0 if none was sent).
func (c *hxConn) mustClose(t testing.TB, what string) mqtt.ReasonCode {
	t.Helper()
	got, err := c.waitClosed(hxWait)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	switch {
	case len(got) == 0:
		return 0
	case len(got) == 1 && c.v == mqtt.V5:
		if d, ok := got[0].(*mqtt.Disconnect); ok && d.ReasonCode.IsError() {
			return d.ReasonCode
		}
	}
	t.Fatalf("%s: broker sent %v before closing, want nothing or (v5) one DISCONNECT with an error code", what, hxTypes(got))
	return 0
}

// hxOnly returns the single packet of ps if it is a T.
func hxOnly[T mqtt.Packet](ps []mqtt.Packet) (T, bool) {
	var zero T
	if len(ps) != 1 {
		return zero, false
	}
	p, ok := ps[0].(T)
	return p, ok
}

func hxTypes(ps []mqtt.Packet) []string {
	var s []string
	for _, p := range ps {
		s = append(s, fmt.Sprintf("%v%+v", p.Type(), p))
	}
	return s
}

// hxHealthy is a well-behaved client that keeps publishing QoS 1 messages
// to itself in the background and counts completed round trips.
type hxHealthy struct {
	rounds atomic.Int64
	stop   chan struct{}
	done   chan struct{}
	err    error // set before done is closed
}

func hxStartHealthy(t *testing.T, addr string) *hxHealthy {
	t.Helper()
	c := hxMustDial(t, addr)
	c.mustConnect(t, mqtt.V311, "healthy", 60)
	const topic = "healthy/echo"
	if err := c.send(&mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: topic, QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	if p, err := c.recv(); err != nil || p.Type() != mqtt.SUBACK {
		t.Fatalf("healthy client: SUBACK: %v %v", p, err)
	}
	h := &hxHealthy{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		h.err = h.loop(c, topic)
	}()
	t.Cleanup(func() {
		close(h.stop)
		<-h.done
		if h.err != nil {
			t.Errorf("healthy client: %v", h.err)
		}
	})
	return h
}

func (h *hxHealthy) loop(c *hxConn, topic string) error {
	// A short pause between rounds keeps the client from taking a whole
	// CPU away from the hostile connections; it is pacing, not a wait.
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var pid uint16
	for n := 1; ; n++ {
		select {
		case <-h.stop:
			return nil
		case <-tick.C:
		}
		pid = pid%65535 + 1
		payload := strconv.Itoa(n)
		if err := c.send(&mqtt.Publish{QoS: 1, PacketID: pid, Topic: []byte(topic), Payload: []byte(payload)}); err != nil {
			return fmt.Errorf("round %d: %w", n, err)
		}
		acked, echoed := false, false
		for !acked || !echoed {
			p, err := c.recv()
			if err != nil {
				return fmt.Errorf("round %d: %w", n, err)
			}
			switch p := p.(type) {
			case *mqtt.Puback:
				acked = acked || p.PacketID == pid
			case *mqtt.Publish:
				if string(p.Payload) != payload {
					return fmt.Errorf("round %d: received payload %q", n, p.Payload)
				}
				echoed = true
				if err := c.send(&mqtt.Puback{PacketID: p.PacketID}); err != nil {
					return err
				}
			default:
				return fmt.Errorf("round %d: unexpected %v", n, p.Type())
			}
		}
		h.rounds.Add(1)
	}
}

// alive checks that the healthy client completes more round trips from
// now on.
func (h *hxHealthy) alive(t *testing.T) {
	t.Helper()
	from := h.rounds.Load()
	brokertest.Eventually(t, hxWait, func() error {
		select {
		case <-h.done:
			return fmt.Errorf("healthy client stopped: %v", h.err)
		default:
		}
		if n := h.rounds.Load(); n < from+5 {
			return fmt.Errorf("healthy client made %d round trips, want 5", n-from)
		}
		return nil
	})
}

func hxWaitConnections(t *testing.T, b *brokertest.Broker, n int) {
	t.Helper()
	brokertest.Eventually(t, hxWait, func() error {
		if got := b.Server.Stats().Connections; got != n {
			return fmt.Errorf("Stats().Connections = %d, want %d", got, n)
		}
		return nil
	})
}

// hxHeap returns the live heap after a full collection.
func hxHeap() runtime.MemStats {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

const miB = 1 << 20

// hxParallel runs f(0..n-1) with at most width at a time and returns the
// errors.
func hxParallel(n, width int, f func(i int) error) []error {
	sem := make(chan struct{}, width)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	var out []error
	for i, err := range errs {
		if err != nil {
			out = append(out, fmt.Errorf("#%d: %w", i, err))
		}
	}
	return out
}

func hxReportErrors(t *testing.T, errs []error) {
	t.Helper()
	for i, err := range errs {
		if i == 10 {
			t.Errorf("... and %d more", len(errs)-10)
			break
		}
		t.Error(err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
}

func hxEncode(t testing.TB, p mqtt.Packet, v mqtt.Version) []byte {
	t.Helper()
	b, err := p.AppendTo(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHostileInputKeepsServingOthers sends one kind of bad input per
// subtest to a broker with a 300ms connect timeout, while a healthy client
// keeps doing QoS 1 round trips: every bad connection is closed, nothing
// of it is left behind, the healthy client keeps going, and each closed
// connection is counted in Stats().BadPackets exactly when it sent a
// malformed or forbidden packet.
func TestHostileInputKeepsServingOthers(t *testing.T) {
	b := hxStart(t, nil)
	healthy := hxStartHealthy(t, b.Addr)
	healthy.alive(t)
	base := b.Server.Stats()
	if base.Connections != 1 {
		t.Fatalf("Stats().Connections = %d with only the healthy client", base.Connections)
	}
	// Every subtest must leave only the healthy client connected and its
	// session, and the healthy client still working.
	settled := func(t *testing.T) {
		t.Helper()
		hxWaitConnections(t, b, 1)
		brokertest.Eventually(t, hxWait, func() error {
			if n := b.Server.Stats().Sessions; n != base.Sessions {
				return fmt.Errorf("Stats().Sessions = %d, want %d", n, base.Sessions)
			}
			return nil
		})
		healthy.alive(t)
	}
	// badPackets counts from here the connections closed for malformed
	// or forbidden packets (Stats().BadPackets).
	badPackets := func() func() int64 {
		from := b.Server.Stats().BadPackets
		return func() int64 { return b.Server.Stats().BadPackets - from }
	}
	wantBad := func(t *testing.T, count func() int64, want int64) {
		t.Helper()
		if n := count(); n != want {
			t.Errorf("Stats().BadPackets grew by %d, want %d", n, want)
		}
	}

	t.Run("random bytes", func(t *testing.T) {
		// 200 connections of 1 KiB of seeded random bytes each; the
		// broker must close every one (bad packet, packet too large,
		// or no CONNECT within the connect timeout).
		rng := rand.New(rand.NewPCG(1883, 8883))
		junk := make([][]byte, 200)
		for i := range junk {
			junk[i] = make([]byte, 1024)
			for j := range junk[i] {
				junk[i][j] = byte(rng.Uint32())
			}
		}
		errs := hxParallel(len(junk), 25, func(i int) error {
			c, err := hxDial(b.Addr)
			if err != nil {
				return err
			}
			defer c.Close()
			c.write(junk[i]) // the broker may already have closed
			if _, err := c.waitClosed(hxWait); err != nil {
				return fmt.Errorf("junk starting %x: %w", junk[i][:8], err)
			}
			return nil
		})
		hxReportErrors(t, errs)
		settled(t)
	})

	t.Run("truncated packets", func(t *testing.T) {
		connect311 := hxEncode(t, &mqtt.Connect{ProtocolLevel: mqtt.V311, CleanStart: true, KeepAlive: 30, ClientID: "trunc",
			Will: &mqtt.Will{QoS: 1, Topic: "trunc/will", Payload: []byte("w")}, HasUsername: true, Username: "u",
			HasPassword: true, Password: []byte("p")}, mqtt.V311)
		connect5 := hxEncode(t, &mqtt.Connect{ProtocolLevel: mqtt.V5, CleanStart: true, KeepAlive: 30, ClientID: "trunc5",
			Props: mqtt.Properties{SessionExpiry: 60, User: []mqtt.UserProperty{{Key: "k", Value: "v"}}}}, mqtt.V5)
		publish := hxEncode(t, &mqtt.Publish{QoS: 1, PacketID: 9, Topic: []byte("trunc/t"), Payload: bytes.Repeat([]byte("x"), 300)}, mqtt.V311)
		subscribe := hxEncode(t, &mqtt.Subscribe{PacketID: 3, Subscriptions: []mqtt.Subscription{{Filter: "trunc/#", QoS: 2}}}, mqtt.V311)
		cuts := func(n int) []int { return []int{1, 2, n / 2, n - 1} }
		bad := badPackets()

		type trunc struct {
			name      string
			connected bool // send a whole CONNECT first
			pkt       []byte
		}
		var cases []trunc
		for _, cut := range cuts(len(connect311)) {
			cases = append(cases, trunc{fmt.Sprintf("CONNECT 3.1.1 %d/%d", cut, len(connect311)), false, connect311[:cut]})
		}
		for _, cut := range cuts(len(connect5)) {
			cases = append(cases, trunc{fmt.Sprintf("CONNECT 5.0 %d/%d", cut, len(connect5)), false, connect5[:cut]})
		}
		for _, cut := range cuts(len(publish)) {
			cases = append(cases, trunc{fmt.Sprintf("PUBLISH %d/%d", cut, len(publish)), true, publish[:cut]})
		}
		for _, cut := range cuts(len(subscribe)) {
			cases = append(cases, trunc{fmt.Sprintf("SUBSCRIBE %d/%d", cut, len(subscribe)), true, subscribe[:cut]})
		}
		for i, tc := range cases {
			c := hxMustDial(t, b.Addr)
			if tc.connected {
				c.mustConnect(t, mqtt.V311, fmt.Sprintf("trunc-%d", i), 0)
			}
			if err := c.write(tc.pkt); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			c.Close() // mid-packet
		}
		// Truncated CONNECTs left open are closed by the connect timeout.
		for _, cut := range cuts(len(connect311)) {
			c := hxMustDial(t, b.Addr)
			if err := c.write(connect311[:cut]); err != nil {
				t.Fatal(err)
			}
			c.mustClose(t, fmt.Sprintf("CONNECT %d/%d left open", cut, len(connect311)))
		}
		settled(t)
		// A connection that ends mid-packet, or times out, sent no bad
		// packet.
		wantBad(t, bad, 0)
	})

	t.Run("huge remaining length", func(t *testing.T) {
		// 0xFF 0xFF 0xFF 0x7F is the largest remaining length MQTT can
		// express, 268,435,455 bytes; the limit here is the default 1 MiB.
		huge := []byte{0xFF, 0xFF, 0xFF, 0x7F}
		bad := badPackets()
		before := hxHeap()

		c := hxMustDial(t, b.Addr)
		if err := c.write(append([]byte{0x10}, huge...)); err != nil {
			t.Fatal(err)
		}
		c.mustClose(t, "CONNECT of 268,435,455 bytes")

		// After CONNECT with keep-alive 0 there is no read deadline, so
		// only the size check can close these.
		pub := append(append([]byte{0x30}, huge...), 0x00, 0x03, 'a', '/', 'b', 'x', 'y', 'z')
		c = hxMustDial(t, b.Addr)
		c.mustConnect(t, mqtt.V311, "huge311", 0)
		if err := c.write(pub); err != nil {
			t.Fatal(err)
		}
		c.mustClose(t, "3.1.1 PUBLISH of 268,435,455 bytes")

		c = hxMustDial(t, b.Addr)
		c.mustConnect(t, mqtt.V5, "huge5", 0)
		if err := c.write(pub); err != nil {
			t.Fatal(err)
		}
		if code := c.mustClose(t, "5.0 PUBLISH of 268,435,455 bytes"); code != mqtt.PacketTooLarge {
			t.Errorf("5.0 client got DISCONNECT %v, want %v", code, mqtt.PacketTooLarge)
		}

		after := hxHeap()
		t.Logf("allocated during the subtest: %.2f MiB (TotalAlloc delta); live heap %.2f -> %.2f MiB",
			float64(after.TotalAlloc-before.TotalAlloc)/miB, float64(before.HeapAlloc)/miB, float64(after.HeapAlloc)/miB)
		if d := after.TotalAlloc - before.TotalAlloc; d > 64*miB {
			t.Errorf("%d bytes allocated in total while rejecting three oversized packets", d)
		}
		wantBad(t, bad, 3)
		settled(t)
	})

	t.Run("CONNECT then garbage", func(t *testing.T) {
		garbage := []struct {
			name string
			pkt  []byte
		}{
			{"reserved packet type 0", []byte{0x00, 0x00}},
			{"PUBLISH QoS 3", []byte{0x36, 0x07, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x01}},
			{"PUBLISH topic with wildcard", []byte{0x30, 0x05, 0x00, 0x03, 'a', '/', '#'}},
			{"PUBLISH topic not UTF-8", []byte{0x30, 0x05, 0x00, 0x03, 'a', 0xFF, 'b'}},
			{"SUBSCRIBE with reserved flags 0", []byte{0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00}},
			{"SUBSCRIBE without filters", []byte{0x82, 0x02, 0x00, 0x01}},
			{"CONNACK from a client", []byte{0x20, 0x02, 0x00, 0x00}},
			{"PINGREQ with a body", []byte{0xC0, 0x01, 0x00}},
			{"remaining length of five bytes", []byte{0xC0, 0x80, 0x80, 0x80, 0x80, 0x01}},
		}
		bad := badPackets()
		for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
			for i, g := range garbage {
				c := hxMustDial(t, b.Addr)
				c.mustConnect(t, v, fmt.Sprintf("garbage-%d", i), 0)
				if err := c.write(g.pkt); err != nil {
					t.Fatal(err)
				}
				code := c.mustClose(t, fmt.Sprintf("%v: %s", v, g.name))
				if v == mqtt.V5 && code == 0 {
					t.Errorf("%v: %s: closed without DISCONNECT, want one with a reason code", v, g.name)
				}
			}
		}
		wantBad(t, bad, 2*int64(len(garbage)))
		// 1 KiB of random bytes after CONNECT; keep-alive 1 so that bytes
		// that happen to announce a long packet end at the deadline.
		rng := rand.New(rand.NewPCG(5, 8))
		junk := make([][]byte, 20)
		for i := range junk {
			junk[i] = make([]byte, 1024)
			for j := range junk[i] {
				junk[i][j] = byte(rng.Uint32())
			}
		}
		hxReportErrors(t, hxParallel(len(junk), len(junk), func(i int) error {
			c, err := hxDial(b.Addr)
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := c.connect(mqtt.V5, fmt.Sprintf("junk-%d", i), 1); err != nil {
				return err
			}
			c.write(junk[i])
			if _, err := c.waitClosed(hxWait); err != nil {
				return fmt.Errorf("junk after CONNECT starting %x: %w", junk[i][:8], err)
			}
			return nil
		}))
		settled(t)
	})

	t.Run("first packet not CONNECT", func(t *testing.T) {
		bad := badPackets()
		for _, p := range []mqtt.Packet{
			&mqtt.Pingreq{},
			&mqtt.Publish{Topic: []byte("a/b"), Payload: []byte("x")},
			&mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "#"}}},
			&mqtt.Disconnect{},
			&mqtt.Connack{},
		} {
			c := hxMustDial(t, b.Addr)
			if err := c.send(p); err != nil {
				t.Fatal(err)
			}
			// [MQTT-3.1.0-1]: closed, and nothing is sent back.
			c.mustClose(t, fmt.Sprintf("first packet %v", p.Type()))
		}
		wantBad(t, bad, 5)
		settled(t)
	})

	t.Run("second CONNECT", func(t *testing.T) {
		bad := badPackets()
		for _, v := range []mqtt.Version{mqtt.V31, mqtt.V311, mqtt.V5} {
			c := hxMustDial(t, b.Addr)
			c.mustConnect(t, v, "twice", 0)
			if err := c.send(&mqtt.Connect{ProtocolLevel: v, CleanStart: true, ClientID: "twice"}); err != nil {
				t.Fatal(err)
			}
			// [MQTT-3.1.0-2]: a protocol violation; closed.
			code := c.mustClose(t, fmt.Sprintf("%v second CONNECT", v))
			if v == mqtt.V5 && code != mqtt.ProtocolError {
				t.Errorf("5.0 second CONNECT: DISCONNECT %v, want %v", code, mqtt.ProtocolError)
			}
		}
		wantBad(t, bad, 3)
		settled(t)
	})

	t.Run("silent clients", func(t *testing.T) {
		// Connections that never send anything are closed after the
		// connect timeout (300ms here), 50 of them at once.
		bad := badPackets()
		errs := hxParallel(50, 50, func(int) error {
			start := time.Now()
			c, err := hxDial(b.Addr)
			if err != nil {
				return err
			}
			defer c.Close()
			got, err := c.waitClosed(hxWait)
			if err != nil {
				return err
			}
			if len(got) > 0 {
				return fmt.Errorf("broker sent %v", hxTypes(got))
			}
			// The deadline is set after the broker accepts, so the
			// close cannot come before the timeout has passed.
			if d := time.Since(start); d < hxConnectTimeout {
				return fmt.Errorf("closed after %v, before the connect timeout of %v", d, hxConnectTimeout)
			}
			return nil
		})
		hxReportErrors(t, errs)
		wantBad(t, bad, 0)
		settled(t)
	})

	if st := b.Server.Stats(); st.Panics != 0 {
		t.Errorf("Stats().Panics = %d", st.Panics)
	}
	t.Logf("stats: %+v", b.Server.Stats())
}

// TestHostileThousandConnections opens 1000 connections at once, drops
// them all at once, twice, while a healthy client keeps working: the
// broker must forget them (connections, sessions, subscriptions) and give
// their memory back.
//
// Memory is the live heap (HeapAlloc) after a full GC. The runtime keeps
// some of what a burst needed (goroutine descriptors it reuses, grown
// maps: about 0.7 MiB without -race), so the margins are generous: at
// most 8 MiB more than before the first round, and at most 2 MiB more
// after the second round than after the first — a per-connection leak
// would show as growth with every round.
//
// This broker keeps the default connect timeout: with 1000 clients and
// the race detector on two CPUs, a client goroutine can take longer than
// 300ms between its dial and its CONNECT.
func TestHostileThousandConnections(t *testing.T) {
	b := hxStart(t, func(o *broker.Options) { o.ConnectTimeout = hxWait })
	healthy := hxStartHealthy(t, b.Addr)
	healthy.alive(t)
	base := b.Server.Stats()
	const n = 1000
	before := hxHeap()
	var afterRound [2]runtime.MemStats
	for round := range 2 {
		conns := make([]*hxConn, n)
		// All of them connect (half 3.1.1, half 5.0) and subscribe, so
		// that each has a session and a subscription to clean up;
		// connections dropped before CONNECT are in
		// TestHostileInputKeepsServingOthers.
		errs := hxParallel(n, n, func(i int) error {
			c, err := hxDial(b.Addr)
			if err != nil {
				return err
			}
			conns[i] = c
			v := []mqtt.Version{mqtt.V311, mqtt.V5}[i%2]
			ack, err := c.connect(v, fmt.Sprintf("mass-%d-%d", round, i), 0)
			if err != nil {
				return err
			}
			if ack.ReasonCode != 0 {
				return fmt.Errorf("CONNACK %v", ack.ReasonCode)
			}
			if err := c.send(&mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: fmt.Sprintf("mass/%d/#", i), QoS: 1}}}); err != nil {
				return err
			}
			if p, err := c.recv(); err != nil || p.Type() != mqtt.SUBACK {
				return fmt.Errorf("SUBACK: %v %v", p, err)
			}
			return nil
		})
		closeAll := func() {
			for _, c := range conns {
				if c != nil {
					c.Close()
				}
			}
		}
		if len(errs) > 0 {
			closeAll()
			hxReportErrors(t, errs)
		}
		hxWaitConnections(t, b, n+1)
		if s := b.Server.Stats().Sessions; s != base.Sessions+n {
			t.Errorf("Stats().Sessions = %d with %d more clients connected, want %d", s, n, base.Sessions+n)
		}
		peak := hxHeap()

		closeAll()
		hxWaitConnections(t, b, 1)
		brokertest.Eventually(t, hxWait, func() error {
			if s := b.Server.Stats().Sessions; s != base.Sessions {
				return fmt.Errorf("Stats().Sessions = %d, want %d", s, base.Sessions)
			}
			return nil
		})
		healthy.alive(t)
		afterRound[round] = hxHeap()
		t.Logf("round %d: live heap before %.2f MiB, with %d connections %.2f MiB (%.1f KiB each), after they left %.2f MiB",
			round+1, float64(before.HeapAlloc)/miB, n, float64(peak.HeapAlloc)/miB,
			(float64(peak.HeapAlloc)-float64(before.HeapAlloc))/n/1024, float64(afterRound[round].HeapAlloc)/miB)
	}
	if a := afterRound[0].HeapAlloc; a > before.HeapAlloc+8*miB {
		t.Errorf("live heap %d bytes after the connections left, %d before: more than 8 MiB kept", a, before.HeapAlloc)
	}
	if a, b := afterRound[1].HeapAlloc, afterRound[0].HeapAlloc; a > b+2*miB {
		t.Errorf("live heap grew from %d to %d bytes between two identical rounds", b, a)
	}
	if st := b.Server.Stats(); st.Panics != 0 || st.BadPackets != 0 {
		t.Errorf("Stats(): %d panics, %d bad packets", st.Panics, st.BadPackets)
	}
}

// TestHostileHugeDeclaredLength allows the largest packets MQTT can express
// and then declares them without sending them: the broker's read buffer
// must grow with the bytes that arrive, not with the length declared.
func TestHostileHugeDeclaredLength(t *testing.T) {
	b := hxStart(t, func(o *broker.Options) { o.MaxPacketSize = mqtt.DefaultMaxPacketSize })
	huge := []byte{0xFF, 0xFF, 0xFF, 0x7F} // 268,435,455
	body := bytes.Repeat([]byte{'z'}, 4096)
	before := hxHeap()
	const n = 10
	errs := hxParallel(2*n, 2*n, func(i int) error {
		c, err := hxDial(b.Addr)
		if err != nil {
			return err
		}
		defer c.Close()
		var pkt []byte
		if i < n {
			// CONNECT: closed by the connect timeout.
			pkt = append(append([]byte{0x10}, huge...), body...)
		} else {
			// PUBLISH after CONNECT with keep-alive 1: closed 1.5s later.
			if _, err := c.connect(mqtt.V5, fmt.Sprintf("huge-%d", i), 1); err != nil {
				return err
			}
			pkt = append(append([]byte{0x30}, huge...), append([]byte{0x00, 0x01, 'h'}, body...)...)
		}
		if err := c.write(pkt); err != nil {
			return err
		}
		got, err := c.waitClosed(hxWait)
		if err != nil {
			return err
		}
		if i >= n {
			if d, ok := hxOnly[*mqtt.Disconnect](got); !ok || d.ReasonCode != mqtt.KeepAliveTimeout {
				return fmt.Errorf("got %v, want DISCONNECT keep alive timeout", hxTypes(got))
			}
		}
		return nil
	})
	hxReportErrors(t, errs)
	hxWaitConnections(t, b, 0)
	after := hxHeap()
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d connections declaring 268,435,455-byte packets: %.2f MiB allocated in total, live heap %.2f -> %.2f MiB",
		2*n, float64(allocated)/miB, float64(before.HeapAlloc)/miB, float64(after.HeapAlloc)/miB)
	// One buffer of the declared size would be 256 MiB.
	if allocated > 64*miB {
		t.Errorf("%d bytes allocated for %d connections that sent 4 KiB each", allocated, 2*n)
	}
}

func TestHostileMaxConnections(t *testing.T) {
	b := hxStart(t, func(o *broker.Options) { o.MaxConnections = 5 })
	var clients []*hxConn
	for i := range 5 {
		c := hxMustDial(t, b.Addr)
		c.mustConnect(t, mqtt.V311, fmt.Sprintf("max-%d", i), 0)
		clients = append(clients, c)
	}

	// The 6th is refused: 3.1.1 "server unavailable" (0x03), 5.0 "server
	// busy" (0x89), and closed.
	for _, tc := range []struct {
		v    mqtt.Version
		want mqtt.ReasonCode
	}{{mqtt.V311, mqtt.ReasonCode(mqtt.ConnRefusedServerUnavailable)}, {mqtt.V5, mqtt.ServerBusy}} {
		c := hxMustDial(t, b.Addr)
		ack, err := c.connect(tc.v, "one-too-many", 0)
		if err != nil {
			t.Fatalf("%v: %v", tc.v, err)
		}
		if ack.ReasonCode != tc.want {
			t.Errorf("%v: CONNACK 0x%02x, want 0x%02x", tc.v, byte(ack.ReasonCode), byte(tc.want))
		}
		c.mustClose(t, fmt.Sprintf("%v refused client", tc.v))
		hxWaitConnections(t, b, 5)
	}
	if n := b.Server.Stats().Refused; n != 2 {
		t.Errorf("Stats().Refused = %d, want 2", n)
	}

	// One leaves; a new client is accepted.
	if err := clients[0].send(&mqtt.Disconnect{}); err != nil {
		t.Fatal(err)
	}
	clients[0].mustClose(t, "disconnected client")
	hxWaitConnections(t, b, 4)
	c := hxMustDial(t, b.Addr)
	c.mustConnect(t, mqtt.V5, "max-new", 0)
	hxWaitConnections(t, b, 5)

	// The others were never disturbed.
	for i, c := range clients[1:] {
		if err := c.send(&mqtt.Pingreq{}); err != nil {
			t.Fatal(err)
		}
		if p, err := c.recv(); err != nil || p.Type() != mqtt.PINGRESP {
			t.Fatalf("client %d: %v %v, want PINGRESP", i+1, p, err)
		}
	}
}

// TestHostilePanicClosesOnlyThatConnection injects a panic into one
// connection's packet handling through a test hook: the broker recovers,
// counts it, closes that connection (publishing its will, as for any
// connection that ends without DISCONNECT) and keeps serving the others.
func TestHostilePanicClosesOnlyThatConnection(t *testing.T) {
	srv, err := broker.New(&broker.Options{
		ConnectTimeout: hxConnectTimeout,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	trigger := []byte("panic/now")
	broker.SetTestHookPacket(srv, func(pkt []byte) {
		if mqtt.PeekType(pkt) == mqtt.PUBLISH && bytes.Contains(pkt, trigger) {
			panic("injected by TestHostilePanicClosesOnlyThatConnection")
		}
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hxWait)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, broker.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	b := &brokertest.Broker{Server: srv, Addr: l.Addr().String()}
	healthy := hxStartHealthy(t, b.Addr)
	healthy.alive(t)

	watcher := hxMustDial(t, b.Addr)
	watcher.mustConnect(t, mqtt.V311, "watcher", 0)
	if err := watcher.send(&mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "victim/will", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	if p, err := watcher.recv(); err != nil || p.Type() != mqtt.SUBACK {
		t.Fatalf("watcher SUBACK: %v %v", p, err)
	}

	victim := hxMustDial(t, b.Addr)
	victim.v = mqtt.V311
	if err := victim.send(&mqtt.Connect{ProtocolLevel: mqtt.V311, CleanStart: true, ClientID: "victim",
		Will: &mqtt.Will{QoS: 1, Topic: "victim/will", Payload: []byte("victim died")}}); err != nil {
		t.Fatal(err)
	}
	if p, err := victim.recv(); err != nil || p.Type() != mqtt.CONNACK || p.(*mqtt.Connack).ReasonCode != 0 {
		t.Fatalf("victim CONNACK: %v %v", p, err)
	}
	hxWaitConnections(t, b, 3)

	if err := victim.send(&mqtt.Publish{Topic: trigger, Payload: []byte("boom")}); err != nil {
		t.Fatal(err)
	}
	victim.mustClose(t, "connection whose handler panicked")

	p, err := watcher.recv()
	if err != nil {
		t.Fatalf("watcher: %v", err)
	}
	if pub, ok := p.(*mqtt.Publish); !ok || string(pub.Topic) != "victim/will" || string(pub.Payload) != "victim died" {
		t.Fatalf("watcher got %+v, want the victim's will", p)
	}
	watcher.send(&mqtt.Puback{PacketID: p.(*mqtt.Publish).PacketID})

	hxWaitConnections(t, b, 2)
	healthy.alive(t)
	st := srv.Stats()
	if st.Panics != 1 {
		t.Errorf("Stats().Panics = %d, want 1", st.Panics)
	}
	if st.Sessions != 2 {
		t.Errorf("Stats().Sessions = %d, want 2 (healthy, watcher)", st.Sessions)
	}
	// The same client id can connect again.
	again := hxMustDial(t, b.Addr)
	again.mustConnect(t, mqtt.V311, "victim", 0)
}
