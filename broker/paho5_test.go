package broker_test

// MQTT 5.0 behaviour of the broker, checked with the real paho.golang client
// over real sockets (and, where the wire form is the thing under test, with a
// raw client built on the project's codec). Every wait is bounded; no test
// sleeps to synchronise, only to let an expiry interval under test pass.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

func p5u16(v uint16) *uint16 { return &v }
func p5u32(v uint32) *uint32 { return &v }
func p5u8(v byte) *byte      { return &v }

// p5connect is a clean-start CONNECT for client id.
func p5connect(id string) *paho.Connect {
	return &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}
}

func p5sub(filter string, qos byte) *paho.Subscribe {
	return &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: qos}}}
}

// p5waitConnections waits until the broker holds n connections, so that a
// test knows the broker has seen a client go.
func p5waitConnections(t *testing.T, b *brokertest.Broker, n int) {
	t.Helper()
	brokertest.Eventually(t, brokertest.WaitTimeout, func() error {
		if got := b.Server.Stats().Connections; got != n {
			return fmt.Errorf("%d connections, want %d", got, n)
		}
		return nil
	})
}

// p5eachTransport runs f as a subtest over TCP and over WebSocket, each
// with its own broker; dial opens a connection over the transport.
func p5eachTransport(t *testing.T, opts *broker.Options, f func(t *testing.T, b *brokertest.Broker, dial func(testing.TB) net.Conn)) {
	for _, tr := range []string{"tcp", "ws"} {
		t.Run(tr, func(t *testing.T) {
			b := brokertest.Start(t, opts)
			dial := b.DialTCP
			if tr == "ws" {
				dial = b.DialWS
			}
			f(t, b, dial)
		})
	}
}

// p5connectVia connects a paho client over a connection from dial.
func p5connectVia(t *testing.T, dial func(testing.TB) net.Conn, cp *paho.Connect) *brokertest.Paho {
	t.Helper()
	c, err := brokertest.ConnectPaho(t, dial(t), cp, nil)
	if err != nil {
		t.Fatalf("connect %q: %v", cp.ClientID, err)
	}
	return c
}

// p5roundTrip publishes at QoS 0, 1 and 2 from one client to another, both
// connected with dial, and checks topic, payload and QoS of what arrives
// and the publisher's acknowledgements (§4.3).
func p5roundTrip(t *testing.T, dial func(testing.TB) net.Conn) {
	subc, err := brokertest.ConnectPaho(t, dial(t), p5connect("rt-sub"), nil)
	if err != nil {
		t.Fatalf("subscriber connect: %v", err)
	}
	sa := subc.MustSubscribe(t, p5sub("rt/#", 2))
	if !bytes.Equal(sa.Reasons, []byte{2}) {
		t.Fatalf("SUBACK reasons %v, want [2] (granted QoS 2)", sa.Reasons)
	}
	pub, err := brokertest.ConnectPaho(t, dial(t), p5connect("rt-pub"), nil)
	if err != nil {
		t.Fatalf("publisher connect: %v", err)
	}
	for qos := byte(0); qos <= 2; qos++ {
		t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
			topic := fmt.Sprintf("rt/qos%d", qos)
			payload := []byte(fmt.Sprintf("payload at QoS %d \x00\xff", qos))
			r := pub.MustPublish(t, &paho.Publish{Topic: topic, QoS: qos, Payload: payload})
			if qos > 0 && r.ReasonCode != 0 {
				t.Errorf("publish acknowledged with reason 0x%02x, want 0x00", r.ReasonCode)
			}
			m := subc.Next(t)
			if m.Topic != topic || !bytes.Equal(m.Payload, payload) || m.QoS != qos {
				t.Errorf("received %q %q QoS %d, want %q %q QoS %d", m.Topic, m.Payload, m.QoS, topic, payload, qos)
			}
		})
	}
}

// QoS 0, 1 and 2 round trips over TCP (§4.3.1, §4.3.2, §4.3.3).
func TestPaho5QoSRoundTripTCP(t *testing.T) {
	b := brokertest.Start(t, nil)
	p5roundTrip(t, b.DialTCP)
}

// The same round trips over MQTT over WebSocket (§6, [MQTT-6.0.0-3]
// subprotocol "mqtt", binary messages [MQTT-6.0.0-1]).
func TestPaho5QoSRoundTripWebSocket(t *testing.T) {
	b := brokertest.Start(t, nil)
	p5roundTrip(t, b.DialWS)
}

// A QoS 1 PUBLISH that matches no subscription is acknowledged with PUBACK
// 0x10 No matching subscribers (§3.4.2.1, Table 3-4), and with 0x00 once a
// subscription matches.
func TestPaho5PubackNoMatchingSubscribers(t *testing.T) {
	b := brokertest.Start(t, nil)
	pub := b.MustConnectPaho(t, p5connect("nms-pub"))
	r := pub.MustPublish(t, &paho.Publish{Topic: "nms/t", QoS: 1, Payload: []byte("x")})
	if r.ReasonCode != byte(mqtt.NoMatchingSubscribers) {
		t.Fatalf("PUBACK reason 0x%02x with no subscribers, want 0x10", r.ReasonCode)
	}
	s := b.MustConnectPaho(t, p5connect("nms-sub"))
	s.MustSubscribe(t, p5sub("nms/+", 1))
	r = pub.MustPublish(t, &paho.Publish{Topic: "nms/t", QoS: 1, Payload: []byte("y")})
	if r.ReasonCode != 0 {
		t.Fatalf("PUBACK reason 0x%02x with a subscriber, want 0x00", r.ReasonCode)
	}
	s.Next(t)
}

