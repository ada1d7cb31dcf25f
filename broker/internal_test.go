package broker_test

import (
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
	"github.com/weirmq/weir/store"
)

// dialInternal connects a raw MQTT 5.0 client to internal session id.
func dialInternal(t *testing.T, srv *broker.Server, id string, recvMax uint16) *brokertest.Raw {
	t.Helper()
	conn, err := srv.DialInternal(id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	r := brokertest.NewRaw(conn, mqtt.V5)
	c := &mqtt.Connect{ClientID: "ignored"}
	c.Props.SessionExpiry = 0xFFFFFFFF
	c.Props.ReceiveMaximum = recvMax
	if ack := r.Connect(t, c); ack.ReasonCode != 0 {
		t.Fatalf("CONNACK %v", ack.ReasonCode)
	}
	return r
}

// subscribeInternal creates internal session id, offline, with one
// subscription.
func subscribeInternal(t *testing.T, srv *broker.Server, id, filter string, qos byte) {
	t.Helper()
	r := dialInternal(t, srv, id, 10)
	r.Send(t, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: filter, QoS: qos}}})
	r.Expect(t, mqtt.SUBACK)
	r.Send(t, &mqtt.Disconnect{})
	r.Conn.Close()
}

// waitInternalEmpty waits until internal session id holds nothing,
// queued or in flight.
func waitInternalEmpty(t *testing.T, srv *broker.Server, id string) {
	t.Helper()
	brokertest.Eventually(t, 5*time.Second, func() error {
		if st := srv.InternalStatus(id); st.Queued != 0 || st.Inflight != 0 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
}

// TestInternalLiveFirst checks a live-first internal session: a message
// that arrives while the backlog (mostly in the store) drains goes out
// next, ahead of the backlog, and only once, although its store entry
// lies beyond the backlog the refill reads back while it is in flight.
func TestInternalLiveFirst(t *testing.T) {
	b := brokertest.Start(t, &broker.Options{QueueMemoryWindow: 2})
	const id = broker.InternalPrefix + "test"
	if err := b.Server.RegisterInternal(broker.InternalOptions{ID: id, LiveFirst: true}); err != nil {
		t.Fatal(err)
	}
	subscribeInternal(t, b.Server, id, "#", 1)

	pub := brokertest.ConnectPaho311(t, b, brokertest.Transports()[0], "pub", nil)
	// Nine: the last refill (two at a time) then reads past the backlog.
	for i := range 9 {
		pub.MustPublish("backlog", 1, false, fmt.Sprint(i))
	}
	if st := b.Server.InternalStatus(id); st.Queued != 9 {
		t.Fatalf("%d queued, want 9", st.Queued)
	}

	r := dialInternal(t, b.Server, id, 2)
	var got []string
	next := func() *mqtt.Publish {
		t.Helper()
		p := r.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
		got = append(got, string(p.Topic)+":"+string(p.Payload))
		return p
	}
	b0, b1 := next(), next()
	pub.MustPublish("live", 1, false, "0")
	r.Send(t, &mqtt.Puback{PacketID: b0.PacketID})
	live := next()
	if string(live.Topic) != "live" {
		t.Fatalf("after the first ack got %s, want the live message ahead of the backlog", got[len(got)-1])
	}
	// Drain the backlog; the live message stays unacknowledged meanwhile.
	last := b1
	for range 7 {
		r.Send(t, &mqtt.Puback{PacketID: last.PacketID})
		last = next()
	}
	r.Send(t, &mqtt.Puback{PacketID: last.PacketID})
	if p, err := r.Read(200 * time.Millisecond); err == nil {
		t.Fatalf("unexpected %v after the backlog (%v); got so far %v", p.Type(), p, got)
	}
	want := []string{"backlog:0", "backlog:1", "live:0", "backlog:2", "backlog:3", "backlog:4", "backlog:5",
		"backlog:6", "backlog:7", "backlog:8"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	r.Send(t, &mqtt.Puback{PacketID: live.PacketID})
	waitInternalEmpty(t, b.Server, id)
}

// TestInternalBacklogRate checks BacklogRate: the backlog goes out no
// faster than the rate, and a live message (LiveFirst) is not held back.
func TestInternalBacklogRate(t *testing.T) {
	b := brokertest.Start(t, nil)
	const id = broker.InternalPrefix + "paced"
	const rate, n = 10, 10
	if err := b.Server.RegisterInternal(broker.InternalOptions{ID: id, LiveFirst: true, BacklogRate: rate}); err != nil {
		t.Fatal(err)
	}
	subscribeInternal(t, b.Server, id, "#", 1)
	pub := brokertest.ConnectPaho311(t, b, brokertest.Transports()[0], "pub", nil)
	for i := range n {
		pub.MustPublish("backlog", 1, false, fmt.Sprint(i))
	}

	r := dialInternal(t, b.Server, id, 100)
	start := time.Now()
	var got []string
	for len(got) < n+1 {
		p := r.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
		r.Send(t, &mqtt.Puback{PacketID: p.PacketID})
		got = append(got, string(p.Topic)+":"+string(p.Payload))
		if len(got) == 1 {
			pub.MustPublish("live", 1, false, "0")
		}
	}
	took := time.Since(start)
	if min := time.Duration(n-1) * time.Second / rate; took < min {
		t.Errorf("%d backlog messages at %d/s took %v, want at least %v", n, rate, took, min)
	}
	if got[n] == "live:0" {
		t.Errorf("arrivals %v: the live message waited for the paced backlog", got)
	}
}

// TestInternalBypassesAccessControl: an internal session (a bridge) is
// the server's own connection: it connects without credentials while a
// password file is in force, subscribes and receives what the ACL gives no
// user, publishes locally, and keeps receiving for its offline session
// after a restart of the server on the same store.
func TestInternalBypassesAccessControl(t *testing.T) {
	files := t.TempDir()
	fa, err := broker.NewFileAccess(broker.FileAccessConfig{
		PasswordFile: writeFile(t, files, "passwd", passwdLine(t, "pub", "p")),
		ACLFile:      writeFile(t, files, "acl", "user pub\ntopic write data/#\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	const id = broker.InternalPrefix + "acl"
	start := func() (*brokertest.Broker, func()) {
		srv, st, addr := startOnStore(t, dir, fa)
		if err := srv.RegisterInternal(broker.InternalOptions{ID: id}); err != nil {
			t.Fatal(err)
		}
		return &brokertest.Broker{Server: srv, Addr: addr}, func() { stopOnStore(t, srv, st) }
	}
	publish := func(b *brokertest.Broker, payload string) {
		r := brokertest.NewRaw(b.DialTCP(t), mqtt.V311)
		if ack := r.Connect(t, &mqtt.Connect{ProtocolLevel: mqtt.V311, ClientID: "pub", CleanStart: true,
			HasUsername: true, Username: "pub", HasPassword: true, Password: []byte("p")}); ack.ReasonCode != 0 {
			t.Fatalf("pub CONNACK %d", ack.ReasonCode)
		}
		r.Send(t, &mqtt.Publish{QoS: 1, PacketID: 1, Topic: []byte("data/x"), Payload: []byte(payload)})
		r.Expect(t, mqtt.PUBACK)
	}
	b, stop := start()
	r := dialInternal(t, b.Server, id, 10)
	r.Send(t, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "data/#", QoS: 1}}})
	if ack := r.Expect(t, mqtt.SUBACK).(*mqtt.Suback); ack.ReasonCodes[0] != 1 {
		t.Fatalf("SUBACK %v, want QoS 1 granted", ack.ReasonCodes)
	}
	publish(b, "one")
	if p := r.Expect(t, mqtt.PUBLISH).(*mqtt.Publish); string(p.Payload) != "one" {
		t.Fatalf("got %q", p.Payload)
	} else {
		r.Send(t, &mqtt.Puback{PacketID: p.PacketID})
	}
	// An "in" message: the internal session publishes locally.
	r.Send(t, &mqtt.Publish{QoS: 1, PacketID: 2, Topic: []byte("from/upstream"), Payload: []byte("in")})
	if ack := r.Expect(t, mqtt.PUBACK).(*mqtt.Puback); ack.ReasonCode >= 0x80 {
		t.Fatalf("internal PUBLISH: PUBACK %v", ack.ReasonCode)
	}
	r.Send(t, &mqtt.Disconnect{})
	r.Conn.Close()
	stop()

	b, stop = start()
	defer stop()
	publish(b, "two") // while the internal session is offline, after a restart
	r = dialInternal(t, b.Server, id, 10)
	if p := r.Expect(t, mqtt.PUBLISH).(*mqtt.Publish); string(p.Payload) != "two" {
		t.Fatalf("after the restart got %q, want two", p.Payload)
	}
}

// releaseOneQoS2 subscribes internal session id to q2/# at QoS 2, has a
// QoS 2 message published there, takes it to PUBREC (the broker answers
// PUBREL) and drops the connection before PUBCOMP; it returns the PUBLISH.
func releaseOneQoS2(t *testing.T, b *brokertest.Broker, id string) *mqtt.Publish {
	t.Helper()
	r := dialInternal(t, b.Server, id, 10)
	r.Send(t, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "q2/#", QoS: 2}}})
	r.Expect(t, mqtt.SUBACK)
	pub := brokertest.ConnectPaho311(t, b, brokertest.Transports()[0], "pub", nil)
	pub.MustPublish("q2/a", 2, false, "payload-a")
	p := r.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
	r.Send(t, &mqtt.Pubrec{PacketID: p.PacketID})
	r.Expect(t, mqtt.PUBREL)
	r.Conn.Close()
	return p
}

