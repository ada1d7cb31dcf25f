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

// Conformance tests: one normative statement (or a few close ones) of the
// MQTT 5.0 or 3.1.1 specification each, checked over a real connection
// with the raw client, so that the bytes on the wire are what is asserted.

// cfDial opens a raw connection at protocol level v.
func cfDial(t *testing.T, b *brokertest.Broker, v mqtt.Version) *brokertest.Raw {
	t.Helper()
	return brokertest.NewRaw(b.DialTCP(t), v)
}

// cfConnect connects a raw client at level v with a clean session and
// fails the test unless the CONNACK accepts it.
func cfConnect(t *testing.T, b *brokertest.Broker, v mqtt.Version, c *mqtt.Connect) *brokertest.Raw {
	t.Helper()
	r := cfDial(t, b, v)
	if ca := r.Connect(t, c); ca.ReasonCode != 0 {
		t.Fatalf("CONNACK 0x%02x for %q, want 0x00", byte(ca.ReasonCode), c.ClientID)
	}
	return r
}

// cfSubscribe subscribes r to filter and waits for the SUBACK granting it.
func cfSubscribe(t *testing.T, r *brokertest.Raw, pid uint16, filter string, qos byte) {
	t.Helper()
	r.Send(t, &mqtt.Subscribe{PacketID: pid, Subscriptions: []mqtt.Subscription{{Filter: filter, QoS: qos}}})
	sa := r.Expect(t, mqtt.SUBACK).(*mqtt.Suback)
	if sa.PacketID != pid || len(sa.ReasonCodes) != 1 || sa.ReasonCodes[0] != mqtt.ReasonCode(qos) {
		t.Fatalf("SUBACK %+v, want packet id %d granting QoS %d", sa, pid, qos)
	}
}

// cfNoPacket fails the test if r receives a packet within d.
func cfNoPacket(t *testing.T, r *brokertest.Raw, d time.Duration) {
	t.Helper()
	if p, err := r.Read(d); err == nil {
		t.Fatalf("unexpected %v %+v", p.Type(), p)
	}
}

// A zero-length client identifier needs Clean Session 1 in 3.1.1: with 0
// the server answers return code 0x02 and closes [MQTT-3.1.3-8]; with 1
// it assigns an identifier [MQTT-3.1.3-6] [MQTT-3.1.3-7]. MQTT 3.1 has no
// zero-length identifiers, and none longer than 23 characters (3.1
// §3.1: "Identifier Rejected").
func TestConformanceClientIdentifierRefused(t *testing.T) {
	b := brokertest.Start(t, nil)
	refused := func(t *testing.T, v mqtt.Version, c *mqtt.Connect) {
		t.Helper()
		r := cfDial(t, b, v)
		ca := r.Connect(t, c)
		if ca.ReasonCode != mqtt.ReasonCode(mqtt.ConnRefusedIdentifierRejected) || ca.SessionPresent {
			t.Fatalf("%v client id %q clean %v: CONNACK %+v, want return code 0x02, no session present",
				v, c.ClientID, c.CleanStart, ca)
		}
		r.ExpectClosed(t)
	}
	t.Run("3.1.1 empty id, clean session 0", func(t *testing.T) {
		refused(t, mqtt.V311, &mqtt.Connect{KeepAlive: 30})
	})
	t.Run("3.1.1 empty id, clean session 1", func(t *testing.T) {
		r := cfConnect(t, b, mqtt.V311, &mqtt.Connect{CleanStart: true, KeepAlive: 30})
		r.Send(t, &mqtt.Pingreq{})
		r.Expect(t, mqtt.PINGRESP)
	})
	t.Run("3.1 empty id", func(t *testing.T) {
		refused(t, mqtt.V31, &mqtt.Connect{CleanStart: true, KeepAlive: 30})
	})
	t.Run("3.1 id of 24 characters", func(t *testing.T) {
		refused(t, mqtt.V31, &mqtt.Connect{ClientID: strings.Repeat("x", 24), CleanStart: true, KeepAlive: 30})
	})
	t.Run("3.1 id of 23 characters", func(t *testing.T) {
		cfConnect(t, b, mqtt.V31, &mqtt.Connect{ClientID: strings.Repeat("y", 23), CleanStart: true, KeepAlive: 30})
	})
	t.Run("3.1.1 id of 24 characters", func(t *testing.T) {
		// [MQTT-3.1.3-5]: 3.1.1 servers MAY allow longer ones; Weir does.
		cfConnect(t, b, mqtt.V311, &mqtt.Connect{ClientID: strings.Repeat("z", 24), CleanStart: true, KeepAlive: 30})
	})
}

