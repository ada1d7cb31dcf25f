package mqtt

import (
	"errors"
	"testing"
)

// One row per rule of MQTT 3.1.1 and 5.0 that makes a single packet
// malformed or a protocol error, named by the clause that states it.
//
// Naming: [MQTT-x.y.z-n] is the numbered conformance statement in the spec
// of the row's version (3.1.1 numbers for V311 and V31 rows, 5.0 numbers
// for V5 rows; the two differ for the same rule). Where the spec states the
// rule in prose without a number, the row names the section: [§x.y.z].
// [MQTT-3-8.3-4] is spelled as the 3.1.1 spec itself spells it.
//
// code is the reason code the *ReasonError must carry; Success marks input
// the spec allows that a careless decoder might reject (user properties and
// PUBLISH subscription identifiers repeated, password without user name in
// 5.0, DUP on PUBREL/SUBSCRIBE/UNSUBSCRIBE in 3.1).
//
// The hex is a whole packet; comments give the layout where it is not the
// obvious mutation of a neighbouring row.
var mtCases = []struct {
	name string
	v    Version
	in   string
	code ReasonCode
}{
	// ---- Fixed header: packet type, remaining length ----
	{"[§2.1.2] reserved packet type 0", V5, "00 00", MalformedPacket},
	{"[§2.2.1] reserved packet type 0", V311, "00 00", MalformedPacket},
	{"[§2.2.1] packet type 15 (AUTH) is reserved in 3.1.1", V311, "f0 00", MalformedPacket},
	{"[§2.2.1] packet type 15 (AUTH) is reserved in 3.1", V31, "f0 00", MalformedPacket},
	{"[§2.1.1] empty input", V5, "", MalformedPacket},
	{"[§2.1.4] fixed header without a remaining length", V311, "c0", MalformedPacket},
	{"[MQTT-1.5.5-1] remaining length of five bytes", V5, "c0 ff ff ff ff 7f", MalformedPacket},
	{"[§2.2.3] remaining length of five bytes", V311, "c0 80 80 80 80 00", MalformedPacket},
	{"[MQTT-1.5.5-1] remaining length 0 in two bytes", V5, "c0 80 00", MalformedPacket},
	{"[MQTT-1.5.5-1] remaining length 5 in two bytes", V5, "30 85 00 0003 612f62", MalformedPacket},
	{"[§2.2.3] remaining length 5 in two bytes", V311, "30 85 00 0003 612f62", MalformedPacket},
	{"[§2.1.4] remaining length runs past the end", V311, "30 80", MalformedPacket},
	{"[§2.1.4] remaining length larger than the packet", V311, "30 0a 0003 612f62", MalformedPacket},
	{"[§2.1.4] remaining length smaller than the packet", V5, "c0 00 00", MalformedPacket},

	// ---- Fixed header flags, 5.0: [MQTT-2.1.3-1] and the per-packet clauses ----
	{"[MQTT-2.1.3-1] CONNECT flags 0001", V5, "11 11 0004 4d515454 05 02 003c 00 0004 74657374", MalformedPacket},
	{"[MQTT-2.1.3-1] CONNACK flags 0100", V5, "24 03 00 00 00", MalformedPacket},
	{"[MQTT-2.1.3-1] PUBACK flags 0010", V5, "42 02 0001", MalformedPacket},
	{"[MQTT-2.1.3-1] PUBREC flags 1000", V5, "58 02 0001", MalformedPacket},
	{"[MQTT-3.6.1-1] PUBREL flags 0000", V5, "60 02 0001", MalformedPacket},
	{"[MQTT-3.6.1-1] PUBREL flags 1010 (DUP is 3.1 only)", V5, "6a 02 0001", MalformedPacket},
	{"[MQTT-2.1.3-1] PUBCOMP flags 0001", V5, "71 02 0001", MalformedPacket},
	{"[MQTT-3.8.1-1] SUBSCRIBE flags 0000", V5, "80 07 0001 00 0001 61 00", MalformedPacket},
	{"[MQTT-3.8.1-1] SUBSCRIBE flags 1010 (DUP is 3.1 only)", V5, "8a 07 0001 00 0001 61 00", MalformedPacket},
	{"[MQTT-2.1.3-1] SUBACK flags 0010", V5, "92 04 0001 00 00", MalformedPacket},
	{"[MQTT-3.10.1-1] UNSUBSCRIBE flags 0000", V5, "a0 06 0001 00 0001 61", MalformedPacket},
	{"[MQTT-3.10.1-1] UNSUBSCRIBE flags 1010 (DUP is 3.1 only)", V5, "aa 06 0001 00 0001 61", MalformedPacket},
	{"[MQTT-2.1.3-1] UNSUBACK flags 0001", V5, "b1 04 0001 00 00", MalformedPacket},
	{"[MQTT-2.1.3-1] PINGREQ flags 0001", V5, "c1 00", MalformedPacket},
	{"[MQTT-2.1.3-1] PINGRESP flags 1000", V5, "d8 00", MalformedPacket},
	{"[MQTT-3.14.1-1] DISCONNECT flags 0010", V5, "e2 00", MalformedPacket},
	{"[MQTT-3.15.1-1] AUTH flags 0001", V5, "f1 00", MalformedPacket},

	// ---- Fixed header flags, 3.1.1: [MQTT-2.2.2-1] [MQTT-2.2.2-2] ----
	{"[MQTT-2.2.2-1] CONNECT flags 0010", V311, "12 10 0004 4d515454 04 02 003c 0004 74657374", MalformedPacket},
	{"[MQTT-2.2.2-1] CONNACK flags 0001", V311, "21 02 00 00", MalformedPacket},
	{"[MQTT-2.2.2-1] PUBACK flags 1000", V311, "48 02 0001", MalformedPacket},
	{"[MQTT-2.2.2-1] PUBREC flags 0010", V311, "52 02 0001", MalformedPacket},
	{"[MQTT-3.6.1-1] PUBREL flags 0000", V311, "60 02 0001", MalformedPacket},
	{"[MQTT-3.6.1-1] PUBREL flags 0011", V311, "63 02 0001", MalformedPacket},
	{"[MQTT-3.6.1-1] PUBREL flags 1010 (DUP is 3.1 only)", V311, "6a 02 0001", MalformedPacket},
	{"[MQTT-2.2.2-1] PUBCOMP flags 0100", V311, "74 02 0001", MalformedPacket},
	{"[MQTT-3.8.1-1] SUBSCRIBE flags 0000", V311, "80 06 0001 0001 61 00", MalformedPacket},
	{"[MQTT-3.8.1-1] SUBSCRIBE flags 1010 (DUP is 3.1 only)", V311, "8a 06 0001 0001 61 00", MalformedPacket},
	{"[MQTT-2.2.2-1] SUBACK flags 1000", V311, "98 03 0001 00", MalformedPacket},
	{"[MQTT-3.10.1-1] UNSUBSCRIBE flags 0000", V311, "a0 05 0001 0001 61", MalformedPacket},
	{"[MQTT-3.10.1-1] UNSUBSCRIBE flags 1010 (DUP is 3.1 only)", V311, "aa 05 0001 0001 61", MalformedPacket},
	{"[MQTT-2.2.2-1] UNSUBACK flags 0010", V311, "b2 02 0001", MalformedPacket},
	{"[MQTT-2.2.2-1] PINGREQ flags 0100", V311, "c4 00", MalformedPacket},
	{"[MQTT-2.2.2-1] PINGRESP flags 0001", V311, "d1 00", MalformedPacket},
	{"[MQTT-3.14.1-1] DISCONNECT flags 0001", V311, "e1 00", MalformedPacket},

	// ---- Fixed header flags, 3.1: QoS 1 on PUBREL, SUBSCRIBE, UNSUBSCRIBE, DUP allowed there ----
	{"[3.1 §3.6] PUBREL with DUP (allowed)", V31, "6a 02 0001", Success},
	{"[3.1 §3.8] SUBSCRIBE with DUP (allowed)", V31, "8a 06 0001 0001 61 00", Success},
	{"[3.1 §3.10] UNSUBSCRIBE with DUP (allowed)", V31, "aa 05 0001 0001 61", Success},
	{"[3.1 §3.6] PUBREL flags 0000", V31, "60 02 0001", MalformedPacket},
	{"[3.1 §3.6] PUBREL flags 1110", V31, "6e 02 0001", MalformedPacket},
	{"[3.1 §3.4] PUBACK with DUP", V31, "48 02 0001", MalformedPacket},

	// ---- UTF-8 strings: [MQTT-1.5.4-1] [MQTT-1.5.4-2] (5.0), [MQTT-1.5.3-1] [MQTT-1.5.3-2] (3.1.1) ----
	// PUBLISH: flags 0; topic; property length 0 in 5.0.
	{"[MQTT-1.5.4-1] topic name with byte FF", V5, "30 06 0003 61ff62 00", MalformedPacket},
	{"[MQTT-1.5.4-1] topic name with UTF-16 surrogate U+D800 (ED A0 80)", V5, "30 06 0003 eda080 00", MalformedPacket},
	{"[MQTT-1.5.4-1] topic name with overlong encoding (C0 AF)", V5, "30 05 0002 c0af 00", MalformedPacket},
	{"[MQTT-1.5.4-1] topic name with truncated sequence (E6 97)", V5, "30 05 0002 e697 00", MalformedPacket},
	{"[MQTT-1.5.4-2] topic name with U+0000", V5, "30 06 0003 610062 00", MalformedPacket},
	{"[MQTT-1.5.3-1] topic name with byte FF", V311, "30 05 0003 61ff62", MalformedPacket},
	{"[MQTT-1.5.3-1] topic name with UTF-16 surrogate U+DFFF (ED BF BF)", V311, "30 05 0003 edbfbf", MalformedPacket},
	{"[MQTT-1.5.3-2] topic name with U+0000", V311, "30 05 0003 610062", MalformedPacket},
	{"[MQTT-1.5.3-1] topic name with byte FF", V31, "30 05 0003 61ff62", MalformedPacket},
	{"[MQTT-3.1.3-4] client identifier with a surrogate", V311, "10 0f 0004 4d515454 04 02 003c 0003 eda080", MalformedPacket},
	{"[MQTT-3.1.3-4] client identifier with U+0000", V5, "10 10 0004 4d515454 05 02 003c 00 0003 610062", MalformedPacket},
	// CONNECT flags 0x06 = will | clean; client "c"; will topic; will message "m".
	{"[MQTT-3.1.3-10] will topic with byte FF", V311, "10 15 0004 4d515454 04 06 003c 0001 63 0003 61ff62 0001 6d", MalformedPacket},
	{"[MQTT-3.1.3-11] will topic with U+0000", V5, "10 17 0004 4d515454 05 06 003c 00 0001 63 00 0003 610062 0001 6d", MalformedPacket},
	// CONNECT flags 0x82 = user name | clean; client "c"; user name.
	{"[MQTT-3.1.3-11] user name with byte FF", V311, "10 12 0004 4d515454 04 82 003c 0001 63 0003 61ff62", MalformedPacket},
	{"[MQTT-3.1.3-12] user name with a surrogate", V5, "10 13 0004 4d515454 05 82 003c 00 0001 63 0003 eda080", MalformedPacket},
	{"[MQTT-3.8.3-1] topic filter with a surrogate", V311, "82 08 0001 0003 eda080 00", MalformedPacket},
	{"[MQTT-3.8.3-1] topic filter with U+0000", V5, "82 09 0001 00 0003 610062 00", MalformedPacket},
	{"[MQTT-3.10.3-1] UNSUBSCRIBE topic filter with U+0000", V311, "a2 07 0001 0003 610062", MalformedPacket},
	{"[MQTT-3.10.3-1] UNSUBSCRIBE topic filter with byte FF", V5, "a2 08 0001 00 0003 61ff62", MalformedPacket},
	// DISCONNECT reason 0; properties 7: user property.
	{"[MQTT-1.5.7-1] user property name with byte FF", V5, "e0 09 00 07 26 0001 ff 0001 62", MalformedPacket},
	{"[MQTT-1.5.7-1] user property value with U+0000", V5, "e0 09 00 07 26 0001 61 0001 00", MalformedPacket},
	// PUBLISH topic "a/b"; properties 6: one string property.
	{"[MQTT-3.3.2-19] content type with U+0000", V5, "30 0c 0003 612f62 06 03 0003 610062", MalformedPacket},
	{"[MQTT-3.3.2-13] response topic with byte FF", V5, "30 0c 0003 612f62 06 08 0003 61ff62", MalformedPacket},
	{"[MQTT-1.5.4-1] reason string with a surrogate", V5, "40 0a 0001 80 06 1f 0003 eda080", MalformedPacket},

	// ---- Truncated fields: a length that runs past the end is malformed ----
	{"[§1.5.3] topic name length past the end", V311, "30 03 0005 61", MalformedPacket},
	{"[§1.5.3] topic name length cut in half", V311, "30 01 00", MalformedPacket},
	{"[§1.5.3] client identifier length past the end", V311, "10 0e 0004 4d515454 04 02 003c 0004 7465", MalformedPacket},
	{"[§1.5.4] protocol name length past the end", V5, "10 04 0004 4d51", MalformedPacket},
	{"[§1.5.7] user property value missing", V5, "e0 07 00 05 26 0001 61 0001", MalformedPacket},
	{"[§1.5.6] correlation data length past the property length", V5, "30 0b 0003 612f62 05 09 0004 0102", MalformedPacket},
	{"[§1.5.3] message expiry cut short inside the property length", V5, "30 08 0003 612f62 02 02 00", MalformedPacket},

	// ---- PUBLISH (§3.3) ----
	{"[MQTT-3.3.1-4] QoS 3", V311, "36 07 0003 612f62 0001", MalformedPacket},
	{"[MQTT-3.3.1-4] QoS 3", V5, "36 08 0003 612f62 0001 00", MalformedPacket},
	{"[MQTT-3.3.1-2] DUP at QoS 0", V311, "38 05 0003 612f62", MalformedPacket},
	{"[MQTT-3.3.1-2] DUP at QoS 0", V5, "38 06 0003 612f62 00", MalformedPacket},
	{"[MQTT-2.3.1-1] QoS 1 packet identifier 0", V311, "32 07 0003 612f62 0000", ProtocolError},
	{"[MQTT-2.2.1-3] QoS 2 packet identifier 0", V5, "34 08 0003 612f62 0000 00", ProtocolError},
	{"[MQTT-3.3.2-2] topic name with '+'", V311, "30 05 0003 612f2b", TopicNameInvalid},
	{"[MQTT-3.3.2-2] topic name with '#'", V5, "30 04 0001 23 00", TopicNameInvalid},
	{"[MQTT-4.7.3-1] empty topic name", V311, "30 02 0000", ProtocolError},
	{"[§3.3.2.1] empty topic name without a topic alias", V5, "30 03 0000 00", ProtocolError},
	{"[§3.3.2.3.4] empty topic name with a topic alias (allowed)", V5, "30 06 0000 03 23 0001", Success},
	{"[§3.3.2.2] packet identifier cut short", V311, "32 06 0003 612f62 00", MalformedPacket},
	{"[§3.3.2.3.1] property length missing", V5, "30 05 0003 612f62", MalformedPacket},

	// ---- CONNECT (§3.1) ----
	// Base: "MQTT"; level; flags 0x02 clean; keep alive 60; [property length 0]; client "test".
	{"[MQTT-3.1.2-3] reserved flag set", V311, "10 10 0004 4d515454 04 03 003c 0004 74657374", MalformedPacket},
	{"[MQTT-3.1.2-3] reserved flag set", V5, "10 11 0004 4d515454 05 03 003c 00 0004 74657374", MalformedPacket},
	{"[3.1 §3.1] reserved flag set", V31, "10 12 0006 4d5149736470 03 03 003c 0004 74657374", MalformedPacket},
	// flags 0x1e = will QoS 3 | will | clean; will topic "t"; will message "m".
	{"[MQTT-3.1.2-14] will QoS 3", V311, "10 16 0004 4d515454 04 1e 003c 0004 74657374 0001 74 0001 6d", MalformedPacket},
	{"[MQTT-3.1.2-12] will QoS 3", V5, "10 18 0004 4d515454 05 1e 003c 00 0004 74657374 00 0001 74 0001 6d", MalformedPacket},
	{"[MQTT-3.1.2-13] will QoS 1 without the will flag", V311, "10 10 0004 4d515454 04 0a 003c 0004 74657374", MalformedPacket},
	{"[MQTT-3.1.2-15] will retain without the will flag", V311, "10 10 0004 4d515454 04 22 003c 0004 74657374", MalformedPacket},
	{"[MQTT-3.1.2-11] will QoS 2 without the will flag", V5, "10 11 0004 4d515454 05 12 003c 00 0004 74657374", MalformedPacket},
	{"[MQTT-3.1.2-13] will retain without the will flag", V5, "10 11 0004 4d515454 05 22 003c 00 0004 74657374", MalformedPacket},
	// flags 0x42 = password | clean; password "p".
	{"[MQTT-3.1.2-22] password without user name", V311, "10 13 0004 4d515454 04 42 003c 0004 74657374 0001 70", MalformedPacket},
	{"[§3.1.2.9] password without user name (allowed in 5.0)", V5, "10 14 0004 4d515454 05 42 003c 00 0004 74657374 0001 70", Success},
	{"[MQTT-3.1.2-1] protocol name \"MQTX\"", V311, "10 10 0004 4d515458 04 02 003c 0004 74657374", UnsupportedProtocolVersion},
	{"[MQTT-3.1.2-1] protocol name \"mqtt\"", V5, "10 11 0004 6d717474 05 02 003c 00 0004 74657374", UnsupportedProtocolVersion},
	{"[MQTT-3.1.2-2] protocol level 6", V311, "10 10 0004 4d515454 06 02 003c 0004 74657374", UnsupportedProtocolVersion},
	{"[MQTT-3.1.2-2] protocol level 3 with name \"MQTT\"", V311, "10 10 0004 4d515454 03 02 003c 0004 74657374", UnsupportedProtocolVersion},
	{"[MQTT-3.1.2-2] protocol level 4 with name \"MQIsdp\"", V311, "10 12 0006 4d5149736470 04 02 003c 0004 74657374", UnsupportedProtocolVersion},
	{"[MQTT-3.1.4-1] trailing byte after the payload", V311, "10 11 0004 4d515454 04 02 003c 0004 74657374 00", MalformedPacket},
	{"[MQTT-3.1.4-1] trailing byte after the payload", V5, "10 12 0004 4d515454 05 02 003c 00 0004 74657374 00", MalformedPacket},
	{"[MQTT-3.1.2-19] user name flag without a user name", V311, "10 10 0004 4d515454 04 82 003c 0004 74657374", MalformedPacket},
	{"[MQTT-3.1.2-17] user name flag without a user name", V5, "10 11 0004 4d515454 05 82 003c 00 0004 74657374", MalformedPacket},
	// flags 0xc2 = user name | password | clean; user name "u"; no password.
	{"[MQTT-3.1.2-21] password flag without a password", V311, "10 13 0004 4d515454 04 c2 003c 0004 74657374 0001 75", MalformedPacket},
	{"[MQTT-3.1.2-19] password flag without a password", V5, "10 14 0004 4d515454 05 c2 003c 00 0004 74657374 0001 75", MalformedPacket},
	{"[MQTT-3.1.2-9] will flag without will topic and message", V311, "10 10 0004 4d515454 04 06 003c 0004 74657374", MalformedPacket},
	{"[MQTT-3.1.2-9] will flag without will properties", V5, "10 11 0004 4d515454 05 06 003c 00 0004 74657374", MalformedPacket},
	{"[MQTT-4.7.1-1] will topic with '#'", V311, "10 16 0004 4d515454 04 06 003c 0004 74657374 0001 23 0001 6d", TopicNameInvalid},
	{"[MQTT-4.7.0-1] will topic with '+'", V5, "10 18 0004 4d515454 05 06 003c 00 0004 74657374 00 0001 2b 0001 6d", TopicNameInvalid},
	// 5.0 CONNECT properties (property length, then the property).
	{"[§3.1.2.11.2] session expiry interval twice", V5, "10 1b 0004 4d515454 05 02 003c 0a 11 00000001 11 00000002 0004 74657374", ProtocolError},
	{"[§3.1.2.11.3] receive maximum 0", V5, "10 14 0004 4d515454 05 02 003c 03 21 0000 0004 74657374", ProtocolError},
	{"[§3.1.2.11.4] maximum packet size 0", V5, "10 16 0004 4d515454 05 02 003c 05 27 00000000 0004 74657374", ProtocolError},
	{"[§3.1.2.11.6] request response information 2", V5, "10 13 0004 4d515454 05 02 003c 02 19 02 0004 74657374", ProtocolError},
	{"[§3.1.2.11.7] request problem information 2", V5, "10 13 0004 4d515454 05 02 003c 02 17 02 0004 74657374", ProtocolError},
	{"[§3.1.2.11.8] user property repeated with the same name (allowed)", V5, "10 1f 0004 4d515454 05 02 003c 0e 26 0001 61 0001 62 26 0001 61 0001 62 0004 74657374", Success},
	{"[§2.2.2.2] will delay interval in CONNECT properties", V5, "10 16 0004 4d515454 05 02 003c 05 18 00000005 0004 74657374", MalformedPacket},
	{"[§2.2.2.2] unknown property 0x00 in CONNECT", V5, "10 13 0004 4d515454 05 02 003c 02 00 00 0004 74657374", MalformedPacket},
	// 5.0 will properties: flags 0x06; property length 0; client "test"; will properties; will topic "t"; will payload "m".
	{"[§2.2.2.2] session expiry interval in will properties", V5, "10 1d 0004 4d515454 05 06 003c 00 0004 74657374 05 11 00000001 0001 74 0001 6d", MalformedPacket},
	{"[§3.1.3.2.3] will payload format indicator 2", V5, "10 1a 0004 4d515454 05 06 003c 00 0004 74657374 02 01 02 0001 74 0001 6d", ProtocolError},
	{"[MQTT-3.3.2-14] will response topic with '#'", V5, "10 1e 0004 4d515454 05 06 003c 00 0004 74657374 06 08 0003 612f23 0001 74 0001 6d", ProtocolError},

	// ---- CONNACK (§3.2) ----
	{"[§3.2.2.1] reserved acknowledge flags set", V311, "20 02 02 00", MalformedPacket},
	{"[MQTT-3.2.2-1] reserved acknowledge flags set", V5, "20 03 80 00 00", MalformedPacket},
	{"[MQTT-3.2.2-4] session present with a non-zero return code", V311, "20 02 01 05", ProtocolError},
	{"[MQTT-3.2.2-6] session present with a non-zero reason code", V5, "20 03 01 87 00", ProtocolError},
	{"[§3.2.2.3] return code 6 is reserved", V311, "20 02 00 06", ProtocolError},
	{"[MQTT-3.2.2-8] reason code 0x8b is not a CONNACK code", V5, "20 03 00 8b 00", ProtocolError},
	{"[§3.2.1] remaining length 3", V311, "20 03 00 00 00", MalformedPacket},
	{"[§3.2.1] remaining length 1", V311, "20 01 00", MalformedPacket},
	{"[§3.2.2.3.1] property length missing", V5, "20 02 00 00", MalformedPacket},
	{"[§3.2.2.3.3] receive maximum 0", V5, "20 06 00 00 03 21 0000", ProtocolError},
	{"[§3.2.2.3.4] maximum QoS 2", V5, "20 05 00 00 02 24 02", ProtocolError},
	{"[§3.2.2.3.5] retain available 2", V5, "20 05 00 00 02 25 02", ProtocolError},
	{"[§3.2.2.3.6] maximum packet size 0", V5, "20 08 00 00 05 27 00000000", ProtocolError},
	{"[§3.2.2.3.7] assigned client identifier twice", V5, "20 0b 00 00 08 12 0001 61 12 0001 62", ProtocolError},
	{"[§3.2.2.3.11] wildcard subscription available 2", V5, "20 05 00 00 02 28 02", ProtocolError},
	{"[§3.2.2.3.12] subscription identifiers available 2", V5, "20 05 00 00 02 29 02", ProtocolError},
	{"[§3.2.2.3.13] shared subscription available 2", V5, "20 05 00 00 02 2a 02", ProtocolError},
	{"[§2.2.2.2] topic alias in CONNACK", V5, "20 06 00 00 03 23 0001", MalformedPacket},

	// ---- PUBACK, PUBREC, PUBREL, PUBCOMP (§3.4–3.7) ----
	{"[MQTT-3.4.2-1] PUBACK reason code 0x01", V5, "40 03 0001 01", ProtocolError},
	{"[MQTT-3.4.2-1] PUBACK reason code 0x92 (a PUBREL code)", V5, "40 03 0001 92", ProtocolError},
	{"[MQTT-3.5.2-1] PUBREC reason code 0x8f", V5, "50 03 0001 8f", ProtocolError},
	{"[MQTT-3.6.2-1] PUBREL reason code 0x10", V5, "62 03 0001 10", ProtocolError},
	{"[MQTT-3.7.2-1] PUBCOMP reason code 0x80", V5, "70 03 0001 80", ProtocolError},
	{"[MQTT-2.3.1-6] PUBACK packet identifier 0", V311, "40 02 0000", ProtocolError},
	{"[MQTT-2.3.1-6] PUBREL packet identifier 0", V311, "62 02 0000", ProtocolError},
	{"[MQTT-2.2.1-5] PUBREC packet identifier 0", V5, "50 02 0000", ProtocolError},
	{"[MQTT-2.2.1-5] PUBCOMP packet identifier 0", V5, "70 02 0000", ProtocolError},
	{"[§3.4.1] PUBACK remaining length 3", V311, "40 03 0001 00", MalformedPacket},
	{"[§3.6.1] PUBREL remaining length 1", V311, "62 01 00", MalformedPacket},
	{"[§3.7.1] PUBCOMP remaining length 1", V5, "70 01 00", MalformedPacket},
	{"[§3.4.2.2.1] PUBACK property length past the end", V5, "40 04 0001 00 03", MalformedPacket},
	{"[§3.4.2.2.2] PUBACK reason string twice", V5, "40 0c 0001 80 08 1f 0001 61 1f 0001 62", ProtocolError},
	{"[§2.2.2.2] topic alias in PUBACK", V5, "40 07 0001 00 03 23 0001", MalformedPacket},
	{"[§2.2.2.2] session expiry interval in PUBREC", V5, "50 09 0001 00 05 11 00000001", MalformedPacket},
	{"[§3.6.2.2.3] PUBREL user property repeated (allowed)", V5, "62 12 0001 00 0e 26 0001 61 0001 62 26 0001 61 0001 62", Success},

	// ---- SUBSCRIBE (§3.8) ----
	{"[MQTT-3.8.3-3] no topic filter", V311, "82 02 0001", ProtocolError},
	{"[MQTT-3.8.3-2] no topic filter", V5, "82 03 0001 00", ProtocolError},
	{"[MQTT-3-8.3-4] requested QoS 3", V311, "82 08 0001 0003 612f62 03", MalformedPacket},
	{"[MQTT-3-8.3-4] reserved bit 2 set", V311, "82 08 0001 0003 612f62 04", MalformedPacket},
	{"[MQTT-3-8.3-4] reserved bit 7 set", V311, "82 08 0001 0003 612f62 81", MalformedPacket},
	{"[MQTT-3-8.3-4] requested QoS 3", V31, "82 08 0001 0003 612f62 03", MalformedPacket},
	{"[§3.8.3.1] maximum QoS 3", V5, "82 09 0001 00 0003 612f62 03", ProtocolError},
	{"[MQTT-3.8.3-5] reserved bit 6 set", V5, "82 09 0001 00 0003 612f62 40", MalformedPacket},
	{"[MQTT-3.8.3-5] reserved bit 7 set", V5, "82 09 0001 00 0003 612f62 80", MalformedPacket},
	{"[§3.8.3.1] retain handling 3", V5, "82 09 0001 00 0003 612f62 30", ProtocolError},
	{"[MQTT-3.8.3-4] no local on a shared subscription", V5, "82 10 0001 00 000a 2473686172652f672f78 04", ProtocolError},
	{"[§3.8.3.1] no local on a non-shared subscription (allowed)", V5, "82 09 0001 00 0003 612f62 04", Success},
	{"[MQTT-2.3.1-1] packet identifier 0", V311, "82 08 0000 0003 612f62 00", ProtocolError},
	{"[MQTT-2.2.1-3] packet identifier 0", V5, "82 09 0000 00 0003 612f62 00", ProtocolError},
	{"[§3.8.2.1.2] subscription identifier 0", V5, "82 0b 0001 02 0b 00 0003 612f62 00", ProtocolError},
	{"[§3.8.2.1.2] subscription identifier twice", V5, "82 0d 0001 04 0b 01 0b 02 0003 612f62 00", ProtocolError},
	{"[MQTT-1.5.5-1] subscription identifier of five bytes", V5, "82 0f 0001 06 0b ffffffff7f 0003 612f62 00", MalformedPacket},
	{"[§2.2.2.2] reason string in SUBSCRIBE", V5, "82 0d 0001 04 1f 0001 61 0003 612f62 00", MalformedPacket},
	{"[§3.8.3] subscription options byte missing", V311, "82 07 0001 0003 612f62", MalformedPacket},

	// ---- SUBACK (§3.9) ----
	{"[MQTT-3.9.3-2] return code 0x03", V311, "90 03 0001 03", ProtocolError},
	{"[MQTT-3.9.3-2] return code 0x87 (5.0 only)", V311, "90 03 0001 87", ProtocolError},
	{"[MQTT-3.9.3-2] reason code 0x81", V5, "90 04 0001 00 81", ProtocolError},
	{"[MQTT-3.8.4-5] SUBACK without return codes", V311, "90 02 0001", ProtocolError},
	{"[MQTT-3.8.4-6] SUBACK without reason codes", V5, "90 03 0001 00", ProtocolError},
	{"[MQTT-2.3.1-7] SUBACK packet identifier 0", V311, "90 03 0000 00", ProtocolError},
	{"[§2.2.2.2] server reference in SUBACK", V5, "90 08 0001 04 1c 0001 61 00", MalformedPacket},

	// ---- UNSUBSCRIBE (§3.10) ----
	{"[MQTT-3.10.3-2] no topic filter", V311, "a2 02 0001", ProtocolError},
	{"[MQTT-3.10.3-2] no topic filter", V5, "a2 03 0001 00", ProtocolError},
	{"[MQTT-2.3.1-1] packet identifier 0", V311, "a2 05 0000 0001 61", ProtocolError},
	{"[MQTT-2.2.1-3] packet identifier 0", V5, "a2 06 0000 00 0001 61", ProtocolError},
	{"[§2.2.2.2] subscription identifier in UNSUBSCRIBE", V5, "a2 08 0001 02 0b 01 0001 61", MalformedPacket},
	{"[MQTT-3.10.3-1] topic filter length cut in half", V311, "a2 03 0001 00", MalformedPacket},

	// ---- UNSUBACK (§3.11) ----
	{"[MQTT-3.11.3-2] reason code 0x01", V5, "b0 04 0001 00 01", ProtocolError},
	{"[MQTT-3.11.3-2] reason code 0xa2 (a SUBACK code)", V5, "b0 04 0001 00 a2", ProtocolError},
	{"[§3.11.3] UNSUBACK without reason codes", V5, "b0 03 0001 00", ProtocolError},
	{"[§3.11.1] remaining length 3", V311, "b0 03 0001 00", MalformedPacket},
	{"[MQTT-2.3.1-7] UNSUBACK packet identifier 0", V311, "b0 02 0000", ProtocolError},

	// ---- PINGREQ, PINGRESP (§3.12, §3.13) ----
	{"[§3.12] PINGREQ with a body", V311, "c0 01 00", MalformedPacket},
	{"[§3.12] PINGREQ with a body", V5, "c0 01 00", MalformedPacket},
	{"[§3.13] PINGRESP with a body", V5, "d0 02 0000", MalformedPacket},

	// ---- DISCONNECT (§3.14) ----
	{"[§3.14] DISCONNECT with a body", V311, "e0 01 00", MalformedPacket},
	{"[MQTT-3.14.2-1] reason code 0x01", V5, "e0 01 01", ProtocolError},
	{"[MQTT-3.14.2-1] reason code 0x84 (a CONNACK code)", V5, "e0 01 84", ProtocolError},
	{"[§3.14.2.2.1] property length past the end", V5, "e0 03 00 05 1f", MalformedPacket},
	{"[§3.14.2.2.1] trailing byte after the properties", V5, "e0 03 00 00 00", MalformedPacket},
	{"[§2.2.2.2] receive maximum in DISCONNECT", V5, "e0 05 00 03 21 0001", MalformedPacket},
	{"[§3.14.2.2.5] server reference twice", V5, "e0 0a 9c 08 1c 0001 61 1c 0001 62", ProtocolError},

	// ---- AUTH (§3.15) ----
	{"[MQTT-3.15.2-1] reason code 0x80", V5, "f0 0a 80 08 15 0005 534352414d", ProtocolError},
	{"[MQTT-3.15.2-1] reason code 0x04", V5, "f0 01 04", ProtocolError},
	{"[§3.15.2.2.2] authentication method twice", V5, "f0 12 18 10 15 0005 534352414d 15 0005 534352414d", ProtocolError},
	{"[§3.15.2.2.3] authentication data twice", V5, "f0 0e 18 0c 15 0001 61 16 0001 01 16 0001 02", ProtocolError},
	{"[§2.2.2.2] session expiry interval in AUTH", V5, "f0 07 18 05 11 00000001", MalformedPacket},

	// ---- 5.0 properties in general (§2.2.2), on PUBLISH topic "a/b" unless named ----
	{"[§2.2.2.2] unknown property identifier 0x00", V5, "e0 03 00 01 00", MalformedPacket},
	{"[§2.2.2.2] unknown property identifier 0x04", V5, "30 08 0003 612f62 02 04 00", MalformedPacket},
	{"[§2.2.2.2] unknown property identifier 0x2b", V5, "30 08 0003 612f62 02 2b 00", MalformedPacket},
	{"[§2.2.2.2] property identifier 257 (81 02) is unknown, not 0x01", V5, "30 09 0003 612f62 03 81 02 01", MalformedPacket},
	{"[MQTT-1.5.5-1] property identifier 1 in two bytes (81 00)", V5, "30 09 0003 612f62 03 81 00 01", MalformedPacket},
	{"[MQTT-1.5.5-1] property length 0 in two bytes", V5, "30 07 0003 612f62 80 00", MalformedPacket},
	{"[§2.2.2.1] property length past the end", V5, "30 06 0003 612f62 05", MalformedPacket},
	{"[§2.2.2.1] property length past the end of the packet", V5, "30 08 0003 612f62 10 01 01", MalformedPacket},
	{"[§2.2.2.2] session expiry interval in PUBLISH", V5, "30 0b 0003 612f62 05 11 00000001", MalformedPacket},
	{"[§2.2.2.2] will delay interval in PUBLISH", V5, "30 0b 0003 612f62 05 18 00000001", MalformedPacket},
	{"[§3.3.2.3.2] payload format indicator twice", V5, "30 0a 0003 612f62 04 01 01 01 00", ProtocolError},
	{"[§3.3.2.3.4] topic alias twice", V5, "30 0c 0003 612f62 06 23 0001 23 0002", ProtocolError},
	{"[§3.3.2.3.7] user property repeated with the same name (allowed)", V5, "30 14 0003 612f62 0e 26 0001 61 0001 62 26 0001 61 0001 62", Success},
	{"[§3.3.2.3.8] subscription identifier repeated in PUBLISH (allowed)", V5, "30 0a 0003 612f62 04 0b 01 0b 01", Success},
	{"[§3.3.2.3.8] subscription identifier 0", V5, "30 08 0003 612f62 02 0b 00", ProtocolError},
	{"[MQTT-3.3.2-8] topic alias 0", V5, "30 09 0003 612f62 03 23 0000", TopicAliasInvalid},
	{"[§3.3.2.3.2] payload format indicator 2", V5, "30 08 0003 612f62 02 01 02", ProtocolError},
	{"[MQTT-3.3.2-14] response topic with '+'", V5, "30 0c 0003 612f62 06 08 0003 612f2b", ProtocolError},
}

