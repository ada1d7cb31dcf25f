package broker_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

func anonConnect(t *testing.T, b *brokertest.Broker, v mqtt.Version, id string) *brokertest.Raw {
	t.Helper()
	r := brokertest.NewRaw(b.DialTCP(t), v)
	if ack := r.Connect(t, &mqtt.Connect{ProtocolLevel: v, ClientID: id, CleanStart: true}); ack.ReasonCode != 0 {
		t.Fatalf("CONNACK 0x%02x", byte(ack.ReasonCode))
	}
	return r
}

func TestMaxConnectionsPerIP(t *testing.T) {
	b := brokertest.Start(t, &broker.Options{MaxConnectionsPerIP: 3})
	var conns []*brokertest.Raw
	for i := range 3 {
		conns = append(conns, anonConnect(t, b, mqtt.V5, "ip-"+string(rune('a'+i))))
	}
	// The fourth is closed at once, before any CONNACK.
	r := brokertest.NewRaw(b.DialTCP(t), mqtt.V5)
	r.ExpectClosed(t)
	if st := b.Server.Stats(); st.Refused != 1 {
		t.Errorf("Refused %d, want 1", st.Refused)
	}
	conns[0].Conn.Close()
	brokertest.Eventually(t, 5*time.Second, func() error {
		if n := b.Server.Stats().Connections; n != 2 {
			return fmt.Errorf("%d connections, want 2", n)
		}
		return nil
	})
	anonConnect(t, b, mqtt.V5, "ip-again")
}

func TestTopicLimits(t *testing.T) {
	b := brokertest.Start(t, &broker.Options{MaxTopicLength: 16, MaxTopicLevels: 3})
	r := anonConnect(t, b, mqtt.V5, "topics5")
	got := subscribe(t, r, 1, "a/b/c", "a/b/c/d", strings.Repeat("x", 17), "ok/#")
	want := []mqtt.ReasonCode{1, mqtt.TopicFilterInvalid, mqtt.TopicFilterInvalid, 1}
	if !equalCodes(got, want) {
		t.Fatalf("5.0 SUBACK %v, want %v", got, want)
	}
	r3 := anonConnect(t, b, mqtt.V311, "topics3")
	if got := subscribe(t, r3, 1, "a/b/c/d"); got[0] != 0x80 {
		t.Fatalf("3.1.1 SUBACK %v, want 0x80", got)
	}
	publish(t, r, 1, 2, "a/b/c/d", false)
	r.ExpectDisconnect(t, mqtt.TopicNameInvalid)

	r = anonConnect(t, b, mqtt.V5, "topics5b")
	publish(t, r, 0, 0, strings.Repeat("y", 17), false)
	r.ExpectDisconnect(t, mqtt.TopicNameInvalid)

	publish(t, r3, 0, 0, strings.Repeat("y", 17), false)
	r3.ExpectClosed(t)
}

func TestMaxSubscriptionsPerClient(t *testing.T) {
	b := brokertest.Start(t, &broker.Options{MaxSubscriptionsPerClient: 2})
	r := anonConnect(t, b, mqtt.V5, "subs")
	got := subscribe(t, r, 1, "a", "b", "c")
	if want := []mqtt.ReasonCode{1, 1, mqtt.QuotaExceeded}; !equalCodes(got, want) {
		t.Fatalf("SUBACK %v, want %v", got, want)
	}
	// Replacing an existing subscription is not a new one.
	if got := subscribe(t, r, 2, "a"); got[0] != 1 {
		t.Fatalf("resubscribe: %v", got)
	}
	r.Send(t, &mqtt.Unsubscribe{PacketID: 3, Filters: []string{"b"}})
	r.Expect(t, mqtt.UNSUBACK)
	if got := subscribe(t, r, 4, "c"); got[0] != 1 {
		t.Fatalf("after unsubscribe: %v", got)
	}
}

