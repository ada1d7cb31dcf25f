package mqtt

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
)

// Every packet type at every protocol level where it exists, as bytes on
// the wire and as the struct they stand for, checked in both directions:
// Decode(bytes) deep-equals the struct and AppendTo(struct) gives the bytes.
//
// The hex is written by hand from the byte layouts of the specifications
// (MQTT 3.1.1 chapter 3, MQTT 5.0 chapter 3), not copied from the codec;
// each case's comment spells the layout out. Remaining lengths and property
// lengths are in hex. Properties are written in identifier order, the
// order AppendTo uses.

// ptDir says which directions a case is checked in.
type ptDir int

const (
	ptBoth       ptDir = iota
	ptDecodeOnly       // valid input the encoder never produces (a shorter form exists)
	ptEncodeOnly       // struct fields the protocol level cannot carry are dropped
)

type ptCase struct {
	name string
	v    Version
	hex  string // spaces are ignored
	pkt  Packet
	dir  ptDir
}

// ptSet returns the set of property identifiers ids: the Present bits
// decoding sets for the single-valued properties it reads.
func ptSet(ids ...PropID) PropSet {
	var s PropSet
	for _, id := range ids {
		s = s.Add(id)
	}
	return s
}

// ptHex decodes s, ignoring spaces.
func ptHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex in test table: %v\n%s", err, s)
	}
	return b
}

