package mqtt

import "fmt"

// Publish is the PUBLISH packet (§3.3).
//
// Decode does not copy: Topic, Payload and the binary properties are
// sub-slices of the decoded packet and are only valid as long as it is.
// Use Clone to keep a message.
type Publish struct {
	Dup      bool
	QoS      byte
	Retain   bool
	Topic    []byte // may be empty in MQTT 5.0 when Props.TopicAlias is set
	PacketID uint16 // only for QoS 1 and 2
	Props    Properties
	Payload  []byte
}

// Type implements Packet.
func (*Publish) Type() PacketType { return PUBLISH }

// AppendTo implements Packet.
func (p *Publish) AppendTo(dst []byte, v Version) ([]byte, error) {
	if p.QoS > 2 {
		return dst, fmt.Errorf("mqtt: PUBLISH QoS %d", p.QoS)
	}
	if len(p.Topic) > maxString {
		return dst, ErrTooLarge
	}
	flags := p.QoS << 1
	if p.Dup {
		flags |= 0x08
	}
	if p.Retain {
		flags |= 0x01
	}
	n := 2 + len(p.Topic) + len(p.Payload)
	if p.QoS > 0 {
		n += 2
	}
	ps := 0
	if v == V5 {
		if !p.Props.empty() {
			if err := p.Props.validateForEncode(PUBLISH); err != nil {
				return dst, err
			}
			ps = p.Props.size(PUBLISH)
		}
		n += varintLen(ps) + ps
	}
	dst, err := appendHeader(dst, PUBLISH, flags, n)
	if err != nil {
		return dst, err
	}
	dst = appendBinary(dst, p.Topic)
	if p.QoS > 0 {
		dst = appendUint16(dst, p.PacketID)
	}
	if v == V5 {
		dst = p.Props.appendTo(dst, PUBLISH, ps)
	}
	return append(dst, p.Payload...), nil
}

// Decode implements Packet. It checks the fixed-header flags, the topic
// name and the packet identifier; whether a Topic Alias is known and within
// the negotiated maximum is for the caller to check.
func (p *Publish) Decode(pkt []byte, v Version) error {
	*p = Publish{}
	d, flags, err := body(pkt, PUBLISH, v)
	if err != nil {
		return err
	}
	p.Dup = flags&0x08 != 0
	p.QoS = flags >> 1 & 0x03
	p.Retain = flags&0x01 != 0
	if p.QoS == 3 {
		return malformed("PUBLISH with QoS 3 [MQTT-3.3.1-4]")
	}
	if p.Dup && p.QoS == 0 {
		return malformed("PUBLISH with DUP set at QoS 0 [MQTT-3.3.1-2]")
	}
	p.Topic = d.binary("topic name")
	if p.QoS > 0 {
		p.PacketID = d.u16("packet identifier")
		if d.err == nil && p.PacketID == 0 {
			return protocolErr("PUBLISH with packet identifier 0 [MQTT-2.3.1-1]")
		}
	}
	if v == V5 {
		p.Props.decode(&d, PUBLISH)
	}
	p.Payload = d.rest()
	if d.err != nil {
		return d.err
	}
	if len(p.Topic) == 0 {
		// An empty topic is allowed only with a Topic Alias (§3.3.2.3.4).
		if v != V5 || !p.Props.Present.Has(PropTopicAlias) {
			return protocolErr("PUBLISH with an empty topic name [MQTT-4.7.3-1]")
		}
		return nil
	}
	if !validUTF8(p.Topic) {
		return malformed("topic name is not valid UTF-8 or contains U+0000 [MQTT-1.5.4-1] [MQTT-1.5.4-2]")
	}
	for _, c := range p.Topic {
		if c == '+' || c == '#' {
			return &ReasonError{Code: TopicNameInvalid, Msg: "PUBLISH topic name contains a wildcard [MQTT-3.3.2-2]"}
		}
	}
	return nil
}

// Clone returns a copy of p whose byte slices (topic, payload, correlation
// data) share one new allocation and no longer alias the decoded packet.
func (p *Publish) Clone() *Publish {
	c := *p
	buf := make([]byte, 0, len(p.Topic)+len(p.Payload)+len(p.Props.CorrelationData))
	c.Topic, buf = appendClone(buf, p.Topic)
	c.Payload, buf = appendClone(buf, p.Payload)
	if p.Props.CorrelationData != nil {
		c.Props.CorrelationData, _ = appendClone(buf, p.Props.CorrelationData)
	}
	c.Props.AuthData = nil
	if p.Props.SubscriptionIDs != nil {
		c.Props.SubscriptionIDs = append([]int(nil), p.Props.SubscriptionIDs...)
	}
	if p.Props.User != nil {
		c.Props.User = append([]UserProperty(nil), p.Props.User...)
	}
	return &c
}

// appendClone appends s to buf and returns the copy (capacity-limited, so
// appending to it cannot overwrite what follows) and the extended buffer.
func appendClone(buf, s []byte) ([]byte, []byte) {
	if s == nil {
		return nil, buf
	}
	start := len(buf)
	buf = append(buf, s...)
	return buf[start:len(buf):len(buf)], buf
}
