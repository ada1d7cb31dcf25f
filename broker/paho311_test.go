package broker_test

// Integration tests with the Eclipse paho MQTT 3.1.1 client, each scenario
// over TCP and over WebSocket. Where paho is too well-behaved (withholding
// PUBACK, going silent, vanishing), a raw client written with Weir's codec
// plays the part.
//
// Absence of a message is never asserted by waiting: the test sends a
// "sentinel" QoS 1 message after the ones that must not arrive; a
// subscriber receives one publisher's messages in order, so anything that
// was wrongly delivered shows up before the sentinel.

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

const sentinelTopic = "sentinel"

// timingSlack is how late a timeout may fire on a loaded test machine
// (-race, other packages' tests in parallel).
const timingSlack = 1500 * time.Millisecond

// keepAliveSlack bounds when a client with keep-alive 1s that sends
// nothing must have been disconnected: 1.5s, plus slack.
const keepAliveSlack = 1500*time.Millisecond + 2*time.Second

// eachTransport runs f, in parallel subtests, against a fresh broker with
// opts over TCP and over WebSocket.
func eachTransport(t *testing.T, opts *broker.Options, f func(t *testing.T, b *brokertest.Broker, tr brokertest.Transport)) {
	for _, tr := range brokertest.Transports() {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			b := brokertest.Start(t, opts)
			f(t, b, tr)
		})
	}
}

// checkMsg fails the test unless m has the given topic, payload, QoS and
// retain flag, and no DUP flag.
func checkMsg(t *testing.T, m paho.Message, topic, payload string, qos byte, retained bool) {
	t.Helper()
	if m.Topic() != topic || string(m.Payload()) != payload || m.Qos() != qos || m.Retained() != retained || m.Duplicate() {
		t.Fatalf("got topic %q payload %q qos %d retain %v dup %v; want topic %q payload %q qos %d retain %v dup false",
			m.Topic(), m.Payload(), m.Qos(), m.Retained(), m.Duplicate(), topic, payload, qos, retained)
	}
}

// sendSentinel publishes the sentinel message from pub, at QoS 1.
func sendSentinel(pub *brokertest.Paho311) {
	pub.MustPublish(sentinelTopic, 1, false, "end")
}

// untilSentinel returns the messages sub receives before the sentinel.
func untilSentinel(t *testing.T, sub *brokertest.Paho311) []paho.Message {
	t.Helper()
	var got []paho.Message
	for {
		m := sub.Next()
		if m.Topic() == sentinelTopic {
			return got
		}
		got = append(got, m)
		if len(got) > 10000 {
			t.Fatal("no sentinel after 10000 messages")
		}
	}
}

func topics(ms []paho.Message) []string {
	var ts []string
	for _, m := range ms {
		ts = append(ts, m.Topic())
	}
	return ts
}

// expectNothingMore fails the test if sub receives anything before the
// sentinel, which it must be subscribed to.
func expectNothingMore(t *testing.T, pub, sub *brokertest.Paho311) {
	t.Helper()
	sendSentinel(pub)
	if extra := untilSentinel(t, sub); len(extra) > 0 {
		t.Fatalf("unexpected messages before the sentinel: topics %q, first payload %q", topics(extra), extra[0].Payload())
	}
}

func waitConnections(t *testing.T, b *brokertest.Broker, n int) {
	t.Helper()
	brokertest.Eventually(t, brokertest.WaitTimeout, func() error {
		if got := b.Server.Stats().Connections; got != n {
			return fmt.Errorf("%d connections, want %d", got, n)
		}
		return nil
	})
}

func waitAcked(t *testing.T, b *brokertest.Broker, n int64) {
	t.Helper()
	brokertest.Eventually(t, brokertest.WaitTimeout, func() error {
		if got := b.Server.Stats().MessagesAcked; got != n {
			return fmt.Errorf("%d deliveries acknowledged, want %d", got, n)
		}
		return nil
	})
}

func persistent(o *paho.ClientOptions) { o.SetCleanSession(false) }

// --- QoS ---

