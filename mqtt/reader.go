package mqtt

import (
	"fmt"
	"io"
)

// DefaultMaxPacketSize is the largest packet MQTT can express: a one-byte
// type, a four-byte remaining length and MaxVarint bytes.
const DefaultMaxPacketSize = 1 + 4 + MaxVarint

// Reader frames MQTT packets from a byte stream. It reads ahead into one
// buffer that it owns, starts small, and grows only as far as the largest
// packet seen, never past the configured maximum: the size of a packet is
// checked from its fixed header before any memory is allocated for it.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	src     io.Reader
	buf     []byte
	r, w    int // unread bytes are buf[r:w]
	max     int
	initial int
}

// NewReader returns a Reader that rejects packets larger than maxPacketSize
// bytes in total (fixed header included, as MQTT 5.0 counts Maximum Packet
// Size). maxPacketSize <= 0 means DefaultMaxPacketSize.
func NewReader(src io.Reader, maxPacketSize int) *Reader {
	rd := &Reader{src: src, initial: 512}
	rd.SetMaxPacketSize(maxPacketSize)
	return rd
}

// SetMaxPacketSize changes the limit for the packets read from now on.
func (rd *Reader) SetMaxPacketSize(n int) {
	if n <= 0 || n > DefaultMaxPacketSize {
		n = DefaultMaxPacketSize
	}
	rd.max = n
}

// Buffered returns the number of bytes read ahead and not yet returned.
func (rd *Reader) Buffered() int { return rd.w - rd.r }

// ReadPacket returns the next whole packet, fixed header included. The
// slice is valid until the next call to ReadPacket; callers copy what they
// keep. Errors: io.EOF at a clean packet boundary, io.ErrUnexpectedEOF
// inside a packet, a *ReasonError with Code PacketTooLarge for a packet
// above the limit (read no further: the stream cannot be resynchronised),
// MalformedPacket for a bad remaining length, or the source's error.
func (rd *Reader) ReadPacket() ([]byte, error) {
	// The fixed header is at most 5 bytes: type and flags, then a
	// remaining length of 1 to 4 bytes.
	for {
		if rd.w-rd.r >= 2 {
			n, hl, err := decodeVarint(rd.buf[rd.r+1 : rd.w])
			if err != nil {
				return nil, err
			}
			if hl > 0 {
				return rd.readBody(1 + hl + n)
			}
		}
		if err := rd.fill(5); err != nil {
			if err == io.EOF && rd.w > rd.r {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

func (rd *Reader) readBody(total int) ([]byte, error) {
	if total > rd.max {
		return nil, &ReasonError{Code: PacketTooLarge,
			Msg: fmt.Sprintf("packet of %d bytes exceeds the maximum of %d", total, rd.max)}
	}
	for rd.w-rd.r < total {
		if err := rd.fill(total); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	pkt := rd.buf[rd.r : rd.r+total : rd.r+total]
	rd.r += total
	return pkt, nil
}

// fill reads at least one more byte, making room for a packet of need
// bytes first: it moves unread bytes to the front and grows the buffer
// (to need, already checked against the limit) only when it must.
func (rd *Reader) fill(need int) error {
	if rd.r == rd.w {
		rd.r, rd.w = 0, 0
		// Give back a buffer grown by one large packet.
		if cap(rd.buf) > 64<<10 {
			rd.buf = nil
		}
	}
	if rd.buf == nil {
		rd.buf = make([]byte, max(rd.initial, min(need, rd.max)))
	}
	if len(rd.buf)-rd.r < need {
		if need > len(rd.buf) {
			nb := make([]byte, need)
			rd.w = copy(nb, rd.buf[rd.r:rd.w])
			rd.buf = nb
		} else {
			rd.w = copy(rd.buf, rd.buf[rd.r:rd.w])
		}
		rd.r = 0
	}
	n, err := rd.src.Read(rd.buf[rd.w:])
	rd.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}
