package mqtt

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The captures are real bytes sent by real clients (mosquitto_pub,
// mosquitto_sub, paho.mqtt.golang, paho.golang), recorded by
// internal/capture; testdata/packets/README.md says how each was produced.
// File names are <scenario>-<nn>-<type>.hex. A packet's protocol version is
// not in its name: it is the protocol level of the CONNECT of the same
// scenario (every scenario has exactly one CONNECT file); the scenario name
// also carries it (-v31, -v311, -v5) and the two are checked to agree.

const capturesDir = "../testdata/packets"

var captureName = regexp.MustCompile(`^(.+)-([0-9]{2,})-([a-z]+)\.hex$`)

type capture struct {
	file     string
	scenario string
	seq      int
	typ      string // from the file name
	raw      []byte
	v        Version
}

// loadCaptures reads every capture, sorted by scenario and position, with
// its protocol version filled in.
func loadCaptures(t *testing.T) []capture {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(capturesDir, "*.hex"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no captures in %s: record them with `go run ./internal/capture -out testdata/packets`", capturesDir)
	}
	var caps []capture
	for _, p := range paths {
		name := filepath.Base(p)
		m := captureName.FindStringSubmatch(name)
		if m == nil {
			t.Fatalf("%s: name is not <scenario>-<nn>-<type>.hex", name)
		}
		text, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		s := string(text)
		if !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 || strings.ToLower(s) != s {
			t.Errorf("%s: want one line of lowercase hex ending in a newline", name)
		}
		raw, err := hex.DecodeString(strings.TrimSpace(s))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		seq, _ := strconv.Atoi(m[2])
		caps = append(caps, capture{file: name, scenario: m[1], seq: seq, typ: m[3], raw: raw})
	}
	sort.Slice(caps, func(i, j int) bool {
		if caps[i].scenario != caps[j].scenario {
			return caps[i].scenario < caps[j].scenario
		}
		return caps[i].seq < caps[j].seq
	})

	versions := map[string]Version{}
	for _, c := range caps {
		if c.typ != "connect" {
			continue
		}
		if _, dup := versions[c.scenario]; dup {
			t.Fatalf("scenario %s has more than one CONNECT", c.scenario)
		}
		var p Connect
		if err := p.Decode(c.raw, 0); err != nil {
			t.Fatalf("%s: decoding CONNECT: %v\n%x", c.file, err, c.raw)
		}
		versions[c.scenario] = p.ProtocolLevel
	}
	for i := range caps {
		v, ok := versions[caps[i].scenario]
		if !ok {
			t.Fatalf("%s: scenario %s has no CONNECT capture to take the protocol version from", caps[i].file, caps[i].scenario)
		}
		caps[i].v = v
	}
	for s, v := range versions {
		if want := versionInName(s); want != v {
			t.Errorf("scenario %s: CONNECT has protocol level %d, name says %v", s, v, want)
		}
	}
	return caps
}

func versionInName(scenario string) Version {
	for _, f := range strings.Split(scenario, "-") {
		switch f {
		case "v31":
			return V31
		case "v311":
			return V311
		case "v5":
			return V5
		}
	}
	return 0
}

// How a capture legitimately differs from the codec's re-encoding.
type reencoding int

const (
	// propertyOrder: the client wrote properties in another order than the
	// identifier order AppendTo uses. Same length, same bytes, permuted.
	propertyOrder reencoding = iota + 1
	// trailingZero: the client wrote a trailing 0x00 that AppendTo leaves
	// out as the spec allows — a Success reason code of PUBACK, PUBREC,
	// PUBREL or PUBCOMP (§3.4.2.1), or a zero Property Length after a
	// DISCONNECT reason code (§3.14.2.2). Re-encoding drops that byte and
	// decrements the remaining length.
	trailingZero
)

// nonCanonical lists the captures that do not re-encode byte for byte, with
// the reason. Every one is a valid packet; the test checks that the
// difference is exactly the documented one and that decoding the
// re-encoding gives the same packet back. A capture listed here that does
// re-encode identically is reported, so the list cannot go stale.
var nonCanonical = map[string]reencoding{
	// mosquitto writes PUBLISH properties in command-line order: User
	// Property (0x26), Message Expiry (0x02), Content Type (0x03).
	"mosq-pub-v5-q1-props-02-publish.hex": propertyOrder,
	// paho.golang writes Receive Maximum (0x21), Request Problem
	// Information (0x17), Session Expiry Interval (0x11).
	"paho5-v5-01-connect.hex": propertyOrder,
	// paho.golang always writes the reason code of acknowledgements.
	"paho5-v5-04-pubrec.hex":  trailingZero,
	"paho5-v5-05-pubcomp.hex": trailingZero,
	"paho5-v5-08-pubrel.hex":  trailingZero,
	// paho.golang writes a zero Property Length after the reason code.
	"paho5-v5-11-disconnect.hex": trailingZero,
}

func TestCapturesRoundTrip(t *testing.T) {
	caps := loadCaptures(t)
	seen := map[string]bool{}
	for _, c := range caps {
		seen[c.file] = true
		if got := strings.ToLower(PeekType(c.raw).String()); got != c.typ {
			t.Errorf("%s: packet type is %s, file name says %s", c.file, got, c.typ)
		}
		p, err := Decode(c.raw, c.v)
		if err != nil {
			t.Errorf("%s: Decode at protocol %v: %v\n%x", c.file, c.v, err, c.raw)
			continue
		}
		re, err := p.AppendTo(nil, c.v)
		if err != nil {
			t.Errorf("%s: AppendTo at protocol %v: %v", c.file, c.v, err)
			continue
		}
		kind, listed := nonCanonical[c.file]
		switch {
		case bytes.Equal(re, c.raw):
			if listed {
				t.Errorf("%s: re-encodes byte for byte now; remove it from nonCanonical", c.file)
			}
			continue
		case !listed:
			t.Errorf("%s: re-encoding differs\ncapture %x\nencoded %x", c.file, c.raw, re)
			continue
		case kind == propertyOrder:
			if len(re) != len(c.raw) || !bytes.Equal(sortedBytes(re), sortedBytes(c.raw)) {
				t.Errorf("%s: re-encoding is not a reordering of the capture\ncapture %x\nencoded %x", c.file, c.raw, re)
			}
		case kind == trailingZero:
			want := []byte(nil)
			if n := len(c.raw); n >= 3 && n < 2+128 && c.raw[1] == byte(n-2) && c.raw[n-1] == 0 {
				want = append([]byte{c.raw[0], c.raw[1] - 1}, c.raw[2:n-1]...)
			}
			if !bytes.Equal(re, want) {
				t.Errorf("%s: re-encoding is not the capture without its trailing zero\ncapture %x\nencoded %x", c.file, c.raw, re)
			}
		}
		q, err := Decode(re, c.v)
		if err != nil {
			t.Errorf("%s: decoding the re-encoding %x: %v", c.file, re, err)
		} else if !reflect.DeepEqual(p, q) {
			t.Errorf("%s: re-encoding decodes differently\n%+v\n%+v", c.file, p, q)
		}
	}
	for f := range nonCanonical {
		if !seen[f] {
			t.Errorf("nonCanonical lists %s, which is not in %s", f, capturesDir)
		}
	}
}

func sortedBytes(b []byte) []byte {
	s := slices.Clone(b)
	slices.Sort(s)
	return s
}

// TestCapturesReader frames each scenario's packets, sent back to back, with
// Reader, in small reads.
func TestCapturesReader(t *testing.T) {
	caps := loadCaptures(t)
	for i := 0; i < len(caps); {
		j := i
		var stream []byte
		for ; j < len(caps) && caps[j].scenario == caps[i].scenario; j++ {
			stream = append(stream, caps[j].raw...)
		}
		rd := NewReader(&chunkReader{b: stream, n: 7}, 0)
		for _, c := range caps[i:j] {
			got, err := rd.ReadPacket()
			if err != nil || !bytes.Equal(got, c.raw) {
				t.Errorf("%s: ReadPacket = %x, %v", c.file, got, err)
				break
			}
		}
		i = j
	}
}

type chunkReader struct {
	b []byte
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, os.ErrClosed
	}
	n := copy(p[:min(len(p), r.n)], r.b)
	r.b = r.b[n:]
	return n, nil
}