// TestInternalResendReleased checks ResendReleased: a QoS 2 delivery past
// PUBREC is re-sent to a resuming internal session as the whole message,
// marked with ReleasedProperty, and completed by PUBCOMP; without the
// option the session gets the PUBREL MQTT prescribes [MQTT-4.4.0-1].
func TestInternalResendReleased(t *testing.T) {
	for _, resend := range []bool{true, false} {
		t.Run(fmt.Sprint("ResendReleased=", resend), func(t *testing.T) {
			b := brokertest.Start(t, nil)
			const id = broker.InternalPrefix + "rel"
			if err := b.Server.RegisterInternal(broker.InternalOptions{ID: id, ResendReleased: resend}); err != nil {
				t.Fatal(err)
			}
			p := releaseOneQoS2(t, b, id)

			r := dialInternal(t, b.Server, id, 10)
			got, err := r.Read(brokertest.WaitTimeout)
			if err != nil {
				t.Fatalf("after resuming: %v", err)
			}
			switch g := got.(type) {
			case *mqtt.Publish:
				if !resend {
					t.Fatalf("got PUBLISH for a released delivery, want PUBREL")
				}
				u := g.Props.User
				if !g.Dup || g.PacketID != p.PacketID || string(g.Payload) != "payload-a" || string(g.Topic) != "q2/a" ||
					len(u) == 0 || u[len(u)-1] != (mqtt.UserProperty{Key: broker.ReleasedProperty, Value: "1"}) {
					t.Fatalf("re-sent %+v, want DUP, packet id %d, the message and %s last", g, p.PacketID, broker.ReleasedProperty)
				}
			case *mqtt.Pubrel:
				if resend {
					t.Fatalf("got PUBREL, want the released message re-sent whole")
				}
			default:
				t.Fatalf("got %v after resuming, want PUBLISH or PUBREL", got.Type())
			}
			r.Send(t, &mqtt.Pubcomp{PacketID: p.PacketID})
			brokertest.Eventually(t, 5*time.Second, func() error {
				if st := b.Server.InternalStatus(id); st.Inflight != 0 || st.Queued != 0 {
					return fmt.Errorf("after PUBCOMP: %+v", st)
				}
				return nil
			})
		})
	}
}

