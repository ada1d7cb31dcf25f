package mqtt

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// Fuzz targets for the codec (DESIGN §2).
//
//	go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime 5m ./mqtt/
//	go test -run '^$' -fuzz '^FuzzReader$' -fuzztime 5m ./mqtt/
//
// FuzzDecode reaches every decoder through Decode, which dispatches on the
// packet type in the first byte; its seeds hold a valid packet of every type
// at every version, so the fuzzer starts inside each of them. Seeds are the
// f.Add calls below, the files in testdata/fuzz/<target>/, and the captured
// client packets in ../testdata/packets/*.hex when that directory exists.

var fuzzVersions = []Version{V31, V311, V5}

// fuzzVersion maps the fuzzer's version byte to a protocol level the broker
// would pass: any other byte is spread over the three, so that no input is
// wasted on a level nobody decodes at.
func fuzzVersion(b byte) Version {
	switch v := Version(b); v {
	case V31, V311, V5:
		return v
	}
	return Version(3 + b%3)
}

// fuzzSeedPackets returns hand-written valid packets of every type that
// exists at v, with the options and properties each can carry.
func fuzzSeedPackets(v Version) []Packet {
	var props, willP, ackP, subP, connackP, discP, authP Properties
	if v == V5 {
		props = Properties{PayloadFormat: 1, MessageExpiry: 60, ContentType: "text/plain",
			ResponseTopic: "r/t", CorrelationData: []byte{1, 2}, SubscriptionIDs: []int{1, 300},
			TopicAlias: 4, User: []UserProperty{{"k", "v"}, {"k", "v2"}}}
		willP = Properties{WillDelay: 30, PayloadFormat: 1, User: []UserProperty{{"wk", "wv"}}}
		ackP = Properties{ReasonString: "why", User: []UserProperty{{"a", "b"}}}
		subP = Properties{SubscriptionIDs: []int{268435455}, User: []UserProperty{{"s", "t"}}}
		connackP = Properties{SessionExpiry: 0xFFFFFFFF, AssignedClientID: "auto-1", ServerKeepAlive: 30,
			ReceiveMaximum: 10, TopicAliasMaximum: 5, MaximumPacketSize: 1 << 20, MaximumQoS: 1,
			Present:      PropSet(0).Add(PropRetainAvailable).Add(PropWildcardSubAvailable).Add(PropSubIDAvailable).Add(PropSharedSubAvailable),
			ResponseInfo: "resp", ServerReference: "other:1883", ReasonString: "ok", AuthMethod: "SCRAM-SHA-1", AuthData: []byte("x")}
		discP = Properties{SessionExpiry: 10, ReasonString: "bye", ServerReference: "s2"}
		authP = Properties{AuthMethod: "SCRAM-SHA-1", AuthData: []byte{0, 1, 2}, ReasonString: "go on"}
	}
	rc := func(c ReasonCode) ReasonCode {
		if v == V5 {
			return c
		}
		return 0
	}
	pkts := []Packet{
		&Connect{ProtocolLevel: v, CleanStart: true, KeepAlive: 60, ClientID: "c1"},
		&Connect{ProtocolLevel: v, KeepAlive: 15, ClientID: "client-with-will",
			Props: fuzzOnlyV5(Properties{SessionExpiry: 300, ReceiveMaximum: 20, MaximumPacketSize: 4096,
				TopicAliasMaximum: 10, RequestResponseInfo: 1, Present: PropSet(0).Add(PropRequestProblemInfo),
				AuthMethod: "PLAIN", AuthData: []byte("ab"), User: []UserProperty{{"a", "b"}}}, v),
			Will:        &Will{QoS: 1, Retain: true, Topic: "weir/will", Payload: []byte("gone"), Props: willP},
			HasUsername: true, Username: "alice", HasPassword: true, Password: []byte("secret")},
		&Connack{SessionPresent: true, Props: connackP},
		&Connack{ReasonCode: map[Version]ReasonCode{V31: 5, V311: 5, V5: NotAuthorized}[v]},
		&Publish{Topic: []byte("sensors/room1/temp"), Payload: []byte("21.5")},
		&Publish{QoS: 1, Dup: true, Retain: true, PacketID: 1, Topic: []byte("a/b"), Payload: []byte{}, Props: props},
		&Publish{QoS: 2, PacketID: 65535, Topic: []byte("日本/$x/"), Payload: bytes.Repeat([]byte{0xFF}, 200)},
		&Puback{PacketID: 7, ReasonCode: rc(NoMatchingSubscribers), Props: ackP},
		&Puback{PacketID: 8},
		&Pubrec{PacketID: 9, ReasonCode: rc(QuotaExceeded), Props: ackP},
		&Pubrel{PacketID: 9, ReasonCode: rc(PacketIdentifierNotFound)},
		&Pubrel{PacketID: 10},
		&Pubcomp{PacketID: 9, Props: ackP},
		&Subscribe{PacketID: 2, Props: subP, Subscriptions: []Subscription{
			{Filter: "a/+/c", QoS: 2, NoLocal: v == V5, RetainAsPublished: v == V5, RetainHandling: map[bool]byte{true: 2}[v == V5]},
			{Filter: "#", QoS: 0}, {Filter: "$share/g/x/#", QoS: 1}}},
		&Suback{PacketID: 2, Props: ackP, ReasonCodes: []ReasonCode{2, 0, 1, 0x80}},
		&Unsubscribe{PacketID: 3, Props: Properties{User: subP.User}, Filters: []string{"a/+/c", "old/#"}},
		&Pingreq{}, &Pingresp{},
		&Disconnect{},
		&Disconnect{ReasonCode: rc(DisconnectWithWillMessage), Props: discP},
	}
	if v != V5 {
		pkts = append(pkts, &Unsuback{PacketID: 3})
	}
	if v == V5 {
		pkts = append(pkts,
			&Publish{QoS: 1, PacketID: 2, Topic: []byte{}, Props: Properties{TopicAlias: 1}, Payload: []byte("by alias")},
			&Unsuback{PacketID: 3, Props: ackP, ReasonCodes: []ReasonCode{Success, NoSubscriptionExisted, NotAuthorized}},
			&Auth{}, &Auth{ReasonCode: ContinueAuthentication, Props: authP},
			&Auth{ReasonCode: ReAuthenticate, Props: Properties{AuthMethod: "SCRAM-SHA-1"}})
	}
	return pkts
}