// An invalid CONNECT is refused and the connection closed, whatever the
// level: reserved flag [MQTT-3.1.2-3], will QoS or retain without the will
// flag [MQTT-3.1.2-11] [MQTT-3.1.2-13], will QoS 3 [MQTT-3.1.2-14], a
// 3.1.1 password without a user name [MQTT-3.1.2-22], U+0000 in the
// client identifier [MQTT-1.5.4-2]. A 5.0 client may be told why in a
// CONNACK with a code of 0x80 or more; nothing else is sent.
func TestConformanceInvalidConnect(t *testing.T) {
	b := brokertest.Start(t, nil)
	// connect returns a CONNECT at level v with flags and client id id.
	connect := func(v mqtt.Version, flags byte, id string) []byte {
		name := "MQTT"
		if v == mqtt.V31 {
			name = "MQIsdp"
		}
		body := []byte{0, byte(len(name))}
		body = append(body, name...)
		body = append(body, byte(v), flags, 0, 30)
		if v == mqtt.V5 {
			body = append(body, 0) // no properties
		}
		body = append(body, 0, byte(len(id)))
		body = append(body, id...)
		if flags&0x04 != 0 {
			if v == mqtt.V5 {
				body = append(body, 0)
			}
			body = append(body, 0, 1, 'w', 0, 1, 'x')
		}
		if flags&0x80 != 0 {
			body = append(body, 0, 1, 'u')
		}
		if flags&0x40 != 0 {
			body = append(body, 0, 1, 'p')
		}
		return append([]byte{0x10, byte(len(body))}, body...)
	}
	cases := []struct {
		name  string
		flags byte
		id    string
		only  mqtt.Version // 0: every level
	}{
		{"[MQTT-3.1.2-3] reserved flag", 0x03, "cf", 0},
		{"[MQTT-3.1.2-11] will QoS without will flag", 0x0A, "cf", 0},
		{"[MQTT-3.1.2-13] will retain without will flag", 0x22, "cf", 0},
		{"[MQTT-3.1.2-14] will QoS 3", 0x1E, "cf", 0},
		{"[MQTT-3.1.2-22] password without user name", 0x42, "cf", mqtt.V311},
		{"[MQTT-1.5.4-2] U+0000 in the client id", 0x02, "c\x00f", 0},
	}
	for _, tc := range cases {
		for _, v := range []mqtt.Version{mqtt.V31, mqtt.V311, mqtt.V5} {
			if tc.only != 0 && v != tc.only {
				continue
			}
			t.Run(v.String()+" "+tc.name, func(t *testing.T) {
				r := cfDial(t, b, v)
				r.SendBytes(t, connect(v, tc.flags, tc.id))
				p, err := r.Read(brokertest.WaitTimeout)
				if err == nil {
					ca, ok := p.(*mqtt.Connack)
					if !ok || v != mqtt.V5 || ca.ReasonCode < 0x80 {
						t.Fatalf("got %v %+v, want the connection closed (5.0: after a CONNACK >= 0x80)", p.Type(), p)
					}
					r.ExpectClosed(t)
				}
			})
		}
	}
}