func TestMalformedTable(t *testing.T) {
	for _, c := range mtCases {
		t.Run(c.v.String()+" "+c.name, func(t *testing.T) {
			in := ptHex(t, c.in)
			p, err := Decode(in, c.v)
			if c.code == Success {
				if err != nil {
					t.Fatalf("Decode(%s) = %v, want success", c.in, err)
				}
				return
			}
			var re *ReasonError
			if !errors.As(err, &re) {
				t.Fatalf("Decode(%s) = %+v, %v; want a *ReasonError with code %v", c.in, p, err, c.code)
			}
			if re.Code != c.code {
				t.Fatalf("Decode(%s): code %v (%v), want %v", c.in, re.Code, err, c.code)
			}
			if p != nil {
				t.Errorf("Decode returned a packet with the error: %+v", p)
			}
			switch c.code {
			case MalformedPacket:
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("errors.Is(%v, ErrMalformed) = false", err)
				}
			case ProtocolError:
				if !errors.Is(err, ErrProtocol) {
					t.Errorf("errors.Is(%v, ErrProtocol) = false", err)
				}
			}
			// The type's own Decode, into a struct, rejects it the same way.
			if q := New(PeekType(in)); q != nil {
				var re2 *ReasonError
				if err := q.Decode(in, c.v); !errors.As(err, &re2) || re2.Code != c.code {
					t.Errorf("%T.Decode(%s) = %v, want code %v", q, c.in, err, c.code)
				}
			}
		})
	}
}
