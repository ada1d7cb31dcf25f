//go:build unix

package broker_test

import (
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

// The tests in this file check, one by one and with a real SIGKILL of the
// weir binary (crash_test.go), the durability claims of the README that
// the randomised crash scenarios do not isolate: each acknowledges
// something (SUBACK, UNSUBACK, PUBACK, PUBREC, PUBCOMP, CONNACK, PUBREL),
// kills the broker at once and checks after the restart that what was
// acknowledged holds. The durability modes are those the README promises
// it for: process and sync alike keep what was acknowledged over a kill.

var killModes = []string{"process", "sync"}

// startCrashChild starts the weir child on the crash tests' configuration.
func startCrashChild(t *testing.T, durability string) *brokertest.Child {
	t.Helper()
	return brokertest.StartChild(t, brokertest.ChildOptions{Durability: durability, BaseConfig: crashConfig})
}

// leaveOffline connects cp, subscribes it to filter at qos and
// disconnects it normally, leaving its persistent session offline.
func leaveOffline(t *testing.T, child *brokertest.Child, cp *mqtt.Connect, qos byte, filter string) {
	t.Helper()
	c, _ := mustDial(t, child.Addr(), cp)
	mustSubscribe(t, c, 1, qos, filter)
	mustSend(t, c, &mqtt.Disconnect{})
	c.close()
	waitLogged(t, child, "client disconnected", cp.ClientID)
}

// resume connects cp, which must find its session (after a restart),
// failing the test with why if it does not.
func resume(t *testing.T, addr string, cp *mqtt.Connect, why string) *mqttConn {
	t.Helper()
	c, ack := mustDial(t, addr, cp)
	if !ack.SessionPresent {
		t.Fatal(why)
	}
	return c
}

// v5 is an MQTT 5.0 CONNECT of id with a Session Expiry Interval.
func v5(id string, clean bool, expiry uint32) *mqtt.Connect {
	return &mqtt.Connect{ProtocolLevel: mqtt.V5, ClientID: id, CleanStart: clean,
		Props: mqtt.Properties{SessionExpiry: expiry}}
}

// mustSubscribe subscribes c to filters at qos and checks that SUBACK
// grants them.
func mustSubscribe(t *testing.T, c *mqttConn, pid uint16, qos byte, filters ...string) {
	t.Helper()
	s := &mqtt.Subscribe{PacketID: pid}
	for _, f := range filters {
		s.Subscriptions = append(s.Subscriptions, mqtt.Subscription{Filter: f, QoS: qos})
	}
	mustSend(t, c, s)
	ack := mustExpect[*mqtt.Suback](t, c)
	for i, rc := range ack.ReasonCodes {
		if byte(rc) != qos {
			t.Fatalf("SUBACK for %s: %#x, want QoS %d granted", filters[i], byte(rc), qos)
		}
	}
}

// mustPublish publishes p (QoS 1 or 2) on c and waits for its PUBACK or,
// for QoS 2, PUBREC; with complete set a QoS 2 exchange is completed
// (PUBREL, PUBCOMP).
func mustPublish(t *testing.T, c *mqttConn, p *mqtt.Publish, complete bool) {
	t.Helper()
	mustSend(t, c, p)
	if p.QoS == 1 {
		if ack := mustExpect[*mqtt.Puback](t, c); ack.PacketID != p.PacketID || ack.ReasonCode.IsError() {
			t.Fatalf("PUBACK %+v for packet id %d", ack, p.PacketID)
		}
		return
	}
	if rec := mustExpect[*mqtt.Pubrec](t, c); rec.PacketID != p.PacketID || rec.ReasonCode.IsError() {
		t.Fatalf("PUBREC %+v for packet id %d", rec, p.PacketID)
	}
	if complete {
		mustSend(t, c, &mqtt.Pubrel{PacketID: p.PacketID})
		if comp := mustExpect[*mqtt.Pubcomp](t, c); comp.PacketID != p.PacketID || comp.ReasonCode.IsError() {
			t.Fatalf("PUBCOMP %+v for packet id %d", comp, p.PacketID)
		}
	}
}

// publishAcked connects a new clean MQTT 5.0 client and publishes ps,
// each acknowledged (QoS 2 completed) before the next.
func publishAcked(t *testing.T, addr string, ps ...*mqtt.Publish) {
	t.Helper()
	c, _ := mustDial(t, addr, v5("crash-claims-pub", true, 0))
	for i, p := range ps {
		p.PacketID = uint16(i + 1)
		mustPublish(t, c, p, true)
	}
	mustSend(t, c, &mqtt.Disconnect{})
	c.close()
}

// collect reads what the broker sends on c until a QoS 1 probe that it
// publishes to probe (which a subscription of c must match) comes back:
// everything queued before it has been sent by then. QoS 1 deliveries are
// acknowledged, QoS 2 ones completed; the probe is not returned.
func collect(t *testing.T, c *mqttConn, probe string) []*mqtt.Publish {
	t.Helper()
	const probePID = 65000
	mustSend(t, c, &mqtt.Publish{QoS: 1, PacketID: probePID, Topic: []byte(probe), Payload: []byte("probe")})
	var got []*mqtt.Publish
	for {
		p, err := c.read(10 * time.Second)
		if err != nil {
			t.Fatalf("collecting (%d messages so far): %v", len(got), err)
		}
		switch p := p.(type) {
		case *mqtt.Publish:
			switch p.QoS {
			case 1:
				c.queue(&mqtt.Puback{PacketID: p.PacketID})
			case 2:
				c.queue(&mqtt.Pubrec{PacketID: p.PacketID})
			}
			if err := c.flush(); err != nil {
				t.Fatal(err)
			}
			if string(p.Topic) == probe && string(p.Payload) == "probe" {
				return got
			}
			got = append(got, p)
		case *mqtt.Pubrel:
			mustSend(t, c, &mqtt.Pubcomp{PacketID: p.PacketID})
		case *mqtt.Puback: // of the probe
		default:
			t.Fatalf("unexpected %v %+v", p.Type(), p)
		}
	}
}

// payloads are the topic=payload pairs of ps, in order.
func payloads(ps []*mqtt.Publish) []string {
	var s []string
	for _, p := range ps {
		s = append(s, string(p.Topic)+"="+string(p.Payload))
	}
	return s
}

// waitLogged waits until the child's current run has logged a line
// containing all of parts.
func waitLogged(t *testing.T, child *brokertest.Child, parts ...string) {
	t.Helper()
	brokertest.Eventually(t, 10*time.Second, func() error {
	lines:
		for _, l := range strings.Split(child.RunLogs(), "\n") {
			for _, p := range parts {
				if !strings.Contains(l, p) {
					continue lines
				}
			}
			return nil
		}
		return fmt.Errorf("no log line with %q", parts)
	})
}

// TestCrashRetainedSetAndClear: retained messages set with QoS 1 and 2 are
// kept over a SIGKILL that follows their PUBACK / PUBREC at once, a newer
// value replaces an older one, and a retained message cleared (empty
// payload, [MQTT-3.3.1-10]) with an acknowledged QoS 1 PUBLISH just before
// the kill stays cleared, also when it was set before the previous
// restart.
func TestCrashRetainedSetAndClear(t *testing.T) {
	for _, d := range killModes {
		t.Run(d, func(t *testing.T) {
			child := startCrashChild(t, d)
			c, _ := mustDial(t, child.Addr(), &mqtt.Connect{ClientID: "retainer", CleanStart: true})
			pub := func(pid uint16, qos byte, topic, payload string) {
				mustPublish(t, c, &mqtt.Publish{QoS: qos, PacketID: pid, Retain: true, Topic: []byte(topic), Payload: []byte(payload)}, false)
			}
			pub(1, 1, "r/old", "set before the first kill")
			pub(2, 1, "r/replaced", "v1")
			pub(3, 1, "r/cleared-later", "cleared after the first restart")
			pub(4, 1, "r/cleared-now", "x")
			pub(5, 1, "r/replaced", "v2")
			pub(6, 1, "r/cleared-now", "")
			pub(7, 2, "r/qos2", "PUBREC is the acknowledgement")
			child.Kill()
			child.Restart()
			want := map[string]string{"r/old": "set before the first kill", "r/replaced": "v2",
				"r/cleared-later": "cleared after the first restart", "r/qos2": "PUBREC is the acknowledgement"}
			got, err := retainedOf(child.Addr(), "r/#")
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, want) {
				t.Errorf("retained messages after the first kill: %q, want %q", got, want)
			}

			c, _ = mustDial(t, child.Addr(), &mqtt.Connect{ClientID: "retainer", CleanStart: true})
			pub(1, 1, "r/cleared-later", "")
			pub(2, 1, "r/replaced", "v3")
			child.Kill()
			child.Restart()
			want = map[string]string{"r/old": "set before the first kill", "r/replaced": "v3",
				"r/qos2": "PUBREC is the acknowledgement"}
			if got, err = retainedOf(child.Addr(), "r/#"); err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, want) {
				t.Errorf("retained messages after the second kill: %q, want %q", got, want)
			}
		})
	}
}

