package mqtt

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// TestSkipPacket: after ReadPacket reports a packet above the limit,
// SkipPacket returns its head (up to the limit) and total size, consumes
// exactly that packet, and the next packet reads normally — also when the
// source hands over one byte at a time.
func TestSkipPacket(t *testing.T) {
	big, err := (&Publish{QoS: 1, PacketID: 7, Topic: []byte("in/big"), Payload: bytes.Repeat([]byte{'x'}, 5000)}).AppendTo(nil, V311)
	if err != nil {
		t.Fatal(err)
	}
	small, _ := (&Publish{QoS: 2, PacketID: 8, Topic: []byte("in/small"), Payload: []byte("ok")}).AppendTo(nil, V311)
	stream := append(append([]byte(nil), big...), small...)
	for name, src := range map[string]io.Reader{
		"whole":    bytes.NewReader(stream),
		"one byte": iotest.OneByteReader(bytes.NewReader(stream)),
	} {
		t.Run(name, func(t *testing.T) {
			rd := NewReader(src, 1024)
			_, err := rd.ReadPacket()
			var re *ReasonError
			if !errors.As(err, &re) || re.Code != PacketTooLarge {
				t.Fatalf("ReadPacket: %v, want PacketTooLarge", err)
			}
			head, total, err := rd.SkipPacket()
			if err != nil {
				t.Fatal(err)
			}
			if total != len(big) || !bytes.Equal(head, big[:1024]) {
				t.Fatalf("SkipPacket: total %d (want %d), head of %d bytes equal: %v", total, len(big), len(head),
					bytes.Equal(head, big[:min(len(head), len(big))]))
			}
			qos, topic, pid, err := PublishHeader(head)
			if err != nil || qos != 1 || string(topic) != "in/big" || pid != 7 {
				t.Fatalf("PublishHeader: qos %d topic %q pid %d err %v", qos, topic, pid, err)
			}
			pkt, err := rd.ReadPacket()
			if err != nil || !bytes.Equal(pkt, small) {
				t.Fatalf("next packet: %x, %v; want %x", pkt, err, small)
			}
			if _, err := rd.ReadPacket(); err != io.EOF {
				t.Fatalf("after the stream: %v, want EOF", err)
			}
		})
	}
}

// TestSkipPacketCutOff: a stream that ends inside the skipped packet is
// an unexpected EOF, and PublishHeader rejects heads cut before the packet
// identifier.
func TestSkipPacketCutOff(t *testing.T) {
	big, _ := (&Publish{QoS: 1, PacketID: 7, Topic: []byte("t"), Payload: bytes.Repeat([]byte{'x'}, 3000)}).AppendTo(nil, V5)
	rd := NewReader(bytes.NewReader(big[:2000]), 512)
	if _, err := rd.ReadPacket(); err == nil {
		t.Fatal("ReadPacket accepted a packet above the limit")
	}
	if _, _, err := rd.SkipPacket(); err != io.ErrUnexpectedEOF {
		t.Fatalf("SkipPacket of a cut-off packet: %v, want io.ErrUnexpectedEOF", err)
	}
	for n := 0; n < 2+1+2+1+2; n++ { // fixed header (3), topic length and topic, packet id
		if _, _, _, err := PublishHeader(big[:n]); err == nil {
			t.Errorf("PublishHeader of %d bytes: no error", n)
		}
	}
}

// FuzzPublishHeader: PublishHeader never panics, and on a whole PUBLISH
// that Decode accepts it agrees with Decode.
func FuzzPublishHeader(f *testing.F) {
	for _, p := range []*Publish{
		{QoS: 0, Topic: []byte("a/b"), Payload: []byte("x")},
		{QoS: 1, PacketID: 1, Topic: []byte("a"), Payload: nil},
		{QoS: 2, PacketID: 65535, Topic: []byte("x/y/z"), Payload: []byte("payload")},
	} {
		for _, v := range []Version{V311, V5} {
			b, err := p.AppendTo(nil, v)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b, byte(v))
		}
	}
	f.Fuzz(func(t *testing.T, pkt []byte, v byte) {
		qos, topic, pid, err := PublishHeader(pkt)
		if err != nil {
			return
		}
		if v != byte(V5) {
			v = byte(V311)
		}
		p, derr := Decode(pkt, Version(v))
		pub, ok := p.(*Publish)
		if derr != nil || !ok || pub.Props.TopicAlias != 0 {
			return
		}
		if pub.QoS != qos || !bytes.Equal(pub.Topic, topic) || pub.PacketID != pid {
			t.Fatalf("PublishHeader: qos %d topic %q pid %d; Decode: qos %d topic %q pid %d",
				qos, topic, pid, pub.QoS, pub.Topic, pub.PacketID)
		}
	})
}
