package mqtt

import (
	"fmt"
	"strings"
)

// Subscription is one topic filter of a SUBSCRIBE with its options
// (§3.8.3.1). NoLocal, RetainAsPublished and RetainHandling are MQTT 5.0.
type Subscription struct {
	Filter            string
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte // 0 send retained, 1 only if new, 2 never
}

// Subscribe is the SUBSCRIBE packet (§3.8).
type Subscribe struct {
	PacketID      uint16
	Props         Properties // Subscription Identifier and User Properties
	Subscriptions []Subscription
}

// Type implements Packet.
func (*Subscribe) Type() PacketType { return SUBSCRIBE }

// AppendTo implements Packet.
func (p *Subscribe) AppendTo(dst []byte, v Version) ([]byte, error) {
	n := 2
	ps := 0
	if v == V5 {
		if err := p.Props.validateForEncode(SUBSCRIBE); err != nil {
			return dst, err
		}
		ps = p.Props.size(SUBSCRIBE)
		n += varintLen(ps) + ps
	}
	for _, s := range p.Subscriptions {
		if len(s.Filter) > maxString {
			return dst, ErrTooLarge
		}
		n += 2 + len(s.Filter) + 1
	}
	dst, err := appendHeader(dst, SUBSCRIBE, 0x02, n)
	if err != nil {
		return dst, err
	}
	dst = appendUint16(dst, p.PacketID)
	if v == V5 {
		dst = p.Props.appendTo(dst, SUBSCRIBE, ps)
	}
	for _, s := range p.Subscriptions {
		dst = appendString(dst, s.Filter)
		opts := s.QoS & 0x03
		if v == V5 {
			if s.NoLocal {
				opts |= 0x04
			}
			if s.RetainAsPublished {
				opts |= 0x08
			}
			opts |= (s.RetainHandling & 0x03) << 4
		}
		dst = append(dst, opts)
	}
	return dst, nil
}

// Decode implements Packet. It checks the encoding and the option bits;
// whether each filter is valid is answered per filter in the SUBACK, so
// the caller checks that with ValidateTopicFilter.
func (p *Subscribe) Decode(pkt []byte, v Version) error {
	*p = Subscribe{}
	d, _, err := body(pkt, SUBSCRIBE, v)
	if err != nil {
		return err
	}
	p.PacketID = d.u16("packet identifier")
	if d.err == nil && p.PacketID == 0 {
		return protocolErr("SUBSCRIBE with packet identifier 0 [MQTT-2.3.1-1]")
	}
	if v == V5 {
		p.Props.decode(&d, SUBSCRIBE)
	}
	if d.err == nil && d.remaining() == 0 {
		return protocolErr("SUBSCRIBE without a topic filter [MQTT-3.8.3-3]")
	}
	for d.err == nil && d.remaining() > 0 {
		s := Subscription{Filter: d.str("topic filter")}
		opts := d.u8("subscription options")
		if d.err != nil {
			break
		}
		s.QoS = opts & 0x03
		if v == V5 {
			if opts&0xC0 != 0 {
				return malformed("subscription options reserved bits set [MQTT-3.8.3-5]")
			}
			if s.QoS == 3 {
				// 5.0 makes this a protocol error, 3.1.1 a malformed packet.
				return protocolErr("subscription maximum QoS 3 (§3.8.3.1)")
			}
			s.NoLocal = opts&0x04 != 0
			s.RetainAsPublished = opts&0x08 != 0
			s.RetainHandling = opts >> 4 & 0x03
			if s.RetainHandling == 3 {
				return protocolErr("retain handling 3 (§3.8.3.1)")
			}
			if s.NoLocal && strings.HasPrefix(s.Filter, "$share/") {
				return protocolErr("no local set on a shared subscription [MQTT-3.8.3-4]")
			}
		} else if s.QoS == 3 {
			// The 3.1.1 spec itself spells this clause "MQTT-3-8.3-4".
			return malformed("subscription QoS 3 [MQTT-3-8.3-4]")
		} else if opts&0xFC != 0 {
			return malformed("SUBSCRIBE requested QoS reserved bits set [MQTT-3-8.3-4]")
		}
		p.Subscriptions = append(p.Subscriptions, s)
	}
	return d.err
}

// Suback is the SUBACK packet (§3.9). ReasonCodes holds one code per
// filter: the granted QoS (0–2) or a failure (0x80 in 3.1.1, any SUBACK
// reason code of §3.9.3 in 5.0).
type Suback struct {
	PacketID    uint16
	Props       Properties
	ReasonCodes []ReasonCode
}

// Type implements Packet.
func (*Suback) Type() PacketType { return SUBACK }

// AppendTo implements Packet. For 3.1 and 3.1.1 every failure code is sent
// as 0x80, the only failure those versions know.
func (p *Suback) AppendTo(dst []byte, v Version) ([]byte, error) {
	return appendCodes(dst, v, SUBACK, p.PacketID, &p.Props, p.ReasonCodes)
}

// Decode implements Packet.
func (p *Suback) Decode(pkt []byte, v Version) error {
	*p = Suback{}
	var err error
	p.PacketID, p.ReasonCodes, err = decodeCodes(pkt, v, SUBACK, &p.Props)
	return err
}

// Unsubscribe is the UNSUBSCRIBE packet (§3.10).
type Unsubscribe struct {
	PacketID uint16
	Props    Properties
	Filters  []string
}

// Type implements Packet.
func (*Unsubscribe) Type() PacketType { return UNSUBSCRIBE }

