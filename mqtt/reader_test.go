package mqtt

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"
)

// readerTestStream returns a few hundred valid packets of every type and
// version encoded back to back, and the packets one by one.
func readerTestStream(t testing.TB) (stream []byte, pkts [][]byte) {
	t.Helper()
	for _, v := range []Version{V31, V311, V5} {
		g := newRTGen(int64(v)+100, v)
		for i := 0; i < 100; i++ {
			p := g.packet(g.types()[i%len(g.types())])
			b, err := p.AppendTo(nil, v)
			if err != nil {
				t.Fatalf("%T: %v", p, err)
			}
			stream = append(stream, b...)
			pkts = append(pkts, b)
		}
	}
	return stream, pkts
}

// readerExpect reads len(want) packets from rd, then wants wantErr.
func readerExpect(t *testing.T, rd *Reader, want [][]byte, wantErr error) {
	t.Helper()
	for i, w := range want {
		got, err := rd.ReadPacket()
		if err != nil {
			t.Fatalf("packet %d of %d: %v", i, len(want), err)
		}
		if !bytes.Equal(got, w) {
			t.Fatalf("packet %d: got %x\nwant %x", i, got, w)
		}
	}
	if _, err := rd.ReadPacket(); !errors.Is(err, wantErr) {
		t.Fatalf("after %d packets: err %v, want %v", len(want), err, wantErr)
	}
}

func TestReaderOneByteReads(t *testing.T) {
	stream, pkts := readerTestStream(t)
	rd := NewReader(iotest.OneByteReader(bytes.NewReader(stream)), 0)
	readerExpect(t, rd, pkts, io.EOF)
}

// TestReaderHalfReads uses iotest.HalfReader and DataErrReader, which
// returns io.EOF together with the last bytes.
func TestReaderHalfReads(t *testing.T) {
	stream, pkts := readerTestStream(t)
	rd := NewReader(iotest.DataErrReader(iotest.HalfReader(bytes.NewReader(stream))), 0)
	readerExpect(t, rd, pkts, io.EOF)
}

// readerCountingReader counts Read calls and the bytes they returned.
type readerCountingReader struct {
	r            io.Reader
	calls, bytes int
}

func (c *readerCountingReader) Read(p []byte) (int, error) {
	c.calls++
	n, err := c.r.Read(p)
	c.bytes += n
	return n, err
}

func TestReaderManyPacketsInOneRead(t *testing.T) {
	var stream []byte
	var pkts [][]byte
	for i := 1; i <= 20; i++ {
		p := &Puback{PacketID: uint16(i)}
		b, _ := p.AppendTo(nil, V311)
		stream = append(stream, b...)
		pkts = append(pkts, b)
		b, _ = (&Pingreq{}).AppendTo(nil, V311)
		stream = append(stream, b...)
		pkts = append(pkts, b)
	}
	src := &readerCountingReader{r: bytes.NewReader(stream)}
	rd := NewReader(src, 0)
	for i, w := range pkts {
		got, err := rd.ReadPacket()
		if err != nil || !bytes.Equal(got, w) {
			t.Fatalf("packet %d: %x, %v; want %x", i, got, err, w)
		}
		if src.calls != 1 {
			t.Fatalf("packet %d: %d reads from the source, want 1 (all %d bytes fit the first)", i, src.calls, len(stream))
		}
		if want := len(stream) - src.bytes + rd.Buffered(); i == len(pkts)-1 && want != 0 {
			t.Fatalf("Buffered: %d bytes unaccounted for", want)
		}
	}
	if _, err := rd.ReadPacket(); err != io.EOF {
		t.Fatalf("at the end: %v, want io.EOF", err)
	}
}

func readerWantCode(t *testing.T, err error, code ReasonCode) {
	t.Helper()
	var re *ReasonError
	if !errors.As(err, &re) || re.Code != code {
		t.Fatalf("err %v, want a *ReasonError with code %v", err, code)
	}
}

