package mqtt

import (
	"fmt"
	"strings"
)

// PropID identifies an MQTT 5.0 property (§2.2.2.2).
type PropID byte

// Property identifiers, MQTT 5.0 Table 2-4.
const (
	PropPayloadFormat        PropID = 0x01
	PropMessageExpiry        PropID = 0x02
	PropContentType          PropID = 0x03
	PropResponseTopic        PropID = 0x08
	PropCorrelationData      PropID = 0x09
	PropSubscriptionID       PropID = 0x0B
	PropSessionExpiry        PropID = 0x11
	PropAssignedClientID     PropID = 0x12
	PropServerKeepAlive      PropID = 0x13
	PropAuthMethod           PropID = 0x15
	PropAuthData             PropID = 0x16
	PropRequestProblemInfo   PropID = 0x17
	PropWillDelay            PropID = 0x18
	PropRequestResponseInfo  PropID = 0x19
	PropResponseInfo         PropID = 0x1A
	PropServerReference      PropID = 0x1C
	PropReasonString         PropID = 0x1F
	PropReceiveMaximum       PropID = 0x21
	PropTopicAliasMaximum    PropID = 0x22
	PropTopicAlias           PropID = 0x23
	PropMaximumQoS           PropID = 0x24
	PropRetainAvailable      PropID = 0x25
	PropUserProperty         PropID = 0x26
	PropMaximumPacketSize    PropID = 0x27
	PropWildcardSubAvailable PropID = 0x28
	PropSubIDAvailable       PropID = 0x29
	PropSharedSubAvailable   PropID = 0x2A
)

// propKind is a property's wire type (§1.5).
type propKind byte

const (
	kindByte propKind = iota + 1
	kindUint16
	kindUint32
	kindVarint
	kindString
	kindBinary
	kindPair
)

// willProps stands for the Will Properties of a CONNECT payload in the
// allowed-packet masks; bit 0 is free because packet type 0 is reserved.
const willProps PacketType = 0

type propSpec struct {
	name    string
	kind    propKind
	allowed uint16 // bit per PacketType (willProps = bit 0)
}

func on(ts ...PacketType) uint16 {
	var m uint16
	for _, t := range ts {
		m |= 1 << t
	}
	return m
}

var allPacketsWithProps = on(CONNECT, CONNACK, PUBLISH, willProps, PUBACK, PUBREC, PUBREL, PUBCOMP,
	SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, DISCONNECT, AUTH)

// propSpecs is MQTT 5.0 Table 2-4: each property's type and the packets
// that may carry it. A property on any other packet is a protocol error.
var propSpecs = [0x2B]propSpec{
	PropPayloadFormat:        {"Payload Format Indicator", kindByte, on(PUBLISH, willProps)},
	PropMessageExpiry:        {"Message Expiry Interval", kindUint32, on(PUBLISH, willProps)},
	PropContentType:          {"Content Type", kindString, on(PUBLISH, willProps)},
	PropResponseTopic:        {"Response Topic", kindString, on(PUBLISH, willProps)},
	PropCorrelationData:      {"Correlation Data", kindBinary, on(PUBLISH, willProps)},
	PropSubscriptionID:       {"Subscription Identifier", kindVarint, on(PUBLISH, SUBSCRIBE)},
	PropSessionExpiry:        {"Session Expiry Interval", kindUint32, on(CONNECT, CONNACK, DISCONNECT)},
	PropAssignedClientID:     {"Assigned Client Identifier", kindString, on(CONNACK)},
	PropServerKeepAlive:      {"Server Keep Alive", kindUint16, on(CONNACK)},
	PropAuthMethod:           {"Authentication Method", kindString, on(CONNECT, CONNACK, AUTH)},
	PropAuthData:             {"Authentication Data", kindBinary, on(CONNECT, CONNACK, AUTH)},
	PropRequestProblemInfo:   {"Request Problem Information", kindByte, on(CONNECT)},
	PropWillDelay:            {"Will Delay Interval", kindUint32, on(willProps)},
	PropRequestResponseInfo:  {"Request Response Information", kindByte, on(CONNECT)},
	PropResponseInfo:         {"Response Information", kindString, on(CONNACK)},
	PropServerReference:      {"Server Reference", kindString, on(CONNACK, DISCONNECT)},
	PropReasonString:         {"Reason String", kindString, on(CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, DISCONNECT, AUTH)},
	PropReceiveMaximum:       {"Receive Maximum", kindUint16, on(CONNECT, CONNACK)},
	PropTopicAliasMaximum:    {"Topic Alias Maximum", kindUint16, on(CONNECT, CONNACK)},
	PropTopicAlias:           {"Topic Alias", kindUint16, on(PUBLISH)},
	PropMaximumQoS:           {"Maximum QoS", kindByte, on(CONNACK)},
	PropRetainAvailable:      {"Retain Available", kindByte, on(CONNACK)},
	PropUserProperty:         {"User Property", kindPair, allPacketsWithProps},
	PropMaximumPacketSize:    {"Maximum Packet Size", kindUint32, on(CONNECT, CONNACK)},
	PropWildcardSubAvailable: {"Wildcard Subscription Available", kindByte, on(CONNACK)},
	PropSubIDAvailable:       {"Subscription Identifier Available", kindByte, on(CONNACK)},
	PropSharedSubAvailable:   {"Shared Subscription Available", kindByte, on(CONNACK)},
}