// AppendTo implements Packet.
func (p *Unsubscribe) AppendTo(dst []byte, v Version) ([]byte, error) {
	n := 2
	ps := 0
	if v == V5 {
		if err := p.Props.validateForEncode(UNSUBSCRIBE); err != nil {
			return dst, err
		}
		ps = p.Props.size(UNSUBSCRIBE)
		n += varintLen(ps) + ps
	}
	for _, f := range p.Filters {
		if len(f) > maxString {
			return dst, ErrTooLarge
		}
		n += 2 + len(f)
	}
	dst, err := appendHeader(dst, UNSUBSCRIBE, 0x02, n)
	if err != nil {
		return dst, err
	}
	dst = appendUint16(dst, p.PacketID)
	if v == V5 {
		dst = p.Props.appendTo(dst, UNSUBSCRIBE, ps)
	}
	for _, f := range p.Filters {
		dst = appendString(dst, f)
	}
	return dst, nil
}

// Decode implements Packet.
func (p *Unsubscribe) Decode(pkt []byte, v Version) error {
	*p = Unsubscribe{}
	d, _, err := body(pkt, UNSUBSCRIBE, v)
	if err != nil {
		return err
	}
	p.PacketID = d.u16("packet identifier")
	if d.err == nil && p.PacketID == 0 {
		return protocolErr("UNSUBSCRIBE with packet identifier 0 [MQTT-2.3.1-1]")
	}
	if v == V5 {
		p.Props.decode(&d, UNSUBSCRIBE)
	}
	if d.err == nil && d.remaining() == 0 {
		return protocolErr("UNSUBSCRIBE without a topic filter [MQTT-3.10.3-2]")
	}
	for d.err == nil && d.remaining() > 0 {
		p.Filters = append(p.Filters, d.str("topic filter"))
	}
	return d.err
}

// Unsuback is the UNSUBACK packet (§3.11). In 3.1 and 3.1.1 it has only
// the packet identifier; ReasonCodes is MQTT 5.0.
type Unsuback struct {
	PacketID    uint16
	Props       Properties
	ReasonCodes []ReasonCode
}

// Type implements Packet.
func (*Unsuback) Type() PacketType { return UNSUBACK }

// AppendTo implements Packet.
func (p *Unsuback) AppendTo(dst []byte, v Version) ([]byte, error) {
	if v != V5 {
		return appendUint16(append(dst, byte(UNSUBACK)<<4, 2), p.PacketID), nil
	}
	return appendCodes(dst, v, UNSUBACK, p.PacketID, &p.Props, p.ReasonCodes)
}

// Decode implements Packet.
func (p *Unsuback) Decode(pkt []byte, v Version) error {
	*p = Unsuback{}
	var err error
	p.PacketID, p.ReasonCodes, err = decodeCodes(pkt, v, UNSUBACK, &p.Props)
	return err
}

// appendCodes encodes SUBACK and the MQTT 5.0 UNSUBACK: packet id,
// properties, one code per filter.
func appendCodes(dst []byte, v Version, t PacketType, id uint16, props *Properties, codes []ReasonCode) ([]byte, error) {
	n := 2 + len(codes)
	ps := 0
	if v == V5 {
		if err := props.validateForEncode(t); err != nil {
			return dst, err
		}
		ps = props.size(t)
		n += varintLen(ps) + ps
	}
	dst, err := appendHeader(dst, t, 0, n)
	if err != nil {
		return dst, err
	}
	dst = appendUint16(dst, id)
	if v == V5 {
		dst = props.appendTo(dst, t, ps)
	}
	for _, c := range codes {
		if v != V5 && c.IsError() {
			c = 0x80
		}
		dst = append(dst, byte(c))
	}
	return dst, nil
}

func decodeCodes(pkt []byte, v Version, t PacketType, props *Properties) (uint16, []ReasonCode, error) {
	d, _, err := body(pkt, t, v)
	if err != nil {
		return 0, nil, err
	}
	id := d.u16("packet identifier")
	if d.err == nil && id == 0 {
		return 0, nil, protocolErr(fmt.Sprintf("%v with packet identifier 0 [MQTT-2.3.1-1]", t))
	}
	if t == UNSUBACK && v != V5 {
		d.end("UNSUBACK")
		return id, nil, d.err
	}
	if v == V5 {
		props.decode(&d, t)
	}
	if d.err != nil {
		return 0, nil, d.err
	}
	if d.remaining() == 0 {
		return 0, nil, protocolErr(fmt.Sprintf("%v without reason codes", t))
	}
	codes := make([]ReasonCode, d.remaining())
	for i := range codes {
		c := ReasonCode(d.u8("reason code"))
		if !validListCode(t, v, c) {
			return 0, nil, protocolErr(fmt.Sprintf("%v with reason code 0x%02X", t, byte(c)))
		}
		codes[i] = c
	}
	return id, codes, nil
}

// validListCode lists the codes SUBACK (§3.9.3) and UNSUBACK (§3.11.3) may
// carry.
func validListCode(t PacketType, v Version, c ReasonCode) bool {
	if t == UNSUBACK {
		switch c {
		case Success, NoSubscriptionExisted, UnspecifiedError, ImplementationSpecificError,
			NotAuthorized, TopicFilterInvalid, PacketIdentifierInUse:
			return true
		}
		return false
	}
	if v != V5 {
		// [MQTT-3.9.3-2]: 0x00, 0x01, 0x02, 0x80; 3.1 has no failure code,
		// but accepting 0x80 from a 3.1 peer is harmless.
		return c <= 2 || c == 0x80
	}
	switch c {
	case GrantedQoS0, GrantedQoS1, GrantedQoS2, UnspecifiedError, ImplementationSpecificError,
		NotAuthorized, TopicFilterInvalid, PacketIdentifierInUse, QuotaExceeded,
		SharedSubscriptionsNotSupported, SubscriptionIdentifiersNotSupported,
		WildcardSubscriptionsNotSupported:
		return true
	}
	return false
}
