//go:build unix

package broker_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

// The tests in this file run the real weir binary as a child process
// (brokertest.Child) and really kill it — SIGKILL, so that nothing of the
// broker's shutdown runs — or stop it with SIGTERM, or damage its data
// directory, and then check what DESIGN.md §4 promises: an acknowledged
// QoS 1 message survives (at least once), an acknowledged QoS 2 message
// survives exactly once, retained messages and sessions survive, and
// damaged data is never served silently.

// crashConfig is the base configuration of the child: queue limits that
// never drop a message of these tests.
const crashConfig = "../testdata/configs/crash.yaml"

// mqttConn is a raw MQTT client over Weir's codec whose methods return
// errors instead of failing the test: the tests use it from goroutines and
// over connections that a kill cuts at any moment, and need to know
// exactly which PUBLISH got which acknowledgement.
type mqttConn struct {
	conn net.Conn
	rd   *mqtt.Reader
	v    mqtt.Version
	out  []byte
}

// dialMQTT connects to addr and sends cp (MQTT 3.1.1 unless it says
// otherwise); it returns the accepting CONNACK.
func dialMQTT(addr string, cp *mqtt.Connect) (*mqttConn, *mqtt.Connack, error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, nil, err
	}
	if cp.ProtocolLevel == 0 {
		cp.ProtocolLevel = mqtt.V311
	}
	c := &mqttConn{conn: conn, rd: mqtt.NewReader(conn, 0), v: cp.ProtocolLevel}
	if err := c.send(cp); err != nil {
		conn.Close()
		return nil, nil, err
	}
	p, err := c.read(10 * time.Second)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("waiting for CONNACK: %w", err)
	}
	ack, ok := p.(*mqtt.Connack)
	if !ok || ack.ReasonCode != 0 {
		conn.Close()
		return nil, nil, fmt.Errorf("got %v %+v, want an accepting CONNACK", p.Type(), p)
	}
	return c, ack, nil
}

// queue encodes p into the output buffer; flush writes it.
func (c *mqttConn) queue(p mqtt.Packet) {
	var err error
	if c.out, err = p.AppendTo(c.out, c.v); err != nil {
		panic(fmt.Sprintf("encoding %v: %v", p.Type(), err)) // a bug of the test
	}
}

func (c *mqttConn) flush() error {
	if len(c.out) == 0 {
		return nil
	}
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.conn.Write(c.out)
	c.out = c.out[:0]
	return err
}

func (c *mqttConn) send(ps ...mqtt.Packet) error {
	for _, p := range ps {
		c.queue(p)
	}
	return c.flush()
}

// read returns the next packet (a PUBLISH copied out of the read buffer),
// waiting at most d.
func (c *mqttConn) read(d time.Duration) (mqtt.Packet, error) {
	c.conn.SetReadDeadline(time.Now().Add(d))
	pkt, err := c.rd.ReadPacket()
	if err != nil {
		return nil, err
	}
	p, err := mqtt.Decode(pkt, c.v)
	if err != nil {
		return nil, fmt.Errorf("%w: decoding %v: %v", errBadPacket, mqtt.PeekType(pkt), err)
	}
	if pub, ok := p.(*mqtt.Publish); ok {
		p = pub.Clone()
	}
	return p, nil
}

// buffered reports whether a whole or partial packet is already read.
func (c *mqttConn) buffered() bool { return c.rd.Buffered() > 0 }

func (c *mqttConn) close() { c.conn.Close() }

// errBadPacket is a packet from the broker that does not decode: a
// failure of the test, not a connection cut by a kill.
var errBadPacket = errors.New("bad packet from the broker")

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// mustDial is dialMQTT failing the test on an error.
func mustDial(t testing.TB, addr string, cp *mqtt.Connect) (*mqttConn, *mqtt.Connack) {
	t.Helper()
	c, ack, err := dialMQTT(addr, cp)
	if err != nil {
		t.Fatalf("connect %q: %v", cp.ClientID, err)
	}
	t.Cleanup(c.close)
	return c, ack
}

// mustExpect reads the next packet and fails the test unless it has type
// T.
func mustExpect[T mqtt.Packet](t testing.TB, c *mqttConn) T {
	t.Helper()
	p, err := c.read(10 * time.Second)
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	v, ok := p.(T)
	if !ok {
		var want T
		t.Fatalf("got %v %+v, want %T", p.Type(), p, want)
	}
	return v
}

// mustSend sends ps and fails the test on an error.
func mustSend(t testing.TB, c *mqttConn, ps ...mqtt.Packet) {
	t.Helper()
	if err := c.send(ps...); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// persistentSubscribe creates the offline persistent session id with one
// QoS 2 subscription to filter.
func persistentSubscribe(t testing.TB, addr, id, filter string) {
	t.Helper()
	c, _ := mustDial(t, addr, &mqtt.Connect{ClientID: id})
	mustSend(t, c, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: filter, QoS: 2}}})
	if ack := mustExpect[*mqtt.Suback](t, c); len(ack.ReasonCodes) != 1 || ack.ReasonCodes[0] != 2 {
		t.Fatalf("SUBACK %v, want QoS 2 granted", ack.ReasonCodes)
	}
	mustSend(t, c, &mqtt.Disconnect{})
	c.close()
}

// publishRetained publishes a retained QoS 1 message and waits for its
// PUBACK.
func publishRetained(t testing.TB, addr, topic, payload string) {
	t.Helper()
	c, _ := mustDial(t, addr, &mqtt.Connect{ClientID: "retainer", CleanStart: true})
	mustSend(t, c, &mqtt.Publish{QoS: 1, PacketID: 1, Retain: true, Topic: []byte(topic), Payload: []byte(payload)})
	mustExpect[*mqtt.Puback](t, c)
	mustSend(t, c, &mqtt.Disconnect{})
	c.close()
}