func (id PropID) spec() (propSpec, bool) {
	if int(id) >= len(propSpecs) || propSpecs[id].kind == 0 {
		return propSpec{}, false
	}
	return propSpecs[id], true
}

// String returns the property's name as the spec words it.
func (id PropID) String() string {
	if s, ok := id.spec(); ok {
		return s.name
	}
	return fmt.Sprintf("property 0x%02X", byte(id))
}

// AllowedIn reports whether property id may appear in a packet of type t.
// Pass PacketType 0 for the Will Properties of a CONNECT.
func (id PropID) AllowedIn(t PacketType) bool {
	s, ok := id.spec()
	return ok && s.allowed&(1<<t) != 0
}

// UserProperty is one User Property name/value pair (§3.1.2.11.8). Order
// and repetition are significant and preserved [MQTT-3.3.2-18].
type UserProperty struct {
	Key, Value string
}

// Properties holds the MQTT 5.0 properties of one packet. Only those the
// packet type allows are encoded or accepted on decode.
//
// A property is encoded when its field is non-zero (non-empty) or when its
// bit is set in Present; Present lets a caller send a property whose value
// is zero where that differs from its absence (Retain Available 0, Maximum
// QoS 0, Server Keep Alive 0, Request Problem Information 0, …). Decoding
// sets the bit of every single-valued property it read.
//
// Byte-slice fields are sub-slices of the decoded packet; strings are copies.
type Properties struct {
	Present PropSet

	PayloadFormat        byte   // 0x01: 0 unspecified bytes, 1 UTF-8
	MessageExpiry        uint32 // 0x02: seconds
	ContentType          string // 0x03
	ResponseTopic        string // 0x08
	CorrelationData      []byte // 0x09
	SubscriptionIDs      []int  // 0x0B: one in SUBSCRIBE, any number in PUBLISH
	SessionExpiry        uint32 // 0x11: seconds; 0xFFFFFFFF never expires
	AssignedClientID     string // 0x12
	ServerKeepAlive      uint16 // 0x13
	AuthMethod           string // 0x15
	AuthData             []byte // 0x16
	RequestProblemInfo   byte   // 0x17: absent means 1
	WillDelay            uint32 // 0x18
	RequestResponseInfo  byte   // 0x19
	ResponseInfo         string // 0x1A
	ServerReference      string // 0x1C
	ReasonString         string // 0x1F
	ReceiveMaximum       uint16 // 0x21: absent means 65535; 0 is a protocol error
	TopicAliasMaximum    uint16 // 0x22
	TopicAlias           uint16 // 0x23: 0 is a protocol error (code TopicAliasInvalid)
	MaximumQoS           byte   // 0x24: absent means 2
	RetainAvailable      byte   // 0x25: absent means 1
	User                 []UserProperty
	MaximumPacketSize    uint32 // 0x27: absent means no limit; 0 is a protocol error
	WildcardSubAvailable byte   // 0x28: absent means 1
	SubIDAvailable       byte   // 0x29: absent means 1
	SharedSubAvailable   byte   // 0x2A: absent means 1
}

// PropSet is a set of property identifiers, one bit per identifier.
type PropSet uint64

// Has reports whether id is in the set.
func (s PropSet) Has(id PropID) bool { return s&(1<<id) != 0 }

