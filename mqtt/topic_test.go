package mqtt

import (
	"errors"
	"strings"
	"testing"
)

// Clause numbers are MQTT 3.1.1's; in 5.0 the UTF-8 rules [MQTT-1.5.3-x]
// are [MQTT-1.5.4-x] and the others keep their numbers. [MQTT-4.8.2-x] is
// 5.0 only. Cases the spec gives as (non-normative) examples cite the section.

// Named types, to check that the ~string / ~[]byte type sets work.
type (
	topicString string
	topicBytes  []byte
)

var (
	long65535  = strings.Repeat("a", MaxTopicLength)
	long65536  = strings.Repeat("a", MaxTopicLength+1)
	longUTF8OK = strings.Repeat("é", MaxTopicLength/2) + "a" // 65535 bytes
	longUTF8   = strings.Repeat("é", (MaxTopicLength+1)/2)   // 65536 bytes
)

type topicCase struct {
	name string
	in   string
	ok   bool
}

var topicNameCases = []topicCase{
	{name: "[MQTT-4.7.3-1] one character", in: "a", ok: true},
	{name: "§4.7.1.1 three levels", in: "sport/tennis/player1", ok: true},
	{name: "§4.7.1.1 empty level in the middle", in: "a//b", ok: true},
	{name: "§4.7.1.1 empty first level", in: "/a", ok: true},
	{name: "§4.7.1.1 empty last level", in: "a/", ok: true},
	{name: "§4.7.1.1 single / is two empty levels", in: "/", ok: true},
	{name: "§4.7.1.1 only separators", in: "///", ok: true},
	{name: "§4.7.2 $SYS topic", in: "$SYS/broker/uptime", ok: true},
	{name: "§4.7.3 spaces are allowed", in: "Accounts payable", ok: true},
	{name: "§4.8.2 $share is special only in filters", in: "$share/g/x", ok: true},
	{name: "[MQTT-4.7.3-3] 65535 bytes", in: long65535, ok: true},
	{name: "[MQTT-4.7.3-3] 65535 bytes of multi-byte UTF-8", in: longUTF8OK, ok: true},
	{name: "[MQTT-1.5.3-1] multi-byte UTF-8", in: "温度/℃/😀", ok: true},
	{name: "[MQTT-1.5.3-1] U+10FFFF is the largest code point", in: "\U0010FFFF", ok: true},
	{name: "[MQTT-1.5.3-1] literal U+FFFD is valid", in: "a/\uFFFD", ok: true},
	{name: "[MQTT-1.5.3-3] U+FEFF is kept, not stripped", in: "\uFEFFa", ok: true},
	{name: "§1.5.3 C0 controls are SHOULD NOT, accepted", in: "a\x01b\x1f\x7f", ok: true},
	{name: "§1.5.3 C1 controls are SHOULD NOT, accepted", in: "\u0080/\u009f", ok: true},

	{name: "[MQTT-4.7.3-1] empty", in: "", ok: false},
	{name: "[MQTT-3.3.2-2] + alone", in: "+", ok: false},
	{name: "[MQTT-3.3.2-2] + level", in: "a/+/c", ok: false},
	{name: "[MQTT-4.7.1-1] + inside a level", in: "a+b", ok: false},
	{name: "[MQTT-3.3.2-2] # alone", in: "#", ok: false},
	{name: "[MQTT-3.3.2-2] # level", in: "a/#", ok: false},
	{name: "[MQTT-4.7.1-1] # inside a level", in: "a#", ok: false},
	{name: "[MQTT-4.7.1-1] $SYS/#", in: "$SYS/#", ok: false},
	{name: "[MQTT-4.7.3-2] U+0000", in: "a\x00b", ok: false},
	{name: "[MQTT-4.7.3-2] only U+0000", in: "\x00", ok: false},
	{name: "[MQTT-4.7.3-2] U+0000 after non-ASCII", in: "é\x00", ok: false},
	{name: "[MQTT-1.5.3-1] byte 0xFF", in: "a/\xff", ok: false},
	{name: "[MQTT-1.5.3-1] lone continuation byte", in: "\x80", ok: false},
	{name: "[MQTT-1.5.3-1] continuation byte after a rune", in: "é\x80", ok: false},
	{name: "[MQTT-1.5.3-1] truncated sequence", in: "a/\xc3", ok: false},
	{name: "[MQTT-1.5.3-1] truncated before /", in: "\xe2\x82/a", ok: false},
	{name: "[MQTT-1.5.3-1] overlong /", in: "\xc0\xaf", ok: false},
	{name: "[MQTT-1.5.3-1] overlong U+0000", in: "\xc0\x80", ok: false},
	{name: "[MQTT-1.5.3-1] surrogate U+D800", in: "\xed\xa0\x80", ok: false},
	{name: "[MQTT-1.5.3-1] surrogate U+DFFF", in: "a\xed\xbf\xbf", ok: false},
	{name: "[MQTT-1.5.3-1] above U+10FFFF", in: "\xf4\x90\x80\x80", ok: false},
	{name: "[MQTT-4.7.3-3] 65536 bytes", in: long65536, ok: false},
	{name: "[MQTT-4.7.3-3] 65536 bytes of multi-byte UTF-8", in: longUTF8, ok: false},
}