// TestPaho311QoSRoundTrip publishes at QoS 0, 1 and 2 to a subscriber that
// was granted the same QoS: the message arrives once, at that QoS, and the
// broker's outbound exchange (PUBACK, or PUBREC/PUBREL/PUBCOMP) completes.
func TestPaho311QoSRoundTrip(t *testing.T) {
	for _, qos := range []byte{0, 1, 2} {
		t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
			eachTransport(t, nil, func(t *testing.T, b *brokertest.Broker, tr brokertest.Transport) {
				sub := brokertest.ConnectPaho311(t, b, tr, "sub", nil)
				if g := sub.MustSubscribe("rt/q", qos); g != qos {
					t.Fatalf("granted QoS %d, want %d", g, qos)
				}
				sub.MustSubscribe(sentinelTopic, 1)
				pub := brokertest.ConnectPaho311(t, b, tr, "pub", nil)
				payload := fmt.Sprintf("qos %d over %s", qos, tr.Name)
				pub.MustPublish("rt/q", qos, false, payload)
				checkMsg(t, sub.Next(), "rt/q", payload, qos, false)
				expectNothingMore(t, pub, sub)
				if qos > 0 {
					waitAcked(t, b, 2) // the message and the sentinel
				}
			})
		})
	}
}

// TestPaho311QoSDowngradedToGranted subscribes at QoS 1 and publishes at
// QoS 2: the message is delivered at QoS 1 [MQTT-3.8.4-6].
func TestPaho311QoSDowngradedToGranted(t *testing.T) {
	eachTransport(t, nil, func(t *testing.T, b *brokertest.Broker, tr brokertest.Transport) {
		sub := brokertest.ConnectPaho311(t, b, tr, "sub", nil)
		if g := sub.MustSubscribe("dg/t", 1); g != 1 {
			t.Fatalf("granted QoS %d, want 1", g)
		}
		pub := brokertest.ConnectPaho311(t, b, tr, "pub", nil)
		pub.MustPublish("dg/t", 2, false, "two")
		checkMsg(t, sub.Next(), "dg/t", "two", 1, false)
	})
}

// TestPaho311InOrderQoS1 sends 1,000 QoS 1 messages from one publisher
// without waiting for each acknowledgement; the subscriber receives all of
// them in the order sent [MQTT-4.6.0-2] [MQTT-4.6.0-3] [MQTT-4.6.0-6].
func TestPaho311InOrderQoS1(t *testing.T) {
	const n = 1000
	eachTransport(t, nil, func(t *testing.T, b *brokertest.Broker, tr brokertest.Transport) {
		sub := brokertest.ConnectPaho311(t, b, tr, "sub", nil)
		sub.MustSubscribe("order/t", 1)
		pub := brokertest.ConnectPaho311(t, b, tr, "pub", nil)
		toks := make([]paho.Token, n)
		for i := range n {
			toks[i] = pub.Publish("order/t", 1, false, fmt.Sprintf("%04d", i))
		}
		for i := 0; i < n; i++ {
			m := sub.Next()
			if want := fmt.Sprintf("%04d", i); string(m.Payload()) != want || m.Qos() != 1 {
				t.Fatalf("message %d: got payload %q qos %d, want %q qos 1", i, m.Payload(), m.Qos(), want)
			}
		}
		for i, tok := range toks {
			if !tok.WaitTimeout(brokertest.WaitTimeout) || tok.Error() != nil {
				t.Fatalf("publish %d not acknowledged: %v", i, tok.Error())
			}
		}
		waitAcked(t, b, n)
	})
}

// --- Topic matching ---

// TestPaho311Wildcards checks '+' (exactly one level, possibly empty) and
// '#' (the parent level and any number of levels below) [MQTT-4.7.1-2]
// [MQTT-4.7.1-3].
func TestPaho311Wildcards(t *testing.T) {
	eachTransport(t, nil, func(t *testing.T, b *brokertest.Broker, tr brokertest.Transport) {
		plus := brokertest.ConnectPaho311(t, b, tr, "plus", nil)
		plus.MustSubscribe("wc/+/temp", 1)
		plus.MustSubscribe(sentinelTopic, 1)
		hash := brokertest.ConnectPaho311(t, b, tr, "hash", nil)
		hash.MustSubscribe("wc/#", 1)
		hash.MustSubscribe(sentinelTopic, 1)
		pub := brokertest.ConnectPaho311(t, b, tr, "pub", nil)
		for _, topic := range []string{"wc/a/temp", "wc//temp", "wc/a/b/temp", "wc/temp", "wc", "wc/", "wc/a/temp/", "wcx/a/temp", "other/a/temp", "wc/a/humidity"} {
			pub.MustPublish(topic, 1, false, topic)
		}
		sendSentinel(pub)
		if got, want := topics(untilSentinel(t, plus)), []string{"wc/a/temp", "wc//temp"}; !slices.Equal(got, want) {
			t.Errorf("wc/+/temp received %q, want %q", got, want)
		}
		if got, want := topics(untilSentinel(t, hash)), []string{"wc/a/temp", "wc//temp", "wc/a/b/temp", "wc/temp", "wc", "wc/", "wc/a/temp/", "wc/a/humidity"}; !slices.Equal(got, want) {
			t.Errorf("wc/# received %q, want %q", got, want)
		}
	})
}