// TestCrashSubscriptionsSurvive: subscriptions whose SUBACK arrived just
// before a SIGKILL survive for persistent sessions (3.1 and 3.1.1 Clean
// Session 0, 5.0 with a Session Expiry Interval, shared subscriptions included, with
// the clients still connected at the kill), an unsubscribe whose UNSUBACK
// arrived stays done, and a clean session leaves nothing behind: neither
// the session of a 3.1.1 client with Clean Session 1, nor the earlier
// persistent session that its CONNACK (session present 0) discarded
// [MQTT-3.1.2-6].
func TestCrashSubscriptionsSurvive(t *testing.T) {
	for _, d := range killModes {
		t.Run(d, func(t *testing.T) {
			child := startCrashChild(t, d)
			addr := child.Addr()

			// A persistent session that a clean one replaces just before
			// the kill.
			leaveOffline(t, child, &mqtt.Connect{ClientID: "was-persistent"}, 1, "s/was")
			publishAcked(t, addr, &mqtt.Publish{QoS: 1, Topic: []byte("s/was"), Payload: []byte("queued before the clean start")})

			s311, _ := mustDial(t, addr, &mqtt.Connect{ClientID: "sub-311"})
			mustSubscribe(t, s311, 1, 1, "s/a", "s/b")
			mustSend(t, s311, &mqtt.Unsubscribe{PacketID: 2, Filters: []string{"s/b"}})
			mustExpect[*mqtt.Unsuback](t, s311)
			s31, _ := mustDial(t, addr, &mqtt.Connect{ProtocolName: "MQIsdp", ProtocolLevel: mqtt.V31, ClientID: "sub-31"})
			mustSubscribe(t, s31, 1, 1, "s/e")
			s5, _ := mustDial(t, addr, v5("sub-5", false, 3600))
			mustSubscribe(t, s5, 1, 2, "s/c", "$share/g/s/d")
			cl, _ := mustDial(t, addr, &mqtt.Connect{ClientID: "clean-311", CleanStart: true})
			mustSubscribe(t, cl, 1, 1, "s/#")
			_, ack := mustDial(t, addr, &mqtt.Connect{ClientID: "was-persistent", CleanStart: true})
			if ack.SessionPresent {
				t.Fatal("CONNACK with Clean Session 1: session present")
			}
			child.Kill()
			child.Restart()

			publishAcked(t, addr,
				&mqtt.Publish{QoS: 1, Topic: []byte("s/a"), Payload: []byte("a")},
				&mqtt.Publish{QoS: 1, Topic: []byte("s/b"), Payload: []byte("b")},
				&mqtt.Publish{QoS: 2, Topic: []byte("s/c"), Payload: []byte("c")},
				&mqtt.Publish{QoS: 2, Topic: []byte("s/d"), Payload: []byte("d")},
				&mqtt.Publish{QoS: 1, Topic: []byte("s/was"), Payload: []byte("after the restart")},
				&mqtt.Publish{QoS: 2, Topic: []byte("s/e"), Payload: []byte("e")})

			for _, tc := range []struct {
				cp    *mqtt.Connect
				probe string
				want  []string
			}{
				{&mqtt.Connect{ClientID: "sub-311"}, "s/a", []string{"s/a=a"}},
				{&mqtt.Connect{ProtocolName: "MQIsdp", ProtocolLevel: mqtt.V31, ClientID: "sub-31"}, "s/e", []string{"s/e=e"}},
				{v5("sub-5", false, 3600), "s/c", []string{"s/c=c", "s/d=d"}},
			} {
				c, ack := mustDial(t, addr, tc.cp)
				if !ack.SessionPresent {
					t.Errorf("%s: session not present after the kill", tc.cp.ClientID)
					continue
				}
				got := payloads(collect(t, c, tc.probe))
				if !slicesEqualUnordered(got, tc.want) {
					t.Errorf("%s received %q after the kill, want %q", tc.cp.ClientID, got, tc.want)
				}
				c.close()
			}
			for _, id := range []string{"clean-311", "was-persistent"} {
				c, ack := mustDial(t, addr, &mqtt.Connect{ClientID: id})
				if ack.SessionPresent {
					t.Errorf("%s: a session is present after the kill; its last connection had Clean Session 1", id)
				}
				mustSubscribe(t, c, 1, 1, "s/probe-"+id)
				if got := collect(t, c, "s/probe-"+id); len(got) > 0 {
					t.Errorf("%s received %q", id, payloads(got))
				}
				c.close()
			}
		})
	}
}

