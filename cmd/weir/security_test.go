package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weirmq/weir/auth"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

func hashLine(t *testing.T, user, pw string) string {
	t.Helper()
	h, err := auth.Hash(pw, 0)
	if err != nil {
		t.Fatal(err)
	}
	return user + ":" + h + "\n"
}

// TestBinarySecurityReload runs the binary with TLS, a password file and
// an ACL, and checks that SIGHUP reloads them without dropping a
// connected TLS client, and that broken files keep the old ones.
func TestBinarySecurityReload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	if runtime.GOOS == "windows" {
		t.Skip("uses SIGHUP")
	}
	bin := buildWeir(t)
	dir := t.TempDir()
	ca := brokertest.NewCA(t, "ca")
	cert, key := ca.WriteCert(t, dir, "server", "server-1", true)
	pwFile := writeFile(t, dir, "passwd", hashLine(t, "alice", "alice-secret"))
	aclFile := writeFile(t, dir, "acl", "user alice\ntopic readwrite #\nuser bob\ntopic read #\n")
	tcpAddr, tlsAddr := brokertest.FreeAddr(t), brokertest.FreeAddr(t)
	cfg := writeFile(t, dir, "weir.yaml", fmt.Sprintf(`listeners:
  tcp: %q
  websocket: "-"
  tls:
    mqtt: %q
    cert_file: %q
    key_file: %q
auth:
  password_file: %q
  acl_file: %q
durability: none
`, tcpAddr, tlsAddr, cert, key, pwFile, aclFile))
	if out, code := runWeir(t, bin, "-check-config", cfg); code != 0 {
		t.Fatalf("check-config: %s", out)
	}
	p := startWeir(t, bin, "-config", cfg)
	if _, err := p.WaitAccept(tlsAddr, 10*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, p.Logs())
	}

	clientTLS := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}
	dialTLS := func() *tls.Conn {
		c, err := tls.Dial("tcp", tlsAddr, clientTLS)
		if err != nil {
			t.Fatalf("TLS dial: %v\n%s", err, p.Logs())
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dialTCP := func() net.Conn {
		c, err := net.Dial("tcp", tcpAddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	long := dialTLS()
	if code := connackCode(t, long, "alice", "alice-secret"); code != 0 {
		t.Fatalf("alice over TLS: CONNACK %d", code)
	}
	if code := connackCode(t, dialTCP(), "bob", "bob-secret"); code != mqtt.ConnRefusedBadUsernamePasswd {
		t.Fatalf("bob before reload: CONNACK %d, want 4", code)
	}
	if code := connackCode(t, dialTCP(), "", ""); code != mqtt.ConnRefusedNotAuthorized {
		t.Fatalf("anonymous with a password file: CONNACK %d, want 5", code)
	}

	// Add bob and renew the certificate, then SIGHUP.
	brokertest.WriteFileAtomic(t, pwFile, []byte(hashLine(t, "alice", "alice-secret")+hashLine(t, "bob", "bob-secret")))
	c2, k2, _ := ca.Issue(t, "server-2", true)
	brokertest.WriteFileAtomic(t, cert, c2)
	brokertest.WriteFileAtomic(t, key, k2)
	sendSignal(t, p, syscall.SIGHUP)
	brokertest.Eventually(t, 5*time.Second, func() error { return logged(p, "SIGHUP: password and ACL files reloaded") })
	brokertest.Eventually(t, 5*time.Second, func() error { return logged(p, "SIGHUP: TLS certificate reloaded") })
	if code := connackCode(t, dialTCP(), "bob", "bob-secret"); code != 0 {
		t.Fatalf("bob after reload: CONNACK %d", code)
	}
	if cn := dialTLS().ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "server-2" {
		t.Fatalf("certificate after reload: %q, want server-2", cn)
	}
	// The TLS client connected before the reload is still served.
	ping, _ := (&mqtt.Pingreq{}).AppendTo(nil, mqtt.V311)
	long.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := long.Write(ping); err != nil {
		t.Fatalf("old TLS connection: %v", err)
	}
	if raw, err := mqtt.NewReader(long, 0).ReadPacket(); err != nil || mqtt.PeekType(raw) != mqtt.PINGRESP {
		t.Fatalf("old TLS connection: PINGRESP not received: %v", err)
	}

	// Broken files: the old ones stay in force, and the log says why.
	writeFile(t, dir, "passwd", "bob:not-a-hash\n")
	writeFile(t, dir, "acl", "user bob\ntopic sometimes #\n")
	sendSignal(t, p, syscall.SIGHUP)
	brokertest.Eventually(t, 5*time.Second, func() error { return logged(p, "password/ACL files not reloaded") })
	if code := connackCode(t, dialTCP(), "bob", "bob-secret"); code != 0 {
		t.Fatalf("bob after a failed reload: CONNACK %d, want the old file in force", code)
	}
	logs := p.Logs()
	if !strings.Contains(logs, "line 1") || !strings.Contains(logs, "line 2") {
		t.Errorf("the reload error does not name the bad lines:\n%s", logs)
	}
	for _, secret := range []string{"alice-secret", "bob-secret", "not-a-hash"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q:\n%s", secret, logs)
		}
	}
}