// TestInternalOldestSurvivesRestart: the time the oldest waiting message
// of an internal session was queued is stored with its entry, so the
// status still reports it after a restart instead of the time the queue
// was read back.
func TestInternalOldestSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	const id = broker.InternalPrefix + "age"
	srv, st, addr := startOnStore(t, dir)
	if err := srv.RegisterInternal(broker.InternalOptions{ID: id}); err != nil {
		t.Fatal(err)
	}
	subscribeInternal(t, srv, id, "age/#", 1)

	pc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	pub := brokertest.NewRaw(pc, mqtt.V5)
	pub.Connect(t, &mqtt.Connect{ClientID: "pub", CleanStart: true})
	before := time.Now()
	for i := range 3 {
		pub.Send(t, &mqtt.Publish{QoS: 1, PacketID: uint16(i + 1), Topic: []byte("age/t"), Payload: []byte("x")})
		pub.Expect(t, mqtt.PUBACK)
	}
	pc.Close()
	if o := srv.InternalStatus(id).Oldest; o.Before(before) || o.After(time.Now()) {
		t.Fatalf("oldest queued at %v, want between %v and now", o, before)
	}
	time.Sleep(1100 * time.Millisecond) // the restart comes a second later at least
	stopOnStore(t, srv, st)

	srv, st, _ = startOnStore(t, dir)
	defer stopOnStore(t, srv, st)
	if err := srv.RegisterInternal(broker.InternalOptions{ID: id}); err != nil {
		t.Fatal(err)
	}
	got := srv.InternalStatus(id)
	if got.Queued != 3 {
		t.Fatalf("after the restart %d queued, want 3", got.Queued)
	}
	// Kept to the second.
	if got.Oldest.Before(before.Truncate(time.Second)) || got.Oldest.After(before.Add(time.Second)) {
		t.Fatalf("after the restart the oldest was queued at %v, want %v (to the second)", got.Oldest, before)
	}
}

