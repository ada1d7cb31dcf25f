package mqtt

import (
	"bytes"
	"reflect"
	"testing"
)

func TestSmokeRoundTrip(t *testing.T) {
	pkts := []Packet{
		&Connect{ProtocolLevel: V5, CleanStart: true, KeepAlive: 30, ClientID: "c1", Props: Properties{SessionExpiry: 10, User: []UserProperty{{"a", "b"}}},
			Will: &Will{QoS: 1, Topic: "w/t", Payload: []byte("bye"), Props: Properties{WillDelay: 5}}, HasUsername: true, Username: "u", HasPassword: true, Password: []byte("p")},
		&Connack{SessionPresent: true, Props: Properties{MaximumQoS: 1, Present: PropSet(0).Add(PropRetainAvailable)}},
		&Publish{QoS: 1, PacketID: 7, Topic: []byte("a/b/c"), Payload: []byte("hello"), Props: Properties{TopicAlias: 3, ContentType: "text"}},
		&Puback{PacketID: 7, ReasonCode: NoMatchingSubscribers},
		&Pubrel{PacketID: 7},
		&Subscribe{PacketID: 2, Subscriptions: []Subscription{{Filter: "a/#", QoS: 2, NoLocal: true, RetainHandling: 2}}},
		&Suback{PacketID: 2, ReasonCodes: []ReasonCode{2, 0x80}},
		&Unsubscribe{PacketID: 3, Filters: []string{"a/#"}},
		&Unsuback{PacketID: 3, ReasonCodes: []ReasonCode{0x11}},
		&Pingreq{}, &Pingresp{},
		&Disconnect{ReasonCode: ServerShuttingDown, Props: Properties{ReasonString: "bye"}},
		&Auth{ReasonCode: ContinueAuthentication, Props: Properties{AuthMethod: "SCRAM", AuthData: []byte{1, 2}}},
	}
	for _, p := range pkts {
		b, err := p.AppendTo(nil, V5)
		if err != nil {
			t.Fatalf("%T: %v", p, err)
		}
		q, err := Decode(b, V5)
		if err != nil {
			t.Fatalf("%T decode %x: %v", p, b, err)
		}
		b2, _ := q.AppendTo(nil, V5)
		if !bytes.Equal(b, b2) {
			t.Errorf("%T: re-encode differs\n%x\n%x", p, b, b2)
		}
		rd := NewReader(bytes.NewReader(append(b, b...)), 0)
		for i := 0; i < 2; i++ {
			f, err := rd.ReadPacket()
			if err != nil || !bytes.Equal(f, b) {
				t.Fatalf("%T reader: %v", p, err)
			}
		}
		_ = reflect.DeepEqual
	}
}