// TestPaho311DollarTopicsNotMatchedByWildcards publishes to '$SYS/x':
// subscribers of '#' and '+/x' do not get it [MQTT-4.7.2-1], a subscriber
// of '$SYS/#' does. The same holds for a retained '$SYS/r' sent on
// subscribe.
func TestPaho311DollarTopicsNotMatchedByWildcards(t *testing.T) {
	eachTransport(t, nil, func(t *testing.T, b *brokertest.Broker, tr brokertest.Transport) {
		all := brokertest.ConnectPaho311(t, b, tr, "all", nil)
		all.MustSubscribe("#", 1) // also matches the sentinel
		plus := brokertest.ConnectPaho311(t, b, tr, "plus", nil)
		plus.MustSubscribe("+/x", 1)
		plus.MustSubscribe(sentinelTopic, 1)
		sys := brokertest.ConnectPaho311(t, b, tr, "sys", nil)
		sys.MustSubscribe("$SYS/#", 1)
		sys.MustSubscribe(sentinelTopic, 1)
		pub := brokertest.ConnectPaho311(t, b, tr, "pub", nil)
		pub.MustPublish("$SYS/x", 1, false, "sys")
		pub.MustPublish("a/x", 1, false, "plain")
		sendSentinel(pub)
		if got, want := topics(untilSentinel(t, all)), []string{"a/x"}; !slices.Equal(got, want) {
			t.Errorf("# received %q, want %q", got, want)
		}
		if got, want := topics(untilSentinel(t, plus)), []string{"a/x"}; !slices.Equal(got, want) {
			t.Errorf("+/x received %q, want %q", got, want)
		}
		if got, want := topics(untilSentinel(t, sys)), []string{"$SYS/x"}; !slices.Equal(got, want) {
			t.Errorf("$SYS/# received %q, want %q", got, want)
		}

		pub.MustPublish("$SYS/r", 1, true, "sys")
		pub.MustPublish("a/r", 1, true, "plain")
		all2 := brokertest.ConnectPaho311(t, b, tr, "all2", nil)
		all2.MustSubscribe("#", 1)
		plus2 := brokertest.ConnectPaho311(t, b, tr, "plus2", nil)
		plus2.MustSubscribe(sentinelTopic, 1)
		plus2.MustSubscribe("+/r", 1)
		sys2 := brokertest.ConnectPaho311(t, b, tr, "sys2", nil)
		sys2.MustSubscribe(sentinelTopic, 1)
		sys2.MustSubscribe("$SYS/+", 1)
		sendSentinel(pub)
		if got, want := topics(untilSentinel(t, all2)), []string{"a/r"}; !slices.Equal(got, want) {
			t.Errorf("# received retained %q, want %q", got, want)
		}
		if got, want := topics(untilSentinel(t, plus2)), []string{"a/r"}; !slices.Equal(got, want) {
			t.Errorf("+/r received retained %q, want %q", got, want)
		}
		if got, want := topics(untilSentinel(t, sys2)), []string{"$SYS/r"}; !slices.Equal(got, want) {
			t.Errorf("$SYS/+ received retained %q, want %q", got, want)
		}
	})
}

