package mqtt

import (
	"errors"
	"fmt"
)

// Version is the protocol level byte of CONNECT (§3.1.2.2).
type Version byte

// Protocol levels.
const (
	V31  Version = 3 // MQTT 3.1, protocol name "MQIsdp"
	V311 Version = 4 // MQTT 3.1.1, protocol name "MQTT"
	V5   Version = 5 // MQTT 5.0, protocol name "MQTT"
)

func (v Version) String() string {
	switch v {
	case V31:
		return "3.1"
	case V311:
		return "3.1.1"
	case V5:
		return "5.0"
	}
	return fmt.Sprintf("level %d", byte(v))
}

// PacketType is the MQTT control packet type (§2.1.2).
type PacketType byte

// Control packet types.
const (
	CONNECT     PacketType = 1
	CONNACK     PacketType = 2
	PUBLISH     PacketType = 3
	PUBACK      PacketType = 4
	PUBREC      PacketType = 5
	PUBREL      PacketType = 6
	PUBCOMP     PacketType = 7
	SUBSCRIBE   PacketType = 8
	SUBACK      PacketType = 9
	UNSUBSCRIBE PacketType = 10
	UNSUBACK    PacketType = 11
	PINGREQ     PacketType = 12
	PINGRESP    PacketType = 13
	DISCONNECT  PacketType = 14
	AUTH        PacketType = 15
)

var packetNames = [16]string{"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC",
	"PUBREL", "PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ",
	"PINGRESP", "DISCONNECT", "AUTH"}

func (t PacketType) String() string {
	if int(t) < len(packetNames) {
		return packetNames[t]
	}
	return fmt.Sprintf("packet type %d", byte(t))
}

// Packet is implemented by the struct of each control packet type.
type Packet interface {
	// Type returns the control packet type.
	Type() PacketType
	// AppendTo appends the encoded packet for protocol level v to dst and
	// returns the extended slice. CONNECT encodes at its own ProtocolLevel.
	AppendTo(dst []byte, v Version) ([]byte, error)
	// Decode parses pkt, which must hold exactly one whole packet of this
	// type (fixed header included), as sent at protocol level v. It
	// overwrites every field. Byte-slice fields alias pkt.
	Decode(pkt []byte, v Version) error
}

// Quality of service levels.
const (
	QoS0 byte = 0
	QoS1 byte = 1
	QoS2 byte = 2
)

// ErrTooLarge is returned by AppendTo when a packet's remaining length would
// exceed MaxVarint or a field exceeds its length limit.
var ErrTooLarge = errors.New("mqtt: packet or field too large to encode")

// PeekType returns the packet type from a packet's first byte, 0 for an
// empty slice.
func PeekType(pkt []byte) PacketType {
	if len(pkt) == 0 {
		return 0
	}
	return PacketType(pkt[0] >> 4)
}

// New returns a new zero packet struct for type t, or nil if t is not a
// control packet type.
func New(t PacketType) Packet {
	switch t {
	case CONNECT:
		return new(Connect)
	case CONNACK:
		return new(Connack)
	case PUBLISH:
		return new(Publish)
	case PUBACK:
		return new(Puback)
	case PUBREC:
		return new(Pubrec)
	case PUBREL:
		return new(Pubrel)
	case PUBCOMP:
		return new(Pubcomp)
	case SUBSCRIBE:
		return new(Subscribe)
	case SUBACK:
		return new(Suback)
	case UNSUBSCRIBE:
		return new(Unsubscribe)
	case UNSUBACK:
		return new(Unsuback)
	case PINGREQ:
		return new(Pingreq)
	case PINGRESP:
		return new(Pingresp)
	case DISCONNECT:
		return new(Disconnect)
	case AUTH:
		return new(Auth)
	}
	return nil
}

// Decode parses one whole packet sent at protocol level v into a new struct
// of the right type. It allocates that struct; hot paths decode into a
// reused struct with the type's own Decode method instead.
func Decode(pkt []byte, v Version) (Packet, error) {
	p := New(PeekType(pkt))
	if p == nil {
		if len(pkt) == 0 {
			return nil, malformed("empty packet")
		}
		return nil, malformed("reserved packet type 0 (§2.1.2)")
	}
	if err := p.Decode(pkt, v); err != nil {
		return nil, err
	}
	return p, nil
}

// requiredFlags are the fixed-header flag bits of each packet type other
// than PUBLISH (§2.1.3 Table 2-2); any other value is malformed
// [MQTT-2.1.3-1].
var requiredFlags = [16]byte{PUBREL: 0x02, SUBSCRIBE: 0x02, UNSUBSCRIBE: 0x02}

// body checks pkt's fixed header for type t at level v and returns a
// decoder positioned at the variable header, plus the flags nibble.
func body(pkt []byte, t PacketType, v Version) (decoder, byte, error) {
	if len(pkt) < 2 {
		return decoder{}, 0, malformed("packet shorter than a fixed header")
	}
	if got := PacketType(pkt[0] >> 4); got != t {
		return decoder{}, 0, fmt.Errorf("mqtt: decoding %v as %v", got, t)
	}
	flags := pkt[0] & 0x0F
	if t != PUBLISH && flags != requiredFlags[t] {
		// MQTT 3.1 set DUP on re-sent PUBREL, SUBSCRIBE and UNSUBSCRIBE.
		if !(v == V31 && requiredFlags[t] != 0 && flags == requiredFlags[t]|0x08) {
			return decoder{}, 0, malformed(fmt.Sprintf("%v with fixed header flags 0x%X [MQTT-2.1.3-1]", t, flags))
		}
	}
	if t == AUTH && v != V5 {
		return decoder{}, 0, malformed("AUTH before MQTT 5.0 is the reserved packet type 15 (3.1.1 §2.2.1)")
	}
	n, hl, err := decodeVarint(pkt[1:])
	if err != nil {
		return decoder{}, 0, err
	}
	if hl == 0 {
		return decoder{}, 0, malformed("remaining length runs past the end of the packet")
	}
	if 1+hl+n != len(pkt) {
		return decoder{}, 0, malformed(fmt.Sprintf("remaining length %d does not match the %d bytes given", n, len(pkt)-1-hl))
	}
	return decoder{b: pkt, off: 1 + hl}, flags, nil
}

// appendHeader appends a fixed header.
func appendHeader(b []byte, t PacketType, flags byte, remaining int) ([]byte, error) {
	if remaining > MaxVarint {
		return b, ErrTooLarge
	}
	b = append(b, byte(t)<<4|flags)
	return appendVarint(b, remaining), nil
}

// PacketSize returns the size on the wire of a packet whose remaining length
// is remaining: the fixed header plus remaining.
func PacketSize(remaining int) int { return 1 + varintLen(remaining) + remaining }