// ptShort shortens a long hex string for a failure message.
func ptShort(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

var (
	ptPayload200   = bytes.Repeat([]byte("x"), 200)
	ptPayload16384 = bytes.Repeat([]byte("x"), 16384)
)

var ptCases = []ptCase{
	// ---- CONNECT (§3.1) ----
	{name: "CONNECT clean session", v: V311,
		// len 0x10; "MQTT"; level 4; flags 0x02 clean; keep alive 60; client "test"
		hex: "10 10 0004 4d515454 04 02 003c 0004 74657374",
		pkt: &Connect{ProtocolName: "MQTT", ProtocolLevel: V311, CleanStart: true, KeepAlive: 60, ClientID: "test"}},
	{name: "CONNECT empty client id, keep alive 0", v: V311,
		// len 0x0c; "MQTT"; level 4; flags 0; keep alive 0; client ""
		hex: "10 0c 0004 4d515454 04 00 0000 0000",
		pkt: &Connect{ProtocolName: "MQTT", ProtocolLevel: V311}},
	{name: "CONNECT will, user name and password", v: V311,
		// len 0x1e; "MQTT"; level 4; flags 0xee = user 0x80 | password 0x40 |
		// will retain 0x20 | will QoS 1 0x08 | will 0x04 | clean 0x02;
		// keep alive 30; client "c1"; will topic "w/t"; will message "bye";
		// user "u"; password "p"
		hex: "10 1e 0004 4d515454 04 ee 001e 0002 6331 0003 772f74 0003 627965 0001 75 0001 70",
		pkt: &Connect{ProtocolName: "MQTT", ProtocolLevel: V311, CleanStart: true, KeepAlive: 30, ClientID: "c1",
			Will:        &Will{QoS: 1, Retain: true, Topic: "w/t", Payload: []byte("bye")},
			HasUsername: true, Username: "u", HasPassword: true, Password: []byte("p")}},
	{name: "CONNECT MQIsdp", v: V31,
		// len 0x12; "MQIsdp"; level 3; flags 0x02 clean; keep alive 60; client "test"
		hex: "10 12 0006 4d5149736470 03 02 003c 0004 74657374",
		pkt: &Connect{ProtocolName: "MQIsdp", ProtocolLevel: V31, CleanStart: true, KeepAlive: 60, ClientID: "test"}},
	{name: "CONNECT MQIsdp will QoS 2, user name and password", v: V31,
		// len 0x20; "MQIsdp"; level 3; flags 0xd4 = user | password | will QoS 2
		// 0x10 | will; keep alive 10; client "id"; will topic "t"; will
		// message "m"; user "user"; password "pw"
		hex: "10 20 0006 4d5149736470 03 d4 000a 0002 6964 0001 74 0001 6d 0004 75736572 0002 7077",
		pkt: &Connect{ProtocolName: "MQIsdp", ProtocolLevel: V31, KeepAlive: 10, ClientID: "id",
			Will:        &Will{QoS: 2, Topic: "t", Payload: []byte("m")},
			HasUsername: true, Username: "user", HasPassword: true, Password: []byte("pw")}},
	{name: "CONNECT no properties", v: V5,
		// len 0x11; "MQTT"; level 5; flags clean; keep alive 60; property length 0; client "test"
		hex: "10 11 0004 4d515454 05 02 003c 00 0004 74657374",
		pkt: &Connect{ProtocolName: "MQTT", ProtocolLevel: V5, CleanStart: true, KeepAlive: 60, ClientID: "test"}},
	{name: "CONNECT every property, will properties, password without user name", v: V5,
		// len 0x6d; "MQTT"; level 5; flags 0x56 = password 0x40 | will QoS 2
		// 0x10 | will 0x04 | clean 0x02; keep alive 60;
		// properties 0x2f: session expiry 3600, auth method "SCRAM", auth
		// data 01 02, request problem info 0, request response info 1,
		// receive maximum 20, topic alias maximum 10, user a=b, user a=c,
		// maximum packet size 1024;
		// client "c1";
		// will properties 0x24: payload format 1, message expiry 60, content
		// type "txt", response topic "r/t", correlation data 0a 0b, will
		// delay 5, user k=v;
		// will topic "w"; will payload "x"; password "pw"
		hex: "10 6d 0004 4d515454 05 56 003c" +
			" 2f 11 00000e10 15 0005 534352414d 16 0002 0102 17 00 19 01 21 0014 22 000a" +
			" 26 0001 61 0001 62 26 0001 61 0001 63 27 00000400" +
			" 0002 6331" +
			" 24 01 01 02 0000003c 03 0003 747874 08 0003 722f74 09 0002 0a0b 18 00000005 26 0001 6b 0001 76" +
			" 0001 77 0001 78 0002 7077",
		pkt: &Connect{ProtocolName: "MQTT", ProtocolLevel: V5, CleanStart: true, KeepAlive: 60,
			Props: Properties{
				Present: ptSet(PropSessionExpiry, PropAuthMethod, PropAuthData, PropRequestProblemInfo,
					PropRequestResponseInfo, PropReceiveMaximum, PropTopicAliasMaximum, PropMaximumPacketSize),
				SessionExpiry: 3600, AuthMethod: "SCRAM", AuthData: []byte{1, 2}, RequestProblemInfo: 0,
				RequestResponseInfo: 1, ReceiveMaximum: 20, TopicAliasMaximum: 10,
				User:              []UserProperty{{"a", "b"}, {"a", "c"}},
				MaximumPacketSize: 1024,
			},
			ClientID: "c1",
			Will: &Will{QoS: 2, Topic: "w", Payload: []byte("x"), Props: Properties{
				Present: ptSet(PropPayloadFormat, PropMessageExpiry, PropContentType, PropResponseTopic,
					PropCorrelationData, PropWillDelay),
				PayloadFormat: 1, MessageExpiry: 60, ContentType: "txt", ResponseTopic: "r/t",
				CorrelationData: []byte{0x0a, 0x0b}, WillDelay: 5, User: []UserProperty{{"k", "v"}},
			}},
			HasPassword: true, Password: []byte("pw")}},

	// ---- CONNACK (§3.2) ----
	{name: "CONNACK accepted", v: V311,
		// len 2; flags 0; return code 0
		hex: "20 02 00 00", pkt: &Connack{}},
	{name: "CONNACK session present", v: V311,
		// len 2; flags 0x01 session present; return code 0
		hex: "20 02 01 00", pkt: &Connack{SessionPresent: true}},
	{name: "CONNACK refused not authorized", v: V311,
		// len 2; flags 0; return code 5
		hex: "20 02 00 05", pkt: &Connack{ReasonCode: ReasonCode(ConnRefusedNotAuthorized)}},
	{name: "CONNACK identifier rejected", v: V31,
		// len 2; reserved byte 0; return code 2
		hex: "20 02 00 02", pkt: &Connack{ReasonCode: ReasonCode(ConnRefusedIdentifierRejected)}},
	{name: "CONNACK success, no properties", v: V5,
		// len 3; flags 0; reason 0; property length 0
		hex: "20 03 00 00 00", pkt: &Connack{}},
	{name: "CONNACK not authorized", v: V5,
		// len 3; flags 0; reason 0x87; property length 0
		hex: "20 03 00 87 00", pkt: &Connack{ReasonCode: NotAuthorized}},
	{name: "CONNACK session present, every success property", v: V5,
		// len 0x45; flags session present; reason 0; properties 0x42:
		// session expiry 120, assigned client id "auto-1", server keep
		// alive 0, auth method "SCRAM", auth data "ok", response info
		// "resp/", receive maximum 100, topic alias maximum 5, maximum QoS
		// 1, retain available 0, user x=y, maximum packet size 65536,
		// wildcard subs 0, subscription ids 0, shared subs 1
		hex: "20 45 01 00 42 11 00000078 12 0006 6175746f2d31 13 0000 15 0005 534352414d" +
			" 16 0002 6f6b 1a 0005 726573702f 21 0064 22 0005 24 01 25 00 26 0001 78 0001 79" +
			" 27 00010000 28 00 29 00 2a 01",
		pkt: &Connack{SessionPresent: true, Props: Properties{
			Present: ptSet(PropSessionExpiry, PropAssignedClientID, PropServerKeepAlive, PropAuthMethod,
				PropAuthData, PropResponseInfo, PropReceiveMaximum, PropTopicAliasMaximum, PropMaximumQoS,
				PropRetainAvailable, PropMaximumPacketSize, PropWildcardSubAvailable, PropSubIDAvailable,
				PropSharedSubAvailable),
			SessionExpiry: 120, AssignedClientID: "auto-1", ServerKeepAlive: 0, AuthMethod: "SCRAM",
			AuthData: []byte("ok"), ResponseInfo: "resp/", ReceiveMaximum: 100, TopicAliasMaximum: 5,
			MaximumQoS: 1, RetainAvailable: 0, User: []UserProperty{{"x", "y"}}, MaximumPacketSize: 65536,
			WildcardSubAvailable: 0, SubIDAvailable: 0, SharedSubAvailable: 1,
		}}},
	{name: "CONNACK server moved with server reference and reason string", v: V5,
		// len 0x10; flags 0; reason 0x9d; properties 0x0d: server reference
		// "s2", reason string "moved"
		hex: "20 10 00 9d 0d 1c 0002 7332 1f 0005 6d6f766564",
		pkt: &Connack{ReasonCode: ServerMoved, Props: Properties{
			Present:         ptSet(PropServerReference, PropReasonString),
			ServerReference: "s2", ReasonString: "moved"}}},
	{name: "CONNACK drops 5.0 properties", v: V311, dir: ptEncodeOnly,
		// len 2; flags 0; return code 0 — a 3.1.1 CONNACK has no properties
		hex: "20 02 00 00",
		pkt: &Connack{Props: Properties{ReasonString: "x", MaximumQoS: 1}}},

	// ---- PUBLISH (§3.3) ----
	{name: "PUBLISH QoS 0", v: V311,
		// flags 0; len 0x0a; topic "a/b"; payload "hello"
		hex: "30 0a 0003 612f62 68656c6c6f",
		pkt: &Publish{Topic: []byte("a/b"), Payload: []byte("hello")}},
	{name: "PUBLISH QoS 1 DUP RETAIN", v: V311,
		// flags 0xb = DUP 8 | QoS 1 2 | RETAIN 1; len 0x0c; topic "a/b";
		// packet id 7; payload "hello"
		hex: "3b 0c 0003 612f62 0007 68656c6c6f",
		pkt: &Publish{Dup: true, QoS: 1, Retain: true, Topic: []byte("a/b"), PacketID: 7, Payload: []byte("hello")}},
	{name: "PUBLISH QoS 2 empty payload", v: V311,
		// flags 4 = QoS 2; len 7; topic "a/b"; packet id 65535; no payload
		hex: "34 07 0003 612f62 ffff",
		pkt: &Publish{QoS: 2, Topic: []byte("a/b"), PacketID: 0xffff, Payload: []byte{}}},
	{name: "PUBLISH two-byte remaining length", v: V311,
		// len 203 = 0xcb 0x01; topic "t"; 200 bytes of "x"
		hex: "30 cb01 0001 74" + strings.Repeat("78", 200),
		pkt: &Publish{Topic: []byte("t"), Payload: ptPayload200}},
	{name: "PUBLISH three-byte remaining length", v: V311,
		// len 16387 = 0x83 0x80 0x01; topic "t"; 16384 bytes of "x"
		hex: "30 838001 0001 74" + strings.Repeat("78", 16384),
		pkt: &Publish{Topic: []byte("t"), Payload: ptPayload16384}},
	{name: "PUBLISH QoS 1", v: V31,
		// flags 2 = QoS 1; len 9; topic "a/b"; packet id 1; payload "hi"
		hex: "32 09 0003 612f62 0001 6869",
		pkt: &Publish{QoS: 1, Topic: []byte("a/b"), PacketID: 1, Payload: []byte("hi")}},
	{name: "PUBLISH QoS 0 no properties", v: V5,
		// len 0x0b; topic "a/b"; property length 0; payload "hello"
		hex: "30 0b 0003 612f62 00 68656c6c6f",
		pkt: &Publish{Topic: []byte("a/b"), Payload: []byte("hello")}},
	{name: "PUBLISH QoS 2 DUP RETAIN empty payload", v: V5,
		// flags 0xd = DUP | QoS 2 | RETAIN; len 8; topic "a/b"; packet id
		// 65535; property length 0
		hex: "3d 08 0003 612f62 ffff 00",
		pkt: &Publish{Dup: true, QoS: 2, Retain: true, Topic: []byte("a/b"), PacketID: 0xffff, Payload: []byte{}}},
	{name: "PUBLISH every property, three subscription ids, repeated user properties", v: V5,
		// flags QoS 1; len 0x46; topic "a/b"; packet id 0x0102;
		// properties 0x3c: payload format 1, message expiry 3600, content
		// type "json", response topic "r/1", correlation data 01 02 03,
		// subscription ids 1, 128 (0x80 0x01) and 268435455 (ff ff ff 7f),
		// topic alias 3, user a=1, b=2, a=3; payload "{}"
		hex: "32 46 0003 612f62 0102 3c 01 01 02 00000e10 03 0004 6a736f6e 08 0003 722f31" +
			" 09 0003 010203 0b 01 0b 8001 0b ffffff7f 23 0003" +
			" 26 0001 61 0001 31 26 0001 62 0001 32 26 0001 61 0001 33 7b7d",
		pkt: &Publish{QoS: 1, Topic: []byte("a/b"), PacketID: 0x0102, Payload: []byte("{}"), Props: Properties{
			Present: ptSet(PropPayloadFormat, PropMessageExpiry, PropContentType, PropResponseTopic,
				PropCorrelationData, PropSubscriptionID, PropTopicAlias),
			PayloadFormat: 1, MessageExpiry: 3600, ContentType: "json", ResponseTopic: "r/1",
			CorrelationData: []byte{1, 2, 3}, SubscriptionIDs: []int{1, 128, MaxVarint}, TopicAlias: 3,
			User: []UserProperty{{"a", "1"}, {"b", "2"}, {"a", "3"}},
		}}},
	{name: "PUBLISH empty topic with topic alias", v: V5,
		// len 7; topic ""; properties 3: topic alias 5; payload "x"
		hex: "30 07 0000 03 23 0005 78",
		pkt: &Publish{Topic: []byte{}, Payload: []byte("x"), Props: Properties{
			Present: ptSet(PropTopicAlias), TopicAlias: 5}}},
	{name: "PUBLISH drops 5.0 properties", v: V311, dir: ptEncodeOnly,
		// len 5; topic "a/b"; no property length before 5.0
		hex: "30 05 0003 612f62",
		pkt: &Publish{Topic: []byte("a/b"), Props: Properties{ContentType: "x", TopicAlias: 1}}},

	// ---- PUBACK, PUBREC, PUBREL, PUBCOMP (§3.4–3.7) ----
	{name: "PUBACK", v: V311, hex: "40 02 0007", pkt: &Puback{PacketID: 7}},    // len 2; packet id 7
	{name: "PUBREC", v: V311, hex: "50 02 0008", pkt: &Pubrec{PacketID: 8}},    // len 2; packet id 8
	{name: "PUBREL", v: V311, hex: "62 02 0009", pkt: &Pubrel{PacketID: 9}},    // flags 0010; len 2; packet id 9
	{name: "PUBCOMP", v: V311, hex: "70 02 000a", pkt: &Pubcomp{PacketID: 10}}, // len 2; packet id 10
	{name: "PUBACK drops 5.0 reason code and properties", v: V311, dir: ptEncodeOnly,
		hex: "40 02 0007", // len 2; packet id 7
		pkt: &Puback{PacketID: 7, ReasonCode: QuotaExceeded, Props: Properties{ReasonString: "x"}}},
	{name: "PUBACK", v: V31, hex: "40 02 0007", pkt: &Puback{PacketID: 7}},
	{name: "PUBREC", v: V31, hex: "50 02 0008", pkt: &Pubrec{PacketID: 8}},
	{name: "PUBREL", v: V31, hex: "62 02 0009", pkt: &Pubrel{PacketID: 9}}, // QoS 1 in the 3.1 fixed header
	{name: "PUBREL with DUP", v: V31, dir: ptDecodeOnly,
		hex: "6a 02 0009", // flags 1010: 3.1 sets DUP on a re-sent PUBREL
		pkt: &Pubrel{PacketID: 9}},
	{name: "PUBCOMP", v: V31, hex: "70 02 000a", pkt: &Pubcomp{PacketID: 10}},
	{name: "PUBACK success, reason code omitted (remaining length 2)", v: V5,
		hex: "40 02 0007", pkt: &Puback{PacketID: 7}},
	{name: "PUBACK success written out (remaining length 3)", v: V5, dir: ptDecodeOnly,
		hex: "40 03 0007 00", // len 3; packet id 7; reason 0; no property length
		pkt: &Puback{PacketID: 7}},
	{name: "PUBACK success with empty properties (remaining length 4)", v: V5, dir: ptDecodeOnly,
		hex: "40 04 0007 00 00", // len 4; packet id 7; reason 0; property length 0
		pkt: &Puback{PacketID: 7}},
	{name: "PUBACK no matching subscribers, properties omitted (remaining length 3)", v: V5,
		hex: "40 03 0007 10", // len 3; packet id 7; reason 0x10
		pkt: &Puback{PacketID: 7, ReasonCode: NoMatchingSubscribers}},
	{name: "PUBACK unspecified error with reason string", v: V5,
		// len 0x0a; packet id 7; reason 0x80; properties 6: reason string "bad"
		hex: "40 0a 0007 80 06 1f 0003 626164",
		pkt: &Puback{PacketID: 7, ReasonCode: UnspecifiedError, Props: Properties{
			Present: ptSet(PropReasonString), ReasonString: "bad"}}},
	{name: "PUBACK success with a user property", v: V5,
		// len 0x0b; packet id 7; reason 0; properties 7: user k=v
		hex: "40 0b 0007 00 07 26 0001 6b 0001 76",
		pkt: &Puback{PacketID: 7, Props: Properties{User: []UserProperty{{"k", "v"}}}}},
	{name: "PUBREC success (remaining length 2)", v: V5, hex: "50 02 0008", pkt: &Pubrec{PacketID: 8}},
	{name: "PUBREC packet identifier in use", v: V5,
		hex: "50 03 0008 91", // len 3; packet id 8; reason 0x91
		pkt: &Pubrec{PacketID: 8, ReasonCode: PacketIdentifierInUse}},
	{name: "PUBREL success (remaining length 2)", v: V5, hex: "62 02 0009", pkt: &Pubrel{PacketID: 9}},
	{name: "PUBREL packet identifier not found with reason string", v: V5,
		// flags 0010; len 9; packet id 9; reason 0x92; properties 5: reason string "no"
		hex: "62 09 0009 92 05 1f 0002 6e6f",
		pkt: &Pubrel{PacketID: 9, ReasonCode: PacketIdentifierNotFound, Props: Properties{
			Present: ptSet(PropReasonString), ReasonString: "no"}}},
	{name: "PUBCOMP success (remaining length 2)", v: V5, hex: "70 02 000a", pkt: &Pubcomp{PacketID: 10}},
	{name: "PUBCOMP packet identifier not found", v: V5,
		hex: "70 03 000a 92", // len 3; packet id 10; reason 0x92
		pkt: &Pubcomp{PacketID: 10, ReasonCode: PacketIdentifierNotFound}},

	// ---- SUBSCRIBE (§3.8) ----
	{name: "SUBSCRIBE one filter", v: V311,
		// flags 0010; len 8; packet id 1; "a/b" QoS 1
		hex: "82 08 0001 0003 612f62 01",
		pkt: &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a/b", QoS: 1}}}},
	{name: "SUBSCRIBE two filters (spec example)", v: V311,
		// len 0x0e; packet id 10; "a/b" QoS 1; "c/d" QoS 2
		hex: "82 0e 000a 0003 612f62 01 0003 632f64 02",
		pkt: &Subscribe{PacketID: 10, Subscriptions: []Subscription{{Filter: "a/b", QoS: 1}, {Filter: "c/d", QoS: 2}}}},
	{name: "SUBSCRIBE drops 5.0 options and properties", v: V311, dir: ptEncodeOnly,
		hex: "82 08 0001 0003 612f62 01", // options byte is only the QoS before 5.0
		pkt: &Subscribe{PacketID: 1, Props: Properties{SubscriptionIDs: []int{5}},
			Subscriptions: []Subscription{{Filter: "a/b", QoS: 1, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}}}},
	{name: "SUBSCRIBE one filter", v: V31,
		hex: "82 08 0001 0003 612f62 01",
		pkt: &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a/b", QoS: 1}}}},
	{name: "SUBSCRIBE with DUP", v: V31, dir: ptDecodeOnly,
		hex: "8a 08 0001 0003 612f62 01", // flags 1010: 3.1 sets DUP on a re-sent SUBSCRIBE
		pkt: &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a/b", QoS: 1}}}},
	{name: "SUBSCRIBE no properties", v: V5,
		// len 7; packet id 3; property length 0; "a" options 0
		hex: "82 07 0003 00 0001 61 00",
		pkt: &Subscribe{PacketID: 3, Subscriptions: []Subscription{{Filter: "a"}}}},
	{name: "SUBSCRIBE subscription id, user property, every option bit", v: V5,
		// len 0x25; packet id 2; properties 9: subscription id 42, user u=v;
		// "a/#" options 0x2e = retain handling 2 (0x20) | retain as
		// published 0x08 | no local 0x04 | QoS 2;
		// "+/b" options 0x10 = retain handling 1;
		// "$share/g/x" options 0x01 = QoS 1
		hex: "82 25 0002 09 0b 2a 26 0001 75 0001 76 0003 612f23 2e 0003 2b2f62 10 000a 2473686172652f672f78 01",
		pkt: &Subscribe{PacketID: 2,
			Props: Properties{Present: ptSet(PropSubscriptionID), SubscriptionIDs: []int{42}, User: []UserProperty{{"u", "v"}}},
			Subscriptions: []Subscription{
				{Filter: "a/#", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2},
				{Filter: "+/b", RetainHandling: 1},
				{Filter: "$share/g/x", QoS: 1},
			}}},

	// ---- SUBACK (§3.9) ----
	{name: "SUBACK granted QoS 0, 1, 2 and failure", v: V311,
		hex: "90 06 0001 00 01 02 80", // len 6; packet id 1; return codes 0 1 2 0x80
		pkt: &Suback{PacketID: 1, ReasonCodes: []ReasonCode{GrantedQoS0, GrantedQoS1, GrantedQoS2, 0x80}}},
	{name: "SUBACK maps 5.0 failure codes to 0x80", v: V311, dir: ptEncodeOnly,
		hex: "90 04 0001 01 80", // len 4; packet id 1; return codes 1 0x80
		pkt: &Suback{PacketID: 1, ReasonCodes: []ReasonCode{GrantedQoS1, NotAuthorized}}},
	{name: "SUBACK granted QoS 2", v: V31,
		hex: "90 03 0001 02", // len 3; packet id 1; granted QoS 2
		pkt: &Suback{PacketID: 1, ReasonCodes: []ReasonCode{GrantedQoS2}}},
	{name: "SUBACK no properties", v: V5,
		hex: "90 05 0002 00 01 97", // len 5; packet id 2; property length 0; codes 1 0x97
		pkt: &Suback{PacketID: 2, ReasonCodes: []ReasonCode{GrantedQoS1, QuotaExceeded}}},
	{name: "SUBACK reason string", v: V5,
		// len 0x0a; packet id 2; properties 5: reason string "no"; codes 0 0xa2
		hex: "90 0a 0002 05 1f 0002 6e6f 00 a2",
		pkt: &Suback{PacketID: 2, Props: Properties{Present: ptSet(PropReasonString), ReasonString: "no"},
			ReasonCodes: []ReasonCode{GrantedQoS0, WildcardSubscriptionsNotSupported}}},

	// ---- UNSUBSCRIBE (§3.10) ----
	{name: "UNSUBSCRIBE one filter", v: V311,
		hex: "a2 05 0003 0001 61", // flags 0010; len 5; packet id 3; "a"
		pkt: &Unsubscribe{PacketID: 3, Filters: []string{"a"}}},
	{name: "UNSUBSCRIBE two filters (spec example)", v: V311,
		hex: "a2 0c 0004 0003 612f62 0003 632f64", // len 0x0c; packet id 4; "a/b" "c/d"
		pkt: &Unsubscribe{PacketID: 4, Filters: []string{"a/b", "c/d"}}},
	{name: "UNSUBSCRIBE one filter", v: V31,
		hex: "a2 05 0003 0001 61", pkt: &Unsubscribe{PacketID: 3, Filters: []string{"a"}}},
	{name: "UNSUBSCRIBE with DUP", v: V31, dir: ptDecodeOnly,
		hex: "aa 05 0003 0001 61", // flags 1010: 3.1 sets DUP on a re-sent UNSUBSCRIBE
		pkt: &Unsubscribe{PacketID: 3, Filters: []string{"a"}}},
	{name: "UNSUBSCRIBE no properties", v: V5,
		hex: "a2 06 0005 00 0001 23", // len 6; packet id 5; property length 0; "#"
		pkt: &Unsubscribe{PacketID: 5, Filters: []string{"#"}}},
	{name: "UNSUBSCRIBE user property", v: V5,
		hex: "a2 0d 0005 07 26 0001 6b 0001 76 0001 23", // len 0x0d; packet id 5; properties 7: user k=v; "#"
		pkt: &Unsubscribe{PacketID: 5, Props: Properties{User: []UserProperty{{"k", "v"}}}, Filters: []string{"#"}}},

	// ---- UNSUBACK (§3.11) ----
	{name: "UNSUBACK", v: V311, hex: "b0 02 0003", pkt: &Unsuback{PacketID: 3}}, // len 2; packet id 3
	{name: "UNSUBACK", v: V31, hex: "b0 02 0003", pkt: &Unsuback{PacketID: 3}},
	{name: "UNSUBACK drops 5.0 reason codes", v: V311, dir: ptEncodeOnly,
		hex: "b0 02 0003", pkt: &Unsuback{PacketID: 3, ReasonCodes: []ReasonCode{NoSubscriptionExisted}}},
	{name: "UNSUBACK success", v: V5,
		hex: "b0 04 0003 00 00", // len 4; packet id 3; property length 0; code 0
		pkt: &Unsuback{PacketID: 3, ReasonCodes: []ReasonCode{Success}}},
	{name: "UNSUBACK reason string, two codes", v: V5,
		// len 0x0b; packet id 3; properties 6: reason string "abc"; codes 0x11 0x87
		hex: "b0 0b 0003 06 1f 0003 616263 11 87",
		pkt: &Unsuback{PacketID: 3, Props: Properties{Present: ptSet(PropReasonString), ReasonString: "abc"},
			ReasonCodes: []ReasonCode{NoSubscriptionExisted, NotAuthorized}}},

	// ---- PINGREQ, PINGRESP (§3.12, §3.13) ----
	{name: "PINGREQ", v: V31, hex: "c0 00", pkt: &Pingreq{}},
	{name: "PINGRESP", v: V31, hex: "d0 00", pkt: &Pingresp{}},
	{name: "PINGREQ", v: V311, hex: "c0 00", pkt: &Pingreq{}},
	{name: "PINGRESP", v: V311, hex: "d0 00", pkt: &Pingresp{}},
	{name: "PINGREQ", v: V5, hex: "c0 00", pkt: &Pingreq{}},
	{name: "PINGRESP", v: V5, hex: "d0 00", pkt: &Pingresp{}},

	// ---- DISCONNECT (§3.14) ----
	{name: "DISCONNECT", v: V31, hex: "e0 00", pkt: &Disconnect{}},
	{name: "DISCONNECT", v: V311, hex: "e0 00", pkt: &Disconnect{}},
	{name: "DISCONNECT drops 5.0 reason code", v: V311, dir: ptEncodeOnly,
		hex: "e0 00", pkt: &Disconnect{ReasonCode: ServerShuttingDown}},
	{name: "DISCONNECT normal, remaining length 0", v: V5, hex: "e0 00", pkt: &Disconnect{}},
	{name: "DISCONNECT normal written out (remaining length 1)", v: V5, dir: ptDecodeOnly,
		hex: "e0 01 00", pkt: &Disconnect{}},
	{name: "DISCONNECT normal with empty properties (remaining length 2)", v: V5, dir: ptDecodeOnly,
		hex: "e0 02 00 00", pkt: &Disconnect{}},
	{name: "DISCONNECT with will message, properties omitted", v: V5,
		hex: "e0 01 04", pkt: &Disconnect{ReasonCode: DisconnectWithWillMessage}},
	{name: "DISCONNECT every property", v: V5,
		// len 0x19; reason 0x8b; properties 0x17: session expiry 0, server
		// reference "s2", reason string "bye", user a=b
		hex: "e0 19 8b 17 11 00000000 1c 0002 7332 1f 0003 627965 26 0001 61 0001 62",
		pkt: &Disconnect{ReasonCode: ServerShuttingDown, Props: Properties{
			Present:       ptSet(PropSessionExpiry, PropServerReference, PropReasonString),
			SessionExpiry: 0, ServerReference: "s2", ReasonString: "bye", User: []UserProperty{{"a", "b"}}}}},

	// ---- AUTH (§3.15), 5.0 only ----
	{name: "AUTH success, remaining length 0", v: V5, hex: "f0 00", pkt: &Auth{}},
	{name: "AUTH success with method", v: V5,
		hex: "f0 0a 00 08 15 0005 534352414d", // len 0x0a; reason 0; properties 8: auth method "SCRAM"
		pkt: &Auth{Props: Properties{Present: ptSet(PropAuthMethod), AuthMethod: "SCRAM"}}},
	{name: "AUTH continue authentication", v: V5,
		// len 0x11; reason 0x18; properties 0x0f: auth method "SCRAM", auth data 01 02 03 04
		hex: "f0 11 18 0f 15 0005 534352414d 16 0004 01020304",
		pkt: &Auth{ReasonCode: ContinueAuthentication, Props: Properties{
			Present: ptSet(PropAuthMethod, PropAuthData), AuthMethod: "SCRAM", AuthData: []byte{1, 2, 3, 4}}}},
	{name: "AUTH re-authenticate with reason string and user property", v: V5,
		// len 0x16; reason 0x19; properties 0x14: auth method "SCRAM", reason string "hi", user a=b
		hex: "f0 16 19 14 15 0005 534352414d 1f 0002 6869 26 0001 61 0001 62",
		pkt: &Auth{ReasonCode: ReAuthenticate, Props: Properties{
			Present:    ptSet(PropAuthMethod, PropReasonString),
			AuthMethod: "SCRAM", ReasonString: "hi", User: []UserProperty{{"a", "b"}}}}},
}

func TestPacketsTable(t *testing.T) {
	for _, c := range ptCases {
		t.Run(c.v.String()+" "+c.name, func(t *testing.T) {
			wire := ptHex(t, c.hex)
			if c.dir != ptEncodeOnly {
				got, err := Decode(wire, c.v)
				if err != nil {
					t.Fatalf("Decode(%s): %v", ptShort(c.hex), err)
				}
				if !reflect.DeepEqual(got, c.pkt) {
					t.Errorf("Decode(%s)\n got  %+v\n want %+v", ptShort(c.hex), got, c.pkt)
				}
			}
			if c.dir != ptDecodeOnly {
				prefix := []byte{0xEE, 0xFF}
				b, err := c.pkt.AppendTo(append([]byte(nil), prefix...), c.v)
				if err != nil {
					t.Fatalf("AppendTo: %v", err)
				}
				if !bytes.Equal(b[:len(prefix)], prefix) {
					t.Fatalf("AppendTo changed the bytes already in dst: %x", b[:len(prefix)])
				}
				if got := b[len(prefix):]; !bytes.Equal(got, wire) {
					t.Errorf("AppendTo\n got  % x\n want % x", got, wire)
				}
			}
		})
	}
}

// TestPacketsTableReusedStruct decodes every case into one struct per
// packet type, reused across cases and versions: Decode must overwrite
// every field a previous packet set.
func TestPacketsTableReusedStruct(t *testing.T) {
	reused := map[PacketType]Packet{}
	for _, c := range ptCases {
		if c.dir == ptEncodeOnly {
			continue
		}
		wire := ptHex(t, c.hex)
		typ := PeekType(wire)
		p, ok := reused[typ]
		if !ok {
			p = New(typ)
			reused[typ] = p
		}
		if err := p.Decode(wire, c.v); err != nil {
			t.Errorf("%v %s: Decode: %v", c.v, c.name, err)
			continue
		}
		if !reflect.DeepEqual(p, c.pkt) {
			t.Errorf("%v %s: Decode into a reused %T\n got  %+v\n want %+v", c.v, c.name, p, p, c.pkt)
		}
	}
}

// TestPacketsTableCoverage checks the table itself: every packet type at
// every level where it exists, and every property on some 5.0 packet.
func TestPacketsTableCoverage(t *testing.T) {
	types := map[Version]map[PacketType]bool{V31: {}, V311: {}, V5: {}}
	var seen PropSet
	user := false
	addProps := func(p Properties) {
		seen |= p.Present
		user = user || len(p.User) > 0
	}
	for _, c := range ptCases {
		if c.dir != ptBoth {
			continue
		}
		types[c.v][c.pkt.Type()] = true
		if c.v != V5 {
			continue
		}
		if f := reflect.ValueOf(c.pkt).Elem().FieldByName("Props"); f.IsValid() {
			addProps(f.Interface().(Properties))
		}
		if cp, ok := c.pkt.(*Connect); ok && cp.Will != nil {
			addProps(cp.Will.Props)
		}
	}
	for v, got := range types {
		last := DISCONNECT
		if v == V5 {
			last = AUTH
		}
		for typ := CONNECT; typ <= last; typ++ {
			if !got[typ] {
				t.Errorf("no %v case at %v checked in both directions", typ, v)
			}
		}
	}
	for _, id := range propOrder {
		if id == PropUserProperty {
			if !user {
				t.Errorf("no case with a %v", id)
			}
		} else if !seen.Has(id) {
			t.Errorf("no case with %v (0x%02X)", id, byte(id))
		}
	}
}