// Add returns the set with id added.
func (s PropSet) Add(id PropID) PropSet { return s | 1<<id }

// Has reports whether property id was present in the decoded packet, or will
// be encoded (its field is non-zero or its Present bit is set).
func (p *Properties) Has(id PropID) bool {
	return p.Present.Has(id) || !p.isZero(id)
}

// Set marks id present so that it is encoded even when its value is zero.
func (p *Properties) Set(id PropID) { p.Present = p.Present.Add(id) }

func (p *Properties) isZero(id PropID) bool {
	switch id {
	case PropSubscriptionID:
		return len(p.SubscriptionIDs) == 0
	case PropUserProperty:
		return len(p.User) == 0
	}
	spec, ok := id.spec()
	if !ok {
		return true
	}
	switch spec.kind {
	case kindByte:
		return *p.byteField(id) == 0
	case kindUint16:
		return *p.uint16Field(id) == 0
	case kindUint32:
		return *p.uint32Field(id) == 0
	case kindString:
		return p.stringValue(id) == ""
	case kindBinary:
		return p.binaryValue(id) == nil
	}
	return true
}

// propOrder is the order in which properties are encoded (identifier order).
var propOrder = [...]PropID{
	PropPayloadFormat, PropMessageExpiry, PropContentType, PropResponseTopic,
	PropCorrelationData, PropSubscriptionID, PropSessionExpiry, PropAssignedClientID,
	PropServerKeepAlive, PropAuthMethod, PropAuthData, PropRequestProblemInfo,
	PropWillDelay, PropRequestResponseInfo, PropResponseInfo, PropServerReference,
	PropReasonString, PropReceiveMaximum, PropTopicAliasMaximum, PropTopicAlias,
	PropMaximumQoS, PropRetainAvailable, PropUserProperty, PropMaximumPacketSize,
	PropWildcardSubAvailable, PropSubIDAvailable, PropSharedSubAvailable,
}

// empty reports whether nothing would be encoded, whatever the packet type.
// It is the fast path for the common packet without properties.
func (p *Properties) empty() bool {
	return p.Present == 0 && p.PayloadFormat == 0 && p.MessageExpiry == 0 &&
		p.ContentType == "" && p.ResponseTopic == "" && p.CorrelationData == nil &&
		len(p.SubscriptionIDs) == 0 && p.SessionExpiry == 0 && p.AssignedClientID == "" &&
		p.ServerKeepAlive == 0 && p.AuthMethod == "" && p.AuthData == nil &&
		p.RequestProblemInfo == 0 && p.WillDelay == 0 && p.RequestResponseInfo == 0 &&
		p.ResponseInfo == "" && p.ServerReference == "" && p.ReasonString == "" &&
		p.ReceiveMaximum == 0 && p.TopicAliasMaximum == 0 && p.TopicAlias == 0 &&
		p.MaximumQoS == 0 && p.RetainAvailable == 0 && len(p.User) == 0 &&
		p.MaximumPacketSize == 0 && p.WildcardSubAvailable == 0 &&
		p.SubIDAvailable == 0 && p.SharedSubAvailable == 0
}

// encoded reports whether property id will be written for packet type t.
func (p *Properties) encoded(id PropID, t PacketType) bool {
	return id.AllowedIn(t) && p.Has(id)
}

// size returns the length of the encoded properties for packet type t,
// without the Property Length prefix.
func (p *Properties) size(t PacketType) int {
	if p.empty() {
		return 0
	}
	n := 0
	for _, id := range propOrder {
		if !p.encoded(id, t) {
			continue
		}
		switch id {
		case PropSubscriptionID:
			for _, v := range p.SubscriptionIDs {
				n += 1 + varintLen(v)
			}
		case PropUserProperty:
			for _, u := range p.User {
				n += 1 + 2 + len(u.Key) + 2 + len(u.Value)
			}
		default:
			n += 1 + p.valueLen(id)
		}
	}
	return n
}

func (p *Properties) valueLen(id PropID) int {
	switch propSpecs[id].kind {
	case kindByte:
		return 1
	case kindUint16:
		return 2
	case kindUint32:
		return 4
	case kindString:
		return 2 + len(p.stringValue(id))
	case kindBinary:
		return 2 + len(p.binaryValue(id))
	}
	return 0
}