func slicesEqualUnordered(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		if m[s]--; m[s] < 0 {
			return false
		}
	}
	return true
}

// TestCrashSessionExpiry: the Session Expiry Interval counts from the
// disconnection across a SIGKILL and restart: a session whose interval
// passed while the broker was down is gone after the restart, with its
// queue [MQTT-3.1.2-23]; one whose interval has not passed keeps its
// subscriptions and queue; one resumed with an interval of 0 ended with
// the connection the kill closed [MQTT-3.1.2-23].
func TestCrashSessionExpiry(t *testing.T) {
	child := startCrashChild(t, "process")
	addr := child.Addr()
	for _, s := range []struct {
		id     string
		expiry uint32
	}{{"exp-short", 2}, {"exp-long", 3600}} {
		leaveOffline(t, child, v5(s.id, true, s.expiry), 1, "e/#")
	}
	disconnected := time.Now()
	publishAcked(t, addr, &mqtt.Publish{QoS: 1, Topic: []byte("e/1"), Payload: []byte("queued")})
	// A persistent session resumed with an interval of 0: it ends with
	// this connection, which the kill closes.
	if _, ack := mustDial(t, addr, v5("exp-zero", true, 3600)); ack.SessionPresent {
		t.Fatal("exp-zero: session present at the first connection")
	}
	if _, ack := mustDial(t, addr, v5("exp-zero", false, 0)); !ack.SessionPresent {
		t.Fatal("exp-zero: session not present when resumed")
	}
	child.Kill()
	time.Sleep(time.Until(disconnected.Add(2500 * time.Millisecond))) // past exp-short's interval, broker down
	child.Restart()

	c, ack := mustDial(t, addr, v5("exp-short", false, 60))
	if ack.SessionPresent {
		t.Error("exp-short: session present after its expiry interval passed while the broker was down")
	}
	mustSubscribe(t, c, 1, 1, "probe/exp-short")
	if got := collect(t, c, "probe/exp-short"); len(got) > 0 {
		t.Errorf("exp-short received %q from the queue of its expired session", payloads(got))
	}
	c.close()

	if _, ack := mustDial(t, addr, v5("exp-zero", false, 60)); ack.SessionPresent {
		t.Error("exp-zero: session present after the restart; its last connection had a Session Expiry Interval of 0")
	}

	c = resume(t, addr, v5("exp-long", false, 3600), "exp-long: session not present after the restart")
	if got := payloads(collect(t, c, "e/probe")); !slicesEqualUnordered(got, []string{"e/1=queued"}) {
		t.Errorf("exp-long received %q, want its queued message", got)
	}
}