// retainedOf subscribes a new clean session to filter and returns the
// retained messages it receives before a QoS 2 probe published after the
// subscription, or the error that kept it from knowing.
func retainedOf(addr, filter string) (map[string]string, error) {
	c, _, err := dialMQTT(addr, &mqtt.Connect{ClientID: "retained-check", CleanStart: true})
	if err != nil {
		return nil, err
	}
	defer c.close()
	const probe = "retained-check/probe"
	err = c.send(&mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: filter, QoS: 1}, {Filter: probe, QoS: 1}}})
	if err != nil {
		return nil, err
	}
	got := map[string]string{}
	probed := false
	for {
		p, err := c.read(10 * time.Second)
		if err != nil {
			return got, err
		}
		switch p := p.(type) {
		case *mqtt.Suback:
			// Retained messages are queued with SUBACK, before the probe.
			if err := c.send(&mqtt.Publish{QoS: 1, PacketID: 2, Topic: []byte(probe), Payload: []byte("end")}); err != nil {
				return got, err
			}
			probed = true
		case *mqtt.Publish:
			if p.QoS > 0 {
				c.send(&mqtt.Puback{PacketID: p.PacketID})
			}
			if string(p.Topic) == probe {
				if !probed {
					return got, errors.New("probe before SUBACK")
				}
				return got, nil
			}
			if !p.Retain {
				return got, fmt.Errorf("message on %s without the retain flag", p.Topic)
			}
			got[string(p.Topic)] = string(p.Payload)
		}
	}
}

// drainResult is what a subscriber received from its queue.
type drainResult struct {
	// msgs are the deliveries, in arrival order: every QoS 1 PUBLISH, and
	// every QoS 2 PUBLISH except re-sends of a packet id whose PUBREC was
	// sent and whose PUBREL has not arrived (the receiver's side of
	// exactly once [MQTT-4.3.3]).
	msgs []drained
	// qos2Resent counts those re-sends.
	qos2Resent int
	// took is the time from the first CONNACK to the probe.
	took     time.Duration
	connects int
}

type drained struct {
	topic, payload string
	qos            byte
	dup            bool
}

// receiver drains the queue of the persistent session id, over as many
// connections as it takes: the broker may be killed and restarted under
// it. To know when the queue is drained it publishes a QoS 2 probe to
// probeTopic (which its subscription must match): the probe is queued
// after everything that was queued before it, and as a QoS 2 delivery it
// is written after every earlier QoS 2 delivery too, so when it comes back
// the queue has been delivered. QoS 1 deliveries are answered with PUBACK,
// QoS 2 ones with PUBREC and PUBCOMP; the probe is re-sent as a publisher
// re-sends after a reconnection.
type receiver struct {
	addr       func() string
	id, probe  string
	reconnect  bool         // reconnect when the connection is lost, else fail
	quit       atomic.Bool  // stop reconnecting: the test is over
	progress   atomic.Int64 // deliveries so far, for the test to watch
	res        drainResult
	inbound    map[uint16]bool // QoS 2 packet ids with PUBREC sent
	probeState int             // msgSent, msgReceived, msgAcked once sent
	probeSent  bool
	probeBack  bool
}

func newReceiver(addr func() string, id, probe string, reconnect bool) *receiver {
	return &receiver{addr: addr, id: id, probe: probe, reconnect: reconnect, inbound: map[uint16]bool{}}
}

// drainSession drains the queue of id over one connection.
func drainSession(addr, id, probeTopic string, timeout time.Duration) (*drainResult, error) {
	r := newReceiver(func() string { return addr }, id, probeTopic, false)
	err := r.run(time.Now().Add(timeout))
	return &r.res, err
}

// run drains until the probe is back and complete, or deadline.
func (r *receiver) run(deadline time.Time) error {
	var start time.Time
	for {
		c, ack, err := dialMQTT(r.addr(), &mqtt.Connect{ClientID: r.id})
		if err != nil {
			if !r.reconnect || r.quit.Load() || time.Now().After(deadline) {
				return fmt.Errorf("connecting %s: %w", r.id, err)
			}
			time.Sleep(5 * time.Millisecond) // poll interval while the broker restarts
			continue
		}
		r.res.connects++
		if !ack.SessionPresent {
			c.close()
			return fmt.Errorf("session %q not present (connection %d)", r.id, r.res.connects)
		}
		if start.IsZero() {
			start = time.Now()
		}
		err = r.session(c, deadline)
		c.close()
		switch {
		case err == nil:
			r.res.took = time.Since(start)
			return nil
		case !errors.Is(err, errLost) || !r.reconnect:
			return fmt.Errorf("after %d messages: %w", len(r.res.msgs), err)
		}
	}
}

func (r *receiver) session(c *mqttConn, deadline time.Time) error {
	const probePID = 1
	switch {
	case !r.probeSent:
		c.queue(&mqtt.Publish{QoS: 2, PacketID: probePID, Topic: []byte(r.probe), Payload: []byte("probe")})
		r.probeSent = true
	case r.probeState == msgSent:
		c.queue(&mqtt.Publish{QoS: 2, Dup: true, PacketID: probePID, Topic: []byte(r.probe), Payload: []byte("probe")})
	case r.probeState == msgReceived:
		c.queue(&mqtt.Pubrel{PacketID: probePID})
	}
	if err := c.flush(); err != nil {
		return errLost
	}
	for !r.probeBack || r.probeState != msgAcked {
		if time.Now().After(deadline) {
			return fmt.Errorf("queue not drained in time (%d messages so far)", len(r.res.msgs))
		}
		pk, err := c.read(10 * time.Second)
		switch {
		case isTimeout(err):
			return fmt.Errorf("nothing received for 10s: %w", err)
		case errors.Is(err, errBadPacket):
			return err
		case err != nil:
			return fmt.Errorf("%w: %v", errLost, err)
		}
		switch p := pk.(type) {
		case *mqtt.Publish:
			switch {
			case string(p.Topic) == r.probe:
				r.probeBack = true
			case p.QoS == 2 && r.inbound[p.PacketID]:
				r.res.qos2Resent++ // a re-send of a delivery we have
			default:
				r.res.msgs = append(r.res.msgs, drained{topic: string(p.Topic), payload: string(p.Payload), qos: p.QoS, dup: p.Dup})
				r.progress.Add(1)
			}
			switch p.QoS {
			case 1:
				c.queue(&mqtt.Puback{PacketID: p.PacketID})
			case 2:
				r.inbound[p.PacketID] = true
				c.queue(&mqtt.Pubrec{PacketID: p.PacketID})
			}
		case *mqtt.Pubrel: // of a delivery to us
			delete(r.inbound, p.PacketID)
			c.queue(&mqtt.Pubcomp{PacketID: p.PacketID})
		case *mqtt.Pubrec: // of the probe
			r.probeState = msgReceived
			c.queue(&mqtt.Pubrel{PacketID: p.PacketID})
		case *mqtt.Pubcomp:
			r.probeState = msgAcked
		default:
			return fmt.Errorf("unexpected %v", pk.Type())
		}
		if !c.buffered() {
			if err := c.flush(); err != nil {
				return errLost
			}
		}
	}
	return c.send(&mqtt.Disconnect{})
}

// ---------------------------------------------------------------------
// Publishers that survive kills.