// fuzzOnlyV5 drops the properties of a 5.0 CONNECT below 5.0 (they would
// not be encoded there anyway; this keeps the seeds honest).
func fuzzOnlyV5(p Properties, v Version) Properties {
	if v != V5 {
		return Properties{}
	}
	return p
}

// fuzzSeedEncodings returns the encodings of fuzzSeedPackets(v) and of a
// few random packets of each type from the round-trip generator.
func fuzzSeedEncodings(tb testing.TB, v Version) [][]byte {
	tb.Helper()
	pkts := fuzzSeedPackets(v)
	g := newRTGen(int64(v)*31+5, v)
	for _, t := range g.types() {
		for range 3 {
			pkts = append(pkts, g.packet(t))
		}
	}
	var out [][]byte
	for _, p := range pkts {
		b, err := p.AppendTo(nil, v)
		if err != nil {
			tb.Fatalf("seed %T at %v: %v", p, v, err)
		}
		if _, err := Decode(b, v); err != nil {
			tb.Fatalf("seed %T at %v does not decode: %v\n%x", p, v, err, b)
		}
		if len(b) <= 4096 { // the fuzzer is faster on small inputs
			out = append(out, b)
		}
	}
	return out
}

// fuzzMalformedSeeds are invalid packets, one per kind of rejection, so
// that the fuzzer starts next to each error path too.
var fuzzMalformedSeeds = []struct {
	hex string
	v   Version
}{
	{"00", V311},                                     // reserved type 0
	{"c001", V311},                                   // remaining length past the end
	{"30ffffffff7f", V311},                           // five-byte remaining length
	{"308000", V311},                                 // non-minimal remaining length
	{"c100", V311},                                   // PINGREQ with flags
	{"6a020001", V31},                                // 3.1 PUBREL with DUP: accepted
	{"6a020001", V311},                               // the same in 3.1.1: malformed
	{"3a0500016100", V311},                           // QoS 1 PUBLISH, packet id 0
	{"380300016100", V311},                           // DUP at QoS 0
	{"300400012b61", V311},                           // wildcard in the topic name
	{"3007000161038102" + "00", V5},                  // property identifier 257
	{"30070001610301" + "0202", V5},                  // payload format 2
	{"300900016105" + "2300002300", V5},              // topic alias 0 then again
	{"100c00044d5154540401003c0000", V311},           // CONNECT reserved flag
	{"100c00044d5154540340003c0000", V311},           // 3.1 level with "MQTT"
	{"100c00044d51545404" + "40" + "003c0000", V311}, // password without user name
	{"820600010001" + "2303", V311},                  // SUBSCRIBE QoS 3
	{"82070001" + "00" + "000123" + "03", V5},        // SUBSCRIBE 5.0 QoS 3
	{"90030001" + "03", V311},                        // SUBACK return code 3
	{"e00100", V5},                                   // DISCONNECT reason 0 and nothing more
	{"f00119", V311},                                 // AUTH before 5.0
	{"1008" + "00044d515454" + "04" + "02", V311},    // CONNECT cut after its flags
}