// TestCrashMessageExpiry: messages queued for an offline session keep
// their Message Expiry Interval across a SIGKILL and restart: one that
// expired while the broker was down is not delivered [MQTT-3.3.2-5], one
// that has not is delivered with the interval less the time it waited,
// also the time the broker was down [MQTT-3.3.2-6], and one without
// expiry is delivered without the property. The same for retained
// messages.
func TestCrashMessageExpiry(t *testing.T) {
	for _, d := range killModes {
		t.Run(d, func(t *testing.T) {
			child := startCrashChild(t, d)
			addr := child.Addr()
			leaveOffline(t, child, v5("mx-sub", true, 3600), 1, "mx/#")
			published := time.Now()
			publishAcked(t, addr,
				&mqtt.Publish{QoS: 1, Topic: []byte("mx/short"), Payload: []byte("expires"), Props: mqtt.Properties{MessageExpiry: 2}},
				&mqtt.Publish{QoS: 2, Topic: []byte("mx/long"), Payload: []byte("kept"), Props: mqtt.Properties{MessageExpiry: 60}},
				&mqtt.Publish{QoS: 1, Topic: []byte("mx/none"), Payload: []byte("no expiry")},
				&mqtt.Publish{QoS: 1, Retain: true, Topic: []byte("mxr/short"), Payload: []byte("expires"), Props: mqtt.Properties{MessageExpiry: 2}},
				&mqtt.Publish{QoS: 1, Retain: true, Topic: []byte("mxr/long"), Payload: []byte("kept"), Props: mqtt.Properties{MessageExpiry: 60}})
			child.Kill()
			time.Sleep(time.Until(published.Add(2500 * time.Millisecond))) // past mx/short's interval, broker down
			child.Restart()

			c := resume(t, addr, v5("mx-sub", false, 3600), "session not present after the restart")
			got := collect(t, c, "mx/probe")
			waited := time.Since(published)
			if p := payloads(got); !slicesEqualUnordered(p, []string{"mx/long=kept", "mx/none=no expiry"}) {
				t.Fatalf("received %q, want the unexpired messages only", p)
			}
			for _, p := range got {
				e, has := p.Props.MessageExpiry, p.Props.Present.Has(mqtt.PropMessageExpiry)
				switch string(p.Topic) {
				case "mx/long":
					// At least 2.5 s passed; allow a second of rounding.
					if maxLeft := uint32(60 - waited.Truncate(time.Second)/time.Second + 1); e == 0 || e > 58 || e > maxLeft {
						t.Errorf("mx/long: Message Expiry Interval %d after waiting %v, want 1..min(58, %d)", e, waited, maxLeft)
					}
				case "mx/none":
					if has || e != 0 {
						t.Errorf("mx/none: Message Expiry Interval %d present, want none", e)
					}
				}
			}

			// Retained messages too.
			r, _ := mustDial(t, addr, v5("mx-retained", true, 0))
			mustSubscribe(t, r, 1, 1, "mxr/#")
			got = collect(t, r, "mxr/probe")
			waited = time.Since(published)
			if p := payloads(got); !slicesEqualUnordered(p, []string{"mxr/long=kept"}) {
				t.Fatalf("retained messages %q, want the unexpired one only", p)
			}
			maxLeft := uint32(60 - waited.Truncate(time.Second)/time.Second + 1)
			if e := got[0].Props.MessageExpiry; !got[0].Retain || e == 0 || e > 58 || e > maxLeft {
				t.Errorf("mxr/long: retain %v, Message Expiry Interval %d after waiting %v, want retained and 1..min(58, %d)",
					got[0].Retain, e, waited, maxLeft)
			}
		})
	}
}