// TestReaderMalformedRemainingLength: a remaining length longer than four
// bytes, or not minimally encoded, is malformed [MQTT-1.5.5-1].
func TestReaderMalformedRemainingLength(t *testing.T) {
	for name, in := range map[string][]byte{
		"five bytes":               {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0, 0, 0},
		"five bytes, all 0x80":     {0x30, 0x80, 0x80, 0x80, 0x80, 0x01},
		"non-minimal two bytes":    {0x30, 0x80, 0x00},
		"non-minimal four bytes":   {0x30, 0x81, 0x80, 0x80, 0x00},
		"after a good packet":      {0xC0, 0x00, 0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01},
		"five bytes, one per read": {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F},
	} {
		t.Run(name, func(t *testing.T) {
			var src io.Reader = bytes.NewReader(in)
			if name == "five bytes, one per read" {
				src = iotest.OneByteReader(src)
			}
			rd := NewReader(src, 0)
			if in[0] == 0xC0 {
				if p, err := rd.ReadPacket(); err != nil || len(p) != 2 {
					t.Fatalf("PINGREQ: %x, %v", p, err)
				}
			}
			_, err := rd.ReadPacket()
			readerWantCode(t, err, MalformedPacket)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("errors.Is(%v, ErrMalformed) is false", err)
			}
		})
	}
}

// readerPublishOfSize returns a QoS 0 PUBLISH of exactly size bytes.
func readerPublishOfSize(t testing.TB, size int) []byte {
	t.Helper()
	for hl := 1; hl <= 4; hl++ {
		remaining := size - 1 - hl
		if remaining < 3 || varintLen(remaining) != hl {
			continue
		}
		p := &Publish{Topic: []byte("t"), Payload: make([]byte, remaining-3)}
		b, err := p.AppendTo(nil, V311)
		if err != nil || len(b) != size {
			t.Fatalf("PUBLISH of %d bytes: got %d, %v", size, len(b), err)
		}
		return b
	}
	t.Fatalf("no PUBLISH is exactly %d bytes long", size)
	return nil
}

func TestReaderMaxPacketSize(t *testing.T) {
	for _, max := range []int{2, 4, 5, 6, 100, 129, 131, 512, 513, 16384, 16389, 70000} {
		// At the limit: read. One byte over: Packet Too Large.
		var at []byte
		if max == 2 {
			at = []byte{0xC0, 0x00}
		} else if max >= 5 {
			at = readerPublishOfSize(t, max)
		} else {
			at = append([]byte{0x30, byte(max - 2)}, make([]byte, max-2)...)
		}
		rd := NewReader(iotest.HalfReader(bytes.NewReader(at)), max)
		readerExpect(t, rd, [][]byte{at}, io.EOF)
		if c := cap(rd.buf); c > max {
			t.Errorf("max %d: buffer of %d bytes", max, c)
		}

		over := append([]byte{0x30}, appendVarint(nil, max-1)...)
		over = append(over, make([]byte, max+1-len(over))...)
		if max < 5 {
			over = append([]byte{0x30, byte(max - 1)}, make([]byte, max-1)...)
		}
		if len(over) != max+1 {
			t.Fatalf("test bug: over is %d bytes", len(over))
		}
		rd = NewReader(bytes.NewReader(over), max)
		_, err := rd.ReadPacket()
		readerWantCode(t, err, PacketTooLarge)
		if !errors.Is(err, ErrPacketTooLarge) {
			t.Fatalf("max %d: errors.Is(%v, ErrPacketTooLarge) is false", max, err)
		}
		if c := cap(rd.buf); c > max {
			t.Errorf("max %d: buffer of %d bytes", max, c)
		}
	}
}