// storedEntries counts the queue entries of id in st.
func storedEntries(t *testing.T, st store.Store, id string) int {
	t.Helper()
	n := 0
	if err := st.Queue(id, 0, func(store.QueueEntry, *store.Message) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestInternalQoS0Stored: an internal session (an outbox) stores QoS 0
// messages while offline, as it does QoS 1/2 — other persistent sessions
// keep them in memory only — and on the next connection sends them in
// order and dequeues each once written.
func TestInternalQoS0Stored(t *testing.T) {
	st := store.NewMemory()
	b := brokertest.Start(t, &broker.Options{Store: st, QueueMemoryWindow: 4})
	const id, n = broker.InternalPrefix + "q0", 50
	if err := b.Server.RegisterInternal(broker.InternalOptions{ID: id}); err != nil {
		t.Fatal(err)
	}
	subscribeInternal(t, b.Server, id, "#", 1)

	pub := brokertest.ConnectPaho311(t, b, brokertest.Transports()[0], "pub", nil)
	for i := range n {
		pub.MustPublish("t", 0, false, fmt.Sprint(i))
	}
	brokertest.Eventually(t, 5*time.Second, func() error {
		if q := b.Server.InternalStatus(id).Queued; q != n {
			return fmt.Errorf("%d queued", q)
		}
		return nil
	})
	if e := storedEntries(t, st, id); e != n {
		t.Fatalf("%d of %d queued QoS 0 messages in the store", e, n)
	}

	r := dialInternal(t, b.Server, id, 10)
	for i := range n {
		p := r.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
		if p.QoS != 0 || string(p.Payload) != fmt.Sprint(i) {
			t.Fatalf("message %d: got QoS %d %q", i, p.QoS, p.Payload)
		}
	}
	brokertest.Eventually(t, 5*time.Second, func() error {
		if e := storedEntries(t, st, id); e != 0 {
			return fmt.Errorf("%d entries left in the store", e)
		}
		return nil
	})
}

// TestInternalQoS0StoreFull: a QoS 0 message for an outbox that the store
// budget has no room for is dropped — there is no publisher to refuse —
// and counted, by the server and through OnStoreFull.
func TestInternalQoS0StoreFull(t *testing.T) {
	size := (&store.Message{Topic: "t", Payload: []byte("00"), Origin: "pub"}).Size()
	const id, room = broker.InternalPrefix + "full", 5
	b := brokertest.Start(t, &broker.Options{MaxStoreBytes: int64(room * size)})
	var full atomic.Int64
	if err := b.Server.RegisterInternal(broker.InternalOptions{ID: id,
		OnStoreFull: func(topic string) { full.Add(1) }}); err != nil {
		t.Fatal(err)
	}
	subscribeInternal(t, b.Server, id, "#", 0)

	pub := brokertest.ConnectPaho311(t, b, brokertest.Transports()[0], "pub", nil)
	const n = 3 * room
	for i := range n {
		pub.MustPublish("t", 0, false, fmt.Sprintf("%02d", i))
	}
	brokertest.Eventually(t, 5*time.Second, func() error {
		if q, f := b.Server.InternalStatus(id).Queued, full.Load(); q+int(f) != n {
			return fmt.Errorf("%d queued, %d dropped for the store budget", q, f)
		}
		return nil
	})
	if q := b.Server.InternalStatus(id).Queued; q != room {
		t.Errorf("%d queued, want the %d the budget has room for", q, room)
	}
	if d := b.Server.Stats().Dropped["store_full"]; d != full.Load() {
		t.Errorf("server counts %d store_full drops, OnStoreFull %d", d, full.Load())
	}
}

// TestDialInternalIdle: on a DialInternalIdle connection the session
// sends nothing it holds (QoS 0 and QoS 1) nor what arrives meanwhile,
// yet answers SUBSCRIBE; the next ordinary connection gets all of it.
func TestDialInternalIdle(t *testing.T) {
	b := brokertest.Start(t, nil)
	const id = broker.InternalPrefix + "idle"
	if err := b.Server.RegisterInternal(broker.InternalOptions{ID: id}); err != nil {
		t.Fatal(err)
	}
	subscribeInternal(t, b.Server, id, "a/#", 1)
	pub := brokertest.ConnectPaho311(t, b, brokertest.Transports()[0], "pub", nil)
	pub.MustPublish("a/0", 0, false, "q0")
	pub.MustPublish("a/1", 1, false, "q1")

	conn, err := b.Server.DialInternalIdle(id)
	if err != nil {
		t.Fatal(err)
	}
	idle := brokertest.NewRaw(conn, mqtt.V5)
	c := &mqtt.Connect{ClientID: "ignored"}
	c.Props.SessionExpiry = 0xFFFFFFFF
	if ack := idle.Connect(t, c); ack.ReasonCode != 0 || !ack.SessionPresent {
		t.Fatalf("CONNACK %v, session present %v", ack.ReasonCode, ack.SessionPresent)
	}
	idle.Send(t, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "b/#", QoS: 1}}})
	idle.Expect(t, mqtt.SUBACK)
	pub.MustPublish("b/0", 1, false, "new")
	if p, err := idle.Read(300 * time.Millisecond); err == nil {
		t.Fatalf("the idle connection got %v %v", p.Type(), p)
	}
	idle.Send(t, &mqtt.Disconnect{})
	conn.Close()

	r := dialInternal(t, b.Server, id, 10)
	var got []string
	for range 3 {
		p := r.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
		got = append(got, string(p.Topic)+":"+string(p.Payload))
		if p.QoS > 0 {
			r.Send(t, &mqtt.Puback{PacketID: p.PacketID})
		}
	}
	if want := "[a/0:q0 a/1:q1 b/0:new]"; fmt.Sprint(got) != want {
		t.Fatalf("got %v, want %s", got, want)
	}
}

