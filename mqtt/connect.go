package mqtt

import "fmt"

// Connect is the CONNECT packet (§3.1). Its Decode ignores the version
// argument: the packet names its own protocol level.
type Connect struct {
	ProtocolName  string  // "MQTT", or "MQIsdp" for 3.1
	ProtocolLevel Version // 3, 4 or 5
	CleanStart    bool    // Clean Session in 3.1.1
	KeepAlive     uint16  // seconds, 0 disables
	Props         Properties
	ClientID      string
	Will          *Will // nil when the Will Flag is 0
	HasUsername   bool
	Username      string
	HasPassword   bool
	Password      []byte
}

// Will is the will message of a CONNECT (§3.1.2.5, §3.1.3.2–4).
type Will struct {
	QoS     byte
	Retain  bool
	Props   Properties // MQTT 5.0 Will Properties
	Topic   string
	Payload []byte
}

// Type implements Packet.
func (*Connect) Type() PacketType { return CONNECT }

func protocolName(v Version) string {
	if v == V31 {
		return "MQIsdp"
	}
	return "MQTT"
}

// AppendTo implements Packet; it encodes at p.ProtocolLevel (V311 if zero)
// and ignores v. An empty ProtocolName is filled in from the level.
func (p *Connect) AppendTo(dst []byte, _ Version) ([]byte, error) {
	v := p.ProtocolLevel
	if v == 0 {
		v = V311
	}
	name := p.ProtocolName
	if name == "" {
		name = protocolName(v)
	}
	if len(p.ClientID) > maxString || len(p.Username) > maxString || len(p.Password) > maxString {
		return dst, ErrTooLarge
	}
	var flags byte
	if p.CleanStart {
		flags |= 0x02
	}
	n := 2 + len(name) + 1 + 1 + 2 + 2 + len(p.ClientID)
	var ps, wps int
	if v == V5 {
		if err := p.Props.validateForEncode(CONNECT); err != nil {
			return dst, err
		}
		ps = p.Props.size(CONNECT)
		n += varintLen(ps) + ps
	}
	if w := p.Will; w != nil {
		if w.QoS > 2 {
			return dst, fmt.Errorf("mqtt: will QoS %d", w.QoS)
		}
		if len(w.Topic) > maxString || len(w.Payload) > maxString {
			return dst, ErrTooLarge
		}
		flags |= 0x04 | w.QoS<<3
		if w.Retain {
			flags |= 0x20
		}
		if v == V5 {
			if err := w.Props.validateForEncode(willProps); err != nil {
				return dst, err
			}
			wps = w.Props.size(willProps)
			n += varintLen(wps) + wps
		}
		n += 2 + len(w.Topic) + 2 + len(w.Payload)
	}
	if p.HasUsername {
		flags |= 0x80
		n += 2 + len(p.Username)
	}
	if p.HasPassword {
		flags |= 0x40
		n += 2 + len(p.Password)
	}
	dst, err := appendHeader(dst, CONNECT, 0, n)
	if err != nil {
		return dst, err
	}
	dst = appendString(dst, name)
	dst = append(dst, byte(v), flags)
	dst = appendUint16(dst, p.KeepAlive)
	if v == V5 {
		dst = p.Props.appendTo(dst, CONNECT, ps)
	}
	dst = appendString(dst, p.ClientID)
	if w := p.Will; w != nil {
		if v == V5 {
			dst = w.Props.appendTo(dst, willProps, wps)
		}
		dst = appendString(dst, w.Topic)
		dst = appendBinary(dst, w.Payload)
	}
	if p.HasUsername {
		dst = appendString(dst, p.Username)
	}
	if p.HasPassword {
		dst = appendBinary(dst, p.Password)
	}
	return dst, nil
}