// Packets that break the rules after CONNECT end a 5.0 connection with a
// DISCONNECT naming the right reason code: 0x81 Malformed Packet or 0x82
// Protocol Error (§4.13), then the server closes it.
func TestConformanceDisconnectReasonCodes(t *testing.T) {
	b := brokertest.Start(t, nil)
	cases := []struct {
		name string
		pkt  []byte
		want mqtt.ReasonCode
	}{
		{"[MQTT-2.1.3-1] reserved packet type 0", []byte{0x00, 0x00}, mqtt.MalformedPacket},
		{"[MQTT-1.5.5-1] remaining length of five bytes", []byte{0xC0, 0x80, 0x80, 0x80, 0x80, 0x01}, mqtt.MalformedPacket},
		{"[MQTT-3.3.1-4] PUBLISH QoS 3", []byte{0x36, 0x08, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x01, 0x00}, mqtt.MalformedPacket},
		{"[MQTT-3.3.1-2] PUBLISH QoS 0 with DUP", []byte{0x38, 0x06, 0x00, 0x03, 'a', '/', 'b', 0x00}, mqtt.MalformedPacket},
		{"[MQTT-1.5.4-1] PUBLISH topic not UTF-8", []byte{0x30, 0x06, 0x00, 0x03, 'a', 0xFF, 'b', 0x00}, mqtt.MalformedPacket},
		{"[MQTT-1.5.4-2] PUBLISH topic with U+0000", []byte{0x30, 0x06, 0x00, 0x03, 'a', 0x00, 'b', 0x00}, mqtt.MalformedPacket},
		{"[MQTT-3.3.2-1] PUBLISH empty topic without alias", []byte{0x30, 0x04, 0x00, 0x00, 0x00, 'x'}, mqtt.ProtocolError},
		{"[MQTT-3.3.4-6] PUBLISH with a subscription identifier", []byte{0x30, 0x08, 0x00, 0x01, 'a', 0x02, 0x0B, 0x01, 'x', 'y'}, mqtt.ProtocolError},
		{"§2.2.2.2 PUBLISH with a property of CONNECT", []byte{0x30, 0x0A, 0x00, 0x01, 'a', 0x05, 0x11, 0x00, 0x00, 0x00, 0x01, 'x'}, mqtt.MalformedPacket},
		{"§2.2.2.2 PUBLISH with a property twice", []byte{0x30, 0x09, 0x00, 0x01, 'a', 0x04, 0x01, 0x01, 0x01, 0x01, 'x'}, mqtt.ProtocolError},
		{"[MQTT-3.8.1-1] SUBSCRIBE reserved flags 0", []byte{0x80, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x00}, mqtt.MalformedPacket},
		{"[MQTT-3.8.3-2] SUBSCRIBE without a topic filter", []byte{0x82, 0x03, 0x00, 0x01, 0x00}, mqtt.ProtocolError},
		{"[MQTT-3.8.3-5] SUBSCRIBE options reserved bits", []byte{0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x40}, mqtt.MalformedPacket},
		{"§3.8.3.1 SUBSCRIBE retain handling 3", []byte{0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x30}, mqtt.ProtocolError},
		{"§3.8.3.1 SUBSCRIBE maximum QoS 3", []byte{0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x03}, mqtt.ProtocolError},
		{"[MQTT-3.8.3-4] SUBSCRIBE no local on a shared subscription", append([]byte{0x82, 0x10, 0x00, 0x01, 0x00, 0x00, 0x0A}, append([]byte("$share/g/a"), 0x04)...), mqtt.ProtocolError},
		{"[MQTT-3.10.3-2] UNSUBSCRIBE without a topic filter", []byte{0xA2, 0x03, 0x00, 0x01, 0x00}, mqtt.ProtocolError},
		{"[MQTT-3.1.0-2] second CONNECT", []byte{0x10, 0x0D, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x1E, 0x00, 0x00, 0x00}, mqtt.ProtocolError},
		{"§4.12 AUTH without an authentication method", []byte{0xF0, 0x02, 0x19, 0x00}, mqtt.ProtocolError},
		{"[MQTT-3.14.1-1] DISCONNECT reserved flags", []byte{0xE1, 0x00}, mqtt.MalformedPacket},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := cfConnect(t, b, mqtt.V5, &mqtt.Connect{ClientID: fmt.Sprintf("cf-rc-%d", i), CleanStart: true, KeepAlive: 30})
			r.SendBytes(t, tc.pkt)
			r.ExpectDisconnect(t, tc.want)
		})
	}
}

// A PUBREL for a packet identifier the server does not know is answered
// with PUBCOMP: 0x92 Packet Identifier not found in 5.0 (§3.7.2.1), plain
// in 3.1.1 [MQTT-4.3.3-?]; the connection goes on.
func TestConformancePubrelUnknownPacketID(t *testing.T) {
	b := brokertest.Start(t, nil)
	for _, tc := range []struct {
		v    mqtt.Version
		want mqtt.ReasonCode
	}{{mqtt.V5, mqtt.PacketIdentifierNotFound}, {mqtt.V311, mqtt.Success}} {
		t.Run(tc.v.String(), func(t *testing.T) {
			r := cfConnect(t, b, tc.v, &mqtt.Connect{ClientID: "cf-pubrel-" + tc.v.String(), CleanStart: true, KeepAlive: 30})
			r.Send(t, &mqtt.Pubrel{PacketID: 77})
			pc := r.Expect(t, mqtt.PUBCOMP).(*mqtt.Pubcomp)
			if pc.PacketID != 77 || pc.ReasonCode != tc.want {
				t.Fatalf("PUBCOMP %+v, want packet id 77 reason 0x%02x", pc, byte(tc.want))
			}
			r.Send(t, &mqtt.Pingreq{})
			r.Expect(t, mqtt.PINGRESP)
		})
	}
}

// UNSUBACK carries one code per filter: 0x00 for a subscription removed,
// 0x11 No subscription existed for one that was not there (§3.11.3)
// [MQTT-3.11.3-1]; in 3.1.1 UNSUBACK has no payload [MQTT-3.11.3-1 of
// 3.1.1] and is sent even when nothing matched [MQTT-3.10.4-5].
func TestConformanceUnsuback(t *testing.T) {
	b := brokertest.Start(t, nil)
	t.Run("5.0", func(t *testing.T) {
		r := cfConnect(t, b, mqtt.V5, &mqtt.Connect{ClientID: "cf-unsub5", CleanStart: true, KeepAlive: 30})
		cfSubscribe(t, r, 1, "cf/u/a", 1)
		r.Send(t, &mqtt.Unsubscribe{PacketID: 2, Filters: []string{"cf/u/none", "cf/u/a", "cf/u/a"}})
		ua := r.Expect(t, mqtt.UNSUBACK).(*mqtt.Unsuback)
		want := []mqtt.ReasonCode{mqtt.NoSubscriptionExisted, mqtt.Success, mqtt.NoSubscriptionExisted}
		if ua.PacketID != 2 || len(ua.ReasonCodes) != len(want) {
			t.Fatalf("UNSUBACK %+v, want packet id 2 with codes %v", ua, want)
		}
		for i := range want {
			if ua.ReasonCodes[i] != want[i] {
				t.Errorf("UNSUBACK code %d: 0x%02x, want 0x%02x", i, byte(ua.ReasonCodes[i]), byte(want[i]))
			}
		}
	})
	t.Run("3.1.1", func(t *testing.T) {
		r := cfConnect(t, b, mqtt.V311, &mqtt.Connect{ClientID: "cf-unsub311", CleanStart: true, KeepAlive: 30})
		r.Send(t, &mqtt.Unsubscribe{PacketID: 3, Filters: []string{"cf/u/none"}})
		if ua := r.Expect(t, mqtt.UNSUBACK).(*mqtt.Unsuback); ua.PacketID != 3 || r.LastSize != 4 {
			t.Fatalf("UNSUBACK %+v of %d bytes, want packet id 3 in 4 bytes", ua, r.LastSize)
		}
	})
}

