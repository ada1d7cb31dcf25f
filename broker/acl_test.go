package broker_test

import (
	"os"
	"testing"

	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

const aclTestFile = `
user alice
topic readwrite alice/#
topic read shared/a/b
topic write shared/#
topic read retained/ok

user bob
topic readwrite #
`

func aclBroker(t *testing.T) (*brokertest.Broker, *broker.FileAccess, broker.FileAccessConfig) {
	t.Helper()
	return startWithFiles(t, passwdLine(t, "alice", "a")+passwdLine(t, "bob", "b"), aclTestFile, false, nil)
}

// login connects a raw client as user (password = first letter).
func login(t *testing.T, b *brokertest.Broker, v mqtt.Version, user string) *brokertest.Raw {
	t.Helper()
	r := brokertest.NewRaw(b.DialTCP(t), v)
	ack := r.Connect(t, &mqtt.Connect{ProtocolLevel: v, ClientID: user + "-" + v.String(), CleanStart: true,
		HasUsername: true, Username: user, HasPassword: true, Password: []byte(user[:1])})
	if ack.ReasonCode != mqtt.Success {
		t.Fatalf("%s: CONNACK 0x%02x", user, byte(ack.ReasonCode))
	}
	return r
}

func subscribe(t *testing.T, r *brokertest.Raw, pid uint16, filters ...string) []mqtt.ReasonCode {
	t.Helper()
	s := &mqtt.Subscribe{PacketID: pid}
	for _, f := range filters {
		s.Subscriptions = append(s.Subscriptions, mqtt.Subscription{Filter: f, QoS: 1})
	}
	r.Send(t, s)
	return r.Expect(t, mqtt.SUBACK).(*mqtt.Suback).ReasonCodes
}

func publish(t *testing.T, r *brokertest.Raw, qos byte, pid uint16, topic string, retain bool) {
	t.Helper()
	r.Send(t, &mqtt.Publish{QoS: qos, PacketID: pid, Topic: []byte(topic), Payload: []byte("x"), Retain: retain})
}

// nextPublish returns the next packet, which must be a PUBLISH.
func nextPublish(t *testing.T, r *brokertest.Raw) *mqtt.Publish {
	t.Helper()
	return r.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
}

func TestACLSubscribeV5AndV311(t *testing.T) {
	b, _, _ := aclBroker(t)
	a5 := login(t, b, mqtt.V5, "alice")
	got := subscribe(t, a5, 1, "bob/x", "shared/#", "alice/+", "$SYS/#")
	want := []mqtt.ReasonCode{mqtt.NotAuthorized, 1, 1, mqtt.NotAuthorized}
	if !equalCodes(got, want) {
		t.Fatalf("5.0 SUBACK %v, want %v", got, want)
	}
	a3 := login(t, b, mqtt.V311, "alice")
	got = subscribe(t, a3, 1, "bob/x", "alice/#")
	want = []mqtt.ReasonCode{0x80, 1}
	if !equalCodes(got, want) {
		t.Fatalf("3.1.1 SUBACK %v, want %v", got, want)
	}
}

func equalCodes(a, b []mqtt.ReasonCode) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestACLDeliveryFiltered: a subscription wider than what is readable is
// granted, and only readable topics are delivered.
func TestACLDeliveryFiltered(t *testing.T) {
	b, _, _ := aclBroker(t)
	alice := login(t, b, mqtt.V5, "alice")
	subscribe(t, alice, 1, "shared/#")
	bob := login(t, b, mqtt.V5, "bob")
	publish(t, bob, 1, 1, "shared/a/c", false) // not readable by alice
	bob.Expect(t, mqtt.PUBACK)
	publish(t, bob, 1, 2, "shared/a/b", false)
	bob.Expect(t, mqtt.PUBACK)
	if p := nextPublish(t, alice); string(p.Topic) != "shared/a/b" {
		t.Fatalf("alice got %q first, want shared/a/b (shared/a/c is not readable)", p.Topic)
	}
}

// TestACLPublishDenied: MQTT 5.0 gets PUBACK/PUBREC 0x87; 3.1.1 gets a
// normal acknowledgement and the message is dropped and counted.
func TestACLPublishDenied(t *testing.T) {
	b, _, _ := aclBroker(t)
	bob := login(t, b, mqtt.V5, "bob")
	subscribe(t, bob, 1, "#")

	a5 := login(t, b, mqtt.V5, "alice")
	publish(t, a5, 1, 10, "bob/x", false)
	if ack := a5.Expect(t, mqtt.PUBACK).(*mqtt.Puback); ack.ReasonCode != mqtt.NotAuthorized {
		t.Fatalf("5.0 PUBACK 0x%02x, want 0x87", byte(ack.ReasonCode))
	}
	publish(t, a5, 2, 11, "bob/x", false)
	if rec := a5.Expect(t, mqtt.PUBREC).(*mqtt.Pubrec); rec.ReasonCode != mqtt.NotAuthorized {
		t.Fatalf("5.0 PUBREC 0x%02x, want 0x87", byte(rec.ReasonCode))
	}
	publish(t, a5, 0, 0, "bob/x", false)

	a3 := login(t, b, mqtt.V311, "alice")
	publish(t, a3, 1, 12, "bob/x", false)
	a3.Expect(t, mqtt.PUBACK)
	publish(t, a3, 2, 13, "bob/x", false)
	a3.Expect(t, mqtt.PUBREC)
	a3.Send(t, &mqtt.Pubrel{PacketID: 13})
	a3.Expect(t, mqtt.PUBCOMP)

	publish(t, a5, 1, 14, "shared/ok", false) // allowed: write shared/#
	a5.Expect(t, mqtt.PUBACK)
	if p := nextPublish(t, bob); string(p.Topic) != "shared/ok" {
		t.Fatalf("bob got %q, want only shared/ok", p.Topic)
	}
	if n := b.Server.Stats().Dropped["not_authorized"]; n != 5 {
		t.Errorf("dropped not_authorized = %d, want 5", n)
	}
}

func TestACLRetainedDeliveryFiltered(t *testing.T) {
	b, _, _ := aclBroker(t)
	bob := login(t, b, mqtt.V5, "bob")
	publish(t, bob, 1, 1, "retained/no", true)
	bob.Expect(t, mqtt.PUBACK)
	publish(t, bob, 1, 2, "retained/ok", true)
	bob.Expect(t, mqtt.PUBACK)
	alice := login(t, b, mqtt.V5, "alice")
	if got := subscribe(t, alice, 1, "retained/#", "alice/#"); got[0] != 1 {
		t.Fatalf("SUBACK %v", got)
	}
	if p := nextPublish(t, alice); string(p.Topic) != "retained/ok" || !p.Retain {
		t.Fatalf("got %q retain=%v, want retained/ok", p.Topic, p.Retain)
	}
	publish(t, bob, 1, 3, "alice/sentinel", false)
	if p := nextPublish(t, alice); string(p.Topic) != "alice/sentinel" {
		t.Fatalf("got %q, want alice/sentinel (retained/no is not readable)", p.Topic)
	}
}

func TestACLWillTopicRefused(t *testing.T) {
	b, _, _ := aclBroker(t)
	for _, v := range []mqtt.Version{mqtt.V5, mqtt.V311} {
		r := brokertest.NewRaw(b.DialTCP(t), v)
		ack := r.Connect(t, &mqtt.Connect{ProtocolLevel: v, ClientID: "w", CleanStart: true,
			HasUsername: true, Username: "alice", HasPassword: true, Password: []byte("a"),
			Will: &mqtt.Will{Topic: "bob/will", Payload: []byte("gone")}})
		want := mqtt.NotAuthorized
		if v != mqtt.V5 {
			want = mqtt.ReasonCode(mqtt.ConnRefusedNotAuthorized)
		}
		if ack.ReasonCode != want {
			t.Fatalf("%v: CONNACK 0x%02x, want 0x%02x", v, byte(ack.ReasonCode), byte(want))
		}
	}
}

// TestACLReload: Reload switches to new files; a broken file keeps the
// old ones.
func TestACLReload(t *testing.T) {
	b, fa, cfg := aclBroker(t)
	alice := login(t, b, mqtt.V5, "alice")
	if got := subscribe(t, alice, 1, "bob/x"); got[0] != mqtt.NotAuthorized {
		t.Fatalf("before reload: %v", got)
	}
	if err := os.WriteFile(cfg.ACLFile, []byte("user alice\ntopic read bob/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := fa.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := subscribe(t, alice, 2, "bob/x"); got[0] != 1 {
		t.Fatalf("after reload: %v", got)
	}
	if err := os.WriteFile(cfg.ACLFile, []byte("user alice\ntopic sometimes bob/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.PasswordFile, []byte("alice:plain\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := fa.Reload(); err == nil {
		t.Fatal("broken files reloaded without error")
	}
	if got := subscribe(t, alice, 3, "bob/y"); got[0] != 1 {
		t.Fatalf("after a failed reload the old ACL should hold: %v", got)
	}
	login(t, b, mqtt.V5, "alice") // the old password file still holds too
}
