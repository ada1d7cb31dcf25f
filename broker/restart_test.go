package broker_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
	badgerstore "github.com/weirmq/weir/store/badger"
)

// startOnStore runs an in-process broker on an open Badger store in dir,
// with access control a if not nil.
func startOnStore(t *testing.T, dir string, a ...broker.AccessControl) (*broker.Server, *badgerstore.Store, string) {
	t.Helper()
	st, err := badgerstore.Open(badgerstore.Options{Dir: dir, GCInterval: -1, Logger: brokertest.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	o := &broker.Options{Store: st, Logger: brokertest.Discard()}
	if len(a) > 0 {
		o.Access = a[0]
	}
	srv, err := broker.New(o)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	return srv, st, l.Addr().String()
}

func stopOnStore(t *testing.T, srv *broker.Server, st *badgerstore.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestGracefulRestartKeepsQoS0Queue: QoS 0 messages queued in memory for an
// offline persistent session are saved at a graceful shutdown and
// delivered, in order with the QoS 1 ones, after the restart.
func TestGracefulRestartKeepsQoS0Queue(t *testing.T) {
	dir := t.TempDir()
	srv, st, addr := startOnStore(t, dir)
	dial := func(addr string) *brokertest.Raw {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return brokertest.NewRaw(conn, mqtt.V311)
	}
	sub := dial(addr)
	sub.Connect(t, &mqtt.Connect{ProtocolLevel: mqtt.V311, ClientID: "keep"})
	sub.Send(t, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "k/#", QoS: 1}}})
	sub.Expect(t, mqtt.SUBACK)
	sub.Send(t, &mqtt.Disconnect{})
	sub.ExpectClosed(t)

	pub := dial(addr)
	pub.Connect(t, &mqtt.Connect{ProtocolLevel: mqtt.V311, CleanStart: true, ClientID: "pub"})
	for i := range 6 {
		qos := byte(i % 2)
		pub.Send(t, &mqtt.Publish{QoS: qos, PacketID: uint16(i + 1), Topic: []byte("k/t"), Payload: []byte(fmt.Sprint(i))})
		if qos == 1 {
			pub.Expect(t, mqtt.PUBACK)
		}
	}
	// A PINGRESP after the last QoS 0 PUBLISH means the broker has read it.
	pub.Send(t, &mqtt.Pingreq{})
	pub.Expect(t, mqtt.PINGRESP)
	stopOnStore(t, srv, st)

	srv, st, addr = startOnStore(t, dir)
	defer stopOnStore(t, srv, st)
	sub = dial(addr)
	if !sub.Connect(t, &mqtt.Connect{ProtocolLevel: mqtt.V311, ClientID: "keep"}).SessionPresent {
		t.Fatal("session not present after restart")
	}
	for i := range 6 {
		p := sub.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
		if string(p.Payload) != fmt.Sprint(i) || p.QoS != byte(i%2) {
			t.Fatalf("message %d: %q at QoS %d", i, p.Payload, p.QoS)
		}
		if p.QoS == 1 {
			sub.Send(t, &mqtt.Puback{PacketID: p.PacketID})
		}
	}
}

// TestRestartKeepsSessionIdentity: a persistent session restored from the
// store is checked against the ACL as its user, not as an anonymous
// client, while its client is offline: messages its user may read are
// queued for it after a restart.
func TestRestartKeepsSessionIdentity(t *testing.T) {
	files := t.TempDir()
	fa, err := broker.NewFileAccess(broker.FileAccessConfig{
		PasswordFile: writeFile(t, files, "passwd", passwdLine(t, "alice", "a")+passwdLine(t, "pub", "p")),
		ACLFile:      writeFile(t, files, "acl", "user alice\ntopic read secret/#\nuser pub\ntopic write secret/#\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	srv, st, addr := startOnStore(t, dir, fa)
	dial := func(addr string, c *mqtt.Connect) *brokertest.Raw {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		r := brokertest.NewRaw(conn, mqtt.V311)
		c.ProtocolLevel = mqtt.V311
		if ack := r.Connect(t, c); ack.ReasonCode != 0 {
			t.Fatalf("CONNACK %d for %q", ack.ReasonCode, c.ClientID)
		}
		return r
	}
	alice := func(addr string) *brokertest.Raw {
		return dial(addr, &mqtt.Connect{ClientID: "alice-1", HasUsername: true, Username: "alice", HasPassword: true, Password: []byte("a")})
	}
	sub := alice(addr)
	sub.Send(t, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "secret/#", QoS: 1}}})
	if ack := sub.Expect(t, mqtt.SUBACK).(*mqtt.Suback); ack.ReasonCodes[0] != 1 {
		t.Fatalf("SUBACK %v, want QoS 1 granted", ack.ReasonCodes)
	}
	sub.Send(t, &mqtt.Disconnect{})
	sub.ExpectClosed(t)
	stopOnStore(t, srv, st)

	srv, st, addr = startOnStore(t, dir, fa)
	defer stopOnStore(t, srv, st)
	pub := dial(addr, &mqtt.Connect{ClientID: "pub", CleanStart: true, HasUsername: true, Username: "pub", HasPassword: true, Password: []byte("p")})
	pub.Send(t, &mqtt.Publish{QoS: 1, PacketID: 1, Topic: []byte("secret/x"), Payload: []byte("for alice")})
	pub.Expect(t, mqtt.PUBACK)
	sub = alice(addr)
	p := sub.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
	if string(p.Payload) != "for alice" {
		t.Fatalf("got %q, want the message published while alice was offline", p.Payload)
	}
}