// fuzzCapture is one captured packet and the version its client spoke.
type fuzzCapture struct {
	name string
	b    []byte
	v    Version // 0 when the file name does not say
}

// fuzzCaptures reads the captured client packets in ../testdata/packets
// (one packet as hex per file, named <scenario>-<nn>-<type>.hex, the
// scenario naming the version). It returns nil if there are none.
func fuzzCaptures(tb testing.TB) []fuzzCapture {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "packets", "*.hex"))
	sort.Strings(files)
	var out []fuzzCapture
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var hx strings.Builder
		for _, line := range strings.Split(string(raw), "\n") {
			if i := strings.IndexByte(line, '#'); i >= 0 {
				line = line[:i]
			}
			hx.WriteString(strings.Join(strings.Fields(line), ""))
		}
		b, err := hex.DecodeString(hx.String())
		if err != nil || len(b) == 0 {
			continue
		}
		c := fuzzCapture{name: filepath.Base(f), b: b}
		for _, part := range strings.Split(strings.TrimSuffix(c.name, ".hex"), "-") {
			switch part {
			case "v31":
				c.v = V31
			case "v311":
				c.v = V311
			case "v5":
				c.v = V5
			}
		}
		out = append(out, c)
	}
	return out
}

// fuzzDirty supplies packets with every field set, to decode into: Decode
// must overwrite every field, so the result must equal a fresh decode.
var fuzzDirty = struct {
	sync.Mutex
	g *rtGen
}{g: newRTGen(99, V5)}

func fuzzDirtyPacket(t PacketType) Packet {
	fuzzDirty.Lock()
	defer fuzzDirty.Unlock()
	for {
		p := fuzzDirty.g.packet(t)
		switch p := p.(type) {
		case *Connect:
			if p.Will == nil {
				continue
			}
		case *Publish:
			if len(p.Payload) > 1024 {
				continue
			}
		}
		return p
	}
}

