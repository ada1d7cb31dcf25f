package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weirmq/weir/auth"
	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/internal/brokertest"
)

func passwd(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := runPasswd(args, strings.NewReader(stdin), &out, &errOut)
	return code, errOut.String()
}

func mustCheck(t *testing.T, path, user, pw string, want bool) {
	t.Helper()
	p, err := auth.LoadPasswords(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Check(user, []byte(pw)); got != want {
		t.Fatalf("Check(%s, %q) = %v, want %v", user, pw, got, want)
	}
}

func TestPasswdAddUpdateDelete(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	if code, msg := passwd(t, "", "-b", path, "alice", "pw1"); code != 1 || !strings.Contains(msg, "-c") {
		t.Fatalf("missing file without -c: %d %q", code, msg)
	}
	if code, msg := passwd(t, "", "-c", "-b", path, "alice", "pw1"); code != 0 {
		t.Fatalf("create: %d %s", code, msg)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("new file mode %v, want 0600", st.Mode().Perm())
	}
	// Comments and other users survive edits.
	data, _ := os.ReadFile(path)
	os.WriteFile(path, append([]byte("# gateway users\n"), data...), 0o600)
	os.Chmod(path, 0o640)
	if code, msg := passwd(t, "", "-b", path, "bob", "pw2"); code != 0 {
		t.Fatalf("add: %d %s", code, msg)
	}
	if code, msg := passwd(t, "", "-b", path, "alice", "new"); code != 0 {
		t.Fatalf("update: %d %s", code, msg)
	}
	mustCheck(t, path, "alice", "new", true)
	mustCheck(t, path, "alice", "pw1", false)
	mustCheck(t, path, "bob", "pw2", true)
	if code, msg := passwd(t, "", "-D", path, "bob"); code != 0 {
		t.Fatalf("delete: %d %s", code, msg)
	}
	mustCheck(t, path, "bob", "pw2", false)
	if code, _ := passwd(t, "", "-D", path, "bob"); code != 1 {
		t.Fatal("deleting a missing user succeeded")
	}
	data, _ = os.ReadFile(path)
	if lines := strings.Split(strings.TrimSpace(string(data)), "\n"); len(lines) != 2 || lines[0] != "# gateway users" ||
		!strings.HasPrefix(lines[1], "alice:$7$101$") {
		t.Fatalf("file:\n%s", data)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v changed, want 0640 kept", st.Mode().Perm())
	}
	for _, bad := range [][]string{{"-b", path, "a:b", "x"}, {"-b", path, "", "x"}} {
		if code, _ := passwd(t, "", bad...); code == 0 {
			t.Errorf("%q accepted", bad)
		}
	}
	if code, _ := passwd(t, "", "-D", "-b", path, "alice", "x"); code != 2 {
		t.Error("-D with -b accepted")
	}
}

func TestPasswdPrompt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	if code, msg := passwd(t, "s3cret\ns3cret\n", "-c", path, "dev"); code != 0 {
		t.Fatalf("%d %s", code, msg)
	}
	mustCheck(t, path, "dev", "s3cret", true)
	if code, msg := passwd(t, "one\ntwo\n", path, "dev"); code != 1 || !strings.Contains(msg, "do not match") {
		t.Fatalf("mismatch: %d %q", code, msg)
	}
	mustCheck(t, path, "dev", "s3cret", true)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// mosquittoPub publishes once with the given credentials and reports
// whether the broker accepted them.
func mosquittoPub(t *testing.T, port, user, pw string) bool {
	t.Helper()
	bin, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		t.Skip("mosquitto_pub not installed (Debian package mosquitto-clients)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-h", "127.0.0.1", "-p", port, "-u", user, "-P", pw,
		"-t", "interop", "-m", "x", "-q", "1").CombinedOutput()
	if err != nil {
		t.Logf("mosquitto_pub -u %s: %v: %s", user, err, out)
	}
	return err == nil
}

// TestPasswdFileWorksInMosquitto: a file written by weir passwd is
// accepted by a real mosquitto broker.
func TestPasswdFileWorksInMosquitto(t *testing.T) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/mosquitto"); err != nil {
			t.Skip("mosquitto not installed (Debian package mosquitto): interop with a real broker not tested")
		}
	}
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "passwd")
	if code, msg := passwd(t, "", "-c", "-b", pwFile, "sensor-1", "t0p s3cret:x"); code != 0 {
		t.Fatal(msg)
	}
	port := freePort(t)
	conf := filepath.Join(dir, "mosquitto.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous false\npassword_file %s\nuser root\n", port, pwFile)), 0o600)
	var logs bytes.Buffer
	cmd := exec.Command(bin, "-c", conf)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("mosquitto logs:\n%s", logs.String())
		}
	})
	brokertest.Eventually(t, 10*time.Second, func() error {
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err == nil {
			c.Close()
		}
		return err
	})
	if !mosquittoPub(t, port, "sensor-1", "t0p s3cret:x") {
		t.Fatal("mosquitto refused the password from weir passwd")
	}
	if mosquittoPub(t, port, "sensor-1", "wrong") {
		t.Fatal("mosquitto accepted a wrong password")
	}
}

// TestMosquittoPasswdFileWorksInWeir: a file written by Debian's
// mosquitto_passwd is accepted by Weir, checked with mosquitto_pub.
func TestMosquittoPasswdFileWorksInWeir(t *testing.T) {
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Skip("mosquitto_passwd not installed (Debian package mosquitto): interop not tested")
	}
	pwFile := filepath.Join(t.TempDir(), "passwd")
	if out, err := exec.Command(bin, "-c", "-b", pwFile, "sensor-2", "another pw").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}
	fa, err := broker.NewFileAccess(broker.FileAccessConfig{PasswordFile: pwFile})
	if err != nil {
		t.Fatal(err)
	}
	b := brokertest.Start(t, &broker.Options{Access: fa})
	_, port, _ := net.SplitHostPort(b.Addr)
	if !mosquittoPub(t, port, "sensor-2", "another pw") {
		t.Fatal("Weir refused the password from mosquitto_passwd")
	}
	if mosquittoPub(t, port, "sensor-2", "another") {
		t.Fatal("Weir accepted a wrong password")
	}
}