// A 3.1.1 SUBSCRIBE with a filter the server refuses gets 0x80 for that
// filter and the granted QoS for the others, in order [MQTT-3.9.3-1]
// [MQTT-3.9.3-2]; 5.0 names the reason, 0x8F Topic Filter invalid.
func TestConformanceSubackFailure(t *testing.T) {
	b := brokertest.Start(t, nil)
	for _, tc := range []struct {
		v    mqtt.Version
		fail mqtt.ReasonCode
	}{{mqtt.V311, 0x80}, {mqtt.V5, mqtt.TopicFilterInvalid}} {
		t.Run(tc.v.String(), func(t *testing.T) {
			r := cfConnect(t, b, tc.v, &mqtt.Connect{ClientID: "cf-suback-" + tc.v.String(), CleanStart: true, KeepAlive: 30})
			r.Send(t, &mqtt.Subscribe{PacketID: 5, Subscriptions: []mqtt.Subscription{
				{Filter: "cf/s/+", QoS: 1}, {Filter: "cf/#/s", QoS: 1}, {Filter: "cf/s+", QoS: 0}, {Filter: "cf/s/#", QoS: 2}}})
			sa := r.Expect(t, mqtt.SUBACK).(*mqtt.Suback)
			want := []mqtt.ReasonCode{1, tc.fail, tc.fail, 2}
			if sa.PacketID != 5 || len(sa.ReasonCodes) != len(want) {
				t.Fatalf("SUBACK %+v, want packet id 5 with codes %v", sa, want)
			}
			for i := range want {
				if sa.ReasonCodes[i] != want[i] {
					t.Errorf("SUBACK code %d: 0x%02x, want 0x%02x", i, byte(sa.ReasonCodes[i]), byte(want[i]))
				}
			}
		})
	}
}

// A PUBLISH whose Payload Format Indicator says UTF-8 but whose payload is
// not is refused with 0x99 Payload format invalid (§3.3.2.3.2, in a PUBACK
// or a DISCONNECT), and nobody receives it.
func TestConformancePayloadFormatInvalid(t *testing.T) {
	b := brokertest.Start(t, nil)
	sub := cfConnect(t, b, mqtt.V5, &mqtt.Connect{ClientID: "cf-pfi-sub", CleanStart: true, KeepAlive: 30})
	cfSubscribe(t, sub, 1, "cf/pfi", 1)
	pub := cfConnect(t, b, mqtt.V5, &mqtt.Connect{ClientID: "cf-pfi-pub", CleanStart: true, KeepAlive: 30})
	pub.Send(t, &mqtt.Publish{QoS: 1, PacketID: 1, Topic: []byte("cf/pfi"), Payload: []byte{'a', 0xFF, 'b'},
		Props: mqtt.Properties{PayloadFormat: 1}})
	p, err := pub.Read(brokertest.WaitTimeout)
	if err != nil {
		t.Fatalf("waiting for PUBACK 0x99: %v", err)
	}
	switch p := p.(type) {
	case *mqtt.Puback:
		if p.PacketID != 1 || p.ReasonCode != mqtt.PayloadFormatInvalid {
			t.Fatalf("PUBACK %+v, want packet id 1 reason 0x99", p)
		}
	case *mqtt.Disconnect:
		if p.ReasonCode != mqtt.PayloadFormatInvalid {
			t.Fatalf("DISCONNECT %+v, want reason 0x99", p)
		}
	default:
		t.Fatalf("got %v %+v, want PUBACK or DISCONNECT 0x99", p.Type(), p)
	}
	cfNoPacket(t, sub, 300*time.Millisecond)
}

