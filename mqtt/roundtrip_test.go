package mqtt

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"reflect"
	"strings"
	"testing"
)

// The round-trip property (DESIGN §2): for every valid packet p of every
// type and protocol level, Decode(AppendTo(p)) deep-equals p, and encoding
// the decoded packet gives the same bytes again.
//
// rtGen produces the packets. It only builds packets the spec allows, so
// that a decode error is always a codec bug: topic names and filters valid
// per §4.7, only the properties Table 2-4 allows on each packet type and
// only in 5.0, QoS, DUP, packet identifiers and CONNECT flags consistent
// with each other, reason codes from each packet's own list.

// rtPacketsPerVersion is how many random packets each version gets (the
// fifteen types in turn).
const rtPacketsPerVersion = 6000

func TestRoundTripRandom(t *testing.T) {
	n := rtPacketsPerVersion
	if testing.Short() {
		n = 600
	}
	for _, v := range []Version{V31, V311, V5} {
		t.Run(v.String(), func(t *testing.T) {
			g := newRTGen(int64(v)*7919+1, v)
			var stream []byte
			var want []Packet
			for i := 0; i < n; i++ {
				p := g.packet(g.types()[i%len(g.types())])
				enc := rtCheck(t, p, v)
				if enc == nil {
					continue
				}
				if len(stream) < 4<<20 {
					stream = append(stream, enc...)
					want = append(want, p)
				}
			}
			// The same packets framed by a Reader from one stream, read
			// in odd-sized pieces, decode to the same values.
			rd := NewReader(&rtChunkReader{b: stream, sizes: []int{1, 7, 300, 4096, 3}}, 0)
			for i, p := range want {
				pkt, err := rd.ReadPacket()
				if err != nil {
					t.Fatalf("packet %d (%T): ReadPacket: %v", i, p, err)
				}
				q, err := Decode(pkt, v)
				if err != nil {
					t.Fatalf("packet %d (%T): Decode of framed packet: %v", i, p, err)
				}
				if !reflect.DeepEqual(q, rtWant(p)) {
					t.Fatalf("packet %d (%T): framed decode differs\n got  %+v\n want %+v", i, p, q, rtWant(p))
				}
			}
			if _, err := rd.ReadPacket(); err != io.EOF {
				t.Fatalf("after the last packet: %v, want io.EOF", err)
			}
		})
	}
}

// TestRoundTripVarintBoundaries encodes PUBLISH packets whose remaining
// length sits on each side of every width of the variable byte integer.
func TestRoundTripVarintBoundaries(t *testing.T) {
	for _, v := range []Version{V311, V5} {
		overhead := 2 + 1 // topic length and topic "t"
		if v == V5 {
			overhead++ // property length 0
		}
		for _, remaining := range []int{127, 128, 16383, 16384, 2097151, 2097152} {
			p := &Publish{Topic: []byte("t"), Payload: bytes.Repeat([]byte{0xA5}, remaining-overhead)}
			enc := rtCheck(t, p, v)
			if got, want := len(enc), PacketSize(remaining); got != want {
				t.Errorf("%v remaining %d: encoded %d bytes, want %d", v, remaining, got, want)
			}
		}
	}
}

// rtCheck encodes p at v behind a prefix, checks the prefix survives, then
// decodes and compares. It returns the encoding, nil after a failure.
func rtCheck(t *testing.T, p Packet, v Version) []byte {
	t.Helper()
	prefix := []byte{0xDE, 0xAD}
	b, err := p.AppendTo(append([]byte(nil), prefix...), v)
	if err != nil {
		t.Errorf("%T at %v: AppendTo: %v\n%+v", p, v, err, p)
		return nil
	}
	if !bytes.Equal(b[:2], prefix) {
		t.Errorf("%T at %v: AppendTo overwrote the caller's bytes", p, v)
		return nil
	}
	enc := b[2:]
	if n, hl, err := decodeVarint(enc[1:]); err != nil || hl == 0 || 1+hl+n != len(enc) {
		t.Errorf("%T at %v: remaining length does not match the encoding %x", p, v, enc)
		return nil
	}
	q := New(p.Type())
	if err := q.Decode(enc, v); err != nil {
		t.Errorf("%T at %v: Decode(AppendTo(p)): %v\n in  %+v\n hex %x", p, v, err, p, enc)
		return nil
	}
	if want := rtWant(p); !reflect.DeepEqual(q, want) {
		t.Errorf("%T at %v: Decode(AppendTo(p)) differs\n got  %+v\n want %+v\n hex %x", p, v, q, want, enc)
		return nil
	}
	again, err := q.AppendTo(nil, v)
	if err != nil || !bytes.Equal(again, enc) {
		t.Errorf("%T at %v: re-encoding the decoded packet gives %x, %v; want %x", p, v, again, err, enc)
		return nil
	}
	return enc
}

