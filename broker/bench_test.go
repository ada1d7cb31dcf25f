package broker_test

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
	badgerstore "github.com/weirmq/weir/store/badger"
)

// Fan-in benchmark shape.
const (
	benchPublishers = 100
	benchWindow     = 10 // unacknowledged QoS 1 publishes per publisher
	benchPayload    = 64
	benchTimeout    = 5 * time.Minute
)

// BenchmarkFanInQoS1: 100 publisher connections send b.N QoS 1 messages of
// 64 bytes in all, each on its own topic bench/<i>, pipelined with up to 10
// unacknowledged, to one subscriber on bench/# at QoS 1. It reports
// messages per second from the first PUBLISH until every PUBACK is in (and,
// with an online subscriber, every message was received). Variants:
//
//   - subscriber: "clean" — online, clean session: nothing is stored, so
//     the store is not involved; "persistent" — online, session expiry
//     1h: each message is stored before its PUBACK and its queue entry
//     deleted when the subscriber acknowledges it; "offline" — a
//     persistent session that is not connected: every message is stored
//     and stays.
//   - store: "none" (memory store), "process" and "sync" (Badger with that
//     durability, in b.TempDir()).
//
// Run: go test -run '^$' -bench BenchmarkFanInQoS1 -benchtime 20000x -count 3 ./broker/
func BenchmarkFanInQoS1(b *testing.B) {
	for _, sub := range []string{"clean", "persistent", "offline"} {
		b.Run(sub, func(b *testing.B) {
			for _, mode := range []string{"none", "process", "sync"} {
				b.Run(mode, func(b *testing.B) { benchFanIn(b, sub, mode) })
			}
		})
	}
}

func benchFanIn(b *testing.B, sub, mode string) {
	opts := &broker.Options{MaxQueuedMessages: 1 << 30, MaxQueuedBytes: math.MaxInt}
	if mode != "none" {
		d := badgerstore.Process
		if mode == "sync" {
			d = badgerstore.Sync
		}
		st, err := badgerstore.Open(badgerstore.Options{Dir: b.TempDir(), Durability: d, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() }) // after the broker's Shutdown
		opts.Store = st
	}
	brk := brokertest.Start(b, opts)

	per := max(1, b.N/benchPublishers)
	n := per * benchPublishers
	var expiry uint32
	if sub != "clean" {
		expiry = 3600
	}
	sc := benchDial(b, brk.Addr, &mqtt.Connect{ProtocolLevel: mqtt.V5, CleanStart: true, ClientID: "bench-sub",
		Props: mqtt.Properties{SessionExpiry: expiry}})
	if err := sc.send(&mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "bench/#", QoS: 1}}}); err != nil {
		b.Fatal(err)
	}
	if pkt, err := sc.rd.ReadPacket(); err != nil || mqtt.PeekType(pkt) != mqtt.SUBACK {
		b.Fatalf("waiting for SUBACK: %v", err)
	}
	var received atomic.Int64
	subDone := make(chan error, 1)
	if sub == "offline" {
		if err := sc.send(&mqtt.Disconnect{}); err != nil {
			b.Fatal(err)
		}
		// The server closes the connection once the session is offline.
		if _, err := sc.rd.ReadPacket(); err == nil {
			b.Fatal("packet after DISCONNECT")
		}
		sc.conn.Close()
		subDone <- nil
	} else {
		sc.conn.SetReadDeadline(time.Time{})
		go func() { subDone <- sc.consume(n, &received) }()
	}

	pubs := make([]*benchConn, benchPublishers)
	for i := range pubs {
		pubs[i] = benchDial(b, brk.Addr, &mqtt.Connect{ProtocolLevel: mqtt.V5, CleanStart: true,
			ClientID: fmt.Sprintf("bench-pub-%d", i)})
	}
	payload := make([]byte, benchPayload)
	var acked atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, benchPublishers)

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i, pc := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := pc.publishPipelined(fmt.Sprintf("bench/%d", i), payload, per, &acked); err != nil {
				errs <- fmt.Errorf("publisher %d: %w", i, err)
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	deadline := time.After(benchTimeout)
	select {
	case <-finished:
	case <-deadline:
		b.Fatalf("publishers not done after %v: %d of %d acknowledged, %d received", benchTimeout, acked.Load(), n, received.Load())
	}
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	select {
	case err := <-subDone:
		if err != nil {
			b.Fatalf("subscriber: %v", err)
		}
	case <-deadline:
		b.Fatalf("subscriber received %d of %d within %v", received.Load(), n, benchTimeout)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(n)/elapsed.Seconds(), "msgs/s")
	if sub == "offline" {
		if s, ok := opts.Store.(*badgerstore.Store); ok {
			b.ReportMetric(float64(s.Stats().Groups)/float64(n), "groups/msg")
		}
	}
	for _, pc := range pubs {
		pc.conn.Close()
	}
	sc.conn.Close()
}