// TestCrashInflightQoS1Redelivered: a QoS 1 delivery that the subscriber
// received but did not acknowledge when the broker was killed is sent
// again after the restart (at least once), for 3.1.1 and 5.0 sessions,
// and a PUBACK of a re-sent delivery ends it. As the README says, the
// packet ids of QoS 1 deliveries are stored at a graceful shutdown, not
// per delivery: after a kill the message may come back as a new delivery
// (new packet id, DUP 0) rather than as a re-send [MQTT-4.4.0-1].
func TestCrashInflightQoS1Redelivered(t *testing.T) {
	for _, d := range killModes {
		t.Run(d, func(t *testing.T) {
			child := startCrashChild(t, d)
			addr := child.Addr()
			cps := map[string]*mqtt.Connect{
				"if-311": {ClientID: "if-311"},
				"if-5":   v5("if-5", false, 3600),
			}
			conns := map[string]*mqttConn{}
			for id, cp := range cps {
				c, _ := mustDial(t, addr, cp)
				mustSubscribe(t, c, 1, 1, "if/"+id)
				conns[id] = c
			}
			publishAcked(t, addr,
				&mqtt.Publish{QoS: 1, Topic: []byte("if/if-311"), Payload: []byte("m311")},
				&mqtt.Publish{QoS: 1, Topic: []byte("if/if-5"), Payload: []byte("m5")})
			for id, c := range conns {
				p := mustExpect[*mqtt.Publish](t, c)
				if p.QoS != 1 || p.Dup {
					t.Fatalf("%s: first delivery QoS %d DUP %v", id, p.QoS, p.Dup)
				}
				// Not acknowledged.
			}
			child.Kill()
			child.Restart()
			for id, cp := range cps {
				c := resume(t, addr, cp, id+": session not present after the restart")
				got := collect(t, c, "if/"+id)
				if len(got) != 1 || string(got[0].Payload) != map[string]string{"if-311": "m311", "if-5": "m5"}[id] {
					t.Fatalf("%s received %q after the restart, want the unacknowledged message once", id, payloads(got))
				}
				t.Logf("%s: re-delivered with DUP %v", id, got[0].Dup)
				c.close()
				// Acknowledged now (collect sent PUBACK): not sent again.
				c, _ = mustDial(t, addr, cp)
				if got := collect(t, c, "if/"+id); len(got) > 0 {
					t.Errorf("%s: acknowledged delivery sent again: %q", id, payloads(got))
				}
				c.close()
			}
		})
	}
}

// TestCrashOutboundQoS2: the outbound side of exactly once across a
// SIGKILL, for 3.1.1 and 5.0 subscribers. Of two QoS 2 deliveries in
// flight at the kill, the one whose PUBREC the subscriber sent (and whose
// PUBREL it received) is not sent again: the broker resumes with PUBREL
// [MQTT-4.3.3]; the other, which the broker sent only after storing its
// packet id, is re-sent with DUP and the same packet id [MQTT-4.4.0-1]
// [MQTT-3.3.1-1], so the subscriber recognises it.
func TestCrashOutboundQoS2(t *testing.T) {
	for _, d := range killModes {
		t.Run(d, func(t *testing.T) {
			child := startCrashChild(t, d)
			addr := child.Addr()
			for _, cp := range []*mqtt.Connect{{ClientID: "q2-311"}, v5("q2-5", false, 3600)} {
				id := cp.ClientID
				c, _ := mustDial(t, addr, cp)
				mustSubscribe(t, c, 1, 2, "q2/"+id+"/#")
				publishAcked(t, addr,
					&mqtt.Publish{QoS: 2, Topic: []byte("q2/" + id + "/released"), Payload: []byte("1")},
					&mqtt.Publish{QoS: 2, Topic: []byte("q2/" + id + "/sent"), Payload: []byte("2")})
				rel := mustExpect[*mqtt.Publish](t, c)
				sent := mustExpect[*mqtt.Publish](t, c)
				mustSend(t, c, &mqtt.Pubrec{PacketID: rel.PacketID})
				if p := mustExpect[*mqtt.Pubrel](t, c); p.PacketID != rel.PacketID {
					t.Fatalf("%s: PUBREL for %d, want %d", id, p.PacketID, rel.PacketID)
				}
				child.Kill()
				child.Restart()

				c = resume(t, addr, cp, id+": session not present after the restart")
				var gotRel, gotSent bool
				for !gotRel || !gotSent {
					p, err := c.read(10 * time.Second)
					if err != nil {
						t.Fatalf("%s: after the restart (PUBREL %v, PUBLISH %v): %v", id, gotRel, gotSent, err)
					}
					switch p := p.(type) {
					case *mqtt.Pubrel:
						if p.PacketID != rel.PacketID || gotRel {
							t.Fatalf("%s: PUBREL %d, want one for %d", id, p.PacketID, rel.PacketID)
						}
						gotRel = true
						mustSend(t, c, &mqtt.Pubcomp{PacketID: p.PacketID})
					case *mqtt.Publish:
						if string(p.Payload) != "2" || p.PacketID != sent.PacketID || !p.Dup || p.QoS != 2 || gotSent {
							t.Fatalf("%s: after the restart PUBLISH %s %q packet id %d DUP %v QoS %d; want only the unreleased one re-sent, packet id %d with DUP",
								id, p.Topic, p.Payload, p.PacketID, p.Dup, p.QoS, sent.PacketID)
						}
						gotSent = true
						mustSend(t, c, &mqtt.Pubrec{PacketID: p.PacketID})
					default:
						t.Fatalf("%s: unexpected %v after the restart", id, p.Type())
					}
				}
				if got := collect(t, c, "q2/"+id+"/probe"); len(got) > 0 {
					t.Errorf("%s: delivered again after the restart: %q", id, payloads(got))
				}
				c.close()
			}
		})
	}
}

