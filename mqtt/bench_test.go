package mqtt

import (
	"bytes"
	"io"
	"testing"
)

// The hot path of a broker: decode a PUBLISH into a reused struct, encode
// one into a reused buffer, frame a stream of them. All must run without
// allocating (TestPublishZeroAlloc).

// benchPublishCases are the PUBLISH shapes measured: a 64-byte payload on a
// three-level topic, QoS 0 and 1, MQTT 3.1.1 and 5.0.
var benchPublishCases = []struct {
	name string
	qos  byte
	v    Version
}{
	{"QoS0/V311", QoS0, V311},
	{"QoS1/V311", QoS1, V311},
	{"QoS0/V5", QoS0, V5},
	{"QoS1/V5", QoS1, V5},
}

func benchPublish(qos byte) *Publish {
	p := &Publish{QoS: qos, Topic: []byte("sensors/room1/temp"), Payload: bytes.Repeat([]byte{'x'}, 64)}
	if qos > 0 {
		p.PacketID = 4242
	}
	return p
}

func benchPublishBytes(tb testing.TB, qos byte, v Version) []byte {
	tb.Helper()
	b, err := benchPublish(qos).AppendTo(nil, v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func BenchmarkDecodePublish(b *testing.B) {
	for _, c := range benchPublishCases {
		b.Run(c.name, func(b *testing.B) {
			pkt := benchPublishBytes(b, c.qos, c.v)
			var p Publish
			b.SetBytes(int64(len(pkt)))
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Decode(pkt, c.v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncodePublish(b *testing.B) {
	for _, c := range benchPublishCases {
		b.Run(c.name, func(b *testing.B) {
			p := benchPublish(c.qos)
			buf := make([]byte, 0, 256)
			var err error
			b.SetBytes(int64(len(benchPublishBytes(b, c.qos, c.v))))
			b.ReportAllocs()
			for b.Loop() {
				if buf, err = p.AppendTo(buf[:0], c.v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchLoopReader returns its data over and over; data holds whole packets,
// so the stream never ends and packets stay aligned across the wrap.
type benchLoopReader struct {
	data []byte
	off  int
}

func (r *benchLoopReader) Read(p []byte) (int, error) {
	n := copy(p, r.data[r.off:])
	r.off = (r.off + n) % len(r.data)
	return n, nil
}

// BenchmarkReader frames a stream of the same PUBLISH packets, and in the
// ReadDecode variants also decodes each into a reused struct, as a
// connection's read loop does. The source hands out up to 4 KiB per Read
// (a TCP read); the Reader's buffer stays at its initial size.
func BenchmarkReader(b *testing.B) {
	for _, c := range benchPublishCases {
		for _, decode := range []bool{false, true} {
			name := "Read/" + c.name
			if decode {
				name = "ReadDecode/" + c.name
			}
			b.Run(name, func(b *testing.B) {
				pkt := benchPublishBytes(b, c.qos, c.v)
				src := &benchLoopReader{data: bytes.Repeat(pkt, 64)}
				rd := NewReader(src, 1<<16)
				var p Publish
				b.SetBytes(int64(len(pkt)))
				b.ReportAllocs()
				for b.Loop() {
					got, err := rd.ReadPacket()
					if err != nil {
						b.Fatal(err)
					}
					if decode {
						if err := p.Decode(got, c.v); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}

// TestPublishZeroAlloc: decoding a PUBLISH into a reused struct, encoding
// one into a buffer with room, and framing one from a stream allocate
// nothing.
func TestPublishZeroAlloc(t *testing.T) {
	for _, c := range benchPublishCases {
		t.Run(c.name, func(t *testing.T) {
			pkt := benchPublishBytes(t, c.qos, c.v)

			var p Publish
			if n := testing.AllocsPerRun(1000, func() {
				if err := p.Decode(pkt, c.v); err != nil {
					t.Fatal(err)
				}
			}); n != 0 {
				t.Errorf("Publish.Decode: %v allocs/op, want 0", n)
			}
			if !bytes.Equal(p.Topic, []byte("sensors/room1/temp")) || len(p.Payload) != 64 || p.QoS != c.qos {
				t.Fatalf("decoded %+v", p)
			}

			src := benchPublish(c.qos)
			buf := make([]byte, 0, 256)
			var err error
			if n := testing.AllocsPerRun(1000, func() {
				if buf, err = src.AppendTo(buf[:0], c.v); err != nil {
					t.Fatal(err)
				}
			}); n != 0 {
				t.Errorf("Publish.AppendTo: %v allocs/op, want 0", n)
			}
			if !bytes.Equal(buf, pkt) {
				t.Fatalf("encoded %x, want %x", buf, pkt)
			}

			rd := NewReader(&benchLoopReader{data: bytes.Repeat(pkt, 64)}, 1<<16)
			if _, err := rd.ReadPacket(); err != nil { // allocates the buffer
				t.Fatal(err)
			}
			if n := testing.AllocsPerRun(1000, func() {
				got, err := rd.ReadPacket()
				if err != nil || len(got) != len(pkt) {
					t.Fatalf("ReadPacket: %d bytes, %v", len(got), err)
				}
			}); n != 0 {
				t.Errorf("Reader.ReadPacket: %v allocs/op, want 0", n)
			}
		})
	}
}

var _ io.Reader = (*benchLoopReader)(nil)