// benchConn is a minimal MQTT 5.0 client for benchmarks: it decodes only
// what it needs and reuses its buffers, so that the client costs little of
// the CPU time measured. Its methods report errors instead of failing the
// benchmark, so they may run on any goroutine.
type benchConn struct {
	conn net.Conn
	rd   *mqtt.Reader
	wbuf []byte
}

// benchDial connects and waits for a successful CONNACK.
func benchDial(b *testing.B, addr string, cp *mqtt.Connect) *benchConn {
	b.Helper()
	conn, err := net.DialTimeout("tcp", addr, brokertest.WaitTimeout)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	c := &benchConn{conn: conn, rd: mqtt.NewReader(conn, 0)}
	conn.SetDeadline(time.Now().Add(brokertest.WaitTimeout))
	if err := c.send(cp); err != nil {
		b.Fatal(err)
	}
	pkt, err := c.rd.ReadPacket()
	if err != nil {
		b.Fatalf("%s: waiting for CONNACK: %v", cp.ClientID, err)
	}
	var ca mqtt.Connack
	if err := ca.Decode(pkt, mqtt.V5); err != nil || ca.ReasonCode != mqtt.Success {
		b.Fatalf("%s: CONNACK %v, %v", cp.ClientID, ca.ReasonCode, err)
	}
	conn.SetDeadline(time.Time{})
	return c
}

func (c *benchConn) send(p mqtt.Packet) error {
	var err error
	if c.wbuf, err = p.AppendTo(c.wbuf[:0], mqtt.V5); err != nil {
		return err
	}
	_, err = c.conn.Write(c.wbuf)
	return err
}

// publishPipelined publishes count QoS 1 messages on topic with at most
// benchWindow unacknowledged, and returns once all are acknowledged with
// success.
func (c *benchConn) publishPipelined(topic string, payload []byte, count int, acked *atomic.Int64) error {
	window := make(chan struct{}, benchWindow)
	readErr := make(chan error, 1)
	stop := make(chan struct{})
	go func() {
		defer close(stop)
		var ack mqtt.Puback
		for range count {
			pkt, err := c.rd.ReadPacket()
			if err == nil && mqtt.PeekType(pkt) != mqtt.PUBACK {
				err = fmt.Errorf("got %v, want PUBACK", mqtt.PeekType(pkt))
			}
			if err == nil {
				err = ack.Decode(pkt, mqtt.V5)
			}
			if err == nil && ack.ReasonCode != mqtt.Success {
				err = fmt.Errorf("PUBACK %v", ack.ReasonCode)
			}
			if err != nil {
				readErr <- err
				c.conn.Close()
				return
			}
			acked.Add(1)
			<-window
		}
	}()
	p := mqtt.Publish{QoS: 1, Topic: []byte(topic), Payload: payload}
	for i := range count {
		select {
		case window <- struct{}{}:
		case <-stop:
			return <-readErr
		}
		p.PacketID = uint16(i%benchWindow + 1) // at most benchWindow in flight
		if err := c.send(&p); err != nil {
			<-stop
			return errors.Join(err, <-readErr)
		}
	}
	<-stop
	select {
	case err := <-readErr:
		return err
	default:
		return nil
	}
}

