package mqtt

import (
	"bytes"
	"encoding/binary"
	"strings"
	"unicode/utf8"
)

// MaxVarint is the largest value a variable byte integer can hold (§1.5.5).
const MaxVarint = 268435455

// maxString is the longest UTF-8 string or binary field (two-byte length).
const maxString = 65535

// appendVarint appends v as a variable byte integer (§1.5.5). The caller
// guarantees 0 <= v <= MaxVarint.
func appendVarint(b []byte, v int) []byte {
	for {
		c := byte(v & 0x7F)
		v >>= 7
		if v > 0 {
			c |= 0x80
		}
		b = append(b, c)
		if v == 0 {
			return b
		}
	}
}

// varintLen is the number of bytes appendVarint writes for v.
func varintLen(v int) int {
	switch {
	case v < 1<<7:
		return 1
	case v < 1<<14:
		return 2
	case v < 1<<21:
		return 3
	default:
		return 4
	}
}

// decodeVarint reads a variable byte integer from the start of b and returns
// its value and length. n == 0 with a nil error means b ended before the
// integer did. More than four bytes, or a non-minimal encoding, is malformed
// [MQTT-1.5.5-1].
func decodeVarint(b []byte) (v, n int, err error) {
	shift := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		v |= int(c&0x7F) << shift
		if c&0x80 == 0 {
			if i > 0 && c == 0 {
				return 0, 0, malformed("variable byte integer not minimally encoded")
			}
			return v, i + 1, nil
		}
		if i == 3 {
			return 0, 0, malformed("variable byte integer longer than 4 bytes")
		}
		shift += 7
	}
	return 0, 0, nil
}

func appendUint16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func appendUint32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }

// appendString appends a two-byte length then s. Callers check len(s) <= 65535.
func appendString(b []byte, s string) []byte {
	b = appendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func appendBinary(b []byte, s []byte) []byte {
	b = appendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// validUTF8 applies the spec's rules for UTF-8 encoded strings: well-formed
// UTF-8 without surrogates [MQTT-1.5.4-1] and no U+0000 [MQTT-1.5.4-2].
// U+0001..U+001F, U+007F..U+009F and non-characters are "SHOULD NOT" and
// are accepted, as a receiver need not check them (§1.5.4).
func validUTF8(s []byte) bool {
	return bytes.IndexByte(s, 0) < 0 && utf8.Valid(s)
}

func validUTF8String(s string) bool {
	return strings.IndexByte(s, 0) < 0 && utf8.ValidString(s)
}

// decoder reads fields from one packet body. The first error sticks: later
// reads return zero values, so decoding code can read a whole packet and
// check d.err once at the end.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) remaining() int { return len(d.b) - d.off }

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) short(what string) {
	d.fail(malformed(what + " runs past the end of the packet"))
}

func (d *decoder) u8(what string) byte {
	if d.err != nil {
		return 0
	}
	if d.remaining() < 1 {
		d.short(what)
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *decoder) u16(what string) uint16 {
	if d.err != nil {
		return 0
	}
	if d.remaining() < 2 {
		d.short(what)
		return 0
	}
	v := binary.BigEndian.Uint16(d.b[d.off:])
	d.off += 2
	return v
}

func (d *decoder) u32(what string) uint32 {
	if d.err != nil {
		return 0
	}
	if d.remaining() < 4 {
		d.short(what)
		return 0
	}
	v := binary.BigEndian.Uint32(d.b[d.off:])
	d.off += 4
	return v
}

func (d *decoder) varint(what string) int {
	if d.err != nil {
		return 0
	}
	v, n, err := decodeVarint(d.b[d.off:])
	if err != nil {
		d.fail(err)
		return 0
	}
	if n == 0 {
		d.short(what)
		return 0
	}
	d.off += n
	return v
}

// binary reads two-byte-length-prefixed data and returns a sub-slice of
// the input (no copy). The result is non-nil even when empty, so that a
// present-but-empty field differs from an absent one.
func (d *decoder) binary(what string) []byte {
	n := int(d.u16(what))
	if d.err != nil {
		return nil
	}
	if d.remaining() < n {
		d.short(what)
		return nil
	}
	s := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return s
}

// utf8Bytes reads a UTF-8 string without copying it.
func (d *decoder) utf8Bytes(what string) []byte {
	s := d.binary(what)
	if d.err == nil && !validUTF8(s) {
		d.fail(malformed(what + " is not valid UTF-8 or contains U+0000"))
		return nil
	}
	return s
}

// str reads a UTF-8 string into a Go string (one copy).
func (d *decoder) str(what string) string {
	return string(d.utf8Bytes(what))
}

// rest returns the unread part of the packet (no copy).
func (d *decoder) rest() []byte {
	if d.err != nil {
		return nil
	}
	s := d.b[d.off:len(d.b):len(d.b)]
	d.off = len(d.b)
	return s
}

// end fails if bytes remain unread: trailing bytes make a packet malformed.
func (d *decoder) end(what string) {
	if d.err == nil && d.off != len(d.b) {
		d.fail(malformed(what + " has unexpected trailing bytes"))
	}
}
