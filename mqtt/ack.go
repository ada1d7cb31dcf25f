package mqtt

import "fmt"

// Puback is the PUBACK packet (§3.4), the answer to a QoS 1 PUBLISH.
type Puback struct {
	PacketID   uint16
	ReasonCode ReasonCode // MQTT 5.0 only
	Props      Properties // MQTT 5.0 only
}

// Pubrec is the PUBREC packet (§3.5), the first answer to a QoS 2 PUBLISH.
type Pubrec struct {
	PacketID   uint16
	ReasonCode ReasonCode
	Props      Properties
}

// Pubrel is the PUBREL packet (§3.6), the answer to a PUBREC.
type Pubrel struct {
	PacketID   uint16
	ReasonCode ReasonCode
	Props      Properties
}

// Pubcomp is the PUBCOMP packet (§3.7), the answer to a PUBREL.
type Pubcomp struct {
	PacketID   uint16
	ReasonCode ReasonCode
	Props      Properties
}

// Type implements Packet.
func (*Puback) Type() PacketType { return PUBACK }

// Type implements Packet.
func (*Pubrec) Type() PacketType { return PUBREC }

// Type implements Packet.
func (*Pubrel) Type() PacketType { return PUBREL }

// Type implements Packet.
func (*Pubcomp) Type() PacketType { return PUBCOMP }

// AppendTo implements Packet.
func (p *Puback) AppendTo(dst []byte, v Version) ([]byte, error) {
	return appendAck(dst, v, PUBACK, p.PacketID, p.ReasonCode, &p.Props)
}

// AppendTo implements Packet.
func (p *Pubrec) AppendTo(dst []byte, v Version) ([]byte, error) {
	return appendAck(dst, v, PUBREC, p.PacketID, p.ReasonCode, &p.Props)
}

// AppendTo implements Packet.
func (p *Pubrel) AppendTo(dst []byte, v Version) ([]byte, error) {
	return appendAck(dst, v, PUBREL, p.PacketID, p.ReasonCode, &p.Props)
}

// AppendTo implements Packet.
func (p *Pubcomp) AppendTo(dst []byte, v Version) ([]byte, error) {
	return appendAck(dst, v, PUBCOMP, p.PacketID, p.ReasonCode, &p.Props)
}

// Decode implements Packet.
func (p *Puback) Decode(pkt []byte, v Version) error {
	*p = Puback{}
	return decodeAck(pkt, v, PUBACK, &p.PacketID, &p.ReasonCode, &p.Props)
}

// Decode implements Packet.
func (p *Pubrec) Decode(pkt []byte, v Version) error {
	*p = Pubrec{}
	return decodeAck(pkt, v, PUBREC, &p.PacketID, &p.ReasonCode, &p.Props)
}

// Decode implements Packet.
func (p *Pubrel) Decode(pkt []byte, v Version) error {
	*p = Pubrel{}
	return decodeAck(pkt, v, PUBREL, &p.PacketID, &p.ReasonCode, &p.Props)
}

// Decode implements Packet.
func (p *Pubcomp) Decode(pkt []byte, v Version) error {
	*p = Pubcomp{}
	return decodeAck(pkt, v, PUBCOMP, &p.PacketID, &p.ReasonCode, &p.Props)
}

// appendAck encodes the four publish acknowledgements. In MQTT 5.0 the
// reason code and property length are left out when they are Success and
// empty (§3.4.2.1), which is what most peers send.
func appendAck(dst []byte, v Version, t PacketType, id uint16, rc ReasonCode, props *Properties) ([]byte, error) {
	flags := requiredFlags[t]
	if v != V5 || (rc == Success && props.empty()) {
		dst = append(dst, byte(t)<<4|flags, 2)
		return appendUint16(dst, id), nil
	}
	if err := props.validateForEncode(t); err != nil {
		return dst, err
	}
	ps := props.size(t)
	n := 3
	if ps > 0 {
		n += varintLen(ps) + ps
	}
	dst, err := appendHeader(dst, t, flags, n)
	if err != nil {
		return dst, err
	}
	dst = append(appendUint16(dst, id), byte(rc))
	if ps > 0 {
		dst = props.appendTo(dst, t, ps)
	}
	return dst, nil
}

func decodeAck(pkt []byte, v Version, t PacketType, id *uint16, rc *ReasonCode, props *Properties) error {
	d, _, err := body(pkt, t, v)
	if err != nil {
		return err
	}
	*id = d.u16("packet identifier")
	if d.err != nil {
		return d.err
	}
	if *id == 0 {
		return protocolErr(fmt.Sprintf("%v with packet identifier 0 [MQTT-2.3.1-1]", t))
	}
	if v == V5 && d.remaining() > 0 {
		*rc = ReasonCode(d.u8("reason code"))
		if d.err == nil && !validAckCode(t, *rc) {
			return protocolErr(fmt.Sprintf("%v with reason code 0x%02X", t, byte(*rc)))
		}
		if d.remaining() > 0 {
			props.decode(&d, t)
		}
	}
	d.end(t.String())
	return d.err
}

// validAckCode lists the reason codes each acknowledgement may carry
// (§3.4.2.1, §3.5.2.1, §3.6.2.1, §3.7.2.1).
func validAckCode(t PacketType, c ReasonCode) bool {
	if t == PUBREL || t == PUBCOMP {
		return c == Success || c == PacketIdentifierNotFound
	}
	switch c {
	case Success, NoMatchingSubscribers, UnspecifiedError, ImplementationSpecificError,
		NotAuthorized, TopicNameInvalid, PacketIdentifierInUse, QuotaExceeded, PayloadFormatInvalid:
		return true
	}
	return false
}