func (p *Properties) stringValue(id PropID) string {
	switch id {
	case PropContentType:
		return p.ContentType
	case PropResponseTopic:
		return p.ResponseTopic
	case PropAssignedClientID:
		return p.AssignedClientID
	case PropAuthMethod:
		return p.AuthMethod
	case PropResponseInfo:
		return p.ResponseInfo
	case PropServerReference:
		return p.ServerReference
	case PropReasonString:
		return p.ReasonString
	}
	return ""
}

func (p *Properties) setString(id PropID, v string) {
	switch id {
	case PropContentType:
		p.ContentType = v
	case PropResponseTopic:
		p.ResponseTopic = v
	case PropAssignedClientID:
		p.AssignedClientID = v
	case PropAuthMethod:
		p.AuthMethod = v
	case PropResponseInfo:
		p.ResponseInfo = v
	case PropServerReference:
		p.ServerReference = v
	case PropReasonString:
		p.ReasonString = v
	}
}

func (p *Properties) binaryValue(id PropID) []byte {
	if id == PropCorrelationData {
		return p.CorrelationData
	}
	return p.AuthData
}

func (p *Properties) byteField(id PropID) *byte {
	switch id {
	case PropPayloadFormat:
		return &p.PayloadFormat
	case PropRequestProblemInfo:
		return &p.RequestProblemInfo
	case PropRequestResponseInfo:
		return &p.RequestResponseInfo
	case PropMaximumQoS:
		return &p.MaximumQoS
	case PropRetainAvailable:
		return &p.RetainAvailable
	case PropWildcardSubAvailable:
		return &p.WildcardSubAvailable
	case PropSubIDAvailable:
		return &p.SubIDAvailable
	case PropSharedSubAvailable:
		return &p.SharedSubAvailable
	}
	return nil
}

func (p *Properties) uint16Field(id PropID) *uint16 {
	switch id {
	case PropServerKeepAlive:
		return &p.ServerKeepAlive
	case PropReceiveMaximum:
		return &p.ReceiveMaximum
	case PropTopicAliasMaximum:
		return &p.TopicAliasMaximum
	case PropTopicAlias:
		return &p.TopicAlias
	}
	return nil
}

func (p *Properties) uint32Field(id PropID) *uint32 {
	switch id {
	case PropMessageExpiry:
		return &p.MessageExpiry
	case PropSessionExpiry:
		return &p.SessionExpiry
	case PropWillDelay:
		return &p.WillDelay
	case PropMaximumPacketSize:
		return &p.MaximumPacketSize
	}
	return nil
}

// appendTo appends the Property Length and the properties allowed in t.
// size must be p.size(t).
func (p *Properties) appendTo(b []byte, t PacketType, size int) []byte {
	b = appendVarint(b, size)
	if size == 0 {
		return b
	}
	for _, id := range propOrder {
		if !p.encoded(id, t) {
			continue
		}
		switch propSpecs[id].kind {
		case kindByte:
			b = append(b, byte(id), *p.byteField(id))
		case kindUint16:
			b = appendUint16(append(b, byte(id)), *p.uint16Field(id))
		case kindUint32:
			b = appendUint32(append(b, byte(id)), *p.uint32Field(id))
		case kindString:
			b = appendString(append(b, byte(id)), p.stringValue(id))
		case kindBinary:
			b = appendBinary(append(b, byte(id)), p.binaryValue(id))
		case kindVarint:
			for _, v := range p.SubscriptionIDs {
				b = appendVarint(append(b, byte(id)), v)
			}
		case kindPair:
			for _, u := range p.User {
				b = appendString(append(b, byte(id)), u.Key)
				b = appendString(b, u.Value)
			}
		}
	}
	return b
}

// validateForEncode checks what would otherwise produce bytes a peer must
// reject: over-long strings and out-of-range values.
func (p *Properties) validateForEncode(t PacketType) error {
	if p.empty() {
		return nil
	}
	for _, id := range propOrder {
		if !p.encoded(id, t) {
			continue
		}
		switch propSpecs[id].kind {
		case kindString:
			if len(p.stringValue(id)) > maxString {
				return fmt.Errorf("mqtt: %v longer than 65535 bytes", id)
			}
		case kindBinary:
			if len(p.binaryValue(id)) > maxString {
				return fmt.Errorf("mqtt: %v longer than 65535 bytes", id)
			}
		case kindVarint:
			for _, v := range p.SubscriptionIDs {
				if v < 1 || v > MaxVarint {
					return fmt.Errorf("mqtt: subscription identifier %d out of range 1..%d", v, MaxVarint)
				}
			}
		case kindPair:
			for _, u := range p.User {
				if len(u.Key) > maxString || len(u.Value) > maxString {
					return fmt.Errorf("mqtt: user property longer than 65535 bytes")
				}
			}
		}
	}
	return nil
}