// Where a message stands at its publisher.
const (
	msgSent     = iota // PUBLISH sent, no PUBACK/PUBREC yet
	msgReceived        // QoS 2: PUBREC received, PUBREL sent
	msgAcked           // PUBACK / PUBCOMP received
)

type pubMsg struct {
	state byte
	sends int // PUBLISH packets sent for it (first one and re-sends)
	pid   uint16
}

// crashPublisher publishes numbered messages to its own topic over a
// persistent session, with up to window of them in flight, and survives
// the broker being killed: it reconnects with the same client id
// (clean=false) and re-sends what was in flight in its original order —
// PUBLISH with DUP and the same packet id for those without PUBACK or
// PUBREC (for QoS 2 the broker's stored inbound state must then recognise
// a message it already has), PUBREL for those with PUBREC and no PUBCOMP
// [MQTT-4.4.0-1].
type crashPublisher struct {
	id     string
	topic  string
	qos    byte
	window int

	// Owned by run until it returns.
	msgs     []pubMsg // index: message number
	inflight []int    // message numbers in flight, oldest first
	nextPID  uint16
	pidOf    map[uint16]int
	resent   int // PUBLISH re-sends
	relsent  int // PUBREL re-sends
	connects int

	acked atomic.Int64 // for the test's progress checks
}

func newCrashPublisher(n int, qos byte, window int) *crashPublisher {
	return &crashPublisher{id: fmt.Sprintf("crash-pub-%02d", n), topic: fmt.Sprintf("crash/%d", n), qos: qos,
		window: window, pidOf: map[uint16]int{}}
}

func (p *crashPublisher) payload(seq int) []byte { return []byte(p.id + "#" + strconv.Itoa(seq)) }

// errLost is a connection that ended under the publisher: the broker was
// killed or stopped.
var errLost = errors.New("connection lost")

// run publishes until the broker goes away while stop is set (or an
// error). addr is asked before every connection attempt.
func (p *crashPublisher) run(addr func() string, stop *atomic.Bool, deadline time.Time) error {
	for {
		c, ack, err := p.connect(addr, stop, deadline)
		if c == nil {
			return err // stopped (nil) or failed
		}
		if p.connects > 1 && !ack.SessionPresent {
			c.close()
			return fmt.Errorf("%s: session not present after restart %d", p.id, p.connects-1)
		}
		err = p.session(c)
		c.close()
		if !errors.Is(err, errLost) {
			return fmt.Errorf("%s: %w", p.id, err)
		}
		if stop.Load() {
			return nil
		}
	}
}

// connect connects, retrying while the broker is down, until deadline.
// It returns a nil connection when stop is set meanwhile.
func (p *crashPublisher) connect(addr func() string, stop *atomic.Bool, deadline time.Time) (*mqttConn, *mqtt.Connack, error) {
	for {
		if stop.Load() {
			return nil, nil, nil
		}
		c, ack, err := dialMQTT(addr(), &mqtt.Connect{ClientID: p.id})
		if err == nil {
			p.connects++
			return c, ack, nil
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("%s: cannot connect: %w", p.id, err)
		}
		time.Sleep(5 * time.Millisecond) // poll interval while the broker restarts
	}
}

func (p *crashPublisher) allocPID() uint16 {
	for {
		p.nextPID++
		if p.nextPID == 0 {
			p.nextPID = 1
		}
		if _, used := p.pidOf[p.nextPID]; !used {
			return p.nextPID
		}
	}
}

func (p *crashPublisher) publish(c *mqttConn, seq int, dup bool) {
	m := &p.msgs[seq]
	m.sends++
	c.queue(&mqtt.Publish{QoS: p.qos, Dup: dup, PacketID: m.pid, Topic: []byte(p.topic), Payload: p.payload(seq)})
}

// session runs one connection: re-send what is in flight, then publish
// new messages as acknowledgements make room in the window.
func (p *crashPublisher) session(c *mqttConn) error {
	for _, seq := range p.inflight {
		switch m := &p.msgs[seq]; m.state {
		case msgSent:
			p.publish(c, seq, true)
			p.resent++
		case msgReceived:
			c.queue(&mqtt.Pubrel{PacketID: m.pid})
			p.relsent++
		}
	}
	for {
		for len(p.inflight) < p.window {
			seq := len(p.msgs)
			p.msgs = append(p.msgs, pubMsg{pid: p.allocPID()})
			p.pidOf[p.msgs[seq].pid] = seq
			p.inflight = append(p.inflight, seq)
			p.publish(c, seq, false)
		}
		if !c.buffered() {
			if err := c.flush(); err != nil {
				return errLost
			}
		}
		pk, err := c.read(20 * time.Second)
		switch {
		case isTimeout(err):
			return fmt.Errorf("no acknowledgement within 20s; in flight %v", p.inflight)
		case errors.Is(err, errBadPacket):
			return err
		case err != nil:
			return errLost
		}
		var pid uint16
		switch pk := pk.(type) {
		case *mqtt.Puback:
			pid = pk.PacketID
		case *mqtt.Pubrec:
			pid = pk.PacketID
		case *mqtt.Pubcomp:
			pid = pk.PacketID
		default:
			return fmt.Errorf("unexpected %v", pk.Type())
		}
		seq, ok := p.pidOf[pid]
		if !ok {
			return fmt.Errorf("%v for packet id %d, which is not in flight", pk.Type(), pid)
		}
		m := &p.msgs[seq]
		switch pk.(type) {
		case *mqtt.Puback:
			if p.qos != 1 {
				return fmt.Errorf("PUBACK for QoS 2 message %d", seq)
			}
			p.done(seq)
		case *mqtt.Pubrec:
			if p.qos != 2 {
				return fmt.Errorf("PUBREC for QoS 1 message %d", seq)
			}
			m.state = msgReceived // again, for a re-sent PUBLISH whose PUBREC was lost
			c.queue(&mqtt.Pubrel{PacketID: pid})
		case *mqtt.Pubcomp:
			if m.state != msgReceived {
				return fmt.Errorf("PUBCOMP for message %d before its PUBREC", seq)
			}
			p.done(seq)
		}
	}
}

func (p *crashPublisher) done(seq int) {
	m := &p.msgs[seq]
	m.state = msgAcked
	delete(p.pidOf, m.pid)
	p.inflight = slices.DeleteFunc(p.inflight, func(s int) bool { return s == seq })
	p.acked.Add(1)
}