var topicFilterCases = []topicCase{
	{name: "[MQTT-4.7.3-1] one character", in: "a", ok: true},
	{name: "§4.7.1.1 three levels", in: "sport/tennis/player1", ok: true},
	{name: "§4.7.1.1 empty level in the middle", in: "a//b", ok: true},
	{name: "§4.7.1.1 empty first level", in: "/a", ok: true},
	{name: "§4.7.1.1 empty last level", in: "a/", ok: true},
	{name: "§4.7.1.1 single /", in: "/", ok: true},
	{name: "[MQTT-4.7.1-2] # alone", in: "#", ok: true},
	{name: "[MQTT-4.7.1-2] # after a level", in: "a/#", ok: true},
	{name: "[MQTT-4.7.1-2] # after an empty level", in: "/#", ok: true},
	{name: "[MQTT-4.7.1-2] sport/tennis/#", in: "sport/tennis/#", ok: true},
	{name: "[MQTT-4.7.1-2] # after +", in: "+/tennis/#", ok: true},
	{name: "[MQTT-4.7.1-3] + alone", in: "+", ok: true},
	{name: "[MQTT-4.7.1-3] +/+", in: "+/+", ok: true},
	{name: "[MQTT-4.7.1-3] a/+/c", in: "a/+/c", ok: true},
	{name: "[MQTT-4.7.1-3] + first then empty level", in: "+/", ok: true},
	{name: "[MQTT-4.7.1-3] + after empty level", in: "/+", ok: true},
	{name: "[MQTT-4.7.1-3] sport/+/player1", in: "sport/+/player1", ok: true},
	{name: "§4.7.2 $SYS/#", in: "$SYS/#", ok: true},
	{name: "§4.7.2 $SYS/monitor/+", in: "$SYS/monitor/+", ok: true},
	{name: "§4.8.2 $shared is not $share", in: "$shared/x", ok: true},
	{name: "§4.8.2 $SHARE is not $share", in: "$SHARE/g/x", ok: true},
	{name: "§4.8.2 share without $", in: "share/g/x", ok: true},
	{name: "§4.8.2 $share not as first level", in: "a/$share/g", ok: true},
	{name: "[MQTT-4.7.3-3] 65535 bytes", in: long65535, ok: true},
	{name: "[MQTT-1.5.3-1] multi-byte UTF-8 with +", in: "温度/+/😀", ok: true},
	{name: "§1.5.3 controls are SHOULD NOT, accepted", in: "\x01/\u009f", ok: true},

	{name: "[MQTT-4.7.3-1] empty", in: "", ok: false},
	{name: "[MQTT-4.7.1-2] # inside a level", in: "a#", ok: false},
	{name: "[MQTT-4.7.1-2] # starts a level", in: "#a", ok: false},
	{name: "[MQTT-4.7.1-2] # not last", in: "a/#/b", ok: false},
	{name: "[MQTT-4.7.1-2] # followed by /", in: "#/", ok: false},
	{name: "[MQTT-4.7.1-2] ##", in: "##", ok: false},
	{name: "[MQTT-4.7.1-2] +#", in: "+#", ok: false},
	{name: "[MQTT-4.7.1-2] # in the last level", in: "a/b#", ok: false},
	{name: "[MQTT-4.7.1-3] + ends a level", in: "a/b+", ok: false},
	{name: "[MQTT-4.7.1-3] + starts a level", in: "+a", ok: false},
	{name: "[MQTT-4.7.1-3] + inside a level", in: "a/b+c/d", ok: false},
	{name: "[MQTT-4.7.1-3] ++", in: "++", ok: false},
	{name: "[MQTT-4.7.1-3] #+", in: "#+", ok: false},
	{name: "[MQTT-4.7.3-2] U+0000", in: "a/\x00", ok: false},
	{name: "[MQTT-1.5.3-1] byte 0xFF", in: "a/\xff/#", ok: false},
	{name: "[MQTT-1.5.3-1] surrogate", in: "\xed\xa0\x80/+", ok: false},
	{name: "[MQTT-1.5.3-1] truncated before +", in: "\xc3+", ok: false},
	{name: "[MQTT-4.7.3-3] 65536 bytes", in: long65536, ok: false},

	{name: "[MQTT-4.8.2-1] shared", in: "$share/g/x", ok: true},
	{name: "[MQTT-4.8.2-2] shared with #", in: "$share/g/#", ok: true},
	{name: "[MQTT-4.8.2-2] shared with +", in: "$share/consumer1/sport/+/player1", ok: true},
	{name: "[MQTT-4.8.2-2] shared with empty levels", in: "$share/g//", ok: true},
	{name: "[MQTT-4.8.2-1] multi-byte share name", in: "$share/ü/x", ok: true},
	{name: "[MQTT-4.8.2-1] $share alone", in: "$share", ok: false},
	{name: "[MQTT-4.8.2-1] $share/ without share name", in: "$share/", ok: false},
	{name: "[MQTT-4.8.2-1] empty share name", in: "$share//x", ok: false},
	{name: "[MQTT-4.8.2-2] no / after share name", in: "$share/g", ok: false},
	{name: "[MQTT-4.8.2-2] no filter after share name", in: "$share/g/", ok: false},
	{name: "[MQTT-4.8.2-2] + share name", in: "$share/+/x", ok: false},
	{name: "[MQTT-4.8.2-2] # share name", in: "$share/#/x", ok: false},
	{name: "[MQTT-4.8.2-2] + in share name", in: "$share/g+/x", ok: false},
	{name: "[MQTT-4.8.2-2] # in share name", in: "$share/g#", ok: false},
	{name: "[MQTT-4.8.2-2] invalid filter after share name", in: "$share/g/a/#/b", ok: false},
	{name: "[MQTT-4.8.2-2] + inside a level after share name", in: "$share/g/a+", ok: false},
	{name: "[MQTT-4.7.3-2] U+0000 in share name", in: "$share/\x00/x", ok: false},
	{name: "[MQTT-1.5.3-1] bad UTF-8 in share name", in: "$share/\xff/x", ok: false},
	{name: "[MQTT-4.7.3-3] shared, 65536 bytes", in: "$share/g/" + long65536[len("$share/g/"):], ok: false},
}