// rtWant returns what decoding p should give: p with the Present bit of
// every single-valued property that will be encoded (decoding sets them;
// the Subscription Identifier counts, User Properties do not).
func rtWant(p Packet) Packet {
	switch p := p.(type) {
	case *Connect:
		c := *p
		if c.ProtocolLevel == 0 {
			c.ProtocolLevel = V311
		}
		if c.ProtocolName == "" {
			c.ProtocolName = protocolName(c.ProtocolLevel)
		}
		c.Props = rtWantProps(p.Props, CONNECT)
		if p.Will != nil {
			w := *p.Will
			w.Props = rtWantProps(w.Props, willProps)
			c.Will = &w
		}
		return &c
	case *Connack:
		c := *p
		c.Props = rtWantProps(p.Props, CONNACK)
		return &c
	case *Publish:
		c := *p
		c.Props = rtWantProps(p.Props, PUBLISH)
		return &c
	case *Puback:
		c := *p
		c.Props = rtWantProps(p.Props, PUBACK)
		return &c
	case *Pubrec:
		c := *p
		c.Props = rtWantProps(p.Props, PUBREC)
		return &c
	case *Pubrel:
		c := *p
		c.Props = rtWantProps(p.Props, PUBREL)
		return &c
	case *Pubcomp:
		c := *p
		c.Props = rtWantProps(p.Props, PUBCOMP)
		return &c
	case *Subscribe:
		c := *p
		c.Props = rtWantProps(p.Props, SUBSCRIBE)
		return &c
	case *Suback:
		c := *p
		c.Props = rtWantProps(p.Props, SUBACK)
		return &c
	case *Unsubscribe:
		c := *p
		c.Props = rtWantProps(p.Props, UNSUBSCRIBE)
		return &c
	case *Unsuback:
		c := *p
		c.Props = rtWantProps(p.Props, UNSUBACK)
		return &c
	case *Disconnect:
		c := *p
		c.Props = rtWantProps(p.Props, DISCONNECT)
		return &c
	case *Auth:
		c := *p
		c.Props = rtWantProps(p.Props, AUTH)
		return &c
	}
	return p
}

func rtWantProps(p Properties, t PacketType) Properties {
	var set PropSet
	for _, id := range propOrder {
		if id != PropUserProperty && p.encoded(id, t) {
			set = set.Add(id)
		}
	}
	p.Present = set
	return p
}

// rtGen generates random valid packets for one protocol level.
type rtGen struct {
	r *rand.Rand
	v Version
}

func newRTGen(seed int64, v Version) *rtGen {
	return &rtGen{r: rand.New(rand.NewSource(seed)), v: v}
}

var (
	rtAllTypes = []PacketType{CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP,
		SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH}
	rtV3Types = rtAllTypes[:len(rtAllTypes)-1] // AUTH is 5.0 only
)

// types returns the packet types that exist at g's protocol level.
func (g *rtGen) types() []PacketType {
	if g.v == V5 {
		return rtAllTypes
	}
	return rtV3Types
}

func (g *rtGen) chance(p float64) bool { return g.r.Float64() < p }

// rtRunes are the characters strings are made of: ASCII, the C0/C1
// controls and non-characters the spec only discourages, and two-, three-
// and four-byte UTF-8. Never U+0000 or a surrogate.
var rtRunes = []rune("abcxyzABC019 -_.$%&*!~é߿ࠀ日本語\uFFFD\uFFFF\U0001F642\U0010FFFF\x01\x1F\x7F\u0080\u009F")

// text returns a valid MQTT UTF-8 string of at most max runes, without
// the runes in avoid.
func (g *rtGen) text(max int, avoid string) string {
	n := g.r.Intn(max + 1)
	if g.chance(0.02) {
		n = 300 + g.r.Intn(700) // long enough for two-byte remaining lengths
	}
	var sb strings.Builder
	for sb.Len() < n {
		c := rtRunes[g.r.Intn(len(rtRunes))]
		if !strings.ContainsRune(avoid, c) {
			sb.WriteRune(c)
		}
	}
	return sb.String()
}