// crashScenario is one run of TestCrashKill9 / TestCrashSIGTERMLosesNothing.
type crashScenario struct {
	durability string
	stops      int  // kills (or SIGTERMs), the last one ends the publishing
	term       bool // SIGTERM instead of SIGKILL
	publishers int  // half QoS 1, half QoS 2
	window     int  // messages in flight per publisher
	progress   int  // acknowledgements between two stops, at least
	// maxDelay bounds the random wait after that progress: the moment
	// of the stop.
	maxDelay time.Duration
}

// crashSeed is WEIR_CRASH_SEED if set (to replay a failure), else random.
func crashSeed(t *testing.T) uint64 {
	if s := os.Getenv("WEIR_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("WEIR_CRASH_SEED: %v", err)
		}
		return v
	}
	return rand.Uint64()
}

func (sc crashScenario) run(t *testing.T) {
	seed := crashSeed(t)
	t.Logf("seed %d (set WEIR_CRASH_SEED=%d to replay the stop moments)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))

	child := brokertest.StartChild(t, brokertest.ChildOptions{Durability: sc.durability, BaseConfig: crashConfig})
	const sub = "crash-sub"
	persistentSubscribe(t, child.Addr(), sub, "crash/#")
	publishRetained(t, child.Addr(), "retained/crash", "kept across crashes")

	pubs := make([]*crashPublisher, sc.publishers)
	for i := range pubs {
		qos := byte(1)
		if i >= sc.publishers/2 {
			qos = 2
		}
		pubs[i] = newCrashPublisher(i, qos, sc.window)
	}
	var stop atomic.Bool
	deadline := time.Now().Add(60 * time.Second)
	errs := make(chan error, len(pubs))
	var wg sync.WaitGroup
	for _, p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.run(child.Addr, &stop, deadline); err != nil {
				errs <- err
			}
		}()
	}
	t.Cleanup(func() {
		// On a failure: stop the publishers (a kill ends their
		// connections, and with stop set they do not reconnect).
		stop.Store(true)
		if child.Running() {
			child.Kill()
		}
		wg.Wait()
	})
	acked := func() int {
		n := 0
		for _, p := range pubs {
			n += int(p.acked.Load())
		}
		return n
	}
	checkPublishers := func() {
		select {
		case err := <-errs:
			t.Fatalf("publisher: %v", err)
		default:
		}
	}

	verb := "SIGKILL"
	if sc.term {
		verb = "SIGTERM"
	}
	var restarts []time.Duration
	for k := 1; k <= sc.stops; k++ {
		// Some traffic since the last restart, then a random moment.
		target := acked() + sc.progress
		for acked() < target {
			checkPublishers()
			if time.Now().After(deadline) {
				t.Fatalf("publishers stalled at %d acknowledgements, want %d", acked(), target)
			}
			time.Sleep(time.Millisecond) // poll interval
		}
		delay := time.Duration(rng.Int64N(int64(sc.maxDelay)))
		time.Sleep(delay) // the random moment of the stop, not a synchronisation
		if k == sc.stops {
			stop.Store(true)
		}
		before := acked()
		if sc.term {
			child.Term()
		} else {
			child.Kill()
		}
		t.Logf("%s %d after +%v: %d acknowledged so far", verb, k, delay.Round(time.Millisecond), before)
		if k < sc.stops {
			restarts = append(restarts, child.Restart())
		}
	}
	wg.Wait()
	checkPublishers()
	restarts = append(restarts, child.Restart())
	if sc.term {
		checkCleanOpen(t, child.RunLogs())
	}

	// Drain, with one more stop in the middle of it: the subscriber's own
	// deliveries must survive it too (an unacknowledged QoS 1 delivery is
	// re-sent, a QoS 2 one re-sent with the same packet id, which the
	// receiver recognises, or released with PUBREL).
	rcv := newReceiver(child.Addr, sub, "crash/probe", true)
	t.Cleanup(func() { rcv.quit.Store(true) })
	drained := make(chan error, 1)
	go func() { drained <- rcv.run(time.Now().Add(60 * time.Second)) }()
	at := int64(float64(acked()) * (0.2 + 0.6*rng.Float64()))
	var drainErr error
	for done := false; !done; {
		select {
		case drainErr = <-drained:
			t.Logf("the drain ended before the stop planned after %d deliveries", at)
			done = true
		default:
			if rcv.progress.Load() < at {
				time.Sleep(time.Millisecond) // poll interval
				continue
			}
			if sc.term {
				child.Term()
			} else {
				child.Kill()
			}
			t.Logf("%s during the drain, after %d deliveries", verb, rcv.progress.Load())
			restarts = append(restarts, child.Restart())
			drainErr = <-drained
			done = true
		}
	}
	if drainErr != nil {
		t.Fatalf("draining %s: %v", sub, drainErr)
	}
	res := &rcv.res
	got, err := retainedOf(child.Addr(), "retained/#")
	if err != nil {
		t.Fatalf("retained messages: %v", err)
	}
	if want := map[string]string{"retained/crash": "kept across crashes"}; !maps.Equal(got, want) {
		t.Errorf("retained messages after the restarts: %q, want %q", got, want)
	}
	child.Term()

	checkCrashDeliveries(t, pubs, res)
	t.Logf("restarts took %v; drained %d messages over %d connections in %v (%d QoS 2 re-sends recognised by packet id)",
		restarts, len(res.msgs), res.connects, res.took.Round(time.Millisecond), res.qos2Resent)
}

// checkCleanOpen checks the store's log line of an open after a graceful
// stop: nothing to repair.
func checkCleanOpen(t *testing.T, logs string) {
	t.Helper()
	m := regexp.MustCompile(`msg="store opened".* orphaned_messages_removed=(\d+)`).FindStringSubmatch(logs)
	if m == nil {
		t.Errorf("no \"store opened\" log line after the restart:\n%s", logs)
	} else if m[1] != "0" {
		t.Errorf("after a graceful stop, the store removed %s orphaned messages at open", m[1])
	}
	if w := grepLines(logs, `level=ERROR|level=WARN.*(component=badger|MANIFEST|orphan)`); w != "" {
		t.Errorf("store problems at the start after a graceful stop:\n%s", w)
	}
}

