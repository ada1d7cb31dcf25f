package main

import (
	"encoding/binary"
	"errors"
)

// Every benchmark payload starts with a fixed header that lets the receiver
// check delivery without any shared state with the sender:
//
//	bytes 0–3   publisher id (big-endian uint32)
//	bytes 4–11  sequence number within that publisher, from 0 (uint64)
//	bytes 12–19 send time in nanoseconds since the run's clock base (int64)
//
// The rest, up to the configured size, is filler.
const payloadHeader = 20

var errShortPayload = errors.New("payload shorter than the 20-byte benchmark header")

// encodePayload appends a payload of size bytes (at least payloadHeader) to
// dst.
func encodePayload(dst []byte, size int, pub uint32, seq uint64, sentNanos int64) []byte {
	size = max(size, payloadHeader)
	dst = binary.BigEndian.AppendUint32(dst, pub)
	dst = binary.BigEndian.AppendUint64(dst, seq)
	dst = binary.BigEndian.AppendUint64(dst, uint64(sentNanos))
	for range size - payloadHeader {
		dst = append(dst, 'x')
	}
	return dst
}

// decodePayload reads the header of a benchmark payload.
func decodePayload(p []byte) (pub uint32, seq uint64, sentNanos int64, err error) {
	if len(p) < payloadHeader {
		return 0, 0, 0, errShortPayload
	}
	return binary.BigEndian.Uint32(p), binary.BigEndian.Uint64(p[4:]), int64(binary.BigEndian.Uint64(p[12:])), nil
}