// checkTopicErr checks that err is nil exactly when ok, and otherwise a
// *ReasonError with the given code that errors.Is matches by code.
func checkTopicErr(t *testing.T, kind string, err error, ok bool, code ReasonCode) {
	t.Helper()
	if ok {
		if err != nil {
			t.Errorf("%s: got error %v, want nil", kind, err)
		}
		return
	}
	var re *ReasonError
	if !errors.As(err, &re) {
		t.Fatalf("%s: got %v (%T), want *ReasonError", kind, err, err)
	}
	if re.Code != code || re.Msg == "" {
		t.Errorf("%s: got code %v msg %q, want code %v and a message", kind, re.Code, re.Msg, code)
	}
	if !errors.Is(err, &ReasonError{Code: code}) {
		t.Errorf("%s: errors.Is(%v, code %v) = false", kind, err, code)
	}
}

func shortName(s string) string {
	if len(s) > 40 {
		return s[:20] + "..."
	}
	return s
}

func TestValidateTopicName(t *testing.T) {
	for _, tc := range topicNameCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Logf("input %q", shortName(tc.in))
			checkTopicErr(t, "string", ValidateTopicName(tc.in), tc.ok, TopicNameInvalid)
			checkTopicErr(t, "[]byte", ValidateTopicName([]byte(tc.in)), tc.ok, TopicNameInvalid)
			checkTopicErr(t, "named string", ValidateTopicName(topicString(tc.in)), tc.ok, TopicNameInvalid)
			checkTopicErr(t, "named []byte", ValidateTopicName(topicBytes(tc.in)), tc.ok, TopicNameInvalid)
		})
	}
}