// TestPaho311OverlappingSubscriptionsDeliverOnce subscribes one client to
// 'ov/+' at QoS 0, 'ov/#' at QoS 1 and 'ov/a' at QoS 0: a matching message
// is delivered once, at the highest granted QoS that the publish allows
// [MQTT-3.3.5-1].
func TestPaho311OverlappingSubscriptionsDeliverOnce(t *testing.T) {
	eachTransport(t, nil, func(t *testing.T, b *brokertest.Broker, tr brokertest.Transport) {
		sub := brokertest.ConnectPaho311(t, b, tr, "sub", nil)
		sub.MustSubscribe("ov/+", 0)
		sub.MustSubscribe("ov/#", 1)
		sub.MustSubscribe("ov/a", 0)
		sub.MustSubscribe(sentinelTopic, 1)
		pub := brokertest.ConnectPaho311(t, b, tr, "pub", nil)
		pub.MustPublish("ov/a", 2, false, "at2")
		pub.MustPublish("ov/a", 0, false, "at0")
		sendSentinel(pub)
		got := untilSentinel(t, sub)
		if len(got) != 2 {
			t.Fatalf("received %d messages, want 2 (one per publish): topics %q", len(got), topics(got))
		}
		checkMsg(t, got[0], "ov/a", "at2", 1, false)
		checkMsg(t, got[1], "ov/a", "at0", 0, false)
	})
}

// --- Retained messages ---

// TestPaho311RetainedDeliveredOnSubscribe sets a retained message; a later
// subscriber receives it once with the RETAIN flag set [MQTT-3.3.1-6]
// [MQTT-3.3.1-8], at the lower of the message's and the granted QoS.
func TestPaho311RetainedDeliveredOnSubscribe(t *testing.T) {
	eachTransport(t, nil, func(t *testing.T, b *brokertest.Broker, tr brokertest.Transport) {
		pub := brokertest.ConnectPaho311(t, b, tr, "pub", nil)
		pub.MustPublish("ret/a", 1, true, "v1")
		pub.MustPublish("ret/b", 2, true, "w1")
		sub := brokertest.ConnectPaho311(t, b, tr, "sub", nil)
		sub.MustSubscribe(sentinelTopic, 1)
		sub.MustSubscribe("ret/a", 1)
		checkMsg(t, sub.Next(), "ret/a", "v1", 1, true)
		sub.MustSubscribe("ret/b", 1)
		checkMsg(t, sub.Next(), "ret/b", "w1", 1, true)
		expectNothingMore(t, pub, sub)
	})
}

// TestPaho311RetainedReplaced sets a retained message twice on one topic:
// a later subscriber receives only the second [MQTT-3.3.1-5].
func TestPaho311RetainedReplaced(t *testing.T) {
	eachTransport(t, nil, func(t *testing.T, b *brokertest.Broker, tr brokertest.Transport) {
		pub := brokertest.ConnectPaho311(t, b, tr, "pub", nil)
		pub.MustPublish("ret/a", 1, true, "v1")
		pub.MustPublish("ret/a", 1, true, "v2")
		if n := b.Server.Stats().Retained; n != 1 {
			t.Fatalf("%d retained messages, want 1", n)
		}
		sub := brokertest.ConnectPaho311(t, b, tr, "sub", nil)
		sub.MustSubscribe(sentinelTopic, 1)
		sub.MustSubscribe("ret/#", 1)
		checkMsg(t, sub.Next(), "ret/a", "v2", 1, true)
		expectNothingMore(t, pub, sub)
	})
}

// TestPaho311RetainedClearedByEmptyPayload sets a retained message, then
// publishes a retained message with an empty payload: the retained message
// is gone and a later subscriber receives nothing retained
// [MQTT-3.3.1-10] [MQTT-3.3.1-11].
func TestPaho311RetainedClearedByEmptyPayload(t *testing.T) {
	eachTransport(t, nil, func(t *testing.T, b *brokertest.Broker, tr brokertest.Transport) {
		pub := brokertest.ConnectPaho311(t, b, tr, "pub", nil)
		pub.MustPublish("ret/a", 1, true, "v1")
		if n := b.Server.Stats().Retained; n != 1 {
			t.Fatalf("%d retained messages after setting one, want 1", n)
		}
		pub.MustPublish("ret/a", 1, true, "")
		if n := b.Server.Stats().Retained; n != 0 {
			t.Fatalf("%d retained messages after clearing, want 0", n)
		}
		sub := brokertest.ConnectPaho311(t, b, tr, "sub", nil)
		sub.MustSubscribe(sentinelTopic, 1)
		sub.MustSubscribe("ret/#", 1)
		expectNothingMore(t, pub, sub)
	})
}