// A Session Expiry Interval of 0 in CONNECT cannot be raised in DISCONNECT:
// that is a Protocol Error [MQTT-3.14.2-2], answered with DISCONNECT 0x82,
// and the session still ends with the connection.
func TestConformanceDisconnectRaisesSessionExpiry(t *testing.T) {
	b := brokertest.Start(t, nil)
	c := &mqtt.Connect{ClientID: "cf-dse", CleanStart: true, KeepAlive: 30}
	r := cfConnect(t, b, mqtt.V5, c)
	cfSubscribe(t, r, 1, "cf/dse", 1)
	r.Send(t, &mqtt.Disconnect{Props: mqtt.Properties{SessionExpiry: 60}})
	r.ExpectDisconnect(t, mqtt.ProtocolError)

	c.CleanStart = false
	if ca := cfDial(t, b, mqtt.V5).Connect(t, c); ca.ReasonCode != 0 || ca.SessionPresent {
		t.Fatalf("reconnect: CONNACK %+v, want accepted without a session present", ca)
	}
}

// A DISCONNECT with a reason code other than 0x00 does not delete the
// will: only Normal disconnection does [MQTT-3.1.2-10], and the will is
// published once the connection is closed without one [MQTT-3.1.2-8]
// (§3.1.2.5). 0x04 asks for it explicitly (TestPaho5DisconnectWithWillMessage).
func TestConformanceWillAfterDisconnectWithError(t *testing.T) {
	b := brokertest.Start(t, nil)
	sub := cfConnect(t, b, mqtt.V5, &mqtt.Connect{ClientID: "cf-will-sub", CleanStart: true, KeepAlive: 30})
	cfSubscribe(t, sub, 1, "cf/will/#", 0)
	for _, tc := range []struct {
		code mqtt.ReasonCode
		will bool
	}{
		{mqtt.NormalDisconnection, false},
		{mqtt.UnspecifiedError, true},
		{mqtt.ImplementationSpecificError, true},
		{mqtt.MessageRateTooHigh, true},
	} {
		topic := fmt.Sprintf("cf/will/%02x", byte(tc.code))
		r := cfConnect(t, b, mqtt.V5, &mqtt.Connect{ClientID: "cf-will", CleanStart: true, KeepAlive: 30,
			Will: &mqtt.Will{Topic: topic, Payload: []byte("gone")}})
		r.Send(t, &mqtt.Disconnect{ReasonCode: tc.code})
		r.ExpectClosed(t)
		if !tc.will {
			cfNoPacket(t, sub, 300*time.Millisecond)
			continue
		}
		p, err := sub.Read(brokertest.WaitTimeout)
		if err != nil {
			t.Fatalf("DISCONNECT 0x%02x: no will: %v", byte(tc.code), err)
		}
		if pub, ok := p.(*mqtt.Publish); !ok || string(pub.Topic) != topic || string(pub.Payload) != "gone" {
			t.Fatalf("DISCONNECT 0x%02x: got %v %+v, want the will on %s", byte(tc.code), p.Type(), p, topic)
		}
	}
}

// A delayed will is published when the Will Delay Interval passes or the
// session ends, whichever comes first (§3.1.3.2.2): a reconnect with Clean
// Start 1 ends the old session [MQTT-3.1.2-4], so its will goes out then,
// whether the old connection had dropped or is taken over [MQTT-3.1.4-3].
// A reconnect with Clean Start 0 resumes the session, and the will is not
// sent [MQTT-3.1.3-9].
func TestConformanceWillDelaySessionEnds(t *testing.T) {
	b := brokertest.Start(t, nil)
	sub := cfConnect(t, b, mqtt.V5, &mqtt.Connect{ClientID: "cf-wd-sub", CleanStart: true, KeepAlive: 30})
	cfSubscribe(t, sub, 1, "cf/wd/#", 0)
	withWill := func(id string, clean bool) *mqtt.Connect {
		return &mqtt.Connect{ClientID: id, CleanStart: clean, KeepAlive: 30,
			Props: mqtt.Properties{SessionExpiry: 300},
			Will:  &mqtt.Will{Topic: "cf/wd/" + id, Payload: []byte(id), Props: mqtt.Properties{WillDelay: 30}}}
	}
	expectWill := func(t *testing.T, id string) {
		t.Helper()
		p, err := sub.Read(brokertest.WaitTimeout)
		if err != nil {
			t.Fatalf("no will of %s when its session ended: %v", id, err)
		}
		if pub, ok := p.(*mqtt.Publish); !ok || string(pub.Payload) != id {
			t.Fatalf("got %v %+v, want the will of %s", p.Type(), p, id)
		}
	}
	t.Run("dropped, then clean start", func(t *testing.T) {
		r := cfConnect(t, b, mqtt.V5, withWill("cf-wd-drop", true))
		r.Conn.Close()
		cfNoPacket(t, sub, 300*time.Millisecond) // the delay runs
		cfConnect(t, b, mqtt.V5, &mqtt.Connect{ClientID: "cf-wd-drop", CleanStart: true, KeepAlive: 30})
		expectWill(t, "cf-wd-drop")
	})
	t.Run("taken over with clean start", func(t *testing.T) {
		old := cfConnect(t, b, mqtt.V5, withWill("cf-wd-take", true))
		cfConnect(t, b, mqtt.V5, &mqtt.Connect{ClientID: "cf-wd-take", CleanStart: true, KeepAlive: 30})
		old.ExpectDisconnect(t, mqtt.SessionTakenOver)
		expectWill(t, "cf-wd-take")
	})
	t.Run("taken over without clean start", func(t *testing.T) {
		old := cfConnect(t, b, mqtt.V5, withWill("cf-wd-keep", true))
		cfConnect(t, b, mqtt.V5, &mqtt.Connect{ClientID: "cf-wd-keep", KeepAlive: 30,
			Props: mqtt.Properties{SessionExpiry: 300}})
		old.ExpectDisconnect(t, mqtt.SessionTakenOver)
		cfNoPacket(t, sub, 500*time.Millisecond)
	})
}