func FuzzDecode(f *testing.F) {
	for _, v := range fuzzVersions {
		for _, b := range fuzzSeedEncodings(f, v) {
			f.Add(b, byte(v))
		}
	}
	for _, s := range fuzzMalformedSeeds {
		b, err := hex.DecodeString(s.hex)
		if err != nil {
			f.Fatalf("seed %q: %v", s.hex, err)
		}
		f.Add(b, byte(s.v))
	}
	for _, c := range fuzzCaptures(f) {
		if c.v != 0 {
			f.Add(c.b, byte(c.v))
			continue
		}
		for _, v := range fuzzVersions {
			f.Add(c.b, byte(v))
		}
	}

	f.Fuzz(func(t *testing.T, data []byte, ver byte) {
		v := fuzzVersion(ver)
		in := bytes.Clone(data)

		p, err := Decode(data, v)
		if !bytes.Equal(in, data) {
			t.Fatalf("Decode modified its input")
		}
		if err != nil {
			var re *ReasonError
			if !errors.As(err, &re) {
				t.Fatalf("Decode error %v (%T) is not a *ReasonError", err, err)
			}
			if !re.Code.IsError() {
				t.Fatalf("Decode error %v carries the non-error code 0x%02X", err, byte(re.Code))
			}
			if p != nil {
				t.Fatalf("Decode returned %T and an error", p)
			}
			fuzzWrongType(t, data, v)
			return
		}
		if p.Type() != PeekType(data) {
			t.Fatalf("Decode of a %v returned %T", PeekType(data), p)
		}

		// Decoding into a struct that held another packet gives the same.
		dirty := fuzzDirtyPacket(p.Type())
		if err := dirty.Decode(data, v); err != nil {
			t.Fatalf("Decode into a used %T: %v (fresh decode succeeded)", dirty, err)
		}
		if !reflect.DeepEqual(dirty, p) {
			t.Fatalf("Decode into a used struct left old fields\n got  %+v\n want %+v", dirty, p)
		}

		if pub, ok := p.(*Publish); ok {
			fuzzCheckPublishAliasing(t, pub, data)
		}

		// The fixed point: encode(decode(x)) decodes to decode(x) and
		// encodes to the same bytes again.
		enc, err := p.AppendTo(nil, v)
		if err != nil {
			t.Fatalf("AppendTo of a decoded %T: %v\n%+v", p, err, p)
		}
		if len(enc) > len(data) {
			t.Fatalf("re-encoding grew the packet from %d to %d bytes\n in  %x\n out %x", len(data), len(enc), data, enc)
		}
		q, err := Decode(enc, v)
		if err != nil {
			t.Fatalf("Decode(AppendTo(Decode(x))): %v\n x   %x\n enc %x\n p   %+v", err, data, enc, p)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("Decode(AppendTo(Decode(x))) != Decode(x)\n x    %x\n enc  %x\n got  %+v\n want %+v", data, enc, q, p)
		}
		enc2, err := q.AppendTo(nil, v)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %x then %x (%v)", enc, enc2, err)
		}

		// The round trip through the Reader frames the same bytes.
		rd := NewReader(bytes.NewReader(enc), len(enc))
		if got, err := rd.ReadPacket(); err != nil || !bytes.Equal(got, enc) {
			t.Fatalf("Reader at the packet's own size: %x, %v", got, err)
		}
	})
}

// fuzzWrongType decodes data with a decoder of another type: it must fail
// without panicking.
func fuzzWrongType(t *testing.T, data []byte, v Version) {
	if len(data) == 0 {
		return
	}
	other := PacketType(data[0]>>4)%15 + 1 // 1..15, never the packet's own type
	if other == PeekType(data) {
		other = other%15 + 1
	}
	if err := New(other).Decode(data, v); err == nil && PeekType(data) != other {
		t.Fatalf("%v decoder accepted a %v packet", other, PeekType(data))
	}
}

// fuzzCheckPublishAliasing checks the zero-copy promise (DESIGN §2): the
// topic and payload of a decoded PUBLISH point into the packet, and Clone
// copies them out.
func fuzzCheckPublishAliasing(t *testing.T, p *Publish, data []byte) {
	within := func(s []byte) bool {
		if len(s) == 0 {
			return true
		}
		start := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
		at := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
		return at >= start && at+uintptr(len(s)) <= start+uintptr(len(data))
	}
	if !within(p.Topic) || !within(p.Payload) || !within(p.Props.CorrelationData) {
		t.Fatalf("decoded PUBLISH copies its topic, payload or correlation data")
	}
	c := p.Clone()
	want := *p
	want.Props.AuthData = nil
	if !reflect.DeepEqual(c, &want) {
		t.Fatalf("Clone differs\n got  %+v\n want %+v", c, &want)
	}
	if (len(c.Payload) > 0 && within(c.Payload)) || (len(c.Topic) > 0 && within(c.Topic)) {
		t.Fatalf("Clone still aliases the packet")
	}
}