func TestValidateTopicFilter(t *testing.T) {
	for _, tc := range topicFilterCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Logf("input %q", shortName(tc.in))
			checkTopicErr(t, "string", ValidateTopicFilter(tc.in), tc.ok, TopicFilterInvalid)
			checkTopicErr(t, "[]byte", ValidateTopicFilter([]byte(tc.in)), tc.ok, TopicFilterInvalid)
			checkTopicErr(t, "named string", ValidateTopicFilter(topicString(tc.in)), tc.ok, TopicFilterInvalid)
			checkTopicErr(t, "named []byte", ValidateTopicFilter(topicBytes(tc.in)), tc.ok, TopicFilterInvalid)
		})
	}
}

func TestParseShared(t *testing.T) {
	tests := []struct {
		name          string
		in            string
		group, filter string
		ok            bool
		err           bool
	}{
		{name: "§4.8.2 ordinary filter", in: "sport/tennis/+"},
		{name: "§4.8.2 # is not shared", in: "#"},
		{name: "§4.8.2 $shared is not $share", in: "$shared/x"},
		{name: "§4.8.2 $SHARE is not $share", in: "$SHARE/g/x"},
		{name: "§4.8.2 share without $", in: "share/g/x"},
		{name: "§4.8.2 $share not first level", in: "a/$share/g/x"},
		{name: "§4.8.2 not validated when not shared", in: "a/#/b"},
		{name: "§4.8.2 empty is not shared", in: ""},

		{name: "[MQTT-4.8.2-1] simple", in: "$share/g/x", group: "g", filter: "x", ok: true},
		{name: "[MQTT-4.8.2-2] spec example", in: "$share/consumer1/sport/tennis/+",
			group: "consumer1", filter: "sport/tennis/+", ok: true},
		{name: "[MQTT-4.8.2-2] filter #", in: "$share/g/#", group: "g", filter: "#", ok: true},
		{name: "[MQTT-4.8.2-2] filter /", in: "$share/g//", group: "g", filter: "/", ok: true},
		{name: "[MQTT-4.8.2-2] filter with empty first level", in: "$share/g//x", group: "g", filter: "/x", ok: true},
		{name: "[MQTT-4.8.2-2] filter $SYS/#", in: "$share/g/$SYS/#", group: "g", filter: "$SYS/#", ok: true},
		{name: "[MQTT-4.8.2-1] long multi-byte share name", in: "$share/grüße-1/a/b",
			group: "grüße-1", filter: "a/b", ok: true},

		{name: "[MQTT-4.8.2-1] $share alone", in: "$share", err: true},
		{name: "[MQTT-4.8.2-1] $share/ without share name", in: "$share/", err: true},
		{name: "[MQTT-4.8.2-1] empty share name", in: "$share//x", err: true},
		{name: "[MQTT-4.8.2-2] no / after share name", in: "$share/g", err: true},
		{name: "[MQTT-4.8.2-2] no filter after share name", in: "$share/g/", err: true},
		{name: "[MQTT-4.8.2-2] + share name", in: "$share/+/x", err: true},
		{name: "[MQTT-4.8.2-2] # share name", in: "$share/#", err: true},
		{name: "[MQTT-4.8.2-2] + in share name", in: "$share/a+b/x", err: true},
		{name: "[MQTT-4.8.2-2] # in share name", in: "$share/a#b/x", err: true},
		{name: "[MQTT-4.7.1-2] invalid # in filter", in: "$share/g/a/#/b", err: true},
		{name: "[MQTT-4.7.1-3] invalid + in filter", in: "$share/g/+a", err: true},
		{name: "[MQTT-4.7.3-2] U+0000 in filter", in: "$share/g/a\x00", err: true},
		{name: "[MQTT-1.5.3-1] bad UTF-8 in share name", in: "$share/\xc3/x", err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			group, filter, ok, err := ParseShared(tc.in)
			if group != tc.group || filter != tc.filter || ok != tc.ok {
				t.Errorf("ParseShared(%q) = %q, %q, %v; want %q, %q, %v",
					tc.in, group, filter, ok, tc.group, tc.filter, tc.ok)
			}
			checkTopicErr(t, "ParseShared", err, !tc.err, TopicFilterInvalid)
			if tc.ok || tc.err {
				// Shared filters: ValidateTopicFilter agrees with ParseShared.
				checkTopicErr(t, "ValidateTopicFilter", ValidateTopicFilter(tc.in), tc.ok, TopicFilterInvalid)
			}
		})
	}
}