// decode reads a Property Length and the properties that follow, for a
// packet of type t, into p (which must be zero). It enforces which packets
// may carry which property and that single-valued properties appear once
// (§2.2.2.2: a property on the wrong packet is malformed, a repeated one a
// protocol error), and the value rules the spec gives for each property.
func (p *Properties) decode(d *decoder, t PacketType) {
	n := d.varint("property length")
	if d.err != nil {
		return
	}
	if n > d.remaining() {
		d.short("properties")
		return
	}
	end := d.off + n
	sub := decoder{b: d.b[:end], off: d.off}
	for sub.err == nil && sub.off < end {
		raw := sub.varint("property identifier")
		if sub.err != nil {
			break
		}
		// The identifier is a variable byte integer: check its full value
		// before narrowing it, or 0x81 0x02 (257) would pass as 0x01.
		id := PropID(raw)
		spec, ok := id.spec()
		if !ok || raw >= len(propSpecs) {
			sub.fail(malformed(fmt.Sprintf("unknown property identifier 0x%02X", raw)))
			break
		}
		if spec.allowed&(1<<t) == 0 {
			// §2.2.2.2: an identifier not valid for the packet type makes
			// the packet malformed (duplicates are protocol errors).
			sub.fail(malformed(fmt.Sprintf("%v not allowed in %v", id, propPlace(t))))
			break
		}
		multi := id == PropUserProperty || (id == PropSubscriptionID && t == PUBLISH)
		if !multi && p.Present.Has(id) {
			sub.fail(protocolErr(fmt.Sprintf("%v included more than once", id)))
			break
		}
		if id != PropUserProperty {
			p.Present = p.Present.Add(id)
		}
		switch spec.kind {
		case kindByte:
			v := sub.u8(spec.name)
			*p.byteField(id) = v
			// Every one-byte property is 0 or 1 (Maximum QoS too: 2 is
			// expressed by its absence, §3.2.2.3.4).
			if v > 1 {
				sub.fail(protocolErr(fmt.Sprintf("%v has value %d, want 0 or 1", id, v)))
			}
		case kindUint16:
			v := sub.u16(spec.name)
			*p.uint16Field(id) = v
			switch {
			case v == 0 && id == PropTopicAlias:
				// §3.3.4: a Topic Alias of 0 is a protocol error answered
				// with 0x94 Topic Alias invalid [MQTT-3.3.2-8].
				sub.fail(&ReasonError{Code: TopicAliasInvalid, Msg: "topic alias of 0 [MQTT-3.3.2-8]"})
			case v == 0 && id == PropReceiveMaximum:
				sub.fail(protocolErr(fmt.Sprintf("%v of 0", id)))
			}
		case kindUint32:
			v := sub.u32(spec.name)
			*p.uint32Field(id) = v
			if v == 0 && id == PropMaximumPacketSize {
				sub.fail(protocolErr("maximum packet size of 0"))
			}
		case kindVarint:
			v := sub.varint(spec.name)
			if sub.err == nil && v == 0 {
				sub.fail(protocolErr("subscription identifier of 0"))
			}
			p.SubscriptionIDs = append(p.SubscriptionIDs, v)
		case kindString:
			v := sub.str(spec.name)
			p.setString(id, v)
			if id == PropResponseTopic && strings.ContainsAny(v, "+#") {
				// Mosquitto answers this with a protocol error too.
				sub.fail(protocolErr("response topic contains a wildcard [MQTT-3.3.2-14]"))
			}
		case kindBinary:
			v := sub.binary(spec.name)
			if id == PropCorrelationData {
				p.CorrelationData = v
			} else {
				p.AuthData = v
			}
		case kindPair:
			k := sub.str("user property name")
			v := sub.str("user property value")
			p.User = append(p.User, UserProperty{Key: k, Value: v})
		}
	}
	if sub.err != nil {
		d.fail(sub.err)
		return
	}
	d.off = end
}

func propPlace(t PacketType) string {
	if t == willProps {
		return "will properties"
	}
	return t.String()
}
