package auth

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParseACL: any file either parses or is refused, never panics, and
// a parsed ACL answers every question without panicking.
func FuzzParseACL(f *testing.F) {
	f.Add(testACL, "devices/c1/x", "a/#")
	f.Add("pattern readwrite %u/%c/#\nuser u\ntopic deny #\n", "u/c/x", "+/+/#")
	f.Add("topic\nuser\npattern read\n", "", "#")
	f.Fuzz(func(t *testing.T, file, topic, filter string) {
		a, err := ParseACL(strings.NewReader(file))
		if err != nil {
			return
		}
		for _, c := range []Client{{ClientID: "c"}, {Username: "u", HasUser: true, ClientID: "c"}, {Username: "+", HasUser: true}} {
			a.Allowed(c, Read, topic)
			a.Allowed(c, Write, topic)
			if filter != "" {
				a.AllowedSubscribe(c, filter)
			}
		}
	})
}

// FuzzParsePasswords: any file either parses or is refused without
// panicking, and the error never quotes a hash.
func FuzzParsePasswords(f *testing.F) {
	f.Add("alice:$7$101$D+9pH+vXkN/eGyuJ$4Wo6SVEy96yQTWvu82PvR709m2ko4B/jLqT48xW4bucCG47mFbrRGuQBWTwZQxGo48t6MkeRTFVWoPCSCJsovA==\n")
	f.Add("bob:$6$fZi/TlbRc3g0+SZL$rYI9ZnM/fpcsi7zKe7/J1J0jR54gLT9y9k5l8F8KCN+74d/ovHFAGHY0O2RXApqV/Z19q9greYREb54iZPIGxA==\n")
	f.Add("x:$7$0$$\n:\n#c\n")
	f.Fuzz(func(t *testing.T, file string) {
		p, err := ParsePasswords(bytes.NewReader([]byte(file)))
		if err == nil {
			p.Len()
			return
		}
		// Usernames are quoted; a hash is not (unless a username holds it).
		lines := strings.Split(file, "\n")
		var users strings.Builder
		for _, line := range lines {
			u, _, _ := strings.Cut(line, ":")
			users.WriteString(u + "\n")
		}
		for _, line := range lines {
			_, h, ok := strings.Cut(line, ":")
			h = strings.TrimSpace(h)
			if ok && len(h) > 8 && !strings.Contains(users.String(), h) && strings.Contains(err.Error(), h) {
				t.Fatalf("error %q quotes the hash %q", err, h)
			}
		}
	})
}