// A protocol level the server does not speak is refused with CONNACK
// return code 0x01 Unacceptable protocol version in the 3.1.1 form
// [MQTT-3.1.2-2 of 3.1.1], or 0x84 Unsupported Protocol Version in the
// 5.0 form for a level above 5 [MQTT-3.1.2-2], and the connection closed.
func TestConformanceUnsupportedProtocolLevel(t *testing.T) {
	b := brokertest.Start(t, nil)
	for _, tc := range []struct {
		name  string
		level byte
		as    mqtt.Version // the form of the CONNACK
		want  mqtt.ReasonCode
	}{
		{"MQTT", 3, mqtt.V311, mqtt.ReasonCode(mqtt.ConnRefusedProtocolVersion)},
		{"MQTT", 2, mqtt.V311, mqtt.ReasonCode(mqtt.ConnRefusedProtocolVersion)},
		{"MQIsdp", 4, mqtt.V311, mqtt.ReasonCode(mqtt.ConnRefusedProtocolVersion)},
		{"MQTT", 6, mqtt.V5, mqtt.UnsupportedProtocolVersion},
	} {
		t.Run(fmt.Sprintf("%s level %d", tc.name, tc.level), func(t *testing.T) {
			r := cfDial(t, b, tc.as)
			body := append([]byte{0, byte(len(tc.name))}, tc.name...)
			body = append(body, tc.level, 0x02, 0, 30, 0, 2, 'c', 'f')
			r.SendBytes(t, append([]byte{0x10, byte(len(body))}, body...))
			ca := r.Expect(t, mqtt.CONNACK).(*mqtt.Connack)
			if ca.ReasonCode != tc.want || ca.SessionPresent || r.LastSize != 4 && tc.as == mqtt.V311 {
				t.Fatalf("CONNACK %+v of %d bytes, want %v code 0x%02x", ca, r.LastSize, tc.as, byte(tc.want))
			}
			r.ExpectClosed(t)
		})
	}
}

// The DUP flag of an incoming PUBLISH is not propagated to subscribers
// [MQTT-3.3.1-3]; a QoS 2 PUBLISH sent again before PUBREL is
// acknowledged again and not delivered again [MQTT-4.3.3-10] (5.0 numbering;
// [MQTT-4.3.3-2] in 3.1.1); after PUBCOMP its packet identifier starts a new
// message [MQTT-4.3.3-12].
func TestConformanceQoS2Duplicate(t *testing.T) {
	b := brokertest.Start(t, nil)
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		t.Run(v.String(), func(t *testing.T) {
			sub := cfConnect(t, b, v, &mqtt.Connect{ClientID: "cf-dup-sub-" + v.String(), CleanStart: true, KeepAlive: 30})
			topic := "cf/dup/" + v.String()
			cfSubscribe(t, sub, 1, topic, 2)
			pub := cfConnect(t, b, v, &mqtt.Connect{ClientID: "cf-dup-pub-" + v.String(), CleanStart: true, KeepAlive: 30})
			send := func(dup bool, payload string) {
				t.Helper()
				pub.Send(t, &mqtt.Publish{QoS: 2, Dup: dup, PacketID: 9, Topic: []byte(topic), Payload: []byte(payload)})
				if rec := pub.Expect(t, mqtt.PUBREC).(*mqtt.Pubrec); rec.PacketID != 9 || rec.ReasonCode.IsError() {
					t.Fatalf("PUBREC %+v, want packet id 9, success", rec)
				}
			}
			receive := func(payload string) {
				t.Helper()
				p := sub.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
				if string(p.Payload) != payload || p.Dup || p.QoS != 2 {
					t.Fatalf("subscriber got %+v, want %q at QoS 2 without DUP [MQTT-3.3.1-3]", p, payload)
				}
				sub.Send(t, &mqtt.Pubrec{PacketID: p.PacketID})
				sub.Expect(t, mqtt.PUBREL)
				sub.Send(t, &mqtt.Pubcomp{PacketID: p.PacketID})
			}
			send(true, "one") // DUP on a first send is allowed to arrive
			send(true, "one")
			receive("one")
			cfNoPacket(t, sub, 300*time.Millisecond)
			pub.Send(t, &mqtt.Pubrel{PacketID: 9})
			pub.Expect(t, mqtt.PUBCOMP)
			send(false, "two")
			receive("two")
		})
	}
}