// bin returns random bytes, non-nil even when empty: decoding gives a
// non-nil empty slice for a present empty binary field.
func (g *rtGen) bin(max int) []byte {
	n := g.r.Intn(max + 1)
	if g.chance(0.01) {
		n = 20000 + g.r.Intn(20000) // three-byte remaining lengths
	}
	b := make([]byte, n)
	g.r.Read(b)
	return b
}

// topicName returns a valid topic name [MQTT-4.7.3-1] [MQTT-4.7.1-1]:
// non-empty, no wildcards, empty levels allowed.
func (g *rtGen) topicName() string {
	for {
		levels := make([]string, 1+g.r.Intn(5))
		for i := range levels {
			levels[i] = g.text(6, "/+#")
		}
		if g.chance(0.05) {
			levels[0] = "$SYS"
		}
		s := strings.Join(levels, "/")
		if s != "" && len(s) <= maxString {
			if err := ValidateTopicName(s); err != nil {
				panic("rtGen made an invalid topic name: " + err.Error())
			}
			return s
		}
	}
}

// topicFilter returns a valid topic filter [MQTT-4.7.1-2] [MQTT-4.7.1-3],
// in 5.0 sometimes a shared subscription.
func (g *rtGen) topicFilter() string {
	for {
		levels := make([]string, 1+g.r.Intn(5))
		for i := range levels {
			switch {
			case g.chance(0.2):
				levels[i] = "+"
			case i == len(levels)-1 && g.chance(0.2):
				levels[i] = "#"
			default:
				levels[i] = g.text(6, "/+#")
			}
		}
		s := strings.Join(levels, "/")
		if g.v == V5 && s != "" && g.chance(0.1) {
			s = "$share/" + g.text(4, "/+#") + "g/" + s
		}
		if s != "" && len(s) <= maxString {
			if err := ValidateTopicFilter(s); err != nil {
				panic("rtGen made an invalid topic filter " + s + ": " + err.Error())
			}
			return s
		}
	}
}

func (g *rtGen) packetID() uint16 { return uint16(1 + g.r.Intn(65535)) }

func (g *rtGen) pick(codes ...ReasonCode) ReasonCode { return codes[g.r.Intn(len(codes))] }

// props returns random MQTT 5.0 properties allowed in t (willProps for a
// will), with valid values; zero for earlier versions. A property whose
// value is zero gets its Present bit so that it is encoded; others get it
// only sometimes, as a caller may or may not set it.
func (g *rtGen) props(t PacketType) Properties {
	var p Properties
	if g.v != V5 || g.chance(0.3) {
		return p
	}
	rate := 0.1 + 0.4*g.r.Float64()
	for _, id := range propOrder {
		if !id.AllowedIn(t) || !g.chance(rate) {
			continue
		}
		switch propSpecs[id].kind {
		case kindByte:
			*p.byteField(id) = byte(g.r.Intn(2))
		case kindUint16:
			v := uint16(g.r.Intn(65536))
			if v == 0 && (id == PropReceiveMaximum || id == PropTopicAlias) {
				v = 1
			}
			*p.uint16Field(id) = v
		case kindUint32:
			v := g.r.Uint32()
			if g.chance(0.3) {
				v = uint32(g.r.Intn(3)) // small values, zero among them
			}
			if v == 0 && id == PropMaximumPacketSize {
				v = 1
			}
			*p.uint32Field(id) = v
		case kindString:
			p.setString(id, g.text(12, ""))
		case kindBinary:
			if id == PropCorrelationData {
				p.CorrelationData = g.bin(16)
			} else {
				p.AuthData = g.bin(16)
			}
		case kindVarint:
			n := 1
			if t == PUBLISH {
				n = 1 + g.r.Intn(4) // a PUBLISH may carry several
			}
			for range n {
				v := 1 + g.r.Intn(127)
				if g.chance(0.5) {
					v = 1 + g.r.Intn(MaxVarint)
				}
				p.SubscriptionIDs = append(p.SubscriptionIDs, v)
			}
		case kindPair:
			for range 1 + g.r.Intn(3) {
				p.User = append(p.User, UserProperty{Key: g.text(8, ""), Value: g.text(8, "")})
			}
		}
		if id != PropUserProperty && (p.isZero(id) || g.chance(0.5)) {
			p.Set(id)
		}
	}
	// Authentication Data needs an Authentication Method (§3.1.2.11.10),
	// and an AUTH with a body always names the method (§3.15.2.2.2).
	if (t == CONNECT && p.Has(PropAuthData) || t == AUTH) && !p.Has(PropAuthMethod) {
		p.AuthMethod = "m"
		p.Set(PropAuthMethod)
	}
	return p
}

