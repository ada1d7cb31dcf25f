package main

import (
	"bytes"
	"testing"
)

func TestPayloadRoundTrip(t *testing.T) {
	for _, size := range []int{20, 21, 64, 1000} {
		p := encodePayload([]byte("prefix"), size, 7, 1<<40+3, -5)
		if !bytes.HasPrefix(p, []byte("prefix")) || len(p) != len("prefix")+size {
			t.Fatalf("size %d: got %d bytes %q", size, len(p), p)
		}
		pub, seq, sent, err := decodePayload(p[len("prefix"):])
		if err != nil || pub != 7 || seq != 1<<40+3 || sent != -5 {
			t.Fatalf("size %d: decoded %d %d %d %v", size, pub, seq, sent, err)
		}
	}
}

func TestPayloadBelowHeaderIsPadded(t *testing.T) {
	if n := len(encodePayload(nil, 3, 1, 2, 3)); n != payloadHeader {
		t.Fatalf("size 3 encoded to %d bytes, want the %d-byte header", n, payloadHeader)
	}
}

func TestDecodeShortPayload(t *testing.T) {
	if _, _, _, err := decodePayload(make([]byte, payloadHeader-1)); err == nil {
		t.Fatal("a 19-byte payload decoded")
	}
}

func TestPayloadEncodeDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { buf = encodePayload(buf[:0], 64, 1, 2, 3) }); n != 0 {
		t.Fatalf("%v allocations per payload", n)
	}
}