// checkCrashDeliveries checks what the subscriber received against what
// the publishers know.
func checkCrashDeliveries(t *testing.T, pubs []*crashPublisher, res *drainResult) {
	t.Helper()
	byID := map[string]*crashPublisher{}
	for _, p := range pubs {
		byID[p.id] = p
	}
	count := make(map[*crashPublisher][]int)
	for _, p := range pubs {
		count[p] = make([]int, len(p.msgs))
	}
	bad := 0
	for _, d := range res.msgs {
		id, n, ok := strings.Cut(d.payload, "#")
		p := byID[id]
		seq, err := strconv.Atoi(n)
		if !ok || p == nil || err != nil || seq < 0 || seq >= len(p.msgs) || d.topic != p.topic {
			if bad++; bad <= 10 {
				t.Errorf("delivered a message that was never published: %s %q", d.topic, d.payload)
			}
			continue
		}
		if d.qos != p.qos {
			if bad++; bad <= 10 {
				t.Errorf("%s delivered at QoS %d, want %d (subscription granted QoS 2)", d.payload, d.qos, p.qos)
			}
		}
		count[p][seq]++
	}

	var (
		acked, unacked, received         int // received: QoS 2 with PUBREC, no PUBCOMP
		delivered, unackedDelivered, dup int
		resent, relsent, sends           int
	)
	for _, p := range pubs {
		resent += p.resent
		relsent += p.relsent
		for seq, m := range p.msgs {
			c := count[p][seq]
			sends += m.sends
			if c > 0 {
				delivered++
			}
			switch m.state {
			case msgAcked:
				acked++
			case msgReceived:
				received++
			default:
				unacked++
				if c > 0 {
					unackedDelivered++
				}
			}
			if p.qos == 1 && c > 1 {
				dup += c - 1
			}
			what := fmt.Sprintf("%s#%d (QoS %d, state %d, sent %d times)", p.id, seq, p.qos, m.state, m.sends)
			switch {
			case m.state >= msgReceived && c == 0:
				// Acknowledged (PUBACK, PUBREC or PUBCOMP) and lost.
				if bad++; bad <= 20 {
					t.Errorf("acknowledged message %s was not delivered", what)
				}
			case p.qos == 2 && c > 1:
				if bad++; bad <= 20 {
					t.Errorf("QoS 2 message %s delivered %d times, want exactly once", what, c)
				}
			}
		}
	}
	t.Logf("published %d messages (%d PUBLISH packets, %d re-sent with DUP, %d PUBREL re-sent): "+
		"%d acknowledged, %d QoS 2 past PUBREC only, %d unacknowledged (%d of them delivered anyway); "+
		"%d delivered, %d QoS 1 duplicates",
		acked+received+unacked, sends, resent, relsent, acked, received, unacked, unackedDelivered, delivered, dup)
	if acked == 0 {
		t.Error("no message was acknowledged: the test proved nothing")
	}
}

// TestCrashKill9: an offline persistent session subscribed to "crash/#"
// at QoS 2; 20 publishers (10 at QoS 1, 10 at QoS 2, each with 4 messages
// in flight on a persistent session) publish numbered messages to
// crash/<n> while the broker is killed with SIGKILL at random moments
// (seeded; the seed is logged) and restarted on the same data directory,
// six times; the publishers reconnect and re-send what was in flight. The
// sixth kill ends the publishing. Then the subscriber drains its queue,
// and the broker is killed once more in the middle of that. Every message
// whose PUBACK, PUBREC or PUBCOMP its publisher received must be delivered
// — a QoS 2 one exactly once, whatever was re-sent — and the retained
// message and the sessions must survive. Run for durability process and
// sync.
func TestCrashKill9(t *testing.T) {
	for _, d := range []string{"process", "sync"} {
		t.Run(d, func(t *testing.T) {
			crashScenario{durability: d, stops: 6, publishers: 20, window: 4, progress: 300,
				maxDelay: 200 * time.Millisecond}.run(t)
		})
	}
}

// TestCrashSIGTERMLosesNothing: the same with graceful stops (SIGTERM, exit
// status 0), one while publishing, one ending it, one during the drain:
// everything acknowledged is delivered after the restarts, the retained
// message and the subscription (at its granted QoS 2) survive, and the
// store opens with nothing to repair.
func TestCrashSIGTERMLosesNothing(t *testing.T) {
	crashScenario{durability: "process", stops: 2, term: true, publishers: 20, window: 4, progress: 300,
		maxDelay: 100 * time.Millisecond}.run(t)
}

// ---------------------------------------------------------------------
// Damaged data directories.

// damagePayload is the payload of message i of the damage tests: every
// tenth is big bytes long (above Badger's 1 KiB value threshold, so it
// goes to the value log), the others 40 bytes (kept in the LSM tree).
// Every byte depends on i, so that a damaged payload is recognised.
func damagePayload(i, big int) []byte {
	size := 40
	if i%10 == 0 {
		size = big
	}
	b := fmt.Appendf(nil, "%06d:", i)
	for j := len(b); j < size; j++ {
		b = append(b, byte('a'+(i*7+j)%26))
	}
	return b
}

// fillForDamage creates the persistent session "damage-sub" subscribed to
// "d/#", publishes n messages to it and a retained message, and returns
// after their acknowledgements.
func fillForDamage(t *testing.T, child *brokertest.Child, n, big int) {
	t.Helper()
	persistentSubscribe(t, child.Addr(), "damage-sub", "d/#")
	publishRetained(t, child.Addr(), "retained/damage", "retained payload")
	c, _ := mustDial(t, child.Addr(), &mqtt.Connect{ClientID: "damage-pub", CleanStart: true})
	for i := range n {
		c.queue(&mqtt.Publish{QoS: 1, PacketID: uint16(i%60000 + 1), Topic: []byte("d/x"), Payload: damagePayload(i, big)})
		if i%100 == 99 || i == n-1 {
			mustSend(t, c)
			for range i%100 + 1 {
				mustExpect[*mqtt.Puback](t, c)
			}
		}
	}
	mustSend(t, c, &mqtt.Disconnect{})
	c.close()
}

// dataFiles returns the names of dir's files ending in ext, in Badger's
// creation order (it numbers them).
func dataFiles(t *testing.T, dir, ext string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ext) {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		t.Fatalf("no %s file in %s", ext, dir)
	}
	slices.Sort(names)
	return names
}

func newest(ext string) func(t *testing.T, dir string) string {
	return func(t *testing.T, dir string) string {
		names := dataFiles(t, dir, ext)
		return filepath.Join(dir, names[len(names)-1])
	}
}

func oldest(ext string) func(t *testing.T, dir string) string {
	return func(t *testing.T, dir string) string {
		names := dataFiles(t, dir, ext)
		if len(names) < 2 {
			t.Fatalf("only %v: the test needs two %s files", names, ext)
		}
		return filepath.Join(dir, names[0])
	}
}

// usedSize is the size of a file without its trailing zero bytes (Badger
// preallocates its logs).
func usedSize(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return int64(len(bytes.TrimRight(b, "\x00")))
}