// TestCrashInboundQoS2Resent: a 5.0 publisher whose QoS 2 PUBLISH got
// PUBREC before a SIGKILL re-sends it with DUP after the restart: it is
// acknowledged again and delivered once [MQTT-4.3.3-10]; one it resumes
// with PUBREL is completed with PUBCOMP 0x00. Once its PUBCOMP
// arrived, the packet id is free: a new PUBLISH with it is a new message,
// delivered.
func TestCrashInboundQoS2Resent(t *testing.T) {
	for _, d := range killModes {
		t.Run(d, func(t *testing.T) {
			child := startCrashChild(t, d)
			addr := child.Addr()
			leaveOffline(t, child, v5("q2in-sub", true, 3600), 2, "q2in/#")

			pubCP := v5("q2in-pub", true, 3600)
			pub, _ := mustDial(t, addr, pubCP)
			mustPublish(t, pub, &mqtt.Publish{QoS: 2, PacketID: 7, Topic: []byte("q2in/a"), Payload: []byte("once")}, false)
			mustPublish(t, pub, &mqtt.Publish{QoS: 2, PacketID: 8, Topic: []byte("q2in/b"), Payload: []byte("first")}, true)
			mustPublish(t, pub, &mqtt.Publish{QoS: 2, PacketID: 9, Topic: []byte("q2in/c"), Payload: []byte("released after")}, false)
			child.Kill()
			child.Restart()

			pubCP.CleanStart = false
			pub = resume(t, addr, pubCP, "publisher: session not present after the restart")
			mustPublish(t, pub, &mqtt.Publish{QoS: 2, Dup: true, PacketID: 7, Topic: []byte("q2in/a"), Payload: []byte("once")}, true)
			mustPublish(t, pub, &mqtt.Publish{QoS: 2, PacketID: 8, Topic: []byte("q2in/b"), Payload: []byte("second")}, true)
			// PUBREC arrived before the kill: the publisher resumes with PUBREL,
			// and the stored packet id completes with PUBCOMP 0x00.
			mustSend(t, pub, &mqtt.Pubrel{PacketID: 9})
			if comp := mustExpect[*mqtt.Pubcomp](t, pub); comp.PacketID != 9 || comp.ReasonCode != 0 {
				t.Errorf("PUBCOMP %+v for the PUBREL of packet id 9, want reason 0x00 (the packet id was stored)", comp)
			}

			sub := resume(t, addr, v5("q2in-sub", false, 3600), "subscriber: session not present after the restart")
			got := payloads(collect(t, sub, "q2in/probe"))
			if want := []string{"q2in/a=once", "q2in/b=first", "q2in/b=second", "q2in/c=released after"}; !slicesEqualUnordered(got, want) {
				t.Errorf("subscriber received %q, want %q", got, want)
			}
		})
	}
}

// TestCrashSharedSubscriptionQueue: QoS 1 and 2 messages queued through a
// shared subscription ($share/g/…) for an offline 5.0 member are kept
// over a SIGKILL and delivered when it comes back.
func TestCrashSharedSubscriptionQueue(t *testing.T) {
	for _, d := range killModes {
		t.Run(d, func(t *testing.T) {
			child := startCrashChild(t, d)
			addr := child.Addr()
			leaveOffline(t, child, v5("sh-member", true, 3600), 2, "$share/g/sh/#")
			var want []string
			var ps []*mqtt.Publish
			for i := range 6 {
				p := fmt.Sprint(i)
				ps = append(ps, &mqtt.Publish{QoS: byte(1 + i%2), Topic: []byte("sh/x"), Payload: []byte(p)})
				want = append(want, "sh/x="+p)
			}
			publishAcked(t, addr, ps...)
			child.Kill()
			child.Restart()
			c := resume(t, addr, v5("sh-member", false, 3600), "session not present after the restart")
			if got := payloads(collect(t, c, "sh/probe")); !slicesEqualUnordered(got, want) {
				t.Errorf("received %q, want %q", got, want)
			}
		})
	}
}