// TestRestartKeepsSharedGroup: shared-subscription messages queued for a
// persistent member whose group had nobody else online stay with it (also
// across a restart) and keep their group: when the member disconnects
// again without completing them while another member is online, they go
// to that member (MQTT 5.0 §4.8.2).
func TestRestartKeepsSharedGroup(t *testing.T) {
	dir := t.TempDir()
	srv, st, addr := startOnStore(t, dir)
	dial := func(addr, id string, recvMax uint16) *brokertest.Raw {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		r := brokertest.NewRaw(conn, mqtt.V5)
		c := &mqtt.Connect{ProtocolLevel: mqtt.V5, ClientID: id}
		c.Props.SessionExpiry = 300
		c.Props.ReceiveMaximum = recvMax
		r.Connect(t, c)
		return r
	}
	subscribe := func(r *brokertest.Raw) {
		r.Send(t, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "$share/g/s/#", QoS: 1}}})
		r.Expect(t, mqtt.SUBACK)
	}
	b := dial(addr, "b", 10)
	subscribe(b)
	b.Send(t, &mqtt.Disconnect{})
	b.ExpectClosed(t)
	a := dial(addr, "a", 1)
	subscribe(a)
	pub := dial(addr, "pub", 10)
	for i := range 4 {
		pub.Send(t, &mqtt.Publish{QoS: 1, PacketID: uint16(i + 1), Topic: []byte("s/x"), Payload: []byte(fmt.Sprint(i))})
		pub.Expect(t, mqtt.PUBACK)
	}
	a.Expect(t, mqtt.PUBLISH) // the only online member gets all four; one in flight
	a.Send(t, &mqtt.Disconnect{})
	a.ExpectClosed(t) // nobody else online: a keeps them
	stopOnStore(t, srv, st)

	srv, st, addr = startOnStore(t, dir)
	defer stopOnStore(t, srv, st)
	b = dial(addr, "b", 10)
	if p, err := b.Read(300 * time.Millisecond); err == nil {
		t.Fatalf("b got %v before a came back", p)
	}
	a = dial(addr, "a", 1)
	a.Expect(t, mqtt.PUBLISH) // re-sent, not acknowledged
	a.Send(t, &mqtt.Disconnect{})
	a.ExpectClosed(t)
	// a left again without completing them, and b is online: b gets all.
	got := map[string]bool{}
	for len(got) < 4 {
		p := b.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
		got[string(p.Payload)] = true
		b.Send(t, &mqtt.Puback{PacketID: p.PacketID})
	}
}

// TestGracefulRestartKeepsQoS1PacketIDs: a QoS 1 message sent and not
// acknowledged before a graceful restart is re-sent after it with its
// original packet id and DUP set [MQTT-4.4.0-1] [MQTT-3.3.1-1].
func TestGracefulRestartKeepsQoS1PacketIDs(t *testing.T) {
	dir := t.TempDir()
	srv, st, addr := startOnStore(t, dir)
	dial := func(addr string, c *mqtt.Connect) *brokertest.Raw {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		r := brokertest.NewRaw(conn, mqtt.V311)
		c.ProtocolLevel = mqtt.V311
		r.Connect(t, c)
		return r
	}
	sub := dial(addr, &mqtt.Connect{ClientID: "keep-ids"})
	sub.Send(t, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "k/#", QoS: 1}}})
	sub.Expect(t, mqtt.SUBACK)
	pub := dial(addr, &mqtt.Connect{ClientID: "pub", CleanStart: true})
	for i := range 3 {
		pub.Send(t, &mqtt.Publish{QoS: 1, PacketID: uint16(i + 1), Topic: []byte("k/t"), Payload: []byte(fmt.Sprint(i))})
		pub.Expect(t, mqtt.PUBACK)
	}
	first := map[string]uint16{}
	for range 3 {
		p := sub.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
		first[string(p.Payload)] = p.PacketID // not acknowledged
	}
	sub.Send(t, &mqtt.Disconnect{})
	sub.ExpectClosed(t)
	stopOnStore(t, srv, st)

	srv, st, addr = startOnStore(t, dir)
	defer stopOnStore(t, srv, st)
	sub = dial(addr, &mqtt.Connect{ClientID: "keep-ids"})
	for range 3 {
		p := sub.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
		if pid, ok := first[string(p.Payload)]; !ok || p.PacketID != pid || !p.Dup {
			t.Errorf("re-sent %q with packet id %d, DUP %v; want packet id %d (%v), DUP set", p.Payload, p.PacketID, p.Dup, pid, ok)
		}
		sub.Send(t, &mqtt.Puback{PacketID: p.PacketID})
	}
}