// TestPaho311RetainFlagClearedOnLiveDelivery publishes a retained message
// to an existing subscriber: it is delivered with RETAIN 0, because it was
// routed as a new publication [MQTT-3.3.1-9]; a new subscriber then gets
// it with RETAIN 1.
func TestPaho311RetainFlagClearedOnLiveDelivery(t *testing.T) {
	eachTransport(t, nil, func(t *testing.T, b *brokertest.Broker, tr brokertest.Transport) {
		live := brokertest.ConnectPaho311(t, b, tr, "live", nil)
		live.MustSubscribe("ret/live", 1)
		pub := brokertest.ConnectPaho311(t, b, tr, "pub", nil)
		pub.MustPublish("ret/live", 1, true, "now")
		checkMsg(t, live.Next(), "ret/live", "now", 1, false)
		late := brokertest.ConnectPaho311(t, b, tr, "late", nil)
		late.MustSubscribe("ret/live", 1)
		checkMsg(t, late.Next(), "ret/live", "now", 1, true)
	})
}

// --- Will ---

func willWatcher(t *testing.T, b *brokertest.Broker, tr brokertest.Transport) *brokertest.Paho311 {
	t.Helper()
	w := brokertest.ConnectPaho311(t, b, tr, "watcher", nil)
	w.MustSubscribe("will/#", 1)
	w.MustSubscribe(sentinelTopic, 1)
	return w
}

// TestPaho311WillOnConnectionDrop drops a paho client's network connection
// without DISCONNECT: its will is published [MQTT-3.1.2-8].
func TestPaho311WillOnConnectionDrop(t *testing.T) {
	eachTransport(t, nil, func(t *testing.T, b *brokertest.Broker, tr brokertest.Transport) {
		w := willWatcher(t, b, tr)
		owner := brokertest.ConnectPaho311(t, b, tr, "owner", func(o *paho.ClientOptions) {
			o.SetWill("will/owner", "owner is gone", 1, false)
		})
		owner.DropConnection()
		checkMsg(t, w.Next(), "will/owner", "owner is gone", 1, false)
		expectNothingMore(t, w, w)
	})
}

// TestPaho311WillSurvivesLaterPackets has the owner of a will publish and
// ping after CONNECT before its connection drops: the will is published
// as it was given [MQTT-3.1.2-8], not as whatever later packets left in
// the connection's read buffer.
func TestPaho311WillSurvivesLaterPackets(t *testing.T) {
	eachTransport(t, nil, func(t *testing.T, b *brokertest.Broker, tr brokertest.Transport) {
		w := willWatcher(t, b, tr)
		r := brokertest.DialRaw311(t, b, tr)
		r.Connect(&mqtt.Connect{ClientID: "owner", CleanStart: true,
			Will: &mqtt.Will{Topic: "will/owner", Payload: []byte("owner is gone"), QoS: 1}})
		r.Send(&mqtt.Publish{Topic: []byte("other/t"), Payload: bytes.Repeat([]byte("x"), 300)})
		r.Send(&mqtt.Pingreq{})
		brokertest.Expect311[*mqtt.Pingresp](r)
		r.Conn.Close()
		checkMsg(t, w.Next(), "will/owner", "owner is gone", 1, false)
	})
}

// TestPaho311NoWillOnCleanDisconnect ends a connection with DISCONNECT:
// the will is discarded, not published [MQTT-3.1.2-10] [MQTT-3.14.4-3].
func TestPaho311NoWillOnCleanDisconnect(t *testing.T) {
	eachTransport(t, nil, func(t *testing.T, b *brokertest.Broker, tr brokertest.Transport) {
		w := willWatcher(t, b, tr)
		owner := brokertest.ConnectPaho311(t, b, tr, "owner", func(o *paho.ClientOptions) {
			o.SetWill("will/owner", "owner is gone", 1, false)
		})
		waitConnections(t, b, 2)
		owner.Disconnect(1000)
		waitConnections(t, b, 1) // the owner's connection has been cleaned up
		if n := b.Server.Stats().WillsPublished; n != 0 {
			t.Fatalf("%d wills published, want 0", n)
		}
		expectNothingMore(t, w, w)
	})
}