// Two overlapping subscriptions of one client with different Subscription
// Identifiers: the message arrives once, with the maximum QoS of the two
// [MQTT-3.3.4-2] and carrying both identifiers [MQTT-3.3.4-3] [MQTT-3.3.4-4].
// (paho.golang keeps only one Subscription Identifier per PUBLISH, so the
// subscriber is a raw client.)
func TestPaho5SubscriptionIdentifiersOverlap(t *testing.T) {
	b := brokertest.Start(t, nil)
	r := b.DialRaw(t)
	if ca := r.Connect(t, &mqtt.Connect{ClientID: "sid-sub", CleanStart: true, KeepAlive: 30}); ca.ReasonCode != 0 {
		t.Fatalf("CONNACK reason %v", ca.ReasonCode)
	}
	r.Send(t, &mqtt.Subscribe{PacketID: 1, Props: mqtt.Properties{SubscriptionIDs: []int{7}},
		Subscriptions: []mqtt.Subscription{{Filter: "sid/+", QoS: 1}}})
	r.Expect(t, mqtt.SUBACK)
	r.Send(t, &mqtt.Subscribe{PacketID: 2, Props: mqtt.Properties{SubscriptionIDs: []int{300}},
		Subscriptions: []mqtt.Subscription{{Filter: "sid/#", QoS: 0}}})
	r.Expect(t, mqtt.SUBACK)

	pub := b.MustConnectPaho(t, p5connect("sid-pub"))
	pub.MustPublish(t, &paho.Publish{Topic: "sid/a", QoS: 1, Payload: []byte("one")})
	pub.MustPublish(t, &paho.Publish{Topic: "sid/end", QoS: 0, Payload: []byte("end")})

	p := r.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
	if string(p.Topic) != "sid/a" || string(p.Payload) != "one" {
		t.Fatalf("first PUBLISH %q %q, want sid/a one", p.Topic, p.Payload)
	}
	ids := slices.Sorted(slices.Values(p.Props.SubscriptionIDs))
	if !slices.Equal(ids, []int{7, 300}) {
		t.Errorf("subscription identifiers %v, want 7 and 300 in one PUBLISH [MQTT-3.3.4-3]", p.Props.SubscriptionIDs)
	}
	if p.QoS != 1 {
		t.Errorf("delivered at QoS %d, want 1, the maximum of the matching subscriptions [MQTT-3.3.4-2]", p.QoS)
	}
	r.Send(t, &mqtt.Puback{PacketID: p.PacketID})
	// The broker sends one copy: the next PUBLISH is the end marker.
	p = r.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
	if string(p.Payload) != "end" {
		t.Fatalf("second PUBLISH %q %q, want the end marker (a duplicate copy was sent)", p.Topic, p.Payload)
	}
}

// A No Local subscription does not receive the client's own messages
// [MQTT-3.8.3-3], but does receive other clients'.
func TestPaho5NoLocal(t *testing.T) {
	b := brokertest.Start(t, nil)
	a := b.MustConnectPaho(t, p5connect("nl-a"))
	a.MustSubscribe(t, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "nl/t", QoS: 1, NoLocal: true}}})
	other := b.MustConnectPaho(t, p5connect("nl-b"))
	other.MustSubscribe(t, p5sub("nl/t", 1))

	a.MustPublish(t, &paho.Publish{Topic: "nl/t", QoS: 1, Payload: []byte("from a")})
	// Once the other subscriber has a's message, a's copy (if any) was sent.
	if m := other.Next(t); string(m.Payload) != "from a" {
		t.Fatalf("other subscriber got %q, want %q", m.Payload, "from a")
	}
	other.MustPublish(t, &paho.Publish{Topic: "nl/t", QoS: 1, Payload: []byte("from b")})
	if m := a.Next(t); string(m.Payload) != "from b" {
		t.Fatalf("No Local subscriber got %q first, want %q: its own message came back [MQTT-3.8.3-3]", m.Payload, "from b")
	}
}

// Retain As Published: a message forwarded from a live publisher keeps its
// RETAIN flag when the option is 1 [MQTT-3.3.1-13] and has it cleared when
// it is 0 [MQTT-3.3.1-12]; retained messages sent because a subscription is
// made have RETAIN 1 whatever the option (§3.3.1.3).
func TestPaho5RetainAsPublished(t *testing.T) {
	b := brokertest.Start(t, nil)
	s := b.MustConnectPaho(t, p5connect("rap-sub"))
	s.MustSubscribe(t, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: "rap/on", QoS: 1, RetainAsPublished: true},
		{Topic: "rap/off", QoS: 1, RetainAsPublished: false},
	}})
	pub := b.MustConnectPaho(t, p5connect("rap-pub"))
	pub.MustPublish(t, &paho.Publish{Topic: "rap/on", QoS: 1, Retain: true, Payload: []byte("on")})
	if m := s.Next(t); m.Topic != "rap/on" || !m.Retain {
		t.Errorf("RAP=1: got %q retain=%v, want rap/on retain=true [MQTT-3.3.1-13]", m.Topic, m.Retain)
	}
	pub.MustPublish(t, &paho.Publish{Topic: "rap/off", QoS: 1, Retain: true, Payload: []byte("off")})
	if m := s.Next(t); m.Topic != "rap/off" || m.Retain {
		t.Errorf("RAP=0: got %q retain=%v, want rap/off retain=false [MQTT-3.3.1-12]", m.Topic, m.Retain)
	}
	pub.MustPublish(t, &paho.Publish{Topic: "rap/on", QoS: 1, Retain: false, Payload: []byte("live")})
	if m := s.Next(t); m.Topic != "rap/on" || m.Retain {
		t.Errorf("RAP=1, non-retained publish: got %q retain=%v, want retain=false [MQTT-3.3.1-13]", m.Topic, m.Retain)
	}

	late := b.MustConnectPaho(t, p5connect("rap-late"))
	late.MustSubscribe(t, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "rap/off", QoS: 1}}})
	if m := late.Next(t); m.Topic != "rap/off" || !m.Retain {
		t.Errorf("retained message on subscribe: got %q retain=%v, want rap/off retain=true (§3.3.1.3)", m.Topic, m.Retain)
	}
}

// Retain Handling 0 sends retained messages on every subscribe
// [MQTT-3.3.1-9], 1 only when the subscription is new [MQTT-3.3.1-10], 2
// never [MQTT-3.3.1-11]. Each SUBSCRIBE also subscribes (with Retain
// Handling 0) to a marker topic after the topic under test, so the marker's
// retained message arriving first shows the other was not sent.
func TestPaho5RetainHandling(t *testing.T) {
	b := brokertest.Start(t, nil)
	pub := b.MustConnectPaho(t, p5connect("rh-pub"))
	pub.MustPublish(t, &paho.Publish{Topic: "rh/t", QoS: 1, Retain: true, Payload: []byte("state")})
	pub.MustPublish(t, &paho.Publish{Topic: "rh/marker", QoS: 1, Retain: true, Payload: []byte("marker")})

	subscribe := func(c *brokertest.Paho, rh byte) {
		t.Helper()
		c.MustSubscribe(t, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
			{Topic: "rh/t", QoS: 1, RetainHandling: rh},
			{Topic: "rh/marker", QoS: 1},
		}})
	}
	expect := func(c *brokertest.Paho, topics ...string) {
		t.Helper()
		for _, want := range topics {
			m := c.Next(t)
			if m.Topic != want {
				t.Fatalf("got retained message on %q, want %q", m.Topic, want)
			}
			if !m.Retain {
				t.Errorf("retained message on %q sent with RETAIN 0", m.Topic)
			}
		}
	}

	t.Run("0 always", func(t *testing.T) {
		c := b.MustConnectPaho(t, p5connect("rh-0"))
		subscribe(c, 0)
		expect(c, "rh/t", "rh/marker")
		subscribe(c, 0) // existing subscription: sent again [MQTT-3.3.1-9]
		expect(c, "rh/t", "rh/marker")
	})
	t.Run("1 if new", func(t *testing.T) {
		c := b.MustConnectPaho(t, p5connect("rh-1"))
		subscribe(c, 1)
		expect(c, "rh/t", "rh/marker")
		subscribe(c, 1) // existing subscription: not sent [MQTT-3.3.1-10]
		expect(c, "rh/marker")
	})
	t.Run("2 never", func(t *testing.T) {
		c := b.MustConnectPaho(t, p5connect("rh-2"))
		subscribe(c, 2)
		expect(c, "rh/marker") // [MQTT-3.3.1-11]
	})
}