// FuzzReader frames an arbitrary byte stream, delivered in reads whose
// sizes the fuzzer picks, with an arbitrary limit, and checks the result
// against fuzzReaderOracle, a simple framer over the whole input: the
// packets are exactly the input's leading packets (so their concatenation
// is a prefix of it), none is larger than the limit, the final error is the
// right one, and the Reader's buffer never exceeds the limit nor twice the
// bytes it was given nor the largest packet it had to hold.
func FuzzReader(f *testing.F) {
	var stream []byte
	for _, v := range fuzzVersions {
		var perVersion []byte
		for _, b := range fuzzSeedEncodings(f, v)[:12] {
			perVersion = append(perVersion, b...)
		}
		f.Add(perVersion, uint32(0), byte(0))
		f.Add(perVersion, uint32(200), byte(0x81))
		stream = append(stream, perVersion...)
	}
	f.Add(stream, uint32(0), byte(3))
	f.Add(stream, uint32(1000), byte(0x47))
	for _, tc := range []struct {
		hex     string
		max     uint32
		pattern byte
	}{
		{"", 0, 0},
		{"c000c000d000", 2, 1},
		{"30ffffff7f00036162", 1 << 20, 1},    // 268,435,455 declared, limit 1 MiB
		{"30ffffff7f00036162", 0, 0x80},       // the same with no limit: cut short
		{"30ffffffff7f0000", 0, 2},            // five-byte remaining length
		{"30808000", 0, 1},                    // non-minimal remaining length
		{"30800101", 3, 0},                    // limit below a fixed header
		{"3003000161" + "3003000161", 5, 0},   // two packets at the limit
		{"3003000161" + "300400016161", 5, 0}, // the second one byte over
		{"e000" + "30", 0, 0x80},              // cut inside a fixed header
	} {
		b, _ := hex.DecodeString(tc.hex)
		f.Add(b, tc.max, tc.pattern)
	}
	// Captured client streams: each scenario's packets in order.
	var scenario string
	var capStream []byte
	for _, c := range fuzzCaptures(f) {
		name := c.name
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if j := strings.LastIndexByte(name[:i], '-'); j > 0 {
				name = name[:j]
			}
		}
		if name != scenario && capStream != nil {
			f.Add(capStream, uint32(0), byte(5))
			capStream = nil
		}
		scenario = name
		capStream = append(capStream, c.b...)
	}
	if capStream != nil {
		f.Add(capStream, uint32(0), byte(5))
	}

	f.Fuzz(func(t *testing.T, data []byte, maxSize uint32, pattern byte) {
		src := &fuzzSource{data: data, pattern: pattern}
		rd := NewReader(src, int(min(maxSize, 1<<30)))
		limit := rd.max
		wantPkts, wantErr, largest := fuzzReaderOracle(data, limit)

		check := func(when string) {
			c := cap(rd.buf)
			if c > limit {
				t.Fatalf("%s: buffer of %d bytes, limit %d", when, c, limit)
			}
			if c > max(min(512, limit), 2*len(data)) {
				t.Fatalf("%s: buffer of %d bytes for %d bytes of input", when, c, len(data))
			}
			if c > max(min(512, limit), largest) {
				t.Fatalf("%s: buffer of %d bytes, largest packet %d", when, c, largest)
			}
		}
		off := 0
		for i, w := range wantPkts {
			got, err := rd.ReadPacket()
			if err != nil {
				t.Fatalf("packet %d at offset %d: %v, want %x", i, off, err, w)
			}
			if len(got) > limit {
				t.Fatalf("packet %d of %d bytes, limit %d", i, len(got), limit)
			}
			if !bytes.Equal(got, data[off:off+len(got)]) || len(got) != len(w) {
				t.Fatalf("packet %d: got %x, want %x", i, got, w)
			}
			off += len(got)
			check("after packet")
		}
		for range 2 { // the error, and the same again on the next call
			got, err := rd.ReadPacket()
			if got != nil {
				t.Fatalf("after %d packets: an extra packet %x", len(wantPkts), got)
			}
			fuzzSameErr(t, err, wantErr)
			check("after the error")
		}
	})
}