// TestPaho311WillOnKeepAliveTimeout connects a client with keep-alive 1s
// that then stays silent: the broker disconnects it after 1.5s
// [MQTT-3.1.2-24] and publishes its will.
func TestPaho311WillOnKeepAliveTimeout(t *testing.T) {
	eachTransport(t, nil, func(t *testing.T, b *brokertest.Broker, tr brokertest.Transport) {
		w := willWatcher(t, b, tr)
		r := brokertest.DialRaw311(t, b, tr)
		r.Connect(&mqtt.Connect{ClientID: "silent", CleanStart: true, KeepAlive: 1,
			Will: &mqtt.Will{Topic: "will/silent", Payload: []byte("timed out"), QoS: 1}})
		start := time.Now()
		checkMsg(t, w.Next(), "will/silent", "timed out", 1, false)
		if took := time.Since(start); took < 1200*time.Millisecond || took > keepAliveSlack {
			t.Errorf("will published %v after CONNACK, want about 1.5s", took)
		}
	})
}

// --- Sessions ---

// TestPaho311PersistentSessionQueuesWhileOffline subscribes with
// CleanSession 0, disconnects, and has QoS 1 messages published while it
// is offline (more than the inflight window): on reconnect CONNACK says
// session present [MQTT-3.2.2-2] and the messages arrive, in order
// [MQTT-3.1.2-5].
func TestPaho311PersistentSessionQueuesWhileOffline(t *testing.T) {
	eachTransport(t, nil, func(t *testing.T, b *brokertest.Broker, tr brokertest.Transport) {
		c := brokertest.NewPaho311(t, b, tr, "persist", persistent)
		if c.MustConnect() {
			t.Fatal("session present on the first connect, want not present [MQTT-3.2.2-3]")
		}
		c.MustSubscribe("ps/t", 1)
		c.Disconnect(1000)
		waitConnections(t, b, 0)

		pub := brokertest.ConnectPaho311(t, b, tr, "pub", nil)
		const n = 100 // > Options.MaxInflight
		for i := range n {
			pub.MustPublish("ps/t", 1, false, fmt.Sprintf("offline %d", i))
		}

		c2 := brokertest.NewPaho311(t, b, tr, "persist", persistent)
		if !c2.MustConnect() {
			t.Fatal("session not present on reconnect with CleanSession 0")
		}
		for i := range n {
			checkMsg(t, c2.Next(), "ps/t", fmt.Sprintf("offline %d", i), 1, false)
		}
		c2.MustSubscribe(sentinelTopic, 1)
		expectNothingMore(t, pub, c2)
	})
}

// TestPaho311CleanSessionDiscardsState reconnects to a persistent session
// with messages queued, but with CleanSession 1: CONNACK says no session
// present [MQTT-3.2.2-1], nothing queued is delivered, and the clean
// session is not kept either [MQTT-3.1.2-6].
func TestPaho311CleanSessionDiscardsState(t *testing.T) {
	eachTransport(t, nil, func(t *testing.T, b *brokertest.Broker, tr brokertest.Transport) {
		c := brokertest.ConnectPaho311(t, b, tr, "cs", persistent)
		c.MustSubscribe("cs/t", 1)
		c.Disconnect(1000)
		waitConnections(t, b, 0)
		pub := brokertest.ConnectPaho311(t, b, tr, "pub", nil)
		for i := range 3 {
			pub.MustPublish("cs/t", 1, false, fmt.Sprintf("queued %d", i))
		}

		c2 := brokertest.NewPaho311(t, b, tr, "cs", nil)
		if c2.MustConnect() {
			t.Fatal("session present with CleanSession 1")
		}
		c2.MustSubscribe(sentinelTopic, 1)
		expectNothingMore(t, pub, c2)
		// The old subscription is gone too.
		pub.MustPublish("cs/t", 1, false, "after clean")
		expectNothingMore(t, pub, c2)
		c2.Disconnect(1000)
		waitConnections(t, b, 1)

		c3 := brokertest.NewPaho311(t, b, tr, "cs", persistent)
		if c3.MustConnect() {
			t.Fatal("session present after a CleanSession 1 connection ended")
		}
	})
}