// Decode implements Packet. When the protocol name or level is not one
// Weir speaks it returns a *ReasonError with Code UnsupportedProtocolVersion
// after filling ProtocolName and ProtocolLevel, so that the caller can answer
// with the CONNACK code of the right version [MQTT-3.1.2-2].
func (p *Connect) Decode(pkt []byte, _ Version) error {
	*p = Connect{}
	d, _, err := body(pkt, CONNECT, 0)
	if err != nil {
		return err
	}
	p.ProtocolName = d.str("protocol name")
	p.ProtocolLevel = Version(d.u8("protocol level"))
	if d.err != nil {
		return d.err
	}
	v := p.ProtocolLevel
	switch {
	case p.ProtocolName == "MQTT" && (v == V311 || v == V5):
	case p.ProtocolName == "MQIsdp" && v == V31:
	case p.ProtocolName == "MQTT" || p.ProtocolName == "MQIsdp":
		return &ReasonError{Code: UnsupportedProtocolVersion,
			Msg: fmt.Sprintf("protocol %q level %d [MQTT-3.1.2-2]", p.ProtocolName, v)}
	default:
		// [MQTT-3.1.2-1]: the server MAY close; an unknown name is most
		// likely an unknown protocol revision, so say that.
		return &ReasonError{Code: UnsupportedProtocolVersion,
			Msg: fmt.Sprintf("unknown protocol name %q [MQTT-3.1.2-1]", p.ProtocolName)}
	}
	flags := d.u8("connect flags")
	p.KeepAlive = d.u16("keep alive")
	if d.err != nil {
		return d.err
	}
	if flags&0x01 != 0 {
		return malformed("CONNECT reserved flag is set [MQTT-3.1.2-3]")
	}
	p.CleanStart = flags&0x02 != 0
	willFlag := flags&0x04 != 0
	willQoS := flags >> 3 & 0x03
	willRetain := flags&0x20 != 0
	p.HasPassword = flags&0x40 != 0
	p.HasUsername = flags&0x80 != 0
	if !willFlag && (willQoS != 0 || willRetain) {
		return malformed("will QoS or will retain set without the will flag [MQTT-3.1.2-11] [MQTT-3.1.2-13]")
	}
	if willQoS == 3 {
		return malformed("will QoS 3 [MQTT-3.1.2-14]")
	}
	if v != V5 && p.HasPassword && !p.HasUsername {
		return malformed("password flag set without user name flag [MQTT-3.1.2-22]")
	}
	if v == V5 {
		p.Props.decode(&d, CONNECT)
		if d.err == nil && p.Props.Present.Has(PropAuthData) && !p.Props.Present.Has(PropAuthMethod) {
			return protocolErr("authentication data without an authentication method (§3.1.2.11.10)")
		}
	}
	p.ClientID = d.str("client identifier")
	if willFlag {
		w := &Will{QoS: willQoS, Retain: willRetain}
		if v == V5 {
			w.Props.decode(&d, willProps)
		}
		w.Topic = d.str("will topic")
		w.Payload = d.binary("will payload")
		if d.err == nil {
			if err := ValidateTopicName(w.Topic); err != nil {
				return err
			}
		}
		p.Will = w
	}
	if p.HasUsername {
		p.Username = d.str("user name")
	}
	if p.HasPassword {
		p.Password = d.binary("password")
	}
	d.end("CONNECT")
	return d.err
}

// Connack is the CONNACK packet (§3.2). In 3.1 and 3.1.1 ReasonCode holds
// the CONNACK return code (0x00–0x05, see V3ConnackCode).
type Connack struct {
	SessionPresent bool
	ReasonCode     ReasonCode
	Props          Properties
}

// Type implements Packet.
func (*Connack) Type() PacketType { return CONNACK }

// AppendTo implements Packet.
func (p *Connack) AppendTo(dst []byte, v Version) ([]byte, error) {
	var flags byte
	if p.SessionPresent {
		flags = 0x01
	}
	if v != V5 {
		return append(dst, byte(CONNACK)<<4, 2, flags, byte(p.ReasonCode)), nil
	}
	if err := p.Props.validateForEncode(CONNACK); err != nil {
		return dst, err
	}
	ps := p.Props.size(CONNACK)
	dst, err := appendHeader(dst, CONNACK, 0, 2+varintLen(ps)+ps)
	if err != nil {
		return dst, err
	}
	dst = append(dst, flags, byte(p.ReasonCode))
	return p.Props.appendTo(dst, CONNACK, ps), nil
}

// Decode implements Packet.
func (p *Connack) Decode(pkt []byte, v Version) error {
	*p = Connack{}
	d, _, err := body(pkt, CONNACK, v)
	if err != nil {
		return err
	}
	flags := d.u8("connect acknowledge flags")
	p.ReasonCode = ReasonCode(d.u8("connect reason code"))
	if d.err != nil {
		return d.err
	}
	if flags&0xFE != 0 {
		return malformed("CONNACK reserved flags set [MQTT-3.2.2-1]")
	}
	p.SessionPresent = flags&0x01 != 0
	if v == V5 {
		if !validConnackCode(p.ReasonCode) {
			return protocolErr(fmt.Sprintf("CONNACK reason code 0x%02X [MQTT-3.2.2-8]", byte(p.ReasonCode)))
		}
		p.Props.decode(&d, CONNACK)
	} else if p.ReasonCode > 5 {
		return protocolErr(fmt.Sprintf("CONNACK return code %d", p.ReasonCode))
	}
	if p.SessionPresent && p.ReasonCode != 0 {
		return protocolErr("session present with a non-zero return code [MQTT-3.2.2-4] [MQTT-3.2.2-6]")
	}
	d.end("CONNACK")
	return d.err
}

func validConnackCode(c ReasonCode) bool {
	switch c {
	case Success, UnspecifiedError, MalformedPacket, ProtocolError, ImplementationSpecificError,
		UnsupportedProtocolVersion, ClientIdentifierNotValid, BadUserNameOrPassword, NotAuthorized,
		ServerUnavailable, ServerBusy, Banned, BadAuthenticationMethod, TopicNameInvalid,
		PacketTooLarge, QuotaExceeded, PayloadFormatInvalid, RetainNotSupported, QoSNotSupported,
		UseAnotherServer, ServerMoved, ConnectionRateExceeded:
		return true
	}
	return false
}
