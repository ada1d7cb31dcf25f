package mqtt

import "fmt"

// Pingreq is the PINGREQ packet (§3.12).
type Pingreq struct{}

// Pingresp is the PINGRESP packet (§3.13).
type Pingresp struct{}

// Type implements Packet.
func (*Pingreq) Type() PacketType { return PINGREQ }

// Type implements Packet.
func (*Pingresp) Type() PacketType { return PINGRESP }

// AppendTo implements Packet.
func (*Pingreq) AppendTo(dst []byte, _ Version) ([]byte, error) {
	return append(dst, byte(PINGREQ)<<4, 0), nil
}

// AppendTo implements Packet.
func (*Pingresp) AppendTo(dst []byte, _ Version) ([]byte, error) {
	return append(dst, byte(PINGRESP)<<4, 0), nil
}

// Decode implements Packet.
func (*Pingreq) Decode(pkt []byte, v Version) error { return decodeEmpty(pkt, v, PINGREQ) }

// Decode implements Packet.
func (*Pingresp) Decode(pkt []byte, v Version) error { return decodeEmpty(pkt, v, PINGRESP) }

func decodeEmpty(pkt []byte, v Version, t PacketType) error {
	d, _, err := body(pkt, t, v)
	if err != nil {
		return err
	}
	d.end(t.String())
	return d.err
}

// Disconnect is the DISCONNECT packet (§3.14). ReasonCode and Props are
// MQTT 5.0; in 3.1.1 the packet has no body.
type Disconnect struct {
	ReasonCode ReasonCode
	Props      Properties
}

// Type implements Packet.
func (*Disconnect) Type() PacketType { return DISCONNECT }

// AppendTo implements Packet.
func (p *Disconnect) AppendTo(dst []byte, v Version) ([]byte, error) {
	if v != V5 {
		return append(dst, byte(DISCONNECT)<<4, 0), nil
	}
	return appendReasoned(dst, DISCONNECT, p.ReasonCode, &p.Props)
}

// Decode implements Packet.
func (p *Disconnect) Decode(pkt []byte, v Version) error {
	*p = Disconnect{}
	if v != V5 {
		return decodeEmpty(pkt, v, DISCONNECT)
	}
	return decodeReasoned(pkt, v, DISCONNECT, &p.ReasonCode, &p.Props)
}

// Auth is the MQTT 5.0 AUTH packet (§3.15).
type Auth struct {
	ReasonCode ReasonCode // Success, ContinueAuthentication or ReAuthenticate
	Props      Properties // Authentication Method and Data, Reason String
}

// Type implements Packet.
func (*Auth) Type() PacketType { return AUTH }

// AppendTo implements Packet. AUTH exists only in MQTT 5.0.
func (p *Auth) AppendTo(dst []byte, v Version) ([]byte, error) {
	if v != V5 {
		return dst, fmt.Errorf("mqtt: AUTH at protocol %v", v)
	}
	return appendReasoned(dst, AUTH, p.ReasonCode, &p.Props)
}

// Decode implements Packet.
func (p *Auth) Decode(pkt []byte, v Version) error {
	*p = Auth{}
	return decodeReasoned(pkt, v, AUTH, &p.ReasonCode, &p.Props)
}

// appendReasoned encodes DISCONNECT and AUTH in MQTT 5.0: a reason code and
// properties, both left out when Success and empty (§3.14.2.1, §3.15.2.1).
func appendReasoned(dst []byte, t PacketType, rc ReasonCode, props *Properties) ([]byte, error) {
	if rc == Success && props.empty() {
		return append(dst, byte(t)<<4, 0), nil
	}
	if err := props.validateForEncode(t); err != nil {
		return dst, err
	}
	ps := props.size(t)
	n := 1
	if ps > 0 {
		n += varintLen(ps) + ps
	}
	dst, err := appendHeader(dst, t, 0, n)
	if err != nil {
		return dst, err
	}
	dst = append(dst, byte(rc))
	if ps > 0 {
		dst = props.appendTo(dst, t, ps)
	}
	return dst, nil
}

func decodeReasoned(pkt []byte, v Version, t PacketType, rc *ReasonCode, props *Properties) error {
	d, _, err := body(pkt, t, v)
	if err != nil {
		return err
	}
	if d.remaining() > 0 {
		*rc = ReasonCode(d.u8("reason code"))
		if !validReasonedCode(t, *rc) {
			return protocolErr(fmt.Sprintf("%v with reason code 0x%02X", t, byte(*rc)))
		}
		if d.remaining() > 0 {
			props.decode(&d, t)
		}
		if t == AUTH && d.err == nil && !props.Present.Has(PropAuthMethod) {
			return protocolErr("AUTH without an authentication method (§3.15.2.2.2)")
		}
	}
	d.end(t.String())
	return d.err
}

func validReasonedCode(t PacketType, c ReasonCode) bool {
	if t == AUTH {
		return c == Success || c == ContinueAuthentication || c == ReAuthenticate
	}
	// DISCONNECT reason codes, §3.14.2.1 Table 3-10.
	switch c {
	case NormalDisconnection, DisconnectWithWillMessage, UnspecifiedError, MalformedPacket,
		ProtocolError, ImplementationSpecificError, NotAuthorized, ServerBusy, ServerShuttingDown,
		KeepAliveTimeout, SessionTakenOver, TopicFilterInvalid, TopicNameInvalid,
		ReceiveMaximumExceeded, TopicAliasInvalid, PacketTooLarge, MessageRateTooHigh,
		QuotaExceeded, AdministrativeAction, PayloadFormatInvalid, RetainNotSupported,
		QoSNotSupported, UseAnotherServer, ServerMoved, SharedSubscriptionsNotSupported,
		ConnectionRateExceeded, MaximumConnectTime, SubscriptionIdentifiersNotSupported,
		WildcardSubscriptionsNotSupported:
		return true
	}
	return false
}