// TestPaho311Takeover connects a second client with the same client id:
// the broker closes the first connection [MQTT-3.1.4-3] and the second
// works.
func TestPaho311Takeover(t *testing.T) {
	eachTransport(t, nil, func(t *testing.T, b *brokertest.Broker, tr brokertest.Transport) {
		first := brokertest.ConnectPaho311(t, b, tr, "same-id", nil)
		second := brokertest.ConnectPaho311(t, b, tr, "same-id", nil)
		if err := first.WaitLost(brokertest.WaitTimeout); err != nil {
			t.Fatalf("first connection: %v", err)
		}
		waitConnections(t, b, 1)
		if !second.IsConnectionOpen() {
			t.Fatal("second connection closed")
		}
		second.MustSubscribe("to/t", 1)
		second.MustPublish("to/t", 1, false, "still here")
		checkMsg(t, second.Next(), "to/t", "still here", 1, false)
	})
}

// TestPaho311UnsubscribeStopsDelivery unsubscribes after one delivery: the
// next message on the topic is not delivered [MQTT-3.10.4-2].
func TestPaho311UnsubscribeStopsDelivery(t *testing.T) {
	eachTransport(t, nil, func(t *testing.T, b *brokertest.Broker, tr brokertest.Transport) {
		sub := brokertest.ConnectPaho311(t, b, tr, "sub", nil)
		sub.MustSubscribe("un/t", 1)
		sub.MustSubscribe(sentinelTopic, 1)
		pub := brokertest.ConnectPaho311(t, b, tr, "pub", nil)
		pub.MustPublish("un/t", 1, false, "before")
		checkMsg(t, sub.Next(), "un/t", "before", 1, false)
		sub.MustUnsubscribe("un/t")
		pub.MustPublish("un/t", 1, false, "after")
		expectNothingMore(t, pub, sub)
	})
}

// TestPaho311RedeliveryWithDup has a raw client receive a QoS 1 message,
// not acknowledge it, and disconnect; on reconnect with CleanSession 0 the
// broker re-sends it with DUP 1, the same packet identifier and the same
// payload [MQTT-4.4.0-1] [MQTT-3.3.1-1]. Once acknowledged it is not sent
// again.
func TestPaho311RedeliveryWithDup(t *testing.T) {
	eachTransport(t, nil, func(t *testing.T, b *brokertest.Broker, tr brokertest.Transport) {
		connect := &mqtt.Connect{ClientID: "no-ack", CleanStart: false, KeepAlive: 30}
		r := brokertest.DialRaw311(t, b, tr)
		if ack := r.Connect(connect); ack.SessionPresent {
			t.Fatal("session present on the first connect")
		}
		r.Send(&mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "rd/t", QoS: 1}}})
		if sa := brokertest.Expect311[*mqtt.Suback](r); sa.PacketID != 1 || !slices.Equal(sa.ReasonCodes, []mqtt.ReasonCode{1}) {
			t.Fatalf("SUBACK %+v, want id 1 codes [1]", sa)
		}
		pub := brokertest.ConnectPaho311(t, b, tr, "pub", nil)
		pub.MustPublish("rd/t", 1, false, "unacked")
		p := brokertest.Expect311[*mqtt.Publish](r)
		if p.Dup || p.QoS != 1 || string(p.Topic) != "rd/t" || string(p.Payload) != "unacked" {
			t.Fatalf("first delivery: dup %v qos %d topic %q payload %q", p.Dup, p.QoS, p.Topic, p.Payload)
		}
		pid := p.PacketID
		r.Send(&mqtt.Disconnect{}) // no PUBACK
		r.Conn.Close()
		waitConnections(t, b, 1)

		r2 := brokertest.DialRaw311(t, b, tr)
		if ack := r2.Connect(connect); !ack.SessionPresent {
			t.Fatal("session not present on reconnect")
		}
		p2 := brokertest.Expect311[*mqtt.Publish](r2)
		if !p2.Dup || p2.QoS != 1 || p2.PacketID != pid || string(p2.Topic) != "rd/t" || string(p2.Payload) != "unacked" {
			t.Fatalf("redelivery: dup %v qos %d id %d topic %q payload %q; want dup true qos 1 id %d topic rd/t payload unacked",
				p2.Dup, p2.QoS, p2.PacketID, p2.Topic, p2.Payload, pid)
		}
		r2.Send(&mqtt.Puback{PacketID: pid})
		waitAcked(t, b, 1)
		r2.Send(&mqtt.Disconnect{})
		r2.Conn.Close()
		waitConnections(t, b, 1)

		r3 := brokertest.DialRaw311(t, b, tr)
		r3.Connect(connect)
		r3.Send(&mqtt.Pingreq{})
		if p, err := r3.Read(brokertest.WaitTimeout); err != nil || p.Type() != mqtt.PINGRESP {
			t.Fatalf("after the PUBACK, reconnect got %v (err %v), want only PINGRESP", p, err)
		}
	})
}