// Payload Format Indicator [MQTT-3.3.2-4], Response Topic [MQTT-3.3.2-15],
// Correlation Data [MQTT-3.3.2-16], User Properties in their order
// [MQTT-3.3.2-17] [MQTT-3.3.2-18] and Content Type [MQTT-3.3.2-20] reach
// the subscriber unaltered, at QoS 0 and 1; a message without them arrives
// without them.
func TestPaho5PropertiesPassThrough(t *testing.T) {
	b := brokertest.Start(t, nil)
	s := b.MustConnectPaho(t, p5connect("props-sub"))
	s.MustSubscribe(t, p5sub("props/#", 1))
	pub := b.MustConnectPaho(t, p5connect("props-pub"))
	user := paho.UserProperties{{Key: "z", Value: "1"}, {Key: "a", Value: "2"}, {Key: "z", Value: "3"}, {Key: "", Value: "é"}}
	for qos := byte(0); qos <= 1; qos++ {
		topic := fmt.Sprintf("props/q%d", qos)
		corr := []byte{0, 1, 2, 0xff, byte(qos)}
		pub.MustPublish(t, &paho.Publish{Topic: topic, QoS: qos, Payload: []byte(`{"v":1}`),
			Properties: &paho.PublishProperties{
				PayloadFormat:   p5u8(1),
				ContentType:     "application/json; charset=utf-8",
				ResponseTopic:   "props/reply/" + topic,
				CorrelationData: corr,
				User:            user,
			}})
		m := s.Next(t)
		if m.Topic != topic || string(m.Payload) != `{"v":1}` {
			t.Fatalf("got %q %q", m.Topic, m.Payload)
		}
		p := m.Properties
		if p == nil {
			t.Fatalf("QoS %d: message arrived without properties", qos)
		}
		if p.PayloadFormat == nil || *p.PayloadFormat != 1 {
			t.Errorf("QoS %d: payload format %v, want 1 [MQTT-3.3.2-4]", qos, p.PayloadFormat)
		}
		if p.ContentType != "application/json; charset=utf-8" {
			t.Errorf("QoS %d: content type %q [MQTT-3.3.2-20]", qos, p.ContentType)
		}
		if p.ResponseTopic != "props/reply/"+topic {
			t.Errorf("QoS %d: response topic %q [MQTT-3.3.2-15]", qos, p.ResponseTopic)
		}
		if !bytes.Equal(p.CorrelationData, corr) {
			t.Errorf("QoS %d: correlation data %x, want %x [MQTT-3.3.2-16]", qos, p.CorrelationData, corr)
		}
		if !slices.Equal(p.User, user) {
			t.Errorf("QoS %d: user properties %v, want %v in that order [MQTT-3.3.2-17] [MQTT-3.3.2-18]", qos, p.User, user)
		}
	}
	pub.MustPublish(t, &paho.Publish{Topic: "props/plain", QoS: 1, Payload: []byte("plain")})
	m := s.Next(t)
	if p := m.Properties; p != nil && (p.PayloadFormat != nil || p.ContentType != "" || p.ResponseTopic != "" ||
		p.CorrelationData != nil || len(p.User) > 0 || p.MessageExpiry != nil) {
		t.Errorf("message published without properties arrived with %+v", *p)
	}
}

// A retained message whose Message Expiry Interval (1 s) has passed is not
// sent to a subscriber that subscribes 2 s later ([MQTT-3.3.2-5], §3.3.1.3:
// an expired retained message is discarded); a retained message without
// expiry still is.
func TestPaho5MessageExpiryRetainedExpired(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t, nil)
	pub := b.MustConnectPaho(t, p5connect("exp-pub"))
	pub.MustPublish(t, &paho.Publish{Topic: "exp/short", QoS: 1, Retain: true, Payload: []byte("short-lived"),
		Properties: &paho.PublishProperties{MessageExpiry: p5u32(1)}})
	published := time.Now()
	pub.MustPublish(t, &paho.Publish{Topic: "exp/marker", QoS: 1, Retain: true, Payload: []byte("marker")})

	time.Sleep(time.Until(published.Add(2 * time.Second))) // the expiry under test must pass

	s := b.MustConnectPaho(t, p5connect("exp-sub"))
	s.MustSubscribe(t, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: "exp/short", QoS: 1},
		{Topic: "exp/marker", QoS: 1},
	}})
	if m := s.Next(t); m.Topic != "exp/marker" {
		t.Fatalf("got %q %q first, want exp/marker: an expired retained message was delivered [MQTT-3.3.2-5]", m.Topic, m.Payload)
	}
}

// The Message Expiry Interval forwarded is the received value minus the
// time the message waited in the server [MQTT-3.3.2-6].
func TestPaho5MessageExpiryForwardedRemaining(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t, nil)
	pub := b.MustConnectPaho(t, p5connect("expf-pub"))
	const original = 10
	pub.MustPublish(t, &paho.Publish{Topic: "expf/t", QoS: 1, Retain: true, Payload: []byte("x"),
		Properties: &paho.PublishProperties{MessageExpiry: p5u32(original)}})
	published := time.Now()

	time.Sleep(time.Until(published.Add(1500 * time.Millisecond))) // the waiting time under test

	s := b.MustConnectPaho(t, p5connect("expf-sub"))
	s.MustSubscribe(t, p5sub("expf/t", 1))
	m := s.Next(t)
	if m.Properties == nil || m.Properties.MessageExpiry == nil {
		t.Fatalf("forwarded without a Message Expiry Interval [MQTT-3.3.2-6]")
	}
	if got := *m.Properties.MessageExpiry; got == 0 || got > original-1 {
		t.Fatalf("forwarded Message Expiry Interval %d after waiting 1.5 s, want 1..%d [MQTT-3.3.2-6]", got, original-1)
	}
}