func TestMatchTopic(t *testing.T) {
	tests := []struct {
		name          string
		filter, topic string
		want          bool
	}{
		{name: "§4.7.1.2 # matches the parent level", filter: "sport/tennis/player1/#", topic: "sport/tennis/player1", want: true},
		{name: "§4.7.1.2 # matches one level below", filter: "sport/tennis/player1/#", topic: "sport/tennis/player1/ranking", want: true},
		{name: "§4.7.1.2 # matches two levels below", filter: "sport/tennis/player1/#", topic: "sport/tennis/player1/score/wimbledon", want: true},
		{name: "§4.7.1.2 # does not match a sibling", filter: "sport/tennis/player1/#", topic: "sport/tennis/player2", want: false},
		{name: "§4.7.1.2 sport/# matches sport", filter: "sport/#", topic: "sport", want: true},
		{name: "§4.7.1.2 sport/# matches sport/", filter: "sport/#", topic: "sport/", want: true},
		{name: "§4.7.1.2 sport/# does not match sports", filter: "sport/#", topic: "sports", want: false},
		{name: "§4.7.1.2 # matches everything", filter: "#", topic: "sport/tennis/player1", want: true},
		{name: "§4.7.1.2 # matches /", filter: "#", topic: "/", want: true},
		{name: "§4.7.1.2 # with empty parent level", filter: "/#", topic: "/", want: true},
		{name: "§4.7.1.2 +/# matches one level", filter: "+/#", topic: "a", want: true},
		{name: "§4.7.1.2 a/b/# does not match a", filter: "a/b/#", topic: "a", want: false},
		{name: "§4.7.1.3 + matches one level", filter: "sport/tennis/+", topic: "sport/tennis/player1", want: true},
		{name: "§4.7.1.3 + does not match two levels", filter: "sport/tennis/+", topic: "sport/tennis/player1/ranking", want: false},
		{name: "§4.7.1.3 sport/+ does not match sport", filter: "sport/+", topic: "sport", want: false},
		{name: "§4.7.1.3 sport/+ matches sport/", filter: "sport/+", topic: "sport/", want: true},
		{name: "§4.7.1.3 +/+ matches /finance", filter: "+/+", topic: "/finance", want: true},
		{name: "§4.7.1.3 /+ matches /finance", filter: "/+", topic: "/finance", want: true},
		{name: "§4.7.1.3 + does not match /finance", filter: "+", topic: "/finance", want: false},
		{name: "§4.7.1.3 + in the middle", filter: "sport/+/player1", topic: "sport/tennis/player1", want: true},
		{name: "§4.7.1.3 + matches an empty level", filter: "a/+/b", topic: "a//b", want: true},
		{name: "§4.7.1.3 + then # matches the + level", filter: "+/tennis/#", topic: "sport/tennis", want: true},
		{name: "§4.7.1.3 +/+ does not match one level", filter: "+/+", topic: "a", want: false},
		{name: "[MQTT-4.7.2-1] # does not match $SYS", filter: "#", topic: "$SYS/monitor/Clients", want: false},
		{name: "[MQTT-4.7.2-1] +/monitor/Clients does not match $SYS", filter: "+/monitor/Clients", topic: "$SYS/monitor/Clients", want: false},
		{name: "[MQTT-4.7.2-1] + does not match $", filter: "+", topic: "$", want: false},
		{name: "[MQTT-4.7.2-1] +/# does not match $x/y", filter: "+/#", topic: "$x/y", want: false},
		{name: "[MQTT-4.7.2-1] wildcards match $ below the first level", filter: "+/+", topic: "a/$SYS", want: true},
		{name: "[MQTT-4.7.2-1] # matches $ below the first level", filter: "a/#", topic: "a/$b", want: true},
		{name: "§4.7.2 $SYS/# matches $SYS/broker", filter: "$SYS/#", topic: "$SYS/broker", want: true},
		{name: "§4.7.2 $SYS/# matches $SYS/monitor/Clients", filter: "$SYS/#", topic: "$SYS/monitor/Clients", want: true},
		{name: "§4.7.2 $SYS/# matches $SYS", filter: "$SYS/#", topic: "$SYS", want: true},
		{name: "§4.7.2 $SYS/monitor/+ matches", filter: "$SYS/monitor/+", topic: "$SYS/monitor/Clients", want: true},
		{name: "§4.7.3 exact match", filter: "a/b/c", topic: "a/b/c", want: true},
		{name: "§4.7.3 trailing / is a level", filter: "a/b", topic: "a/b/", want: false},
		{name: "§4.7.3 missing trailing /", filter: "a/b/", topic: "a/b", want: false},
		{name: "§4.7.3 leading / is a level", filter: "a", topic: "/a", want: false},
		{name: "§4.7.3 empty levels match exactly", filter: "a//b", topic: "a//b", want: true},
		{name: "§4.7.3 filter longer than topic", filter: "a/b/c", topic: "a/b", want: false},
		{name: "§4.7.3 topic longer than filter", filter: "a/b", topic: "a/b/c", want: false},
		{name: "§4.7.3 level prefix does not match", filter: "a/b", topic: "a/bc", want: false},
		{name: "[MQTT-4.7.3-4] case sensitive", filter: "ACCOUNTS", topic: "Accounts", want: false},
		{name: "[MQTT-4.7.3-4] spaces kept", filter: "Accounts payable", topic: "Accounts payable", want: true},
		{name: "[MQTT-4.7.3-4] no Unicode normalization", filter: "caf\u00e9", topic: "cafe\u0301", want: false},
		{name: "§4.8.2 shared filter is not stripped", filter: "$share/g/x", topic: "x", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := ValidateTopicFilter(tc.filter); err != nil {
				t.Fatalf("bad test: filter %q: %v", tc.filter, err)
			}
			if err := ValidateTopicName(tc.topic); err != nil {
				t.Fatalf("bad test: topic %q: %v", tc.topic, err)
			}
			if got := MatchTopic(tc.filter, tc.topic); got != tc.want {
				t.Errorf("MatchTopic(%q, %q) = %v, want %v", tc.filter, tc.topic, got, tc.want)
			}
			if got := refMatchTopic(tc.filter, tc.topic); got != tc.want {
				t.Errorf("refMatchTopic(%q, %q) = %v, want %v", tc.filter, tc.topic, got, tc.want)
			}
		})
	}
}

