package mqtt

import (
	"fmt"
	"io"
	"sync"
)

// DefaultMaxPacketSize is the largest packet MQTT can express: a one-byte
// type, a four-byte remaining length and MaxVarint bytes.
const DefaultMaxPacketSize = 1 + 4 + MaxVarint

// Reader frames MQTT packets from a byte stream. It reads ahead into one
// buffer that it owns, starts small, and grows only as far as the largest
// packet seen, never past the configured maximum: the size of a packet is
// checked from its fixed header before any memory is allocated for it. The
// buffer then grows with the bytes that actually arrive (at most doubling
// at a time), so that a peer which declares a large packet and sends little
// of it does not make the Reader allocate the declared size. A buffer grown
// past 64 KiB is given back when smaller packets follow.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	src     io.Reader
	buf     []byte
	r, w    int // unread bytes are buf[r:w]
	max     int
	initial int
	err     error // error the source returned along with data, not yet reported

	// For a LazySource: the methods passed to ReadLazy, bound once.
	lazyGet  func() []byte
	lazyDrop func()
}

// A LazySource is a source that can wait for input without holding a
// buffer: ReadLazy waits until input is available, calls get for a buffer
// and reads into it, and calls drop when it has to wait after all (the
// buffer goes back until get is called again). It returns what Read would.
//
// A Reader whose buffer is empty and of the pooled size reads from a
// LazySource this way, and keeps its buffer in a pool shared by all
// Readers while it waits: a connection waiting for its next packet then
// costs no buffer. Since an idle Reader holds none, the buffer of a
// LazySource's Reader is larger than others' (pooledSize, not
// initialSize), so that a busy connection reads many packets per read.
type LazySource interface {
	ReadLazy(get func() []byte, drop func()) (int, error)
}

// idleBufs holds the buffers of Readers waiting on a LazySource.
var idleBufs = sync.Pool{New: func() any { return new([pooledSize]byte) }}

// initialSize is the size of a Reader's first buffer, pooledSize that of a
// LazySource's Reader.
const (
	initialSize = 512
	pooledSize  = 4096
)

// shrinkAbove is the buffer size above which a Reader gives its buffer back
// once the packet that needed it has been read.
const shrinkAbove = 64 << 10

// maxEmptyReads is how many (0, nil) reads in a row fill accepts before it
// reports io.ErrNoProgress, as bufio does.
const maxEmptyReads = 100