// TestPublishRateBackPressure: a client publishing faster than
// PublishRate is slowed by not reading from it; nothing is dropped, and
// another client is not slowed.
func TestPublishRateBackPressure(t *testing.T) {
	const rate, burst, n = 50, 5, 30
	b := brokertest.Start(t, &broker.Options{PublishRate: rate, PublishBurst: burst})
	sub := anonConnect(t, b, mqtt.V5, "rate-sub")
	subscribe(t, sub, 1, "rate/#")
	fast := anonConnect(t, b, mqtt.V5, "rate-fast")
	start := time.Now()
	var all []byte
	for range n {
		pkt, _ := (&mqtt.Publish{Topic: []byte("rate/x"), Payload: []byte("p")}).AppendTo(nil, mqtt.V5)
		all = append(all, pkt...)
	}
	ping, _ := (&mqtt.Pingreq{}).AppendTo(nil, mqtt.V5)
	fast.SendBytes(t, append(all, ping...))

	// Meanwhile another client gets its PINGRESP at once.
	other := anonConnect(t, b, mqtt.V5, "rate-other")
	t0 := time.Now()
	other.Send(t, &mqtt.Pingreq{})
	other.Expect(t, mqtt.PINGRESP)
	if d := time.Since(t0); d > time.Second {
		t.Errorf("another client waited %v for PINGRESP", d)
	}

	fast.Expect(t, mqtt.PINGRESP)
	took := time.Since(start)
	minWait := time.Duration(float64(n-burst) / rate * float64(time.Second))
	if took < minWait*8/10 {
		t.Errorf("%d publishes took %v; at %d/s with burst %d they need at least %v", n, took, rate, burst, minWait)
	}
	for i := range n {
		if _, err := sub.Read(brokertest.WaitTimeout); err != nil {
			t.Fatalf("message %d not delivered: %v", i, err)
		}
	}
	t.Logf("%d publishes at rate %d/s burst %d: %v (minimum %v)", n, rate, burst, took, minWait)
}

func TestMaxRetained(t *testing.T) {
	b := brokertest.Start(t, &broker.Options{MaxRetainedMessages: 2, MaxRetainedBytes: 1000})
	r := anonConnect(t, b, mqtt.V5, "ret")
	pub := func(qos byte, pid uint16, topic string, size int) {
		t.Helper()
		r.Send(t, &mqtt.Publish{QoS: qos, PacketID: pid, Topic: []byte(topic), Payload: []byte(strings.Repeat("r", size)), Retain: true})
	}
	pub(0, 0, "ret/a", 10)
	pub(0, 0, "ret/b", 10)
	pub(0, 0, "ret/c", 10) // third topic: not retained
	pub(1, 1, "ret/d", 10)
	if ack := r.Expect(t, mqtt.PUBACK).(*mqtt.Puback); ack.ReasonCode != mqtt.QuotaExceeded {
		t.Fatalf("QoS 1 retained over the limit: PUBACK 0x%02x, want 0x97", byte(ack.ReasonCode))
	}
	pub(1, 2, "ret/a", 20) // replacing one is always allowed
	if ack := r.Expect(t, mqtt.PUBACK).(*mqtt.Puback); ack.ReasonCode.IsError() {
		t.Fatalf("replacing a retained message: PUBACK 0x%02x", byte(ack.ReasonCode))
	}
	pub(1, 3, "ret/b", 2000) // over the bytes
	if ack := r.Expect(t, mqtt.PUBACK).(*mqtt.Puback); ack.ReasonCode != mqtt.QuotaExceeded {
		t.Fatalf("retained over max bytes: PUBACK 0x%02x, want 0x97", byte(ack.ReasonCode))
	}
	st := b.Server.Stats()
	if st.Retained != 2 || st.Dropped["retain_limit"] != 1 {
		t.Fatalf("retained %d, dropped retain_limit %d; want 2 and 1", st.Retained, st.Dropped["retain_limit"])
	}
	// What is retained is what a new subscriber gets.
	s := anonConnect(t, b, mqtt.V5, "ret-sub")
	subscribe(t, s, 1, "ret/#")
	seen := map[string]int{}
	for range 2 {
		p := nextPublish(t, s)
		seen[string(p.Topic)] = len(p.Payload)
	}
	if seen["ret/a"] != 20 || seen["ret/b"] != 10 {
		t.Fatalf("retained on subscribe: %v", seen)
	}
}
