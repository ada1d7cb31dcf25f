// Package mqtt is Weir's wire codec for MQTT 3.1, 3.1.1 and 5.0.
//
// It has one struct per control packet, encodes by appending to a
// caller-supplied slice, decodes one packet from a slice that holds exactly
// that packet, and frames packets from a stream with a Reader that enforces
// the maximum packet size before it allocates.
//
// Decoding does not copy: byte-slice fields of a decoded packet (a PUBLISH's
// topic and payload, binary properties) are sub-slices of the input. A caller
// that keeps any of them past the lifetime of the input buffer must copy them
// (see Publish.Clone).
//
// Errors from decoding are *ReasonError values that carry the MQTT reason
// code the peer should be told: 0x81 Malformed Packet for bytes that cannot
// be parsed, 0x82 Protocol Error for well-formed bytes that break a rule,
// 0x95 Packet Too Large from the Reader.
//
// This package imports only the standard library and nothing else of Weir.
package mqtt