func TestTopicLevels(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"", 0}, {"a", 1}, {"/", 2}, {"//", 3}, {"a/b/c", 3}, {"/a", 2}, {"a/", 2},
		{"a//b", 3}, {"#", 1}, {"$share/g/a/#", 4}, {"é/ü", 2},
	}
	for _, tc := range tests {
		if got := TopicLevels(tc.in); got != tc.want {
			t.Errorf("TopicLevels(%q) = %d, want %d", tc.in, got, tc.want)
		}
		if got := TopicLevels([]byte(tc.in)); got != tc.want {
			t.Errorf("TopicLevels([]byte(%q)) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// TestTopicNoAllocs checks that validation succeeds without allocating for
// strings and byte slices (a decoded PUBLISH topic), and that matching,
// ParseShared and TopicLevels never allocate.
func TestTopicNoAllocs(t *testing.T) {
	names := []string{"a", "sport/tennis/player1", "温度/℃/😀", "/", long65535, longUTF8OK}
	filters := []string{"#", "+/+", "sport/+/player1/#", "温度/+", "$share/g/a/#", long65535}
	check := func(what string, f func()) {
		t.Helper()
		if n := testing.AllocsPerRun(20, f); n != 0 {
			t.Errorf("%s: %v allocs per run, want 0", what, n)
		}
	}
	for _, s := range names {
		b, nb, ns := []byte(s), topicBytes(s), topicString(s)
		check("ValidateTopicName string "+shortName(s), func() {
			if ValidateTopicName(s) != nil {
				t.Fatal("invalid")
			}
		})
		check("ValidateTopicName []byte "+shortName(s), func() {
			if ValidateTopicName(b) != nil {
				t.Fatal("invalid")
			}
		})
		check("ValidateTopicName named "+shortName(s), func() {
			if ValidateTopicName(nb) != nil || ValidateTopicName(ns) != nil {
				t.Fatal("invalid")
			}
		})
		check("TopicLevels "+shortName(s), func() {
			if TopicLevels(s) != TopicLevels(b) {
				t.Fatal("differ")
			}
		})
	}
	for _, s := range filters {
		b := []byte(s)
		check("ValidateTopicFilter string "+shortName(s), func() {
			if ValidateTopicFilter(s) != nil {
				t.Fatal("invalid")
			}
		})
		check("ValidateTopicFilter []byte "+shortName(s), func() {
			if ValidateTopicFilter(b) != nil {
				t.Fatal("invalid")
			}
		})
	}
	check("ParseShared", func() {
		if _, _, ok, err := ParseShared("$share/g/a/#"); !ok || err != nil {
			t.Fatal("not shared")
		}
	})
	check("MatchTopic", func() {
		if !MatchTopic("sport/+/player1/#", "sport/tennis/player1/score/wimbledon") ||
			MatchTopic("#", "$SYS/broker") || !MatchTopic("a/#", "a") || MatchTopic("a/+", "a") {
			t.Fatal("wrong match")
		}
	})
}

// refMatchTopic is a plain reference for MatchTopic: split both into levels
// and compare level by level.
func refMatchTopic(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	f, tl := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, level := range f {
		if level == "#" {
			return true
		}
		if i >= len(tl) || (level != "+" && level != tl[i]) {
			return false
		}
	}
	return len(f) == len(tl)
}

func addTopicSeeds(f *testing.F) {
	for _, s := range []string{
		"sport/tennis/player1", "a", "/", "a//b", "/a", "a/", "#", "+", "+/+", "a/+/c", "a/#",
		"$SYS/broker", "$SYS/#", "$share/g/a/#", "$share/g", "$share", "a/#/b", "a+", "\x00",
		"\xff", "é/ü/😀", "\xed\xa0\x80",
	} {
		f.Add(s)
	}
}

// FuzzTopicFilter checks that validation never panics, gives the same answer
// for strings and byte slices, returns the right reason code, and that every
// valid topic name is matched by itself and, unless it starts with '$', by
// "#" [MQTT-4.7.2-1].
func FuzzTopicFilter(f *testing.F) {
	addTopicSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		nameErr, filterErr := ValidateTopicName(s), ValidateTopicFilter(s)
		checkTopicErr(t, "ValidateTopicName", nameErr, nameErr == nil, TopicNameInvalid)
		checkTopicErr(t, "ValidateTopicFilter", filterErr, filterErr == nil, TopicFilterInvalid)
		if (ValidateTopicName([]byte(s)) == nil) != (nameErr == nil) {
			t.Fatalf("ValidateTopicName(%q): string and []byte disagree", s)
		}
		if (ValidateTopicFilter([]byte(s)) == nil) != (filterErr == nil) {
			t.Fatalf("ValidateTopicFilter(%q): string and []byte disagree", s)
		}
		if got := TopicLevels(s); len(s) > 0 && got != strings.Count(s, "/")+1 {
			t.Fatalf("TopicLevels(%q) = %d", s, got)
		}

		group, inner, shared, err := ParseShared(s)
		looksShared := s == "$share" || strings.HasPrefix(s, "$share/")
		switch {
		case !looksShared:
			if shared || err != nil || group != "" || inner != "" {
				t.Fatalf("ParseShared(%q) = %q, %q, %v, %v for a non-shared filter", s, group, inner, shared, err)
			}
		case err != nil:
			checkTopicErr(t, "ParseShared", err, false, TopicFilterInvalid)
			if shared || filterErr == nil {
				t.Fatalf("ParseShared(%q) failed (%v) but ValidateTopicFilter accepts it or ok is set", s, err)
			}
		default:
			if !shared || filterErr != nil {
				t.Fatalf("ParseShared(%q) ok=%v, ValidateTopicFilter: %v", s, shared, filterErr)
			}
			if s != "$share/"+group+"/"+inner || group == "" || strings.ContainsAny(group, "/+#") {
				t.Fatalf("ParseShared(%q) = %q, %q", s, group, inner)
			}
			if !strings.HasPrefix(inner, "$share") && ValidateTopicFilter(inner) != nil {
				t.Fatalf("ParseShared(%q): invalid filter %q", s, inner)
			}
		}

		if nameErr != nil {
			return
		}
		if !looksShared && filterErr != nil {
			t.Fatalf("valid topic name %q is not a valid filter: %v", s, filterErr)
		}
		if !MatchTopic(s, s) {
			t.Fatalf("MatchTopic(%q, %q) = false", s, s)
		}
		dollar := s[0] == '$'
		if MatchTopic("#", s) == dollar {
			t.Fatalf("MatchTopic(#, %q) = %v", s, !dollar)
		}
		plus := strings.Repeat("+/", TopicLevels(s)-1) + "+"
		if MatchTopic(plus, s) == dollar {
			t.Fatalf("MatchTopic(%q, %q) = %v", plus, s, !dollar)
		}
		// Every prefix of whole levels followed by "/#" matches, as does
		// the name followed by "/#" (the parent rule).
		for i := 0; i <= len(s); i++ {
			if i == len(s) || s[i] == '/' {
				if fl := s[:i] + "/#"; !MatchTopic(fl, s) {
					t.Fatalf("MatchTopic(%q, %q) = false", fl, s)
				}
			}
		}
		if MatchTopic(s+"/+", s) {
			t.Fatalf("MatchTopic(%q, %q) = true", s+"/+", s)
		}
	})
}

// FuzzMatchTopic compares MatchTopic with the split-based reference for
// every valid filter and topic name pair.
func FuzzMatchTopic(f *testing.F) {
	for _, p := range [][2]string{
		{"sport/tennis/player1/#", "sport/tennis/player1"}, {"sport/+", "sport/"}, {"+/+", "/finance"},
		{"+", "/finance"}, {"#", "$SYS/broker"}, {"$SYS/#", "$SYS"}, {"a/+/#", "a"}, {"/#", "/"},
	} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, filter, topic string) {
		got := MatchTopic(filter, topic) // must not panic, whatever the input
		if ValidateTopicFilter(filter) != nil || ValidateTopicName(topic) != nil {
			return
		}
		if want := refMatchTopic(filter, topic); got != want {
			t.Fatalf("MatchTopic(%q, %q) = %v, want %v", filter, topic, got, want)
		}
	})
}

func BenchmarkMatchTopic(b *testing.B) {
	benches := []struct{ name, filter, topic string }{
		{"exact", "sport/tennis/player1/ranking", "sport/tennis/player1/ranking"},
		{"plus", "sport/+/player1/+", "sport/tennis/player1/ranking"},
		{"hash", "sport/#", "sport/tennis/player1/score/wimbledon"},
		{"miss", "sport/tennis/player2/#", "sport/tennis/player1/score/wimbledon"},
		{"dollar", "#", "$SYS/broker/clients/connected"},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				MatchTopic(bb.filter, bb.topic)
			}
		})
	}
}

func BenchmarkValidateTopicName(b *testing.B) {
	s := "sport/tennis/player1/score/wimbledon"
	bs := []byte(s)
	b.Run("string", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = ValidateTopicName(s)
		}
	})
	b.Run("bytes", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = ValidateTopicName(bs)
		}
	})
}