// TestReaderTooLargeDoesNotAllocate declares the largest remaining length
// MQTT can express from a source that has only a few bytes: the Reader must
// answer Packet Too Large from the fixed header alone, without reading on
// and without allocating for the packet.
func TestReaderTooLargeDoesNotAllocate(t *testing.T) {
	hdr := []byte{0x30, 0xFF, 0xFF, 0xFF, 0x7F} // remaining length 268,435,455
	in := append(hdr, 0x00, 0x03, 'a', '/', 'b')
	const max = 1 << 20

	src := &readerCountingReader{r: iotest.OneByteReader(bytes.NewReader(in))}
	rd := NewReader(src, max)
	_, err := rd.ReadPacket()
	readerWantCode(t, err, PacketTooLarge)
	if src.bytes != len(hdr) {
		t.Errorf("read %d bytes before reporting Packet Too Large, want the %d of the fixed header", src.bytes, len(hdr))
	}
	if c := cap(rd.buf); c > 512 {
		t.Errorf("buffer grew to %d bytes", c)
	}

	allocs := testing.AllocsPerRun(20, func() {
		rd := NewReader(bytes.NewReader(in), max)
		if _, err := rd.ReadPacket(); err == nil {
			t.Fatal("no error")
		}
	})
	// The Reader, its 512-byte buffer, the bytes.Reader and the error with
	// its message: a handful, none of them the packet.
	if allocs > 8 {
		t.Errorf("%v allocations to reject the packet", allocs)
	}
	if got := readerBytesAllocated(func() {
		_, _ = NewReader(bytes.NewReader(in), max).ReadPacket()
	}); got > 64<<10 {
		t.Errorf("allocated %d bytes to reject the packet", got)
	}
}

// TestReaderHugeDeclaredLengthWithinLimit: with no limit configured, a peer
// that declares a 256 MB packet and sends five bytes must not make the
// Reader allocate 256 MB: the buffer grows with the bytes that arrive.
func TestReaderHugeDeclaredLengthWithinLimit(t *testing.T) {
	in := []byte{0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x03, 'a', '/', 'b'}
	var err error
	got := readerBytesAllocated(func() {
		_, err = NewReader(bytes.NewReader(in), 0).ReadPacket()
	})
	if err != io.ErrUnexpectedEOF {
		t.Errorf("err %v, want io.ErrUnexpectedEOF", err)
	}
	if got > 1<<20 {
		t.Errorf("allocated %d bytes for a packet of which 10 bytes arrived", got)
	}

	// A large packet that does arrive is still read, in a buffer that grew
	// to no more than twice what had arrived.
	big := readerPublishOfSize(t, 3<<20)
	rd := NewReader(bytes.NewReader(big), 0)
	readerExpect(t, rd, [][]byte{big}, io.EOF)
}

func readerBytesAllocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestReaderEOF(t *testing.T) {
	pub := readerPublishOfSize(t, 40)
	for _, tc := range []struct {
		name  string
		in    []byte
		npkts int
		err   error
	}{
		{"empty stream", nil, 0, io.EOF},
		{"one packet", pub, 1, io.EOF},
		{"two packets", append(append([]byte(nil), pub...), pub...), 2, io.EOF},
		{"type byte only", []byte{0x30}, 0, io.ErrUnexpectedEOF},
		{"remaining length cut", []byte{0x30, 0x80}, 0, io.ErrUnexpectedEOF},
		{"remaining length cut at 3 bytes", []byte{0x30, 0x80, 0x80, 0x80}, 0, io.ErrUnexpectedEOF},
		{"body cut", pub[:len(pub)-1], 0, io.ErrUnexpectedEOF},
		{"packet then type byte", append(append([]byte(nil), pub...), 0xC0), 1, io.ErrUnexpectedEOF},
		{"packet then body cut", append(append([]byte(nil), pub...), pub[:10]...), 1, io.ErrUnexpectedEOF},
	} {
		for _, src := range []struct {
			name string
			wrap func(io.Reader) io.Reader
		}{
			{"whole", func(r io.Reader) io.Reader { return r }},
			{"one byte", iotest.OneByteReader},
			{"data+EOF", iotest.DataErrReader},
			{"one byte data+EOF", func(r io.Reader) io.Reader { return iotest.DataErrReader(iotest.OneByteReader(r)) }},
		} {
			t.Run(tc.name+"/"+src.name, func(t *testing.T) {
				rd := NewReader(src.wrap(bytes.NewReader(tc.in)), 0)
				for i := 0; i < tc.npkts; i++ {
					if _, err := rd.ReadPacket(); err != nil {
						t.Fatalf("packet %d: %v", i, err)
					}
				}
				if _, err := rd.ReadPacket(); err != tc.err {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
			})
		}
	}
}

// TestReaderShrinksAfterLargePacket: the buffer a large packet needed is
// given back once smaller packets follow.
func TestReaderShrinksAfterLargePacket(t *testing.T) {
	big := readerPublishOfSize(t, 1<<20)
	small := readerPublishOfSize(t, 100)
	var smalls []byte
	for i := 0; i < 1000; i++ {
		smalls = append(smalls, small...)
	}

	for _, tc := range []struct {
		name string
		src  func() io.Reader
	}{
		// The large packet arrives alone, the small ones in later reads.
		{"separate reads", func() io.Reader {
			return io.MultiReader(bytes.NewReader(big), bytes.NewReader(smalls))
		}},
		// The small packets arrive in the same reads as the large one:
		// the buffer never runs empty at a packet boundary.
		{"one stream", func() io.Reader {
			return bytes.NewReader(append(append([]byte(nil), big...), smalls...))
		}},
		{"odd reads", func() io.Reader {
			return &rtChunkReader{b: append(append([]byte(nil), big...), smalls...), sizes: []int{70001, 333, 4095}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rd := NewReader(tc.src(), 0)
			p, err := rd.ReadPacket()
			if err != nil || !bytes.Equal(p, big) {
				t.Fatalf("large packet: %d bytes, %v", len(p), err)
			}
			if cap(rd.buf) < len(big) {
				t.Fatalf("buffer of %d bytes holds a packet of %d", cap(rd.buf), len(big))
			}
			for i := 0; i < 1000; i++ {
				p, err := rd.ReadPacket()
				if err != nil || !bytes.Equal(p, small) {
					t.Fatalf("small packet %d: %x, %v", i, p, err)
				}
			}
			// By the time the small packets have all been read, the
			// Reader has refilled its buffer at least once.
			if c := cap(rd.buf); c > 64<<10 {
				t.Errorf("buffer still %d bytes after 1000 packets of %d", c, len(small))
			}
			if _, err := rd.ReadPacket(); err != io.EOF {
				t.Fatalf("at the end: %v", err)
			}
		})
	}
}

// readerEmptyReads returns (0, nil) n times before each real read.
type readerEmptyReads struct {
	r    io.Reader
	n, i int
}

func (e *readerEmptyReads) Read(p []byte) (int, error) {
	if e.i < e.n {
		e.i++
		return 0, nil
	}
	e.i = 0
	return e.r.Read(p)
}

// TestReaderEmptyReads: io.Reader allows (0, nil), which means nothing
// happened; the Reader retries like bufio does and gives up with
// io.ErrNoProgress only when the source never makes progress.
func TestReaderEmptyReads(t *testing.T) {
	stream, pkts := readerTestStream(t)
	rd := NewReader(&readerEmptyReads{r: iotest.HalfReader(bytes.NewReader(stream)), n: 3}, 0)
	readerExpect(t, rd, pkts, io.EOF)

	rd = NewReader(&readerEmptyReads{r: bytes.NewReader(stream), n: 1 << 30}, 0)
	if _, err := rd.ReadPacket(); err != io.ErrNoProgress {
		t.Fatalf("source that never returns data: %v, want io.ErrNoProgress", err)
	}
}

// readerDataThenErr returns its data and err from the same Read, then err
// only once more, then more data: a one-shot error such as a deadline.
type readerDataThenErr struct {
	chunks [][]byte
	errs   []error
	i      int
}

func (r *readerDataThenErr) Read(p []byte) (int, error) {
	if r.i >= len(r.chunks) {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[r.i])
	err := r.errs[r.i]
	r.i++
	return n, err
}

// TestReaderSourceErrors: a source error is returned, after the packets
// that arrived with it, and is not lost when it comes with data.
func TestReaderSourceErrors(t *testing.T) {
	errTimeout := errors.New("i/o timeout")
	pub := readerPublishOfSize(t, 40)
	two := append(append([]byte(nil), pub...), pub...)

	// Error with a whole packet: the packet, then the error, then the
	// next packet once the source recovers.
	src := &readerDataThenErr{
		chunks: [][]byte{pub, nil, pub},
		errs:   []error{errTimeout, nil, nil},
	}
	rd := NewReader(src, 0)
	if p, err := rd.ReadPacket(); err != nil || !bytes.Equal(p, pub) {
		t.Fatalf("first packet: %v", err)
	}
	if _, err := rd.ReadPacket(); err != errTimeout {
		t.Fatalf("second read: %v, want the source's error", err)
	}
	readerExpect(t, rd, [][]byte{pub}, io.EOF)

	// Error with half a packet: the error, then the rest.
	src = &readerDataThenErr{
		chunks: [][]byte{two[:50], two[50:]},
		errs:   []error{errTimeout, nil},
	}
	rd = NewReader(src, 0)
	if _, err := rd.ReadPacket(); err != nil {
		t.Fatalf("first packet: %v", err)
	}
	if _, err := rd.ReadPacket(); err != errTimeout {
		t.Fatalf("second packet: %v, want the source's error", err)
	}
	readerExpect(t, rd, [][]byte{pub}, io.EOF)

	// A persistent error.
	rd = NewReader(iotest.ErrReader(errTimeout), 0)
	for i := 0; i < 3; i++ {
		if _, err := rd.ReadPacket(); err != errTimeout {
			t.Fatalf("read %d: %v", i, err)
		}
	}
}

// TestReaderErrorsRepeat: after Packet Too Large or a malformed header the
// stream cannot be resynchronised; the Reader keeps saying so.
func TestReaderErrorsRepeat(t *testing.T) {
	for _, in := range [][]byte{
		{0x30, 0xFF, 0x7F, 0, 0},
		{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F},
	} {
		rd := NewReader(bytes.NewReader(in), 1000)
		_, err1 := rd.ReadPacket()
		_, err2 := rd.ReadPacket()
		if err1 == nil || err2 == nil || err1.Error() != err2.Error() {
			t.Errorf("%x: %v then %v", in, err1, err2)
		}
	}
}

func TestReaderSetMaxPacketSize(t *testing.T) {
	pub := readerPublishOfSize(t, 600)
	in := append(append([]byte(nil), pub...), pub...)
	rd := NewReader(bytes.NewReader(in), 0)
	if _, err := rd.ReadPacket(); err != nil {
		t.Fatal(err)
	}
	rd.SetMaxPacketSize(599)
	_, err := rd.ReadPacket()
	readerWantCode(t, err, PacketTooLarge)
	rd.SetMaxPacketSize(600)
	readerExpect(t, rd, [][]byte{pub}, io.EOF)

	for _, n := range []int{0, -1, DefaultMaxPacketSize + 1} {
		rd.SetMaxPacketSize(n)
		if rd.max != DefaultMaxPacketSize {
			t.Errorf("SetMaxPacketSize(%d): max %d", n, rd.max)
		}
	}
}

// TestReaderTinyMax: a limit below the size of a fixed header still holds.
func TestReaderTinyMax(t *testing.T) {
	rd := NewReader(bytes.NewReader([]byte{0xC0, 0x00, 0xD0, 0x00, 0x30, 0x01, 0x00}), 2)
	for i := 0; i < 2; i++ {
		if p, err := rd.ReadPacket(); err != nil || len(p) != 2 {
			t.Fatalf("packet %d: %x, %v", i, p, err)
		}
	}
	_, err := rd.ReadPacket()
	readerWantCode(t, err, PacketTooLarge)
	if c := cap(rd.buf); c > 2 {
		t.Errorf("buffer of %d bytes with a limit of 2", c)
	}

	rd = NewReader(bytes.NewReader([]byte{0xC0, 0x00}), 1)
	_, err = rd.ReadPacket()
	readerWantCode(t, err, PacketTooLarge)
	rd = NewReader(bytes.NewReader(nil), 1)
	if _, err := rd.ReadPacket(); err != io.EOF {
		t.Fatalf("empty stream, limit 1: %v", err)
	}
	// A remaining length that does not fit in the limit is too large
	// before it is complete.
	rd = NewReader(bytes.NewReader([]byte{0x30, 0x80, 0x80}), 3)
	_, err = rd.ReadPacket()
	readerWantCode(t, err, PacketTooLarge)
}

// countReads counts the calls to Read.
type countReads struct {
	src   io.Reader
	calls int
}

func (c *countReads) Read(p []byte) (int, error) { c.calls++; return c.src.Read(p) }

// TestReaderReady checks that Ready is true exactly when ReadPacket can
// return without reading from the source, over reads of every size.
func TestReaderReady(t *testing.T) {
	stream, pkts := readerTestStream(t)
	for _, wrap := range []func(io.Reader) io.Reader{iotest.OneByteReader, iotest.HalfReader, func(r io.Reader) io.Reader { return r }} {
		src := &countReads{src: wrap(bytes.NewReader(stream))}
		rd := NewReader(src, 0)
		for i, w := range pkts {
			ready := rd.Ready()
			before := src.calls
			got, err := rd.ReadPacket()
			if err != nil || !bytes.Equal(got, w) {
				t.Fatalf("packet %d: %x, %v", i, got, err)
			}
			if read := src.calls > before; ready == read {
				t.Fatalf("packet %d: Ready() = %v, but ReadPacket read from the source: %v", i, ready, read)
			}
		}
		if rd.Ready() {
			t.Fatal("Ready() at the end of the stream before the source reported EOF")
		}
	}
}

// lazySource is a LazySource that waits once before every read, as a
// socket with no input yet does, and checks that the Reader holds no
// buffer while it waits.
type lazySource struct {
	t       *testing.T
	rd      *Reader
	src     io.Reader
	waits   int
	heldBuf int
}

func (l *lazySource) Read(p []byte) (int, error) { return l.src.Read(p) }

func (l *lazySource) ReadLazy(get func() []byte, drop func()) (int, error) {
	get()
	drop() // nothing to read yet: wait
	l.waits++
	if l.rd.buf != nil {
		l.heldBuf++
	}
	return l.src.Read(get())
}

// TestReaderLazySource checks that a Reader reads a stream correctly from
// a LazySource over reads of every size, and gives its buffer back while
// the source waits.
func TestReaderLazySource(t *testing.T) {
	stream, pkts := readerTestStream(t)
	for _, wrap := range []func(io.Reader) io.Reader{iotest.OneByteReader, iotest.HalfReader, func(r io.Reader) io.Reader { return r }} {
		ls := &lazySource{t: t, src: wrap(bytes.NewReader(stream))}
		rd := NewReader(ls, 0)
		ls.rd = rd
		readerExpect(t, rd, pkts, io.EOF)
		if ls.waits == 0 || ls.heldBuf != 0 {
			t.Fatalf("%d waits, %d of them holding a buffer; want some, none", ls.waits, ls.heldBuf)
		}
	}
}

// TestReaderRelease checks that Release gives back the buffer of a Reader
// with nothing buffered, keeps one that holds part of a packet, and that
// reading goes on correctly after it.
func TestReaderRelease(t *testing.T) {
	stream, pkts := readerTestStream(t)
	ls := &lazySource{t: t, src: bytes.NewReader(stream)}
	rd := NewReader(ls, 0)
	ls.rd = rd
	// Where nothing is buffered after a packet, the buffer goes back
	// (rd.buf nil) and the next read takes one again.
	released := 0
	for i, want := range pkts {
		got, err := rd.ReadPacket()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("packet %d: got % x, want % x", i, got, want)
		}
		if rd.Buffered() == 0 {
			released++
			rd.Release()
			if rd.buf != nil {
				t.Fatalf("after packet %d: Release kept a buffer of %d bytes with nothing buffered", i, len(rd.buf))
			}
		} else {
			n := rd.Buffered()
			rd.Release()
			if rd.Buffered() != n {
				t.Fatalf("after packet %d: Release dropped buffered bytes (%d, then %d)", i, n, rd.Buffered())
			}
		}
	}
	if _, err := rd.ReadPacket(); err != io.EOF {
		t.Fatalf("at the end: %v, want io.EOF", err)
	}
	if released == 0 {
		t.Fatal("never released: the stream left something buffered after every packet")
	}
}