// fuzzReaderOracle frames data the slow, obvious way with a limit: it
// returns the packets a Reader must return, the error it must end with,
// and the size of the largest packet within the limit it had to hold.
func fuzzReaderOracle(data []byte, limit int) (pkts [][]byte, end error, largest int) {
	hdr := min(5, limit) // a Reader's fixed-header window
	for off := 0; ; {
		rest := data[off:]
		if len(rest) == 0 {
			return pkts, io.EOF, largest
		}
		window := rest[:min(len(rest), hdr)]
		if len(window) >= 2 {
			n, hl, err := decodeVarint(window[1:])
			if err != nil {
				return pkts, ErrMalformed, largest
			}
			if hl > 0 {
				total := 1 + hl + n
				if total > limit {
					return pkts, ErrPacketTooLarge, largest
				}
				largest = max(largest, total)
				if total > len(rest) {
					return pkts, io.ErrUnexpectedEOF, largest
				}
				pkts = append(pkts, rest[:total])
				off += total
				continue
			}
		}
		// The fixed header is incomplete in the window.
		if len(window) >= limit {
			return pkts, ErrPacketTooLarge, largest
		}
		return pkts, io.ErrUnexpectedEOF, largest
	}
}

func fuzzSameErr(t *testing.T, got, want error) {
	t.Helper()
	switch want {
	case io.EOF, io.ErrUnexpectedEOF:
		if got != want {
			t.Fatalf("err %v, want %v", got, want)
		}
	default:
		var re *ReasonError
		if !errors.As(got, &re) || !errors.Is(got, want) {
			t.Fatalf("err %v, want a *ReasonError matching %v", got, want)
		}
	}
}

// fuzzSource returns data in reads whose sizes follow pattern: 1 to 16
// bytes as the low four bits say (0: as much as asked), with (0, nil) reads
// in between when bit 6 is set, and io.EOF with the last bytes when bit 7
// is set.
type fuzzSource struct {
	data    []byte
	pattern byte
	n       int
}

func (s *fuzzSource) Read(p []byte) (int, error) {
	s.n++
	if s.pattern&0x40 != 0 && s.n%2 == 0 {
		return 0, nil
	}
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if k := int(s.pattern & 0x0F); k != 0 {
		n = min(n, k+s.n%3) // vary the size a little between reads
	}
	n = copy(p, s.data[:min(n, len(s.data))])
	s.data = s.data[n:]
	if len(s.data) == 0 && s.pattern&0x80 != 0 {
		return n, io.EOF
	}
	return n, nil
}

// TestDecodeRegressions holds inputs that once decoded wrongly. Each says
// what Decode must return.
func TestDecodeRegressions(t *testing.T) {
	for _, tc := range []struct {
		name string
		hex  string
		v    Version
		code ReasonCode // 0: must decode
	}{
		// The property identifier is a variable byte integer; 0x81 0x02
		// is 257, not a known property, and must not be read as 0x01
		// (Payload Format Indicator) by narrowing it to a byte.
		{"property identifier 257 read as 0x01", "30070001610381" + "0200", V5, MalformedPacket},
		{"property identifier 294 read as 0x26", "300a00016106a602" + "00000000", V5, MalformedPacket},
		{"property identifier 0x80 0x01 (128)", "30070001610380" + "0100", V5, MalformedPacket},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := hex.DecodeString(tc.hex)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Decode(b, tc.v)
			if tc.code == 0 {
				if err != nil {
					t.Fatalf("Decode(%s): %v", tc.hex, err)
				}
				return
			}
			var re *ReasonError
			if !errors.As(err, &re) || re.Code != tc.code {
				t.Fatalf("Decode(%s) = %+v, %v; want a *ReasonError with code %v", tc.hex, p, err, tc.code)
			}
		})
	}
}

// TestFuzzSeedsCoverEveryType makes sure the seeds reach every decoder at
// every version where the type exists.
func TestFuzzSeedsCoverEveryType(t *testing.T) {
	for _, v := range fuzzVersions {
		seen := map[PacketType]bool{}
		for _, b := range fuzzSeedEncodings(t, v) {
			seen[PeekType(b)] = true
		}
		for typ := CONNECT; typ <= AUTH; typ++ {
			if !seen[typ] && (typ != AUTH || v == V5) {
				t.Errorf("no %v seed at %v", typ, v)
			}
		}
	}
	if caps := fuzzCaptures(t); len(caps) > 0 {
		for _, c := range caps {
			v := c.v
			if v == 0 {
				v = V311
			}
			if _, err := Decode(c.b, v); err != nil {
				t.Errorf("capture %s does not decode at %v: %v", c.name, v, err)
			}
		}
	}
}