// cut truncates a file to frac of its used size.
func cut(frac float64) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		if err := os.Truncate(path, int64(float64(usedSize(t, path))*frac)); err != nil {
			t.Fatal(err)
		}
	}
}

// cutTail truncates the last n bytes of a file.
func cutTail(n int64) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		if err := os.Truncate(path, usedSize(t, path)-n); err != nil {
			t.Fatal(err)
		}
	}
}

// garbage overwrites n bytes at frac of a file's used size.
func garbage(frac float64, n int) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		scribble(t, path, int64(float64(usedSize(t, path))*frac), n)
	}
}

// flip changes one byte in the middle of the first copy of what in the
// file: a bit flip in a stored payload, the structure around it intact.
func flip(what []byte) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(b, what)
		if i < 0 {
			t.Fatalf("payload %q not found in %s", what[:7], path)
		}
		scribble(t, path, int64(i+len(what)/2), 1)
	}
}

func scribble(t *testing.T, path string, off int64, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	junk := make([]byte, n)
	for i := range junk {
		junk[i] = byte(0xA5 ^ i*31)
	}
	if _, err := f.WriteAt(junk, off); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptDataDir damages the data directory of a stopped broker — a
// file truncated, garbage written into it, a single byte of a stored
// payload changed — and starts the broker again. Whatever the damage, the
// broker must either refuse to start, with a non-zero exit status and a log
// line naming the damaged file or value, or start and serve only intact
// data, having logged (WARN or ERROR) any loss: it must never serve a
// damaged payload, nor lose acknowledged messages without a word.
//
// What happens for each kind of damage, with the fixes made for this test:
//
//   - .vlog (values over 1 KiB) truncated, garbage, or one payload byte
//     changed in the newest file: Badger's open scans the newest value log
//     and truncates it at the first bad entry (silently: that is how it
//     recovers a torn tail), so every later value in it is gone; the
//     broker reads the whole queue at start-up, Badger logs "Unable to
//     read ... valuePointer {Fid:1 ...}", and the broker refuses to start:
//     "cannot start ... corrupt value at key m/N". Exit 1.
//   - one payload byte changed in an older .vlog file: Badger reads it
//     without checking (VerifyValueChecksum was off), so the damaged
//     payload was delivered silently. Fixed: the store now verifies value
//     checksums; the read fails, Badger logs "value corrupted for vp", and
//     the broker refuses to start naming the key. Exit 1.
//   - .sst truncated: Badger panics while opening the table ("Recovering
//     from initIndex crash ... Table ID: 1") in one of its goroutines: exit
//     2 with the panic. Loud, but a crash rather than an error message.
//   - .sst garbage or one payload byte changed: Badger did not verify
//     table checksums (ChecksumVerificationMode NoVerification), so
//     garbage made it panic in the middle of the start-up scan (exit 2)
//     and a changed payload byte was delivered silently. Fixed: tables are
//     verified when opened (OnTableRead); the open fails with "checksum
//     validation failed for table: .../000001.sst". Exit 1.
//   - MANIFEST with an incomplete last record: Badger drops the record
//     and then deletes every table file the MANIFEST does not list, with a
//     debug message that Weir discarded: the broker started with an empty
//     store — no session, no queue, no retained message — and logged
//     nothing. Fixed: the store checks the MANIFEST before Badger opens it
//     and logs, at WARN, the incomplete record and the table files Badger
//     will delete. The data is still lost, but not silently.
//   - MANIFEST garbage: "manifest has checksum mismatch"; exit 1.
//   - .mem (write-ahead log of the memtable; only present after a kill,
//     a clean stop flushes it) truncated or garbage: Badger replays the log
//     up to the first bad entry and drops the rest, silently (it cannot
//     tell damage from the torn tail a power loss leaves). The broker
//     starts without the messages and says nothing. Not fixed (skipped
//     with BUG below): it needs a record outside Badger of what was made
//     durable.
func TestCorruptDataDir(t *testing.T) {
	type damageCase struct {
		name string
		// kill stops the broker with SIGKILL rather than SIGTERM, so that
		// the data is still in the write-ahead log (.mem).
		kill   bool
		n, big int // messages and the size of every tenth payload
		file   func(t *testing.T, dir string) string
		damage func(t *testing.T, path string)
		// clue must match the logs of a refused start: what names the
		// damaged file or value.
		clue string
		skip string
	}
	const n, big = 300, 4096
	vlogClue := `Unable to read: .*valuePointer|corrupt value at key m/\d+`
	cases := []damageCase{
		{name: "vlog truncated", file: newest(".vlog"), damage: cut(0.5), clue: vlogClue},
		{name: "vlog garbage", file: newest(".vlog"), damage: garbage(0.5, 64), clue: vlogClue},
		{name: "vlog payload byte", file: newest(".vlog"), damage: flip(damagePayload(10, big)), clue: vlogClue},
		// 300 payloads of 128 KiB: two value-log files (32 MiB each).
		{name: "old vlog payload byte", n: 3000, big: 128 << 10, file: oldest(".vlog"),
			damage: flip(damagePayload(10, 128<<10)), clue: `value corrupted|checksum`},
		{name: "sst truncated", file: newest(".sst"), damage: cut(0.5), clue: `panic|Table ID|000001\.sst`},
		{name: "sst garbage", file: newest(".sst"), damage: garbage(0.33, 64), clue: `checksum validation failed for table: .*\.sst`},
		{name: "sst payload byte", file: newest(".sst"), damage: flip(damagePayload(5, big)), clue: `checksum validation failed for table: .*\.sst`},
		{name: "manifest incomplete record", file: newest("MANIFEST"), damage: cutTail(4), clue: `MANIFEST`},
		{name: "manifest garbage", file: newest("MANIFEST"), damage: garbage(0.5, 8), clue: `manifest has checksum mismatch`},
		// Badger replays a .mem log up to its first bad entry and drops
		// the rest silently; the store's high-water mark (store/badger/
		// hwm.go) notices the missing messages and logs them.
		{name: "mem truncated", kill: true, file: newest(".mem"), damage: cut(0.5)},
		{name: "mem garbage", kill: true, file: newest(".mem"), damage: garbage(0.5, 64)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip != "" {
				t.Skip(tc.skip)
			}
			if tc.n == 0 {
				tc.n = n
			}
			if tc.big == 0 {
				tc.big = big
			}
			child := brokertest.StartChild(t, brokertest.ChildOptions{BaseConfig: crashConfig})
			fillForDamage(t, child, tc.n, tc.big)
			if tc.kill {
				child.Kill()
			} else {
				child.Term()
			}
			path := tc.file(t, child.DataDir)
			tc.damage(t, path)
			checkDamagedStart(t, child, filepath.Base(path), tc.n, tc.big, tc.clue)
		})
	}
}