// Topic aliases from client to server: a PUBLISH with a Topic Alias and a
// topic sets the mapping, later ones with the alias alone use it
// (§3.3.2.3.4, [MQTT-3.3.2-12]).
func TestPaho5TopicAliasClientToServer(t *testing.T) {
	b := brokertest.Start(t, nil)
	s := b.MustConnectPaho(t, p5connect("tac-sub"))
	s.MustSubscribe(t, p5sub("tac/#", 1))
	pub := b.MustConnectPaho(t, p5connect("tac-pub"))
	if p := pub.Connack.Properties; p == nil || p.TopicAliasMaximum == nil || *p.TopicAliasMaximum < 2 {
		t.Fatalf("CONNACK Topic Alias Maximum %v, want at least 2", p)
	}
	send := func(topic string, alias uint16, payload string) {
		t.Helper()
		pub.MustPublish(t, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(payload),
			Properties: &paho.PublishProperties{TopicAlias: p5u16(alias)}})
	}
	send("tac/one", 1, "1")
	send("", 1, "2")
	send("tac/two", 2, "3")
	send("", 1, "4")
	send("", 2, "5")
	send("tac/three", 1, "6") // remaps alias 1
	send("", 1, "7")
	want := []string{"tac/one", "tac/one", "tac/two", "tac/one", "tac/two", "tac/three", "tac/three"}
	for i, topic := range want {
		m := s.Next(t)
		if m.Topic != topic || string(m.Payload) != fmt.Sprint(i+1) {
			t.Errorf("message %d: got %q %q, want %q %q", i+1, m.Topic, m.Payload, topic, fmt.Sprint(i+1))
		}
	}
}

// Topic aliases from server to client: the server uses aliases only up to
// the client's Topic Alias Maximum [MQTT-3.3.2-11], and the second message
// on a topic arrives with the alias and an empty topic (§3.3.2.3.4).
func TestPaho5TopicAliasServerToClient(t *testing.T) {
	b := brokertest.Start(t, nil)
	const max = 2
	r := b.DialRaw(t)
	r.Connect(t, &mqtt.Connect{ClientID: "tas-sub", CleanStart: true, KeepAlive: 30,
		Props: mqtt.Properties{TopicAliasMaximum: max}})
	r.Send(t, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "tas/#", QoS: 0}}})
	r.Expect(t, mqtt.SUBACK)

	pub := b.MustConnectPaho(t, p5connect("tas-pub"))
	topics := []string{"tas/x", "tas/x", "tas/y", "tas/z", "tas/x", "tas/z", "tas/y"}
	for i, topic := range topics {
		pub.MustPublish(t, &paho.Publish{Topic: topic, QoS: 0, Payload: []byte(fmt.Sprint(i))})
	}
	aliases := map[uint16]string{}
	for i, want := range topics {
		p := r.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
		topic := string(p.Topic)
		if p.Props.Has(mqtt.PropTopicAlias) {
			a := p.Props.TopicAlias
			if a == 0 || a > max {
				t.Fatalf("message %d: Topic Alias %d, client maximum %d [MQTT-3.3.2-11]", i, a, max)
			}
			if topic == "" {
				var ok bool
				if topic, ok = aliases[a]; !ok {
					t.Fatalf("message %d: empty topic with Topic Alias %d never set", i, a)
				}
			} else {
				aliases[a] = topic
			}
		} else if topic == "" {
			t.Fatalf("message %d: empty topic without a Topic Alias", i)
		}
		if topic != want || string(p.Payload) != fmt.Sprint(i) {
			t.Fatalf("message %d: resolves to %q %q, want %q %q", i, topic, p.Payload, want, fmt.Sprint(i))
		}
		if i == 1 && (len(p.Topic) != 0 || !p.Props.Has(mqtt.PropTopicAlias)) {
			t.Errorf("second message on tas/x sent with topic %q and alias %d, want the alias alone", p.Topic, p.Props.TopicAlias)
		}
	}
}

// A client that does not send a Topic Alias Maximum gets no Topic Alias
// (the default maximum is 0, [MQTT-3.3.2-11]).
func TestPaho5TopicAliasNotSentWithoutClientMaximum(t *testing.T) {
	b := brokertest.Start(t, nil)
	r := b.DialRaw(t)
	r.Connect(t, &mqtt.Connect{ClientID: "tan-sub", CleanStart: true, KeepAlive: 30})
	r.Send(t, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "tan/#", QoS: 0}}})
	r.Expect(t, mqtt.SUBACK)
	pub := b.MustConnectPaho(t, p5connect("tan-pub"))
	for i := range 3 {
		pub.MustPublish(t, &paho.Publish{Topic: "tan/x", QoS: 0, Payload: []byte(fmt.Sprint(i))})
		p := r.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
		if p.Props.Has(mqtt.PropTopicAlias) || string(p.Topic) != "tan/x" {
			t.Fatalf("message %d: topic %q alias %d, want tan/x without alias", i, p.Topic, p.Props.TopicAlias)
		}
	}
}

// A Topic Alias of 0 or above the server's Topic Alias Maximum is answered
// with DISCONNECT 0x94 Topic Alias invalid; an empty topic with an alias
// that has no mapping with DISCONNECT 0x82 Protocol Error ([MQTT-3.3.2-8],
// [MQTT-3.3.2-9], §3.3.4).
func TestPaho5TopicAliasInvalid(t *testing.T) {
	b := brokertest.Start(t, &broker.Options{TopicAliasMaximum: 2})
	connect := func(t *testing.T, id string) *brokertest.Raw {
		r := b.DialRaw(t)
		ca := r.Connect(t, &mqtt.Connect{ClientID: id, CleanStart: true, KeepAlive: 30})
		if ca.Props.TopicAliasMaximum != 2 {
			t.Fatalf("CONNACK Topic Alias Maximum %d, want 2", ca.Props.TopicAliasMaximum)
		}
		return r
	}
	t.Run("above maximum", func(t *testing.T) {
		r := connect(t, "tai-max")
		r.Send(t, &mqtt.Publish{Topic: []byte("tai/x"), Props: mqtt.Properties{TopicAlias: 2}, Payload: []byte("ok")})
		r.Send(t, &mqtt.Publish{Topic: []byte("tai/x"), Props: mqtt.Properties{TopicAlias: 3}, Payload: []byte("bad")})
		r.ExpectDisconnect(t, mqtt.TopicAliasInvalid)
	})
	t.Run("zero", func(t *testing.T) {
		r := connect(t, "tai-zero")
		// PUBLISH QoS 0, topic "x", properties: Topic Alias 0.
		r.SendBytes(t, []byte{0x30, 0x07, 0x00, 0x01, 'x', 0x03, 0x23, 0x00, 0x00})
		r.ExpectDisconnect(t, mqtt.TopicAliasInvalid)
	})
	t.Run("unknown alias", func(t *testing.T) {
		r := connect(t, "tai-unknown")
		r.Send(t, &mqtt.Publish{Props: mqtt.Properties{TopicAlias: 1}, Payload: []byte("?")})
		r.ExpectDisconnect(t, mqtt.ProtocolError)
	})
}