// packet returns a random valid packet of type t.
func (g *rtGen) packet(t PacketType) Packet {
	v := g.v
	switch t {
	case CONNECT:
		p := &Connect{
			ProtocolLevel: v,
			CleanStart:    g.chance(0.5),
			KeepAlive:     uint16(g.r.Intn(65536)),
			Props:         g.props(CONNECT),
			ClientID:      g.text(23, ""),
		}
		if g.chance(0.5) {
			p.ProtocolName = protocolName(v)
		}
		if g.chance(0.4) {
			p.Will = &Will{
				QoS:     byte(g.r.Intn(3)),
				Retain:  g.chance(0.5),
				Props:   g.props(willProps),
				Topic:   g.topicName(),
				Payload: g.bin(32),
			}
		}
		if g.chance(0.6) {
			p.HasUsername = true
			p.Username = g.text(12, "")
		}
		// [MQTT-3.1.2-22]: no password without a user name before 5.0.
		if (p.HasUsername || v == V5) && g.chance(0.5) {
			p.HasPassword = true
			p.Password = g.bin(16)
		}
		return p
	case CONNACK:
		p := &Connack{Props: g.props(CONNACK)}
		if v == V5 {
			p.ReasonCode = g.pick(Success, UnspecifiedError, MalformedPacket, ProtocolError,
				ImplementationSpecificError, UnsupportedProtocolVersion, ClientIdentifierNotValid,
				BadUserNameOrPassword, NotAuthorized, ServerUnavailable, ServerBusy, Banned,
				BadAuthenticationMethod, TopicNameInvalid, PacketTooLarge, QuotaExceeded,
				PayloadFormatInvalid, RetainNotSupported, QoSNotSupported, UseAnotherServer,
				ServerMoved, ConnectionRateExceeded)
		} else {
			p.ReasonCode = ReasonCode(g.r.Intn(6))
		}
		if g.chance(0.5) {
			p.ReasonCode = Success
		}
		// [MQTT-3.2.2-4] [MQTT-3.2.2-6]: session present only on success.
		p.SessionPresent = p.ReasonCode == Success && g.chance(0.5)
		return p
	case PUBLISH:
		p := &Publish{
			QoS:     byte(g.r.Intn(3)),
			Retain:  g.chance(0.3),
			Topic:   []byte(g.topicName()),
			Props:   g.props(PUBLISH),
			Payload: g.bin(64),
		}
		if p.QoS > 0 {
			p.PacketID = g.packetID()
			p.Dup = g.chance(0.3) // [MQTT-3.3.1-2]: never at QoS 0
		}
		// §3.3.2.3.4: a Topic Alias allows an empty topic name.
		if p.Props.TopicAlias != 0 && g.chance(0.5) {
			p.Topic = []byte{}
		}
		return p
	case PUBACK, PUBREC:
		id, rc, props := g.packetID(), Success, g.props(t)
		if v == V5 {
			if g.chance(0.5) {
				rc = g.pick(NoMatchingSubscribers, UnspecifiedError, ImplementationSpecificError,
					NotAuthorized, TopicNameInvalid, PacketIdentifierInUse, QuotaExceeded, PayloadFormatInvalid)
			}
		}
		if t == PUBACK {
			return &Puback{PacketID: id, ReasonCode: rc, Props: props}
		}
		return &Pubrec{PacketID: id, ReasonCode: rc, Props: props}
	case PUBREL, PUBCOMP:
		id, rc, props := g.packetID(), Success, g.props(t)
		if v == V5 && g.chance(0.5) {
			rc = PacketIdentifierNotFound
		}
		if t == PUBREL {
			return &Pubrel{PacketID: id, ReasonCode: rc, Props: props}
		}
		return &Pubcomp{PacketID: id, ReasonCode: rc, Props: props}
	case SUBSCRIBE:
		p := &Subscribe{PacketID: g.packetID(), Props: g.props(SUBSCRIBE)}
		for range 1 + g.r.Intn(5) {
			s := Subscription{Filter: g.topicFilter(), QoS: byte(g.r.Intn(3))}
			if v == V5 {
				// [MQTT-3.8.3-4]: no No Local on a shared subscription.
				s.NoLocal = !strings.HasPrefix(s.Filter, "$share/") && g.chance(0.5)
				s.RetainAsPublished = g.chance(0.5)
				s.RetainHandling = byte(g.r.Intn(3))
			}
			p.Subscriptions = append(p.Subscriptions, s)
		}
		return p
	case SUBACK:
		p := &Suback{PacketID: g.packetID(), Props: g.props(SUBACK)}
		for range 1 + g.r.Intn(5) {
			if v == V5 {
				p.ReasonCodes = append(p.ReasonCodes, g.pick(GrantedQoS0, GrantedQoS1, GrantedQoS2,
					UnspecifiedError, ImplementationSpecificError, NotAuthorized, TopicFilterInvalid,
					PacketIdentifierInUse, QuotaExceeded, SharedSubscriptionsNotSupported,
					SubscriptionIdentifiersNotSupported, WildcardSubscriptionsNotSupported))
			} else {
				p.ReasonCodes = append(p.ReasonCodes, g.pick(0, 1, 2, 0x80))
			}
		}
		return p
	case UNSUBSCRIBE:
		p := &Unsubscribe{PacketID: g.packetID(), Props: g.props(UNSUBSCRIBE)}
		for range 1 + g.r.Intn(5) {
			p.Filters = append(p.Filters, g.topicFilter())
		}
		return p
	case UNSUBACK:
		p := &Unsuback{PacketID: g.packetID()}
		if v == V5 {
			p.Props = g.props(UNSUBACK)
			for range 1 + g.r.Intn(5) {
				p.ReasonCodes = append(p.ReasonCodes, g.pick(Success, NoSubscriptionExisted,
					UnspecifiedError, ImplementationSpecificError, NotAuthorized, TopicFilterInvalid,
					PacketIdentifierInUse))
			}
		}
		return p
	case PINGREQ:
		return &Pingreq{}
	case PINGRESP:
		return &Pingresp{}
	case DISCONNECT:
		p := &Disconnect{Props: g.props(DISCONNECT)}
		if v == V5 && g.chance(0.6) {
			p.ReasonCode = g.pick(NormalDisconnection, DisconnectWithWillMessage, UnspecifiedError,
				MalformedPacket, ProtocolError, ImplementationSpecificError, NotAuthorized, ServerBusy,
				ServerShuttingDown, KeepAliveTimeout, SessionTakenOver, TopicFilterInvalid,
				TopicNameInvalid, ReceiveMaximumExceeded, TopicAliasInvalid, PacketTooLarge,
				MessageRateTooHigh, QuotaExceeded, AdministrativeAction, PayloadFormatInvalid,
				RetainNotSupported, QoSNotSupported, UseAnotherServer, ServerMoved,
				SharedSubscriptionsNotSupported, ConnectionRateExceeded, MaximumConnectTime,
				SubscriptionIdentifiersNotSupported, WildcardSubscriptionsNotSupported)
		}
		return p
	case AUTH:
		if v != V5 {
			panic("AUTH before 5.0")
		}
		a := &Auth{ReasonCode: g.pick(Success, ContinueAuthentication, ReAuthenticate), Props: g.props(AUTH)}
		if !a.Props.Has(PropAuthMethod) && (a.ReasonCode != Success || !a.Props.empty()) {
			a.Props.AuthMethod = "m" // an AUTH with a body names its method (§3.15.2.2.2)
			a.Props.Set(PropAuthMethod)
		}
		return a
	}
	panic("rtGen: packet type " + t.String())
}

// rtChunkReader returns b in reads of the given sizes, in turn.
type rtChunkReader struct {
	b     []byte
	sizes []int
	i     int
}

func (r *rtChunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(r.b), r.sizes[r.i%len(r.sizes)])
	r.i++
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}

// TestRoundTripAuthBeforeV5 checks the one packet that cannot be encoded
// below 5.0.
func TestRoundTripAuthBeforeV5(t *testing.T) {
	for _, v := range []Version{V31, V311} {
		if _, err := (&Auth{}).AppendTo(nil, v); err == nil {
			t.Errorf("AUTH encoded at %v", v)
		}
		var re *ReasonError
		if err := (&Auth{}).Decode([]byte{0xF0, 0x00}, v); !errors.As(err, &re) || re.Code != MalformedPacket {
			t.Errorf("AUTH decoded at %v: %v, want malformed", v, err)
		}
	}
}