// An MQTT 5.0 subscriber is sent the Message Expiry Interval less the time
// the message waited [MQTT-3.3.2-6], retained messages included; a
// subscription replaced without a Subscription Identifier no longer has
// one (§3.8.4: the new subscription replaces the old), so deliveries after
// it carry none.
func TestConformanceRetainedExpiryAndReplacedSubscriptionID(t *testing.T) {
	b := brokertest.Start(t, nil)
	pub := cfConnect(t, b, mqtt.V5, &mqtt.Connect{ClientID: "cf-rexp-pub", CleanStart: true, KeepAlive: 30})
	pub.Send(t, &mqtt.Publish{QoS: 1, PacketID: 1, Retain: true, Topic: []byte("cf/rexp"), Payload: []byte("r"),
		Props: mqtt.Properties{MessageExpiry: 100}})
	pub.Expect(t, mqtt.PUBACK)
	time.Sleep(1100 * time.Millisecond)

	sub := cfConnect(t, b, mqtt.V5, &mqtt.Connect{ClientID: "cf-rexp-sub", CleanStart: true, KeepAlive: 30})
	sub.Send(t, &mqtt.Subscribe{PacketID: 1, Props: mqtt.Properties{SubscriptionIDs: []int{42}},
		Subscriptions: []mqtt.Subscription{{Filter: "cf/rexp", QoS: 0}}})
	sub.Expect(t, mqtt.SUBACK)
	p := sub.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
	if !p.Retain || p.Props.MessageExpiry == 0 || p.Props.MessageExpiry >= 100 {
		t.Errorf("retained message: retain %v, Message Expiry Interval %d, want retain and 1..99 [MQTT-3.3.2-6]",
			p.Retain, p.Props.MessageExpiry)
	}
	if len(p.Props.SubscriptionIDs) != 1 || p.Props.SubscriptionIDs[0] != 42 {
		t.Errorf("retained message: subscription identifiers %v, want [42]", p.Props.SubscriptionIDs)
	}
	// Replace the subscription, without an identifier and without the
	// retained message (Retain Handling 2).
	sub.Send(t, &mqtt.Subscribe{PacketID: 2, Subscriptions: []mqtt.Subscription{{Filter: "cf/rexp", QoS: 0, RetainHandling: 2}}})
	sub.Expect(t, mqtt.SUBACK)
	pub.Send(t, &mqtt.Publish{Topic: []byte("cf/rexp"), Payload: []byte("live")})
	p = sub.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
	if string(p.Payload) != "live" || len(p.Props.SubscriptionIDs) != 0 || p.Props.MessageExpiry != 0 {
		t.Errorf("after the subscription was replaced: %q with subscription identifiers %v, expiry %d; want \"live\" with none",
			p.Payload, p.Props.SubscriptionIDs, p.Props.MessageExpiry)
	}
}

// A message larger than the client's Maximum Packet Size is not sent to it
// [MQTT-3.1.2-24], retained messages on SUBSCRIBE included, and the server
// goes on as if it had sent it [MQTT-3.1.2-25]: the next one that fits
// arrives.
func TestConformanceMaximumPacketSizeRetained(t *testing.T) {
	b := brokertest.Start(t, nil)
	pub := cfConnect(t, b, mqtt.V5, &mqtt.Connect{ClientID: "cf-mps-pub", CleanStart: true, KeepAlive: 30})
	for i, size := range []int{500, 10} {
		pub.Send(t, &mqtt.Publish{QoS: 1, PacketID: uint16(i + 1), Retain: true, Topic: []byte(fmt.Sprintf("cf/mps/%d", i)),
			Payload: []byte(strings.Repeat("x", size))})
		pub.Expect(t, mqtt.PUBACK)
	}
	sub := cfConnect(t, b, mqtt.V5, &mqtt.Connect{ClientID: "cf-mps-sub", CleanStart: true, KeepAlive: 30,
		Props: mqtt.Properties{MaximumPacketSize: 100}})
	sub.Send(t, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "cf/mps/#", QoS: 1}}})
	sub.Expect(t, mqtt.SUBACK)
	p := sub.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
	if string(p.Topic) != "cf/mps/1" || sub.LastSize > 100 {
		t.Fatalf("got %s of %d bytes, want only cf/mps/1 within 100 bytes", p.Topic, sub.LastSize)
	}
	sub.Send(t, &mqtt.Puback{PacketID: p.PacketID})
	cfNoPacket(t, sub, 300*time.Millisecond)
}