// A session with an expiry interval survives the connection: reconnecting
// before it expires finds the session present [MQTT-3.2.2-3] with the
// message published meanwhile queued for it [MQTT-3.1.2-23].
func TestPaho5SessionExpiryResume(t *testing.T) {
	b := brokertest.Start(t, nil)
	pub := b.MustConnectPaho(t, p5connect("ser-pub"))
	cp := &paho.Connect{ClientID: "ser", CleanStart: true, KeepAlive: 30,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: p5u32(2)}}
	c := b.MustConnectPaho(t, cp)
	if c.Connack.SessionPresent {
		t.Fatalf("clean start: session present")
	}
	c.MustSubscribe(t, p5sub("ser/t", 1))
	if err := c.Disconnect(&paho.Disconnect{ReasonCode: 0}); err != nil {
		t.Fatal(err)
	}
	p5waitConnections(t, b, 1)
	if r := pub.MustPublish(t, &paho.Publish{Topic: "ser/t", QoS: 1, Payload: []byte("while away")}); r.ReasonCode != 0 {
		t.Errorf("PUBACK reason 0x%02x for the offline session's subscription, want 0x00", r.ReasonCode)
	}

	cp.CleanStart = false
	c2 := b.MustConnectPaho(t, cp)
	if !c2.Connack.SessionPresent {
		t.Fatalf("reconnect within the session expiry interval: session not present [MQTT-3.2.2-3]")
	}
	if m := c2.Next(t); m.Topic != "ser/t" || string(m.Payload) != "while away" {
		t.Fatalf("got %q %q, want the queued message", m.Topic, m.Payload)
	}
}

// After the Session Expiry Interval the session is gone: a reconnect finds
// no session [MQTT-3.2.2-3] and its subscriptions no longer match (§3.1.2.11.2).
func TestPaho5SessionExpiryEnds(t *testing.T) {
	b := brokertest.Start(t, nil)
	cp := &paho.Connect{ClientID: "see", CleanStart: true, KeepAlive: 30,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: p5u32(1)}}
	c := b.MustConnectPaho(t, cp)
	c.MustSubscribe(t, p5sub("see/t", 1))
	if err := c.Disconnect(&paho.Disconnect{ReasonCode: 0}); err != nil {
		t.Fatal(err)
	}
	p5waitConnections(t, b, 0)
	if n := b.Server.Stats().Sessions; n != 1 {
		t.Fatalf("%d sessions right after disconnect, want 1 (expiry 1 s)", n)
	}
	brokertest.Eventually(t, brokertest.WaitTimeout, func() error {
		if n := b.Server.Stats().Sessions; n != 0 {
			return fmt.Errorf("%d sessions, want 0 after the expiry interval", n)
		}
		return nil
	})
	pub := b.MustConnectPaho(t, p5connect("see-pub"))
	if r := pub.MustPublish(t, &paho.Publish{Topic: "see/t", QoS: 1, Payload: []byte("x")}); r.ReasonCode != byte(mqtt.NoMatchingSubscribers) {
		t.Errorf("PUBACK reason 0x%02x, want 0x10: the expired session's subscription still matches", r.ReasonCode)
	}
	cp.CleanStart = false
	c2 := b.MustConnectPaho(t, cp)
	if c2.Connack.SessionPresent {
		t.Fatalf("reconnect after the session expired: session present")
	}
}

// p5willConnect is a CONNECT with a will on topic carrying payload, the
// given will delay and a session expiry longer than it.
func p5willConnect(id string, clean bool, payload string, delay uint32) *paho.Connect {
	return &paho.Connect{ClientID: id, CleanStart: clean, KeepAlive: 30,
		Properties:     &paho.ConnectProperties{SessionExpiryInterval: p5u32(30)},
		WillMessage:    &paho.WillMessage{Topic: "will/" + id, QoS: 1, Payload: []byte(payload)},
		WillProperties: &paho.WillProperties{WillDelayInterval: p5u32(delay)},
	}
}