// TestRetainedOnSubscribeThenBacklog: a persistent session that was sent
// retained messages when it subscribed still drains a queue longer than
// queue_memory_window (the part on disk is read back), also when it
// subscribes again, and gets the retained messages again, while that
// queue is being drained.
func TestRetainedOnSubscribeThenBacklog(t *testing.T) {
	child := brokertest.StartChild(t, brokertest.ChildOptions{BaseConfig: crashConfig,
		Limits: map[string]any{"queue_memory_window": 4}})
	addr := child.Addr()
	publishRetained(t, addr, "w/ret", "retained")
	c, _ := mustDial(t, addr, &mqtt.Connect{ClientID: "w-sub"})
	mustSubscribe(t, c, 1, 1, "w/#")
	if p := mustExpect[*mqtt.Publish](t, c); !p.Retain || p.QoS != 1 {
		t.Fatalf("retained message: retain %v QoS %d", p.Retain, p.QoS)
	} else {
		mustSend(t, c, &mqtt.Puback{PacketID: p.PacketID})
	}
	mustSend(t, c, &mqtt.Disconnect{})
	c.close()
	waitLogged(t, child, "client disconnected", "w-sub")
	var ps []*mqtt.Publish
	var want []string
	for i := range 20 {
		ps = append(ps, &mqtt.Publish{QoS: 1, Topic: []byte("w/x"), Payload: []byte(fmt.Sprint(i))})
		want = append(want, fmt.Sprintf("w/x=%d", i))
	}
	publishAcked(t, addr, ps...)
	c, _ = mustDial(t, addr, &mqtt.Connect{ClientID: "w-sub"})
	if got := payloads(collect(t, c, "w/probe")); !slicesEqualUnordered(got, want) {
		t.Fatalf("drained %q, want %q", got, want)
	}
	c.close()

	// Subscribing again while the backlog is on disk (a Receive Maximum
	// of 1 keeps it there).
	c, _ = mustDial(t, addr, v5("w-sub5", true, 3600))
	mustSubscribe(t, c, 1, 1, "w/#")
	if p := mustExpect[*mqtt.Publish](t, c); !p.Retain {
		t.Fatal("no retained message")
	} else {
		mustSend(t, c, &mqtt.Puback{PacketID: p.PacketID})
	}
	mustSend(t, c, &mqtt.Disconnect{})
	c.close()
	waitLogged(t, child, "client disconnected", "w-sub5")
	publishAcked(t, addr, ps...)
	cp := v5("w-sub5", false, 3600)
	cp.Props.ReceiveMaximum = 1
	c, _ = mustDial(t, addr, cp)
	first := mustExpect[*mqtt.Publish](t, c)
	mustSubscribe(t, c, 2, 1, "w/#")
	mustSend(t, c, &mqtt.Puback{PacketID: first.PacketID})
	got := append(payloads([]*mqtt.Publish{first}), payloads(collect(t, c, "w/probe"))...)
	if !slicesEqualUnordered(got, append(want, "w/ret=retained")) {
		t.Fatalf("drained %q after subscribing again, want %q and the retained message", got, want)
	}
}

// TestCrashWillKept: the will of a persistent session is stored with it.
// A 5.0 client whose connection broke with a Will Delay Interval pending
// when the broker was killed has its will published after the restart
// once the delay has passed [MQTT-3.1.3-9]; the will of a client that
// connected again before the kill (which cancels it) is not.
func TestCrashWillKept(t *testing.T) {
	child := startCrashChild(t, "process")
	addr := child.Addr()
	w, _ := mustDial(t, addr, &mqtt.Connect{ClientID: "will-watch"})
	mustSubscribe(t, w, 1, 1, "will/#")
	mustSend(t, w, &mqtt.Disconnect{})
	w.close()
	for _, id := range []string{"will-a", "will-b"} {
		cp := v5(id, true, 3600)
		cp.Will = &mqtt.Will{QoS: 1, Topic: "will/" + id, Payload: []byte(id), Props: mqtt.Properties{WillDelay: 2}}
		c, _ := mustDial(t, addr, cp)
		c.close() // no DISCONNECT: the will is due after its delay
		waitLogged(t, child, "client disconnected", id)
	}
	dropped := time.Now()
	mustDial(t, addr, v5("will-b", false, 3600)) // cancels will-b's will
	publishAcked(t, addr, &mqtt.Publish{QoS: 1, Topic: []byte("other"), Payload: []byte("x")})
	child.Kill()
	time.Sleep(time.Until(dropped.Add(2500 * time.Millisecond))) // past the will delay, broker down
	child.Restart()

	var got []string
	brokertest.Eventually(t, 10*time.Second, func() error {
		c, ack, err := dialMQTT(addr, &mqtt.Connect{ClientID: "will-watch"})
		if err != nil {
			return err
		}
		defer c.close()
		if !ack.SessionPresent {
			t.Fatal("will-watch: session not present after the restart")
		}
		got = append(got, payloads(collect(t, c, "will/probe"))...)
		mustSend(t, c, &mqtt.Disconnect{})
		if len(got) == 0 {
			return errors.New("no will published yet")
		}
		return nil
	})
	// Both wills were due at the restart: one more look for will-b's.
	c, _ := mustDial(t, addr, &mqtt.Connect{ClientID: "will-watch"})
	got = append(got, payloads(collect(t, c, "will/probe"))...)
	if !slicesEqualUnordered(got, []string{"will/will-a=will-a"}) {
		t.Errorf("wills published after the restart: %q, want will-a's only", got)
	}
}