// A server that caps the keep-alive tells a 5.0 client in CONNACK (Server
// Keep Alive, §3.2.2.3.14), asks of it what it told [MQTT-3.2.2-21],
// and closes the connection after one and a half times that without a
// packet, with DISCONNECT 0x8D (§3.1.2.10). A capped Session Expiry
// Interval is returned in CONNACK too (§3.2.2.3.2).
func TestConformanceServerKeepAliveAndSessionExpiry(t *testing.T) {
	b := brokertest.Start(t, &broker.Options{MaxKeepAlive: 1, MaxSessionExpiry: 60})
	for _, ka := range []uint16{0, 30} {
		t.Run(fmt.Sprintf("keep alive %d", ka), func(t *testing.T) {
			r := cfDial(t, b, mqtt.V5)
			ca := r.Connect(t, &mqtt.Connect{ClientID: fmt.Sprintf("cf-ska-%d", ka), CleanStart: true, KeepAlive: ka,
				Props: mqtt.Properties{SessionExpiry: 3600}})
			if !ca.Props.Present.Has(mqtt.PropServerKeepAlive) || ca.Props.ServerKeepAlive != 1 {
				t.Errorf("CONNACK Server Keep Alive %d (present %v), want 1",
					ca.Props.ServerKeepAlive, ca.Props.Present.Has(mqtt.PropServerKeepAlive))
			}
			if !ca.Props.Present.Has(mqtt.PropSessionExpiry) || ca.Props.SessionExpiry != 60 {
				t.Errorf("CONNACK Session Expiry Interval %d (present %v), want 60",
					ca.Props.SessionExpiry, ca.Props.Present.Has(mqtt.PropSessionExpiry))
			}
			start := time.Now()
			r.ExpectDisconnect(t, mqtt.KeepAliveTimeout)
			if d := time.Since(start); d < 1400*time.Millisecond || d > 4*time.Second {
				t.Errorf("closed %v after CONNACK, want about 1.5 s (1.5 × Server Keep Alive)", d)
			}
		})
	}
}

// A refused CONNECT ends the connection: nothing the client sent after
// it is processed [MQTT-3.1.4-6] ([MQTT-3.2.2-5] in 3.1.1).
func TestConformanceRefusedConnectIgnoresWhatFollows(t *testing.T) {
	b := brokertest.Start(t, nil)
	for _, v := range []mqtt.Version{mqtt.V31, mqtt.V311, mqtt.V5} {
		t.Run(v.String(), func(t *testing.T) {
			topic := "cf/refused/" + v.String()
			c := &mqtt.Connect{ProtocolLevel: v, CleanStart: true, KeepAlive: 30}
			switch v {
			case mqtt.V31:
				c.ClientID = strings.Repeat("r", 24) // identifier rejected
			case mqtt.V311:
				c.CleanStart = false // empty id without clean session: identifier rejected
			case mqtt.V5:
				c.ClientID = "cf-refused"
				c.Props.AuthMethod = "no-such-method" // bad authentication method
			}
			pkt, err := c.AppendTo(nil, v)
			if err != nil {
				t.Fatal(err)
			}
			pkt, err = (&mqtt.Publish{Retain: true, Topic: []byte(topic), Payload: []byte("x")}).AppendTo(pkt, v)
			if err != nil {
				t.Fatal(err)
			}
			r := cfDial(t, b, v)
			r.SendBytes(t, pkt)
			if ca := r.Expect(t, mqtt.CONNACK).(*mqtt.Connack); ca.ReasonCode == 0 {
				t.Fatalf("CONNACK %+v, want a refusal", ca)
			}
			r.ExpectClosed(t)
			sub := cfConnect(t, b, mqtt.V5, &mqtt.Connect{ClientID: "cf-refused-sub-" + v.String(), CleanStart: true, KeepAlive: 30})
			cfSubscribe(t, sub, 1, topic, 0)
			cfNoPacket(t, sub, 300*time.Millisecond)
		})
	}
}

// In 3.1 and 3.1.1 packet types 0 and 15 are reserved (3.1.1 §2.2.1): a
// client that sends one commits a protocol violation and is disconnected
// (§4.8); 3.1.1 has no DISCONNECT from the server, so the connection is
// just closed.
func TestConformance311ReservedPacketTypes(t *testing.T) {
	b := brokertest.Start(t, nil)
	for _, v := range []mqtt.Version{mqtt.V31, mqtt.V311} {
		for _, pkt := range [][]byte{{0x00, 0x00}, {0xF0, 0x00}, {0xF0, 0x02, 0x18, 0x00}} {
			t.Run(fmt.Sprintf("%v %x", v, pkt), func(t *testing.T) {
				r := cfConnect(t, b, v, &mqtt.Connect{ClientID: "cf-reserved", CleanStart: true, KeepAlive: 30})
				r.SendBytes(t, pkt)
				r.ExpectClosed(t)
			})
		}
	}
}