// captured decodes the k-th (1-based) packet of type typ recorded in
// scenario. Looking packets up by type and rank rather than by file name
// keeps these tests valid when a re-recording renumbers a scenario.
func captured(t *testing.T, caps []capture, scenario, typ string, k int) Packet {
	t.Helper()
	rank := k
	for _, c := range caps {
		if c.scenario != scenario || c.typ != typ {
			continue
		}
		if k--; k > 0 {
			continue
		}
		p, err := Decode(c.raw, c.v)
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		return p
	}
	t.Fatalf("no %s #%d in scenario %s", typ, rank, scenario)
	return nil
}

// TestCapturesFields checks decoded fields against the command lines and
// calls that produced the captures (testdata/packets/README.md).
func TestCapturesFields(t *testing.T) {
	caps := loadCaptures(t)
	str := func(b []byte) string { return string(b) }

	t.Run("mosquitto_pub v3.1 will and credentials", func(t *testing.T) {
		p := captured(t, caps, "mosq-pub-v31-q1-will", "connect", 1).(*Connect)
		if p.ProtocolName != "MQIsdp" || p.ProtocolLevel != V31 || !p.CleanStart || p.KeepAlive != 60 ||
			p.ClientID != "mosq-pub-v31-q1-will" {
			t.Errorf("CONNECT header: %+v", p)
		}
		if w := p.Will; w == nil || w.Topic != "weir/will" || str(w.Payload) != "gone" || w.QoS != 1 || !w.Retain {
			t.Errorf("will: %+v", p.Will)
		}
		if !p.HasUsername || p.Username != "alice" || !p.HasPassword || str(p.Password) != "secret" {
			t.Errorf("credentials: %q %q", p.Username, p.Password)
		}
		pub := captured(t, caps, "mosq-pub-v31-q1-will", "publish", 1).(*Publish)
		if pub.QoS != 1 || !pub.Retain || pub.Dup || pub.PacketID != 1 || str(pub.Topic) != "weir/test" ||
			str(pub.Payload) != "hello from capture" {
			t.Errorf("PUBLISH: %+v", pub)
		}
	})

	t.Run("mosquitto_pub v3.1.1 will QoS 2 and username only", func(t *testing.T) {
		p := captured(t, caps, "mosq-pub-v311-q2-retain-will", "connect", 1).(*Connect)
		if p.ProtocolName != "MQTT" || p.ProtocolLevel != V311 {
			t.Errorf("protocol %q %d", p.ProtocolName, p.ProtocolLevel)
		}
		if w := p.Will; w == nil || w.Topic != "weir/will" || str(w.Payload) != "gone" || w.QoS != 2 || !w.Retain {
			t.Errorf("will: %+v", p.Will)
		}
		if !p.HasUsername || p.Username != "bob" || p.HasPassword {
			t.Errorf("credentials: %+v", p)
		}
		pub := captured(t, caps, "mosq-pub-v311-q2-retain-will", "publish", 1).(*Publish)
		if pub.QoS != 2 || !pub.Retain {
			t.Errorf("PUBLISH QoS %d retain %v", pub.QoS, pub.Retain)
		}
		if rel := captured(t, caps, "mosq-pub-v311-q2-retain-will", "pubrel", 1).(*Pubrel); rel.PacketID != pub.PacketID {
			t.Errorf("PUBREL id %d, PUBLISH id %d", rel.PacketID, pub.PacketID)
		}
		if k := captured(t, caps, "mosq-pub-v311-q0", "connect", 1).(*Connect); k.KeepAlive != 30 {
			t.Errorf("-k 30: keep alive %d", k.KeepAlive)
		}
	})

	t.Run("mosquitto_pub v5 properties", func(t *testing.T) {
		c := captured(t, caps, "mosq-pub-v5-q1-props", "connect", 1).(*Connect)
		if c.ProtocolLevel != V5 || c.KeepAlive != 20 || c.Props.SessionExpiry != 300 || c.Props.ReceiveMaximum != 10 {
			t.Errorf("CONNECT: level %d keep alive %d props %+v", c.ProtocolLevel, c.KeepAlive, c.Props)
		}
		p := captured(t, caps, "mosq-pub-v5-q1-props", "publish", 1).(*Publish)
		if p.QoS != 1 || str(p.Topic) != "weir/test" || str(p.Payload) != "hello from capture" {
			t.Errorf("PUBLISH: %+v", p)
		}
		if !reflect.DeepEqual(p.Props.User, []UserProperty{{"k", "v"}}) {
			t.Errorf("user properties %+v, want k=v", p.Props.User)
		}
		if p.Props.MessageExpiry != 60 || !p.Props.Has(PropMessageExpiry) {
			t.Errorf("message expiry %d", p.Props.MessageExpiry)
		}
		if p.Props.ContentType != "text/plain" {
			t.Errorf("content type %q", p.Props.ContentType)
		}
	})

	t.Run("mosquitto_pub v5 will properties", func(t *testing.T) {
		c := captured(t, caps, "mosq-pub-v5-q2-retain-will", "connect", 1).(*Connect)
		w := c.Will
		if w == nil || w.Topic != "weir/will" || str(w.Payload) != "gone" || w.QoS != 1 || !w.Retain {
			t.Fatalf("will: %+v", w)
		}
		if w.Props.WillDelay != 30 || !reflect.DeepEqual(w.Props.User, []UserProperty{{"wk", "wv"}}) {
			t.Errorf("will properties: %+v", w.Props)
		}
		if c.Username != "alice" || str(c.Password) != "secret" {
			t.Errorf("credentials: %q %q", c.Username, c.Password)
		}
		if c.Props.ReceiveMaximum != 20 { // mosquitto_pub's default
			t.Errorf("receive maximum %d", c.Props.ReceiveMaximum)
		}
	})

	t.Run("mosquitto_sub v5 subscribe", func(t *testing.T) {
		s := captured(t, caps, "mosq-sub-v5", "subscribe", 1).(*Subscribe)
		want := []Subscription{
			{Filter: "a/+/c", QoS: 2, RetainAsPublished: true},
			{Filter: "#", QoS: 2, RetainAsPublished: true},
		}
		if !reflect.DeepEqual(s.Subscriptions, want) {
			t.Errorf("subscriptions %+v", s.Subscriptions)
		}
		if !reflect.DeepEqual(s.Props.SubscriptionIDs, []int{5}) || !reflect.DeepEqual(s.Props.User, []UserProperty{{"sk", "sv"}}) {
			t.Errorf("properties %+v", s.Props)
		}
		if c := captured(t, caps, "mosq-sub-v5", "connect", 1).(*Connect); c.Props.SessionExpiry != 600 {
			t.Errorf("-x 600: session expiry %d", c.Props.SessionExpiry)
		}
		u1 := captured(t, caps, "mosq-sub-v5-unsub", "unsubscribe", 1).(*Unsubscribe)
		u2 := captured(t, caps, "mosq-sub-v5-unsub", "unsubscribe", 2).(*Unsubscribe)
		if !slices.Equal(u1.Filters, []string{"a/+/c"}) || !slices.Equal(u2.Filters, []string{"old/#"}) {
			t.Errorf("-U filters %q %q", u1.Filters, u2.Filters)
		}
	})

	t.Run("mosquitto_sub v3.1 and v3.1.1", func(t *testing.T) {
		s := captured(t, caps, "mosq-sub-v31", "subscribe", 1).(*Subscribe)
		if !reflect.DeepEqual(s.Subscriptions, []Subscription{{Filter: "a/+/c", QoS: 2}}) {
			t.Errorf("v3.1 subscriptions %+v", s.Subscriptions)
		}
		if u := captured(t, caps, "mosq-sub-v31", "unsubscribe", 1).(*Unsubscribe); !slices.Equal(u.Filters, []string{"old/#"}) {
			t.Errorf("v3.1 -U filters %q", u.Filters)
		}
		s = captured(t, caps, "mosq-sub-v311-ping", "subscribe", 1).(*Subscribe)
		if !reflect.DeepEqual(s.Subscriptions, []Subscription{{Filter: "s/#", QoS: 2}}) {
			t.Errorf("v3.1.1 subscriptions %+v", s.Subscriptions)
		}
		if c := captured(t, caps, "mosq-sub-v311-ping", "connect", 1).(*Connect); c.KeepAlive != 5 {
			t.Errorf("-k 5: keep alive %d", c.KeepAlive)
		}
		captured(t, caps, "mosq-sub-v311-ping", "pingreq", 1)
	})

	t.Run("paho.mqtt.golang v3.1.1", func(t *testing.T) {
		c := captured(t, caps, "paho3-v311", "connect", 1).(*Connect)
		if c.ProtocolLevel != V311 || c.KeepAlive != 1 || c.ClientID != "paho3-v311" || c.Username != "alice" ||
			str(c.Password) != "secret" || c.Will == nil || c.Will.Topic != "weir/will" || c.Will.QoS != 1 || !c.Will.Retain {
			t.Errorf("CONNECT %+v will %+v", c, c.Will)
		}
		u := captured(t, caps, "paho3-v311", "unsubscribe", 1).(*Unsubscribe)
		if !slices.Equal(u.Filters, []string{"p3/in/#", "p3/q1"}) {
			t.Errorf("unsubscribe %q", u.Filters)
		}
		for i, want := range []struct {
			qos    byte
			retain bool
			body   string
		}{{0, false, "qos0"}, {1, true, "qos1"}, {2, false, "qos2"}} {
			p := captured(t, caps, "paho3-v311", "publish", i+1).(*Publish)
			if p.QoS != want.qos || p.Retain != want.retain || str(p.Topic) != "p3/out" || str(p.Payload) != want.body {
				t.Errorf("publish %d: %+v", i+1, p)
			}
		}
	})

	t.Run("paho.golang v5", func(t *testing.T) {
		c := captured(t, caps, "paho5-v5", "connect", 1).(*Connect)
		if c.ProtocolLevel != V5 || c.KeepAlive != 1 || c.Props.SessionExpiry != 60 || c.Props.ReceiveMaximum != 20 {
			t.Errorf("CONNECT %+v", c)
		}
		// paho.golang sends Request Problem Information 0 explicitly.
		if !c.Props.Has(PropRequestProblemInfo) || c.Props.RequestProblemInfo != 0 {
			t.Errorf("request problem information: present %v value %d", c.Props.Has(PropRequestProblemInfo), c.Props.RequestProblemInfo)
		}
		if c.Will == nil || c.Will.Props.WillDelay != 5 {
			t.Errorf("will %+v", c.Will)
		}
		s := captured(t, caps, "paho5-v5", "subscribe", 1).(*Subscribe)
		want := []Subscription{{Filter: "p5/in/#", QoS: 2, NoLocal: true}, {Filter: "p5/+/x", QoS: 1, RetainHandling: 2}}
		if !reflect.DeepEqual(s.Subscriptions, want) || !slices.Equal(s.Props.SubscriptionIDs, []int{7}) {
			t.Errorf("SUBSCRIBE %+v", s)
		}
		p := captured(t, caps, "paho5-v5", "publish", 1).(*Publish)
		if p.QoS != 1 || p.Props.ContentType != "application/json" || p.Props.ResponseTopic != "p5/reply" ||
			str(p.Props.CorrelationData) != "c1" || !reflect.DeepEqual(p.Props.User, []UserProperty{{"a", "b"}}) {
			t.Errorf("PUBLISH 1 %+v", p)
		}
		p = captured(t, caps, "paho5-v5", "publish", 2).(*Publish)
		if p.QoS != 2 || !p.Retain || p.Props.PayloadFormat != 1 || p.Props.MessageExpiry != 120 {
			t.Errorf("PUBLISH 2 %+v", p)
		}
		if d := captured(t, caps, "paho5-v5", "disconnect", 1).(*Disconnect); d.ReasonCode != DisconnectWithWillMessage {
			t.Errorf("DISCONNECT reason %v", d.ReasonCode)
		}
	})
}