// With a Will Delay Interval, a reconnect within the delay cancels the will
// [MQTT-3.1.3-9]; when the connection drops again and the delay passes, the
// (new) will is published [MQTT-3.1.2-8].
func TestPaho5WillDelay(t *testing.T) {
	b := brokertest.Start(t, nil)
	watcher := b.MustConnectPaho(t, p5connect("wd-watch"))
	watcher.MustSubscribe(t, p5sub("will/#", 1))

	conn1 := b.DialTCP(t)
	if _, err := brokertest.ConnectPaho(t, conn1, p5willConnect("wd", true, "first", 1), nil); err != nil {
		t.Fatal(err)
	}
	conn1.Close() // drop without DISCONNECT
	p5waitConnections(t, b, 1)

	conn2 := b.DialTCP(t)
	c2, err := brokertest.ConnectPaho(t, conn2, p5willConnect("wd", false, "second", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c2.Connack.SessionPresent {
		t.Fatalf("reconnect: session not present")
	}
	// Stay connected for part of the delay, so that a will timer left
	// running from the first connection would fire well before the
	// second connection's delay is over.
	time.Sleep(500 * time.Millisecond)
	conn2.Close()
	dropped := time.Now()
	p5waitConnections(t, b, 1)

	// Had the first will not been cancelled it would come first, at about
	// the time the second connection dropped.
	m := watcher.Next(t)
	if string(m.Payload) != "second" {
		t.Fatalf("will %q published, want %q: a reconnect within the will delay must cancel the will [MQTT-3.1.3-9]", m.Payload, "second")
	}
	if d := time.Since(dropped); d < 900*time.Millisecond {
		t.Errorf("will published %v after the connection dropped, before the 1 s Will Delay Interval [MQTT-3.1.2-8]", d)
	}
	watcher.NoMessage(t, 200*time.Millisecond)
}

// DISCONNECT with reason 0x04 Disconnect with Will Message publishes the
// will (§3.14.2.1).
func TestPaho5DisconnectWithWillMessage(t *testing.T) {
	b := brokertest.Start(t, nil)
	watcher := b.MustConnectPaho(t, p5connect("dw-watch"))
	watcher.MustSubscribe(t, p5sub("will/#", 1))
	c := b.MustConnectPaho(t, &paho.Connect{ClientID: "dw", CleanStart: true, KeepAlive: 30,
		WillMessage: &paho.WillMessage{Topic: "will/dw", QoS: 1, Payload: []byte("gone")}})
	if err := c.Disconnect(&paho.Disconnect{ReasonCode: 0x04}); err != nil {
		t.Fatal(err)
	}
	if m := watcher.Next(t); m.Topic != "will/dw" || string(m.Payload) != "gone" {
		t.Fatalf("got %q %q, want the will", m.Topic, m.Payload)
	}
}

// DISCONNECT with reason 0x00 deletes the will without publishing it
// [MQTT-3.1.2-10].
func TestPaho5NormalDisconnectDiscardsWill(t *testing.T) {
	b := brokertest.Start(t, nil)
	watcher := b.MustConnectPaho(t, p5connect("dn-watch"))
	watcher.MustSubscribe(t, p5sub("will/#", 1))
	c := b.MustConnectPaho(t, &paho.Connect{ClientID: "dn", CleanStart: true, KeepAlive: 30,
		WillMessage: &paho.WillMessage{Topic: "will/dn", QoS: 1, Payload: []byte("gone")}})
	if err := c.Disconnect(&paho.Disconnect{ReasonCode: 0}); err != nil {
		t.Fatal(err)
	}
	p5waitConnections(t, b, 1) // the session ended with the connection
	watcher.MustPublish(t, &paho.Publish{Topic: "will/marker", QoS: 1, Payload: []byte("marker")})
	if m := watcher.Next(t); m.Topic != "will/marker" {
		t.Fatalf("got %q %q, want the marker: the will was published after a normal DISCONNECT [MQTT-3.1.2-10]", m.Topic, m.Payload)
	}
}

// A CONNECT with an empty Client Identifier gets an Assigned Client
// Identifier in the CONNACK, not used by any other session [MQTT-3.2.2-16].
func TestPaho5AssignedClientIdentifier(t *testing.T) {
	b := brokertest.Start(t, nil)
	var ids []string
	for range 2 {
		c := b.MustConnectPaho(t, p5connect(""))
		p := c.Connack.Properties
		if p == nil || p.AssignedClientID == "" {
			t.Fatalf("CONNACK without an Assigned Client Identifier [MQTT-3.2.2-16]")
		}
		if c.ClientID() != p.AssignedClientID {
			t.Errorf("client id %q, assigned %q", c.ClientID(), p.AssignedClientID)
		}
		ids = append(ids, p.AssignedClientID)
	}
	if ids[0] == ids[1] {
		t.Fatalf("both clients were assigned %q [MQTT-3.2.2-16]", ids[0])
	}
	named := b.MustConnectPaho(t, p5connect("named"))
	if p := named.Connack.Properties; p != nil && p.AssignedClientID != "" {
		t.Errorf("client with an id was assigned %q", p.AssignedClientID)
	}
}

// The server never has more unacknowledged QoS 1 PUBLISH packets towards a
// client than the client's Receive Maximum [MQTT-3.3.4-9]; the rest are
// sent as acknowledgements arrive, in order.
func TestPaho5ReceiveMaximumOutbound(t *testing.T) {
	b := brokertest.Start(t, nil)
	const recvMax, total = 2, 6
	r := b.DialRaw(t)
	r.Connect(t, &mqtt.Connect{ClientID: "rm-sub", CleanStart: true, KeepAlive: 30,
		Props: mqtt.Properties{ReceiveMaximum: recvMax}})
	r.Send(t, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{
		{Filter: "rm/data", QoS: 1}, {Filter: "rm/marker", QoS: 0}}})
	r.Expect(t, mqtt.SUBACK)

	pub := b.MustConnectPaho(t, p5connect("rm-pub"))
	for i := range total {
		pub.MustPublish(t, &paho.Publish{Topic: "rm/data", QoS: 1, Payload: []byte(fmt.Sprint(i))})
	}
	// Every message is routed to the session; a QoS 0 marker (not subject
	// to Receive Maximum) shows what the server sent at once.
	pub.MustPublish(t, &paho.Publish{Topic: "rm/marker", QoS: 0, Payload: []byte("marker")})

	var unacked []uint16
	next := 0 // payload of the next QoS 1 message expected
	recv := func(p *mqtt.Publish) {
		t.Helper()
		if string(p.Payload) != fmt.Sprint(next) || p.QoS != 1 {
			t.Fatalf("got %q QoS %d, want %d QoS 1 (in order)", p.Payload, p.QoS, next)
		}
		next++
		unacked = append(unacked, p.PacketID)
		if len(unacked) > recvMax {
			t.Fatalf("%d unacknowledged QoS 1 PUBLISH packets, Receive Maximum %d [MQTT-3.3.4-9]", len(unacked), recvMax)
		}
	}
	for {
		p := r.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
		if string(p.Topic) == "rm/marker" {
			break
		}
		recv(p)
	}
	if len(unacked) != recvMax {
		t.Fatalf("%d messages sent before any acknowledgement, want %d", len(unacked), recvMax)
	}
	for next < total {
		r.Send(t, &mqtt.Puback{PacketID: unacked[0]})
		unacked = unacked[1:]
		recv(r.Expect(t, mqtt.PUBLISH).(*mqtt.Publish))
	}
	for _, pid := range unacked {
		r.Send(t, &mqtt.Puback{PacketID: pid})
	}
}

// Receive Maximum belongs to the Network Connection (§4.9): after a
// reconnect with a smaller Receive Maximum, the unacknowledged messages
// the server re-sends [MQTT-4.4.0-1] still never exceed it
// [MQTT-3.3.4-9]; the rest follow as acknowledgements arrive.
func TestPaho5ReceiveMaximumAfterReconnect(t *testing.T) {
	b := brokertest.Start(t, nil)
	const total = 5
	connect := func(recvMax uint16, clean bool) (*brokertest.Raw, *mqtt.Connack) {
		r := b.DialRaw(t)
		ca := r.Connect(t, &mqtt.Connect{ClientID: "rmr-sub", CleanStart: clean, KeepAlive: 30,
			Props: mqtt.Properties{ReceiveMaximum: recvMax, SessionExpiry: 60}})
		return r, ca
	}
	r, _ := connect(10, true)
	r.Send(t, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{
		{Filter: "rmr/data", QoS: 1}, {Filter: "rmr/marker", QoS: 0}}})
	r.Expect(t, mqtt.SUBACK)
	pub := b.MustConnectPaho(t, p5connect("rmr-pub"))
	for i := range total {
		pub.MustPublish(t, &paho.Publish{Topic: "rmr/data", QoS: 1, Payload: []byte(fmt.Sprint(i))})
	}
	for range total {
		r.Expect(t, mqtt.PUBLISH) // received, never acknowledged
	}
	r.Conn.Close()
	p5waitConnections(t, b, 1)

	const recvMax = 2
	r, ca := connect(recvMax, false)
	if !ca.SessionPresent {
		t.Fatalf("session not present")
	}
	pub.MustPublish(t, &paho.Publish{Topic: "rmr/marker", QoS: 0, Payload: []byte("marker")})
	var unacked []uint16
	next := 0
	recv := func(p *mqtt.Publish) {
		t.Helper()
		if string(p.Payload) != fmt.Sprint(next) || p.QoS != 1 {
			t.Fatalf("got %q QoS %d, want %d QoS 1 (in order)", p.Payload, p.QoS, next)
		}
		next++
		unacked = append(unacked, p.PacketID)
		if len(unacked) > recvMax {
			t.Fatalf("%d unacknowledged QoS 1 PUBLISH packets after reconnecting with Receive Maximum %d [MQTT-3.3.4-9]",
				len(unacked), recvMax)
		}
	}
	for {
		p := r.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
		if string(p.Topic) == "rmr/marker" {
			break
		}
		recv(p)
	}
	for next < total {
		if len(unacked) == 0 {
			t.Fatalf("nothing in flight and messages %d..%d not sent", next, total-1)
		}
		r.Send(t, &mqtt.Puback{PacketID: unacked[0]})
		unacked = unacked[1:]
		recv(r.Expect(t, mqtt.PUBLISH).(*mqtt.Publish))
	}
}