// consume reads count PUBLISH packets and acknowledges them, writing the
// PUBACKs of everything read so far whenever no more input is buffered.
func (c *benchConn) consume(count int, received *atomic.Int64) error {
	var p mqtt.Publish
	var acks []byte
	for received.Load() < int64(count) {
		pkt, err := c.rd.ReadPacket()
		if err != nil {
			return err
		}
		if mqtt.PeekType(pkt) != mqtt.PUBLISH {
			return fmt.Errorf("got %v, want PUBLISH", mqtt.PeekType(pkt))
		}
		if err := p.Decode(pkt, mqtt.V5); err != nil {
			return err
		}
		received.Add(1)
		if p.QoS > 0 {
			if acks, err = (&mqtt.Puback{PacketID: p.PacketID}).AppendTo(acks, mqtt.V5); err != nil {
				return err
			}
		}
		if c.rd.Buffered() == 0 && len(acks) > 0 {
			if _, err := c.conn.Write(acks); err != nil {
				return err
			}
			acks = acks[:0]
		}
	}
	if len(acks) > 0 {
		_, err := c.conn.Write(acks)
		return err
	}
	return nil
}

// BenchmarkFanOutQoS1: one publisher sends b.N QoS 1 messages of 64 bytes
// on bench/t, pipelined with up to 10 unacknowledged, to 100 subscribers
// of bench/# at QoS 1 (online, clean sessions, memory store). It times the
// publish path — route (topic match, queue reservations), the deliveries
// to 100 sessions and their writes — until every subscriber has every
// message, and reports allocations per published message (so per 100
// deliveries) and deliveries per second.
//
// Run: go test -run '^$' -bench BenchmarkFanOutQoS1 -benchtime 20000x -count 3 ./broker/
func BenchmarkFanOutQoS1(b *testing.B) {
	const subscribers = 100
	brk := brokertest.Start(b, &broker.Options{MaxQueuedMessages: 1 << 30, MaxQueuedBytes: math.MaxInt})
	n := b.N
	subs := make([]*benchConn, subscribers)
	for i := range subs {
		sc := benchDial(b, brk.Addr, &mqtt.Connect{ProtocolLevel: mqtt.V5, CleanStart: true,
			ClientID: fmt.Sprintf("bench-sub-%d", i)})
		if err := sc.send(&mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "bench/#", QoS: 1}}}); err != nil {
			b.Fatal(err)
		}
		if pkt, err := sc.rd.ReadPacket(); err != nil || mqtt.PeekType(pkt) != mqtt.SUBACK {
			b.Fatalf("waiting for SUBACK: %v", err)
		}
		subs[i] = sc
	}
	pc := benchDial(b, brk.Addr, &mqtt.Connect{ProtocolLevel: mqtt.V5, CleanStart: true, ClientID: "bench-pub"})
	payload := make([]byte, benchPayload)
	var acked atomic.Int64
	received := make([]atomic.Int64, subscribers)
	subErrs := make(chan error, subscribers)

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i, sc := range subs {
		go func() { subErrs <- sc.consume(n, &received[i]) }()
	}
	if err := pc.publishPipelined("bench/t", payload, n, &acked); err != nil {
		b.Fatal(err)
	}
	deadline := time.After(benchTimeout)
	for range subs {
		select {
		case err := <-subErrs:
			if err != nil {
				b.Fatalf("subscriber: %v", err)
			}
		case <-deadline:
			b.Fatalf("subscribers not done after %v", benchTimeout)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(n*subscribers)/elapsed.Seconds(), "deliveries/s")
}