// checkDamagedStart starts the broker on a damaged data directory and
// checks that it either refuses to start, naming the problem (clue), or
// serves only intact data and logs any loss.
func checkDamagedStart(t *testing.T, child *brokertest.Child, file string, n, big int, clue string) {
	t.Helper()
	_, err := child.TryStart()
	logs := child.RunLogs()
	var ee *brokertest.ExitError
	if errors.As(err, &ee) {
		if ee.ExitCode() == 0 {
			t.Errorf("damaged %s: weir exited with status 0 before serving", file)
		}
		if !regexp.MustCompile(clue).MatchString(logs) {
			t.Errorf("damaged %s: weir refused to start (%v) without a log line matching %q:\n%s", file, ee, clue, logs)
		}
		t.Logf("damaged %s: refused to start (%v); last log line: %s", file, ee, lastLine(logs))
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	res, err := drainSession(child.Addr(), "damage-sub", "d/probe", 30*time.Second)
	if err != nil && !strings.Contains(err.Error(), "not present") {
		t.Fatalf("damaged %s: weir started but the queue could not be drained: %v\n%s", file, err, child.RunLogs())
	}
	if res == nil {
		res = &drainResult{}
	}
	ret, err := retainedOf(child.Addr(), "retained/#")
	if err != nil {
		t.Fatalf("damaged %s: retained messages: %v", file, err)
	}
	logs = child.RunLogs()
	child.Term()

	seen := make([]int, n)
	wrong := 0
	for _, d := range res.msgs {
		i, err := strconv.Atoi(strings.SplitN(d.payload, ":", 2)[0])
		if err != nil || i < 0 || i >= n || d.payload != string(damagePayload(i, big)) {
			if wrong++; wrong <= 5 {
				t.Errorf("damaged %s: weir served a damaged message: %.60q (%d bytes)", file, d.payload, len(d.payload))
			}
			continue
		}
		seen[i]++
	}
	missing := 0
	for _, c := range seen {
		if c == 0 {
			missing++
		}
	}
	retainedLost := ret["retained/damage"] != "retained payload"
	if ret["retained/damage"] != "" && retainedLost {
		t.Errorf("damaged %s: retained message served damaged: %q", file, ret["retained/damage"])
	}
	// Warnings about the damage: the start-up warning that no
	// authentication is configured does not count.
	warned := regexp.MustCompile(`level=(WARN|ERROR) msg="(?:[^n]|n[^o])`).MatchString(logs)
	if (missing > 0 || retainedLost) && !warned {
		t.Errorf("damaged %s: weir started and lost %d of %d messages (retained lost: %v) without a warning:\n%s",
			file, missing, n, retainedLost, logs)
	}
	t.Logf("damaged %s: started; delivered %d of %d messages intact, retained message lost: %v; warnings:\n%s",
		file, n-missing, n, retainedLost, grepLines(logs, `level=(WARN|ERROR)`))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func grepLines(s, pattern string) string {
	re := regexp.MustCompile(pattern)
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if re.MatchString(l) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// ---------------------------------------------------------------------
// A long offline queue across a restart.

// backlogPayload is the 64-byte payload of message seq of publisher p.
func backlogPayload(buf []byte, p, seq int) []byte {
	b := appendPadded(buf[:0], p, 2)
	b = append(b, ':')
	b = appendPadded(b, seq, 10)
	b = append(b, ':')
	for len(b) < 64 {
		b = append(b, byte('a'+len(b)%26))
	}
	return b
}

// appendPadded appends v in decimal with leading zeros to width digits
// (fmt is slow enough to matter for a million messages under -race).
func appendPadded(b []byte, v, width int) []byte {
	d := strconv.Itoa(v)
	for range width - len(d) {
		b = append(b, '0')
	}
	return append(b, d...)
}

// fillBacklog publishes counts[p] QoS 1 messages of 64 bytes to
// "backlog/<p>" from one connection per publisher, each with up to window
// PUBLISH packets unacknowledged, and returns when every PUBACK is in.
func fillBacklog(addr string, counts []int, window int) error {
	errs := make(chan error, len(counts))
	for p, count := range counts {
		go func() {
			errs <- func() error {
				c, _, err := dialMQTT(addr, &mqtt.Connect{ClientID: fmt.Sprintf("backlog-pub-%d", p), CleanStart: true})
				if err != nil {
					return err
				}
				defer c.close()
				topic := []byte(fmt.Sprintf("backlog/%d", p))
				var buf [64]byte
				sent, acked := 0, 0
				for acked < count {
					for sent < count && sent-acked < window {
						c.queue(&mqtt.Publish{QoS: 1, PacketID: uint16(sent%65535 + 1), Topic: topic,
							Payload: backlogPayload(buf[:], p, sent)})
						sent++
					}
					if !c.buffered() {
						if err := c.flush(); err != nil {
							return err
						}
					}
					pk, err := c.read(30 * time.Second)
					if err != nil {
						return fmt.Errorf("publisher %d after %d PUBACKs: %w", p, acked, err)
					}
					if _, ok := pk.(*mqtt.Puback); !ok {
						return fmt.Errorf("publisher %d: got %v, want PUBACK", p, pk.Type())
					}
					acked++
				}
				return c.send(&mqtt.Disconnect{})
			}()
		}()
	}
	var err error
	for range counts {
		err = errors.Join(err, <-errs)
	}
	return err
}

// drainBacklog connects the persistent session id and receives its
// queue, which must hold exactly counts[p] messages of each publisher p,
// each publisher's in order, without DUP; it returns how long that took
// from CONNACK.
func drainBacklog(addr, id string, counts []int) (time.Duration, error) {
	c, ack, err := dialMQTT(addr, &mqtt.Connect{ClientID: id})
	if err != nil {
		return 0, err
	}
	defer c.close()
	if !ack.SessionPresent {
		return 0, fmt.Errorf("session %q not present after the restart", id)
	}
	start := time.Now()
	total := 0
	for _, n := range counts {
		total += n
	}
	next := make([]int, len(counts))
	var buf [64]byte
	got, probed := 0, false
	for {
		pk, err := c.read(30 * time.Second)
		if err != nil {
			return 0, fmt.Errorf("after %d of %d messages: %w", got, total, err)
		}
		p, ok := pk.(*mqtt.Publish)
		if !ok {
			if _, ok := pk.(*mqtt.Puback); ok && probed {
				continue // of the probe
			}
			return 0, fmt.Errorf("after %d messages: got %v, want PUBLISH", got, pk.Type())
		}
		if p.QoS > 0 {
			c.queue(&mqtt.Puback{PacketID: p.PacketID})
		}
		if string(p.Topic) == "backlog/probe" {
			if got != total {
				return 0, fmt.Errorf("probe after %d of %d messages", got, total)
			}
			return time.Since(start), c.send(&mqtt.Disconnect{})
		}
		suffix, _ := strings.CutPrefix(string(p.Topic), "backlog/")
		from, err := strconv.Atoi(suffix)
		if err != nil || from < 0 || from >= len(counts) {
			return 0, fmt.Errorf("message on unexpected topic %q", p.Topic)
		}
		if p.Dup || p.QoS != 1 || !bytes.Equal(p.Payload, backlogPayload(buf[:], from, next[from])) {
			return 0, fmt.Errorf("message %d: %s %q (QoS %d, DUP %v), want #%d of publisher %d",
				got, p.Topic, p.Payload, p.QoS, p.Dup, next[from], from)
		}
		next[from]++
		got++
		if got == total {
			// Nothing more may be queued: the next message must be this
			// probe, published after the last one was delivered.
			c.queue(&mqtt.Publish{QoS: 1, PacketID: 1, Topic: []byte("backlog/probe"), Payload: []byte("end")})
			probed = true
		}
		if !c.buffered() {
			if err := c.flush(); err != nil {
				return 0, err
			}
		}
	}
}

// backlogRestart fills an offline persistent session with n messages of
// 64 bytes, restarts the broker (SIGTERM, then start), and drains the
// queue: every message must come back, each publisher's in order. It logs
// the fill rate, the start-up time, the drain rate and the child's memory.
func backlogRestart(t *testing.T, n int) {
	const pubs, window = 8, 256
	opts := brokertest.ChildOptions{BaseConfig: crashConfig, StartTimeout: 5 * time.Minute}
	if p := os.Getenv("WEIR_BACKLOG_PROFILE"); p != "" {
		opts.Config = map[string]any{"profile": p} // to compare memory profiles
		t.Logf("profile: %s", p)
	}
	child := brokertest.StartChild(t, opts)
	persistentSubscribe(t, child.Addr(), "backlog-sub", "backlog/#")
	counts := make([]int, pubs)
	for i := range counts {
		counts[i] = n / pubs
		if i < n%pubs {
			counts[i]++
		}
	}
	start := time.Now()
	stopSampling := sampleMem(child)
	if err := fillBacklog(child.Addr(), counts, window); err != nil {
		t.Fatalf("filling the queue: %v", err)
	}
	fill := time.Since(start)
	fillRSS, err := child.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	fillMem := stopSampling()
	child.Term()
	du := dirSize(t, child.DataDir)

	startup := child.Restart()
	stopSampling = sampleMem(child)
	openLine := grepLines(child.RunLogs(), `msg="store opened"|restored queued messages`)
	startRSS, err := child.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	drain, err := drainBacklog(child.Addr(), "backlog-sub", counts)
	if err != nil {
		t.Fatalf("draining the queue: %v", err)
	}
	drainRSS, err := child.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	drainMem := stopSampling()
	child.Term()

	mib := func(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	rate := func(d time.Duration) string { return fmt.Sprintf("%.0f msg/s", float64(n)/d.Seconds()) }
	t.Logf("%d messages of 64 bytes: filled in %v (%s), data dir %s after a graceful stop; "+
		"restart to port accepting %v; drained in %v (%s); peak RSS: %s while filling, %s at start-up, %s after the drain",
		n, fill.Round(time.Millisecond), rate(fill), mib(du), startup.Round(time.Millisecond),
		drain.Round(time.Millisecond), rate(drain), mib(fillRSS), mib(startRSS), mib(drainRSS))
	t.Logf("of which (sampled every 20 ms): anonymous memory (Go heap and stacks, with Badger's memtables and "+
		"caches) at most %s while filling, %s from start-up to the end of the drain; pages of Badger's "+
		"memory-mapped files (reclaimable page cache) at most %s and %s",
		mib(fillMem.anon), mib(drainMem.anon), mib(fillMem.file), mib(drainMem.file))
	t.Logf("start-up logs:\n%s", openLine)
	if testing.Verbose() || os.Getenv("WEIR_LONG") != "" {
		const target = 64 << 20
		for _, m := range []struct {
			what string
			rss  int64
		}{{"filling", fillRSS}, {"start-up and drain", drainRSS}, {"filling (anonymous)", fillMem.anon},
			{"start-up and drain (anonymous)", drainMem.anon}} {
			if m.rss > target {
				t.Logf("peak RSS while %s %s is above the %s target", m.what, mib(m.rss), mib(target))
			}
		}
	}
}

type memPeak struct{ anon, file int64 }

// sampleMem samples the child's anonymous and file-backed resident memory
// every 20 ms until the returned function is called, which returns the
// highest of each.
func sampleMem(child *brokertest.Child) func() memPeak {
	done := make(chan struct{})
	res := make(chan memPeak)
	go func() {
		var peak memPeak
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if st, err := child.MemStatus(); err == nil {
				peak.anon = max(peak.anon, st["RssAnon"])
				peak.file = max(peak.file, st["RssFile"])
			}
			select {
			case <-done:
				res <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return func() memPeak {
		close(done)
		return <-res
	}
}

func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// TestBacklogRestart: 100,000 queued messages survive a restart and are
// delivered in order (the CI-sized TestLargeBacklogRestart).
func TestBacklogRestart(t *testing.T) {
	backlogRestart(t, 100_000)
}

// TestLargeBacklogRestart measures a restart with a long offline queue:
// WEIR_BACKLOG_N (default 1,000,000) messages of 64 bytes, the time from
// starting the process to its port accepting, the drain rate, and the
// child's peak RSS (target: 64 MiB). Set WEIR_LONG=1 to run it, and
// WEIR_BACKLOG_PROFILE to set the configuration's profile key.
func TestLargeBacklogRestart(t *testing.T) {
	if os.Getenv("WEIR_LONG") != "1" {
		t.Skip("set WEIR_LONG=1 to run (about a minute)")
	}
	n := 1_000_000
	if s := os.Getenv("WEIR_BACKLOG_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			t.Fatalf("WEIR_BACKLOG_N=%q: want a positive number", s)
		}
		n = v
	}
	backlogRestart(t, n)
}