// The server does not send a packet larger than the client's Maximum Packet
// Size [MQTT-3.1.2-24]: it discards it and carries on as if it had been sent
// [MQTT-3.1.2-25], so a later small message arrives (with a Receive Maximum
// of 1, even a QoS 1 message left waiting for an acknowledgement that can
// never come would hold it back).
func TestPaho5MaximumPacketSizeOutbound(t *testing.T) {
	b := brokertest.Start(t, nil)
	s := b.MustConnectPaho(t, &paho.Connect{ClientID: "mps-sub", CleanStart: true, KeepAlive: 30,
		Properties: &paho.ConnectProperties{MaximumPacketSize: p5u32(100), ReceiveMaximum: p5u16(1)}})
	s.MustSubscribe(t, p5sub("mps/#", 1))
	pub := b.MustConnectPaho(t, p5connect("mps-pub"))
	for _, qos := range []byte{0, 1} {
		pub.MustPublish(t, &paho.Publish{Topic: "mps/big", QoS: qos, Payload: bytes.Repeat([]byte("x"), 200)})
		pub.MustPublish(t, &paho.Publish{Topic: "mps/small", QoS: qos, Payload: []byte("small")})
		if m := s.Next(t); m.Topic != "mps/small" {
			t.Fatalf("QoS %d: got %q (%d bytes), want mps/small: a packet above the client's Maximum Packet Size was sent [MQTT-3.1.2-24]",
				qos, m.Topic, len(m.Payload))
		}
	}
}

// A PUBLISH with both QoS bits set is a Malformed Packet [MQTT-3.3.1-4]:
// DISCONNECT 0x81, then the connection is closed (§4.13.1).
func TestPaho5MalformedPublishQoS3(t *testing.T) {
	p5eachTransport(t, nil, func(t *testing.T, b *brokertest.Broker, dial func(testing.TB) net.Conn) {
		r := brokertest.NewRaw(dial(t), mqtt.V5)
		r.Connect(t, &mqtt.Connect{ClientID: "mal", CleanStart: true, KeepAlive: 30})
		// PUBLISH, flags QoS 3; topic "a", packet id 1, no properties.
		r.SendBytes(t, []byte{0x36, 0x06, 0x00, 0x01, 'a', 0x00, 0x01, 0x00})
		r.ExpectDisconnect(t, mqtt.MalformedPacket)
	})
}

// The DISCONNECT sent for bad input leaves out its Reason String when that
// would make it larger than the client's Maximum Packet Size
// [MQTT-3.14.2-3] [MQTT-3.1.2-24]; the reason code still arrives.
func TestPaho5DisconnectFitsClientMaximumPacketSize(t *testing.T) {
	b := brokertest.Start(t, nil)
	const max = 16
	r := b.DialRaw(t)
	r.Connect(t, &mqtt.Connect{ClientID: "mal-small", CleanStart: true, KeepAlive: 30,
		Props: mqtt.Properties{MaximumPacketSize: max}})
	r.SendBytes(t, []byte{0x36, 0x06, 0x00, 0x01, 'a', 0x00, 0x01, 0x00}) // PUBLISH with QoS 3
	r.ExpectDisconnect(t, mqtt.MalformedPacket)
	// ExpectDisconnect has read on to the close; LastSize is the DISCONNECT's.
	if r.LastSize > max {
		t.Fatalf("DISCONNECT of %d bytes sent to a client with Maximum Packet Size %d [MQTT-3.14.2-3]", r.LastSize, max)
	}
}

// A second CONNECT is a Protocol Error [MQTT-3.1.0-2]: DISCONNECT 0x82.
func TestPaho5SecondConnect(t *testing.T) {
	b := brokertest.Start(t, nil)
	r := b.DialRaw(t)
	r.Connect(t, &mqtt.Connect{ClientID: "twice", CleanStart: true, KeepAlive: 30})
	r.Send(t, &mqtt.Connect{ProtocolLevel: mqtt.V5, ClientID: "twice", CleanStart: true, KeepAlive: 30})
	r.ExpectDisconnect(t, mqtt.ProtocolError)
}

// A packet above the server's Maximum Packet Size (sent in CONNACK) gets
// DISCONNECT 0x95 Packet too large (§3.2.2.3.6, [MQTT-3.2.2-15]).
func TestPaho5PacketTooLarge(t *testing.T) {
	p5eachTransport(t, &broker.Options{MaxPacketSize: 128}, func(t *testing.T, b *brokertest.Broker, dial func(testing.TB) net.Conn) {
		r := brokertest.NewRaw(dial(t), mqtt.V5)
		ca := r.Connect(t, &mqtt.Connect{ClientID: "big", CleanStart: true, KeepAlive: 30})
		if ca.Props.MaximumPacketSize != 128 {
			t.Fatalf("CONNACK Maximum Packet Size %d, want 128", ca.Props.MaximumPacketSize)
		}
		r.Send(t, &mqtt.Publish{Topic: []byte("big/t"), QoS: 1, PacketID: 1, Payload: bytes.Repeat([]byte("x"), 200)})
		r.ExpectDisconnect(t, mqtt.PacketTooLarge)
	})
}