// TestTermKeepsQoS0Queue: QoS 0 messages queued in memory for an offline
// persistent session are saved when the binary stops on SIGTERM and
// delivered after the restart with the QoS 1 and 2 ones.
func TestTermKeepsQoS0Queue(t *testing.T) {
	child := startCrashChild(t, "process")
	addr := child.Addr()
	leaveOffline(t, child, &mqtt.Connect{ClientID: "q0-sub"}, 2, "q0/#")
	pub, _ := mustDial(t, addr, &mqtt.Connect{ClientID: "q0-pub", CleanStart: true})
	var want []string
	for i := range 9 {
		p := &mqtt.Publish{QoS: byte(i % 3), PacketID: uint16(i + 1), Topic: []byte("q0/t"), Payload: []byte(fmt.Sprint(i))}
		if p.QoS == 0 {
			mustSend(t, pub, p)
		} else {
			mustPublish(t, pub, p, true)
		}
		want = append(want, fmt.Sprintf("q0/t=%d", i))
	}
	// A PINGRESP after the last PUBLISH: the broker has read it.
	mustSend(t, pub, &mqtt.Pingreq{})
	mustExpect[*mqtt.Pingresp](t, pub)
	child.Term()
	child.Restart()
	c := resume(t, addr, &mqtt.Connect{ClientID: "q0-sub"}, "session not present after the restart")
	got := collect(t, c, "q0/probe")
	if !slicesEqualUnordered(payloads(got), want) {
		t.Fatalf("after SIGTERM and restart received %q, want %q", payloads(got), want)
	}
	// In order for each QoS [MQTT-4.6.0-6] (a QoS 2 delivery goes out
	// once its packet id is stored, after QoS 0 and 1 ones queued with it).
	last := [3]int{-1, -1, -1}
	for _, p := range got {
		n, _ := strconv.Atoi(string(p.Payload))
		if n%3 != int(p.QoS) || n < last[p.QoS] {
			t.Errorf("after SIGTERM and restart received %q at QoS %d, out of order or at the wrong QoS: %q", p.Payload, p.QoS, payloads(got))
		}
		last[p.QoS] = n
	}
}

// TestCrashRetainedInFlight: retained messages sent to a persistent
// session when it subscribes are part of its state like routed ones: over
// a SIGKILL, an unacknowledged QoS 1 one is sent again, an unacknowledged
// QoS 2 one is re-sent with DUP and its packet id, and one whose PUBREC
// the subscriber sent is released with PUBREL, not sent again
// [MQTT-4.4.0-1] [MQTT-4.3.3].
func TestCrashRetainedInFlight(t *testing.T) {
	for _, d := range killModes {
		t.Run(d, func(t *testing.T) {
			child := startCrashChild(t, d)
			addr := child.Addr()
			pub, _ := mustDial(t, addr, &mqtt.Connect{ClientID: "ri-pub", CleanStart: true})
			mustPublish(t, pub, &mqtt.Publish{QoS: 1, PacketID: 1, Retain: true, Topic: []byte("ri/one"), Payload: []byte("1")}, false)
			mustPublish(t, pub, &mqtt.Publish{QoS: 2, PacketID: 2, Retain: true, Topic: []byte("ri/released"), Payload: []byte("2")}, true)
			mustPublish(t, pub, &mqtt.Publish{QoS: 2, PacketID: 3, Retain: true, Topic: []byte("ri/sent"), Payload: []byte("3")}, true)
			for _, cp := range []*mqtt.Connect{{ClientID: "ri-311"}, v5("ri-5", false, 3600)} {
				id := cp.ClientID
				c, _ := mustDial(t, addr, cp)
				mustSubscribe(t, c, 1, 2, "ri/#")
				first := map[string]*mqtt.Publish{}
				for range 3 {
					p := mustExpect[*mqtt.Publish](t, c)
					first[string(p.Topic)] = p
				}
				rel := first["ri/released"]
				mustSend(t, c, &mqtt.Pubrec{PacketID: rel.PacketID})
				if p := mustExpect[*mqtt.Pubrel](t, c); p.PacketID != rel.PacketID {
					t.Fatalf("%s: PUBREL for %d, want %d", id, p.PacketID, rel.PacketID)
				}
				child.Kill()
				child.Restart()

				c = resume(t, addr, cp, id+": session not present after the restart")
				var gotRel, gotSent, gotOne bool
				for !gotRel || !gotSent || !gotOne {
					p, err := c.read(10 * time.Second)
					if err != nil {
						t.Fatalf("%s: after the restart (PUBREL %v, QoS 2 PUBLISH %v, QoS 1 PUBLISH %v): %v", id, gotRel, gotSent, gotOne, err)
					}
					switch p := p.(type) {
					case *mqtt.Pubrel:
						if p.PacketID != rel.PacketID || gotRel {
							t.Fatalf("%s: PUBREL %d, want one for %d", id, p.PacketID, rel.PacketID)
						}
						gotRel = true
						mustSend(t, c, &mqtt.Pubcomp{PacketID: p.PacketID})
					case *mqtt.Publish:
						switch sent := first["ri/sent"]; {
						case string(p.Topic) == "ri/sent" && !gotSent && p.QoS == 2 && p.Dup && p.PacketID == sent.PacketID && p.Retain:
							gotSent = true
							mustSend(t, c, &mqtt.Pubrec{PacketID: p.PacketID})
						case string(p.Topic) == "ri/one" && !gotOne && p.QoS == 1 && p.Retain:
							gotOne = true
							mustSend(t, c, &mqtt.Puback{PacketID: p.PacketID})
						default:
							t.Fatalf("%s: after the restart PUBLISH %s %q packet id %d DUP %v QoS %d retain %v; want ri/one again and ri/sent re-sent with packet id %d and DUP",
								id, p.Topic, p.Payload, p.PacketID, p.Dup, p.QoS, p.Retain, sent.PacketID)
						}
					default:
						t.Fatalf("%s: unexpected %v after the restart", id, p.Type())
					}
				}
				if got := collect(t, c, "ri/probe"); len(got) > 0 {
					t.Errorf("%s: delivered again after the restart: %q", id, payloads(got))
				}
				c.close()
			}
		})
	}
}
