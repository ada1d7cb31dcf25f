package auth

import (
	"strings"
	"testing"
)

// BenchmarkACLAllowed is the cost of one read check, paid per message and
// subscriber when an ACL is configured: a user section of 20 rules and 3
// patterns, the match found in the patterns.
func BenchmarkACLAllowed(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("user dev\n")
	for i := range 20 {
		sb.WriteString("topic read plant/line" + string(rune('a'+i)) + "/#\n")
	}
	sb.WriteString("pattern deny devices/%c/locked\npattern read users/%u/#\npattern readwrite devices/%c/#\n")
	a, err := ParseACL(strings.NewReader(sb.String()))
	if err != nil {
		b.Fatal(err)
	}
	c := Client{Username: "dev", HasUser: true, ClientID: "dev-17"}
	b.ReportAllocs()
	for b.Loop() {
		if !a.Allowed(c, Read, "devices/dev-17/sensors/temp") {
			b.Fatal("denied")
		}
	}
}

// BenchmarkPasswordCheck is the cost of one login: PBKDF2-SHA512 with
// mosquitto_passwd's 101 iterations.
func BenchmarkPasswordCheck(b *testing.B) {
	h, err := Hash("secret", 0)
	if err != nil {
		b.Fatal(err)
	}
	p, err := ParsePasswords(strings.NewReader("u:" + h + "\n"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if !p.Check("u", []byte("secret")) {
			b.Fatal("refused")
		}
	}
}