// More unacknowledged QoS 2 PUBLISH packets than the server's Receive
// Maximum get DISCONNECT 0x93 Receive Maximum exceeded ([MQTT-3.3.4-7],
// §3.3.4, §4.9); up to the maximum is fine.
func TestPaho5ReceiveMaximumExceeded(t *testing.T) {
	b := brokertest.Start(t, &broker.Options{ReceiveMaximum: 2})
	r := b.DialRaw(t)
	ca := r.Connect(t, &mqtt.Connect{ClientID: "flood", CleanStart: true, KeepAlive: 30})
	if ca.Props.ReceiveMaximum != 2 {
		t.Fatalf("CONNACK Receive Maximum %d, want 2", ca.Props.ReceiveMaximum)
	}
	for pid := uint16(1); pid <= 2; pid++ {
		r.Send(t, &mqtt.Publish{Topic: []byte("flood/t"), QoS: 2, PacketID: pid, Payload: []byte("x")})
		if rec := r.Expect(t, mqtt.PUBREC).(*mqtt.Pubrec); rec.PacketID != pid || rec.ReasonCode.IsError() {
			t.Fatalf("PUBREC %+v for packet %d", rec, pid)
		}
	}
	// Completing one exchange makes room for one more.
	r.Send(t, &mqtt.Pubrel{PacketID: 1})
	if comp := r.Expect(t, mqtt.PUBCOMP).(*mqtt.Pubcomp); comp.PacketID != 1 || comp.ReasonCode != 0 {
		t.Fatalf("PUBCOMP %+v", comp)
	}
	r.Send(t, &mqtt.Publish{Topic: []byte("flood/t"), QoS: 2, PacketID: 3, Payload: []byte("x")})
	r.Expect(t, mqtt.PUBREC)
	r.Send(t, &mqtt.Publish{Topic: []byte("flood/t"), QoS: 2, PacketID: 4, Payload: []byte("x")})
	r.ExpectDisconnect(t, mqtt.ReceiveMaximumExceeded)
}

// A CONNECT with an Authentication Method the server does not support gets
// CONNACK 0x8C Bad authentication method and the connection is closed
// [MQTT-4.12.0-1].
func TestPaho5AuthMethodUnsupported(t *testing.T) {
	b := brokertest.Start(t, nil)
	c, err := brokertest.ConnectPaho(t, b.DialTCP(t), &paho.Connect{ClientID: "auth", CleanStart: true, KeepAlive: 30,
		Properties: &paho.ConnectProperties{AuthMethod: "SCRAM-SHA-256", AuthData: []byte("client-first")}}, nil)
	if err == nil {
		t.Fatalf("connect with an unsupported authentication method succeeded")
	}
	if c.Connack == nil || c.Connack.ReasonCode != byte(mqtt.BadAuthenticationMethod) {
		t.Fatalf("CONNACK %+v (err %v), want reason 0x8C", c.Connack, err)
	}

	r := b.DialRaw(t)
	ca := r.Connect(t, &mqtt.Connect{ClientID: "auth-raw", CleanStart: true, KeepAlive: 30,
		Props: mqtt.Properties{AuthMethod: "SCRAM-SHA-256"}})
	if ca.ReasonCode != mqtt.BadAuthenticationMethod {
		t.Fatalf("CONNACK reason %v, want 0x8C", ca.ReasonCode)
	}
	r.ExpectClosed(t)
}

// Shutdown sends DISCONNECT 0x8B Server shutting down to MQTT 5.0 clients
// (§4.13.2) before closing their connections.
func TestPaho5ServerShutdownDisconnect(t *testing.T) {
	p5eachTransport(t, nil, testShutdownDisconnect)
}

func testShutdownDisconnect(t *testing.T, b *brokertest.Broker, dial func(testing.TB) net.Conn) {
	c := p5connectVia(t, dial, p5connect("sd"))
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), brokertest.WaitTimeout)
		defer cancel()
		done <- b.Server.Shutdown(ctx)
	}()
	c.ExpectDisconnect(t, mqtt.ServerShuttingDown)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(brokertest.WaitTimeout):
		t.Fatalf("Shutdown did not return")
	}
}

// A second connection with the same Client Identifier takes the session
// over: the first gets DISCONNECT 0x8E Session taken over [MQTT-3.1.4-3].
func TestPaho5SessionTakeover(t *testing.T) {
	p5eachTransport(t, nil, testSessionTakeover)
}

func testSessionTakeover(t *testing.T, b *brokertest.Broker, dial func(testing.TB) net.Conn) {
	first := p5connectVia(t, dial, p5connect("tko"))
	second := p5connectVia(t, dial, &paho.Connect{ClientID: "tko", CleanStart: false, KeepAlive: 30})
	first.ExpectDisconnect(t, mqtt.SessionTakenOver)
	// The second connection works.
	second.MustSubscribe(t, p5sub("tko/t", 1))
	second.MustPublish(t, &paho.Publish{Topic: "tko/t", QoS: 1, Payload: []byte("mine")})
	if m := second.Next(t); string(m.Payload) != "mine" {
		t.Fatalf("got %q", m.Payload)
	}
}

// Request/response (§4.10): the responder receives the request's Response
// Topic and Correlation Data unaltered ([MQTT-3.3.2-15], [MQTT-3.3.2-16])
// and answers on that topic; the requester matches answers to requests by
// Correlation Data.
func TestPaho5RequestResponse(t *testing.T) {
	b := brokertest.Start(t, nil)
	responder := b.MustConnectPaho(t, p5connect("rr-responder"))
	responder.MustSubscribe(t, p5sub("rr/service", 1))
	requester := b.MustConnectPaho(t, p5connect("rr-requester"))
	const replyTo = "rr/reply/rr-requester"
	requester.MustSubscribe(t, p5sub(replyTo, 1))

	reqs := map[string]string{"req-1": "ping 1", "req-2": "ping 2"}
	for _, corr := range []string{"req-1", "req-2"} {
		requester.MustPublish(t, &paho.Publish{Topic: "rr/service", QoS: 1, Payload: []byte(reqs[corr]),
			Properties: &paho.PublishProperties{ResponseTopic: replyTo, CorrelationData: []byte(corr)}})
	}
	var got []*paho.Publish
	for range reqs {
		got = append(got, responder.Next(t))
	}
	slices.Reverse(got) // answer out of order
	for _, req := range got {
		if req.Properties == nil || req.Properties.ResponseTopic != replyTo {
			t.Fatalf("request %q arrived without its Response Topic [MQTT-3.3.2-15]", req.Payload)
		}
		corr := string(req.Properties.CorrelationData)
		if reqs[corr] != string(req.Payload) {
			t.Fatalf("request %q arrived with Correlation Data %q [MQTT-3.3.2-16]", req.Payload, corr)
		}
		responder.MustPublish(t, &paho.Publish{Topic: req.Properties.ResponseTopic, QoS: 1,
			Payload:    []byte(strings.Replace(string(req.Payload), "ping", "pong", 1)),
			Properties: &paho.PublishProperties{CorrelationData: req.Properties.CorrelationData}})
	}
	for range reqs {
		resp := requester.Next(t)
		if resp.Topic != replyTo || resp.Properties == nil {
			t.Fatalf("response %q on %q without properties", resp.Payload, resp.Topic)
		}
		corr := string(resp.Properties.CorrelationData)
		want := strings.Replace(reqs[corr], "ping", "pong", 1)
		if want == "" || string(resp.Payload) != want {
			t.Fatalf("response %q with Correlation Data %q, want %q", resp.Payload, corr, want)
		}
		delete(reqs, corr)
	}
}
