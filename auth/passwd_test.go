package auth

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestHashRoundTrip(t *testing.T) {
	h, err := Hash("s3cret", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$7$101$") {
		t.Fatalf("hash %q: want $7$101$ prefix", h)
	}
	p, err := ParsePasswords(strings.NewReader("# users\n\nalice:" + h + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Check("alice", []byte("s3cret")) {
		t.Error("right password refused")
	}
	if p.Check("alice", []byte("s3cret ")) || p.Check("alice", nil) {
		t.Error("wrong password accepted")
	}
	if p.Check("bob", []byte("s3cret")) {
		t.Error("unknown user accepted")
	}
}

// Hashes written by Debian's mosquitto_passwd 2.0.11 (-c -b, and -H sha512
// for the 1.x format); the passwords are "secret" and "pw".
const mosquittoFile = `alice:$7$101$D+9pH+vXkN/eGyuJ$4Wo6SVEy96yQTWvu82PvR709m2ko4B/jLqT48xW4bucCG47mFbrRGuQBWTwZQxGo48t6MkeRTFVWoPCSCJsovA==
bob:$6$fZi/TlbRc3g0+SZL$rYI9ZnM/fpcsi7zKe7/J1J0jR54gLT9y9k5l8F8KCN+74d/ovHFAGHY0O2RXApqV/Z19q9greYREb54iZPIGxA==
`

func TestMosquittoHashFormats(t *testing.T) {
	p, err := ParsePasswords(strings.NewReader(mosquittoFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user, pw string
		ok       bool
	}{
		{"alice", "secret", true}, {"alice", "Secret", false},
		{"bob", "pw", true}, {"bob", "secret", false},
	} {
		if got := p.Check(c.user, []byte(c.pw)); got != c.ok {
			t.Errorf("Check(%s, %q) = %v, want %v", c.user, c.pw, got, c.ok)
		}
	}
}

// TestMosquittoPasswdInterop runs Debian's mosquitto_passwd to make a
// file now, so that a change in its format shows up here.
func TestMosquittoPasswdInterop(t *testing.T) {
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Skip("mosquitto_passwd not installed (Debian package mosquitto): interop with a real file not tested")
	}
	path := filepath.Join(t.TempDir(), "passwd")
	for i, u := range [][2]string{{"dev1", "pa:ss word"}, {"dev2", "ünïcode"}} {
		args := []string{"-b", path, u[0], u[1]}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v: %s", err, out)
		}
	}
	p, err := LoadPasswords(path)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Check("dev1", []byte("pa:ss word")) || !p.Check("dev2", []byte("ünïcode")) {
		t.Error("password from mosquitto_passwd refused")
	}
	if p.Check("dev1", []byte("pa:ss")) {
		t.Error("wrong password accepted")
	}
}

func TestParsePasswordsReportsEveryBadLine(t *testing.T) {
	in := "ok:$7$101$D+9pH+vXkN/eGyuJ$4Wo6SVEy96yQTWvu82PvR709m2ko4B/jLqT48xW4bucCG47mFbrRGuQBWTwZQxGo48t6MkeRTFVWoPCSCJsovA==\n" +
		"plain:hunter2\n" + // plain text
		"noseparator\n" +
		"iter:$7$0$D+9pH+vXkN/eGyuJ$4Wo6SVEy96yQTWvu82PvR709m2ko4B/jLqT48xW4bucCG47mFbrRGuQBWTwZQxGo48t6MkeRTFVWoPCSCJsovA==\n" +
		"short:$7$101$D+9pH+vXkN/eGyuJ$AAAA\n"
	_, err := ParsePasswords(strings.NewReader(in))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"line 2", "line 3", "line 4", "line 5"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %s", msg, want)
		}
	}
	if strings.Contains(msg, "line 1") || strings.Contains(msg, "hunter2") {
		t.Errorf("error %q names a good line or shows a password", msg)
	}
}

func TestLoadPasswordsMissingFile(t *testing.T) {
	if _, err := LoadPasswords(filepath.Join(t.TempDir(), "none")); !os.IsNotExist(err) {
		t.Fatalf("err %v, want not-exist", err)
	}
}