// TestPaho311SharedSubscription has 3 paho clients in '$share/g/sh/t':
// 30 messages are split among them, each delivered exactly once in total.
func TestPaho311SharedSubscription(t *testing.T) {
	const n = 30
	eachTransport(t, nil, func(t *testing.T, b *brokertest.Broker, tr brokertest.Transport) {
		var members []*brokertest.Paho311
		for i := range 3 {
			m := brokertest.ConnectPaho311(t, b, tr, fmt.Sprintf("member-%d", i), nil)
			if g := m.MustSubscribe("$share/g/sh/t", 1); g != 1 {
				t.Fatalf("granted QoS %d, want 1", g)
			}
			m.MustSubscribe(sentinelTopic, 1)
			members = append(members, m)
		}
		pub := brokertest.ConnectPaho311(t, b, tr, "pub", nil)
		for i := range n {
			pub.MustPublish("sh/t", 1, false, fmt.Sprintf("m%02d", i))
		}
		sendSentinel(pub)
		seen := make(map[string]int)
		for i, m := range members {
			got := untilSentinel(t, m)
			if len(got) == 0 {
				t.Errorf("member %d received nothing", i)
			}
			for _, msg := range got {
				if msg.Topic() != "sh/t" {
					t.Errorf("member %d received topic %q, want sh/t", i, msg.Topic())
				}
				seen[string(msg.Payload())]++
			}
		}
		for i := range n {
			if p := fmt.Sprintf("m%02d", i); seen[p] != 1 {
				t.Errorf("message %s delivered %d times, want 1", p, seen[p])
			}
		}
		if len(seen) != n {
			t.Errorf("%d distinct messages delivered, want %d", len(seen), n)
		}
	})
}

// --- Timeouts ---

// TestPaho311KeepAliveTimeout connects a raw client with keep-alive 1s
// that sends nothing after CONNACK: the broker closes the connection
// after one and a half times the keep-alive [MQTT-3.1.2-24].
func TestPaho311KeepAliveTimeout(t *testing.T) {
	eachTransport(t, nil, func(t *testing.T, b *brokertest.Broker, tr brokertest.Transport) {
		r := brokertest.DialRaw311(t, b, tr)
		r.Connect(&mqtt.Connect{ClientID: "silent", CleanStart: true, KeepAlive: 1})
		took, err := r.WaitClosed(keepAliveSlack)
		if err != nil {
			t.Fatal(err)
		}
		if took < 1200*time.Millisecond {
			t.Errorf("closed %v after CONNACK, before the keep-alive grace of 1.5s", took)
		}
	})
}

// TestPaho311KeepAlivePingsKeepConnection is the converse: a client with
// keep-alive 1s that sends PINGREQ every 500ms stays connected for well
// over 1.5s and gets a PINGRESP each time [MQTT-3.12.4-1].
func TestPaho311KeepAlivePingsKeepConnection(t *testing.T) {
	eachTransport(t, nil, func(t *testing.T, b *brokertest.Broker, tr brokertest.Transport) {
		r := brokertest.DialRaw311(t, b, tr)
		r.Connect(&mqtt.Connect{ClientID: "pinger", CleanStart: true, KeepAlive: 1})
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for range 6 { // 3s, twice the grace period
			<-tick.C
			r.Send(&mqtt.Pingreq{})
			brokertest.Expect311[*mqtt.Pingresp](r)
		}
	})
}

// TestPaho311ConnectTimeout opens a connection that never sends CONNECT:
// the broker closes it after Options.ConnectTimeout.
func TestPaho311ConnectTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	eachTransport(t, &broker.Options{ConnectTimeout: timeout}, func(t *testing.T, b *brokertest.Broker, tr brokertest.Transport) {
		r := brokertest.DialRaw311(t, b, tr)
		took, err := r.WaitClosed(timeout + timingSlack)
		if err != nil {
			t.Fatal(err)
		}
		if took < timeout*3/4 {
			t.Errorf("closed after %v, before the connect timeout of %v", took, timeout)
		}
	})
}