// NewReader returns a Reader that rejects packets larger than maxPacketSize
// bytes in total (fixed header included, as MQTT 5.0 counts Maximum Packet
// Size). maxPacketSize <= 0 means DefaultMaxPacketSize.
func NewReader(src io.Reader, maxPacketSize int) *Reader {
	rd := &Reader{src: src, initial: initialSize}
	if _, ok := src.(LazySource); ok {
		rd.initial = pooledSize
	}
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

// Ready reports whether the next ReadPacket returns without reading from
// the source: a whole packet (or a header it will reject) is buffered, or
// an error is pending. A connection handler uses it to write its replies
// before it would wait for more input.
func (rd *Reader) Ready() bool {
	if rd.err != nil {
		return true
	}
	avail := rd.w - rd.r
	if avail < 2 {
		return false
	}
	n, hl, err := decodeVarint(rd.buf[rd.r+1 : rd.w])
	return err != nil || hl > 0 && avail >= 1+hl+n
}

// ReadPacket returns the next whole packet, fixed header included. The
// slice is valid until the next call to ReadPacket; callers copy what they
// keep. Errors: io.EOF at a clean packet boundary, io.ErrUnexpectedEOF
// inside a packet, a *ReasonError with Code PacketTooLarge for a packet
// above the limit (read no further: the stream cannot be resynchronised),
// MalformedPacket for a bad remaining length, or the source's error.
func (rd *Reader) ReadPacket() ([]byte, error) {
	// The fixed header is at most 5 bytes: type and flags, then a
	// remaining length of 1 to 4 bytes. With a limit below 5 bytes, a
	// header still incomplete after max bytes is of a packet above it.
	hdr := min(5, rd.max)
	for {
		avail := rd.w - rd.r
		if avail >= 2 {
			n, hl, err := decodeVarint(rd.buf[rd.r+1 : rd.w])
			if err != nil {
				return nil, err
			}
			if hl > 0 {
				return rd.readBody(1 + hl + n)
			}
		}
		if avail >= rd.max {
			return nil, rd.tooLarge(fmt.Sprintf("packet exceeds the maximum of %d bytes", rd.max))
		}
		if err := rd.fill(hdr); err != nil {
			if err == io.EOF && rd.w > rd.r {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

func (rd *Reader) tooLarge(msg string) error {
	return &ReasonError{Code: PacketTooLarge, Msg: msg}
}

func (rd *Reader) readBody(total int) ([]byte, error) {
	if total > rd.max {
		return nil, rd.tooLarge(fmt.Sprintf("packet of %d bytes exceeds the maximum of %d", total, rd.max))
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

// fill reads at least one more byte towards a packet of need bytes, of
// which rd.w-rd.r < need are buffered; need is within the limit. It makes
// room first: it moves unread bytes to the front when the packet would not
// fit after them, grows the buffer when that is not enough (to need, but to no more than
// twice the bytes of the packet already received), and gives back a large
// buffer when the packet ahead is small.
func (rd *Reader) fill(need int) error {
	if rd.err != nil {
		err := rd.err
		rd.err = nil
		return err
	}
	if rd.r == rd.w {
		rd.r, rd.w = 0, 0
	}
	unread := rd.w - rd.r
	// The size to allocate if the buffer must change; always > unread.
	size := min(rd.max, max(rd.initial, min(need, 2*unread)))
	switch {
	case rd.buf == nil,
		len(rd.buf) > shrinkAbove && need <= shrinkAbove && size < len(rd.buf):
		rd.realloc(size)
	case rd.w < len(rd.buf) && (rd.r == 0 || len(rd.buf)-rd.r >= need):
		// Room to read into, and the packet fits after r or is at the
		// front already: nothing to move.
	case rd.r > 0:
		rd.w = copy(rd.buf, rd.buf[rd.r:rd.w])
		rd.r = 0
	default:
		// Full of this packet's bytes, so unread == len(rd.buf) < need.
		rd.realloc(size)
	}
	if ls, ok := rd.src.(LazySource); ok && rd.r == rd.w && len(rd.buf) == pooledSize {
		return rd.fillLazy(ls)
	}
	for range maxEmptyReads {
		n, err := rd.src.Read(rd.buf[rd.w:])
		if n < 0 || n > len(rd.buf)-rd.w {
			return fmt.Errorf("mqtt: source returned an invalid count %d from Read", n)
		}
		rd.w += n
		if n > 0 {
			rd.err = err // reported once the bytes before it are used
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// realloc moves the unread bytes to the front of a new buffer of size bytes.
func (rd *Reader) realloc(size int) {
	var nb []byte
	if size == pooledSize {
		nb = idleBufs.Get().(*[pooledSize]byte)[:] // perhaps one a LazySource gave back
	} else {
		nb = make([]byte, size)
	}
	rd.w = copy(nb, rd.buf[rd.r:rd.w])
	rd.r = 0
	rd.buf = nb
}

// fillLazy reads into an empty buffer of the pooled size from a
// LazySource, giving the buffer to idleBufs while the source waits.
func (rd *Reader) fillLazy(ls LazySource) error {
	if rd.lazyGet == nil {
		rd.lazyGet, rd.lazyDrop = rd.getIdleBuf, rd.dropIdleBuf
	}
	for range maxEmptyReads {
		n, err := ls.ReadLazy(rd.lazyGet, rd.lazyDrop)
		if n < 0 || n > len(rd.buf) {
			return fmt.Errorf("mqtt: source returned an invalid count %d from ReadLazy", n)
		}
		if n > 0 {
			rd.r, rd.w = 0, n
			rd.err = err
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// Release gives the buffer back to the pool Readers of a LazySource share
// while they wait, if nothing is buffered and it is of the pooled size:
// for a caller that stops reading for a while (the next read takes a
// buffer again). Without it, a Reader keeps its buffer until its next
// read finds no input.
func (rd *Reader) Release() {
	if rd.r == rd.w && rd.err == nil && len(rd.buf) == pooledSize {
		rd.dropIdleBuf()
		rd.r, rd.w = 0, 0
	}
}

func (rd *Reader) getIdleBuf() []byte {
	if rd.buf == nil {
		rd.buf = idleBufs.Get().(*[pooledSize]byte)[:]
	}
	return rd.buf
}

func (rd *Reader) dropIdleBuf() {
	if len(rd.buf) == pooledSize {
		idleBufs.Put((*[pooledSize]byte)(rd.buf))
	}
	rd.buf = nil
}

// SkipPacket reads past the next packet — one that ReadPacket has just
// reported too large — without buffering all of it: it returns a copy of
// the packet's first bytes, as many as the limit allows, and the packet's
// total size. A receiver that can drop what it cannot take (a bridge
// relaying from a broker that cannot be told its limit) answers from the
// head (PublishHeader) and reads on.
func (rd *Reader) SkipPacket() (head []byte, total int, err error) {
	for {
		avail := rd.w - rd.r
		if avail >= 2 {
			n, hl, err := decodeVarint(rd.buf[rd.r+1 : rd.w])
			if err != nil {
				return nil, 0, err
			}
			if hl > 0 {
				total = 1 + hl + n
				break
			}
		}
		if avail >= rd.max {
			return nil, 0, rd.tooLarge("fixed header exceeds the maximum packet size")
		}
		if err := rd.fill(min(5, rd.max)); err != nil {
			return nil, 0, unexpectedEOF(err)
		}
	}
	keep := min(total, rd.max)
	for rd.w-rd.r < keep {
		if err := rd.fill(keep); err != nil {
			return nil, 0, unexpectedEOF(err)
		}
	}
	head = append([]byte(nil), rd.buf[rd.r:rd.r+keep]...)
	rd.r += keep
	for left := total - keep; left > 0; {
		if rd.r == rd.w {
			if err := rd.fill(min(left, rd.max)); err != nil {
				return nil, 0, unexpectedEOF(err)
			}
		}
		k := min(left, rd.w-rd.r)
		rd.r += k
		left -= k
	}
	return head, total, nil
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// PublishHeader reads the QoS, topic name and packet identifier from the
// start of a PUBLISH packet (fixed header included), which may be cut off
// after them (SkipPacket's head). The topic aliases pkt.
func PublishHeader(pkt []byte) (qos byte, topic []byte, pid uint16, err error) {
	if len(pkt) < 2 || PacketType(pkt[0]>>4) != PUBLISH {
		return 0, nil, 0, malformed("not a PUBLISH packet")
	}
	qos = pkt[0] >> 1 & 3
	if qos == 3 {
		return 0, nil, 0, malformed("PUBLISH with QoS 3")
	}
	_, hl, err := decodeVarint(pkt[1:])
	if err != nil || hl == 0 {
		return 0, nil, 0, malformed("PUBLISH remaining length cut off")
	}
	b := pkt[1+hl:]
	if len(b) < 2 {
		return 0, nil, 0, malformed("PUBLISH topic cut off")
	}
	n := int(b[0])<<8 | int(b[1])
	if len(b) < 2+n {
		return 0, nil, 0, malformed("PUBLISH topic cut off")
	}
	topic, b = b[2:2+n], b[2+n:]
	if qos > 0 {
		if len(b) < 2 {
			return 0, nil, 0, malformed("PUBLISH packet identifier cut off")
		}
		pid = uint16(b[0])<<8 | uint16(b[1])
	}
	return qos, topic, pid, nil
}