// storedState returns the state of the one queue entry of id in st.
func storedState(t *testing.T, st store.Store, id string) store.EntryState {
	t.Helper()
	var states []store.EntryState
	if err := st.Queue(id, 0, func(e store.QueueEntry, _ *store.Message) bool {
		states = append(states, e.State)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(states) != 1 {
		t.Fatalf("%d queue entries, want 1", len(states))
	}
	return states[0]
}

// TestInternalPeerSessionLost: a CONNECT with PeerSessionLostProperty
// (the bridge's upstream lost its session) puts a QoS 2 delivery past
// PUBREC back to sent, in the store before CONNACK, and it is re-sent as
// the message with DUP, unmarked; so is it on the next connection,
// without the property — what a crash before upstream had it again leads
// to — rather than as a release that would find nothing upstream.
func TestInternalPeerSessionLost(t *testing.T) {
	st := store.NewMemory()
	b := brokertest.Start(t, &broker.Options{Store: st})
	const id = broker.InternalPrefix + "lost"
	if err := b.Server.RegisterInternal(broker.InternalOptions{ID: id, ResendReleased: true}); err != nil {
		t.Fatal(err)
	}
	p := releaseOneQoS2(t, b, id)
	brokertest.Eventually(t, 5*time.Second, func() error {
		if s := storedState(t, st, id); s != store.EntryReleased {
			return fmt.Errorf("stored state %v, want released", s)
		}
		return nil
	})

	resentWhole := func(r *brokertest.Raw, when string) {
		t.Helper()
		g, ok := r.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
		if !ok || !g.Dup || g.PacketID != p.PacketID || string(g.Payload) != "payload-a" {
			t.Fatalf("%s: re-sent %+v, want the message with DUP and packet id %d", when, g, p.PacketID)
		}
		for _, u := range g.Props.User {
			if u.Key == broker.ReleasedProperty {
				t.Fatalf("%s: re-sent marked %s, want it as a message to publish again", when, broker.ReleasedProperty)
			}
		}
	}
	conn, err := b.Server.DialInternal(id)
	if err != nil {
		t.Fatal(err)
	}
	r := brokertest.NewRaw(conn, mqtt.V5)
	c := &mqtt.Connect{ClientID: "ignored"}
	c.Props.SessionExpiry = 0xFFFFFFFF
	c.Props.User = []mqtt.UserProperty{{Key: broker.PeerSessionLostProperty, Value: "1"}}
	c.Props.Set(mqtt.PropUserProperty)
	if ack := r.Connect(t, c); ack.ReasonCode != 0 {
		t.Fatalf("CONNACK %v", ack.ReasonCode)
	}
	if s := storedState(t, st, id); s != store.EntrySent {
		t.Fatalf("after CONNACK with %s the stored state is %v, want sent", broker.PeerSessionLostProperty, s)
	}
	resentWhole(r, "peer session lost")
	conn.Close() // the "crash": upstream never got it

	r = dialInternal(t, b.Server, id, 10)
	resentWhole(r, "next connection")
	r.Send(t, &mqtt.Pubrec{PacketID: p.PacketID})
	r.Expect(t, mqtt.PUBREL)
	r.Send(t, &mqtt.Pubcomp{PacketID: p.PacketID})
	waitInternalEmpty(t, b.Server, id)
}

// TestInternalBudgetConcurrentPublishers: publishers routing to an
// internal session at the same moment, their messages waiting for the
// same group commit, still keep it within its byte budget — a message
// admitted counts before it is delivered.
func TestInternalBudgetConcurrentPublishers(t *testing.T) {
	srv, st, addr := startOnStore(t, t.TempDir())
	defer stopOnStore(t, srv, st)
	const id, budget, publishers, each = broker.InternalPrefix + "budget", 20, 8, 40
	size := (&store.Message{Topic: "b/0", Payload: []byte("000"), Origin: "pub-0"}).Size()
	if err := srv.RegisterInternal(broker.InternalOptions{ID: id, MaxBytes: int64(budget * size),
		Policy: func(string) broker.OverflowPolicy { return broker.DropOldest }}); err != nil {
		t.Fatal(err)
	}
	subscribeInternal(t, srv, id, "b/#", 1)

	b := &brokertest.Broker{Server: srv, Addr: addr}
	var pubs []*brokertest.Paho311
	for i := range publishers {
		pubs = append(pubs, brokertest.ConnectPaho311(t, b, brokertest.Transports()[0], fmt.Sprintf("pub-%d", i), nil))
	}
	over := 0
	for range each {
		done := make(chan struct{})
		for i, p := range pubs {
			go func() {
				defer func() { done <- struct{}{} }()
				p.MustPublish(fmt.Sprintf("b/%d", i), 1, false, "000")
			}()
		}
		for range pubs {
			<-done
		}
		if q := srv.InternalStatus(id).QueuedBytes; q > int64(budget*size) {
			over = max(over, int(q)/size-budget)
		}
	}
	if over > 0 {
		t.Errorf("the queue went %d messages over its budget of %d", over, budget)
	}
}

// TestOrderBehindStoredMessage: messages of one publisher reach a
// subscriber of their topic in the order published [MQTT-4.6.0-5], also
// when the first ones wait for a store commit (an outbox stores them)
// and the later ones need none (the outbox's budget drops them).
func TestOrderBehindStoredMessage(t *testing.T) {
	srv, st, addr := startOnStore(t, t.TempDir())
	defer stopOnStore(t, srv, st)
	const id, n = broker.InternalPrefix + "order", 300
	size := (&store.Message{Topic: "o/t", Payload: []byte("000"), Origin: "pub"}).Size()
	if err := srv.RegisterInternal(broker.InternalOptions{ID: id, MaxBytes: int64(5 * size)}); err != nil { // DropNew
		t.Fatal(err)
	}
	subscribeInternal(t, srv, id, "o/#", 1)
	b := &brokertest.Broker{Server: srv, Addr: addr}
	sub := brokertest.ConnectPaho311(t, b, brokertest.Transports()[0], "sub", nil)
	sub.MustSubscribe("o/#", 0)
	pub := brokertest.ConnectPaho311(t, b, brokertest.Transports()[0], "pub", nil)
	for i := range n {
		pub.Publish("o/t", 0, false, fmt.Sprintf("%03d", i))
	}
	for i := range n {
		select {
		case m := <-sub.Msgs:
			if got := string(m.Payload()); got != fmt.Sprintf("%03d", i) {
				t.Fatalf("message %d: got %s", i, got)
			}
		case <-time.After(brokertest.WaitTimeout):
			t.Fatalf("message %d did not arrive", i)
		}
	}
	if q := srv.InternalStatus(id).Queued; q != 5 {
		t.Errorf("the outbox holds %d, want the 5 its budget takes", q)
	}
}
