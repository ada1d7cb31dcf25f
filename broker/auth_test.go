package broker_test

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weirmq/weir/auth"
	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

// writeFile writes content to name in dir and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// passwdLine returns a password file line for user.
func passwdLine(t *testing.T, user, pw string) string {
	t.Helper()
	h, err := auth.Hash(pw, 0)
	if err != nil {
		t.Fatal(err)
	}
	return user + ":" + h + "\n"
}

// startWithFiles runs a broker whose access control reads the given
// password and ACL file contents ("" means no such file).
func startWithFiles(t *testing.T, passwd, acl string, anon bool, mod func(*broker.Options)) (*brokertest.Broker, *broker.FileAccess, broker.FileAccessConfig) {
	t.Helper()
	dir := t.TempDir()
	cfg := broker.FileAccessConfig{AllowAnonymous: anon}
	if passwd != "" {
		cfg.PasswordFile = writeFile(t, dir, "passwd", passwd)
	}
	if acl != "" {
		cfg.ACLFile = writeFile(t, dir, "acl", acl)
	}
	fa, err := broker.NewFileAccess(cfg)
	if err != nil {
		t.Fatal(err)
	}
	o := &broker.Options{Access: fa}
	if mod != nil {
		mod(o)
	}
	return brokertest.Start(t, o), fa, cfg
}

func rawConnect(t *testing.T, b *brokertest.Broker, v mqtt.Version, id string, user, pw *string) *mqtt.Connack {
	t.Helper()
	r := brokertest.NewRaw(b.DialTCP(t), v)
	c := &mqtt.Connect{ProtocolLevel: v, ClientID: id, CleanStart: true}
	if user != nil {
		c.HasUsername, c.Username = true, *user
	}
	if pw != nil {
		c.HasPassword, c.Password = true, []byte(*pw)
	}
	return r.Connect(t, c)
}

func ptr(s string) *string { return &s }

// TestAuthConnackCodes: the CONNACK codes of refused logins in both
// protocol versions [MQTT-3.2.2-6] (3.1.1 Table 3.1; 5.0 §3.2.2.2).
func TestAuthConnackCodes(t *testing.T) {
	b, _, _ := startWithFiles(t, passwdLine(t, "alice", "right"), "", false, nil)
	for _, c := range []struct {
		name     string
		v        mqtt.Version
		user, pw *string
		want     mqtt.ReasonCode
	}{
		{"5.0 anonymous not allowed", mqtt.V5, nil, nil, mqtt.NotAuthorized},
		{"5.0 wrong password", mqtt.V5, ptr("alice"), ptr("wrong"), mqtt.BadUserNameOrPassword},
		{"5.0 unknown user", mqtt.V5, ptr("mallory"), ptr("right"), mqtt.BadUserNameOrPassword},
		{"5.0 no password", mqtt.V5, ptr("alice"), nil, mqtt.BadUserNameOrPassword},
		{"5.0 right password", mqtt.V5, ptr("alice"), ptr("right"), mqtt.Success},
		{"3.1.1 anonymous not allowed", mqtt.V311, nil, nil, mqtt.ReasonCode(mqtt.ConnRefusedNotAuthorized)},
		{"3.1.1 wrong password", mqtt.V311, ptr("alice"), ptr("wrong"), mqtt.ReasonCode(mqtt.ConnRefusedBadUsernamePasswd)},
		{"3.1.1 right password", mqtt.V311, ptr("alice"), ptr("right"), mqtt.Success},
	} {
		t.Run(c.name, func(t *testing.T) {
			ack := rawConnect(t, b, c.v, "c-"+strings.ReplaceAll(c.name, " ", "-"), c.user, c.pw)
			if ack.ReasonCode != c.want {
				t.Fatalf("CONNACK 0x%02x, want 0x%02x", byte(ack.ReasonCode), byte(c.want))
			}
		})
	}
}

func TestAuthAllowAnonymous(t *testing.T) {
	b, _, _ := startWithFiles(t, passwdLine(t, "alice", "right"), "", true, nil)
	if ack := rawConnect(t, b, mqtt.V5, "anon", nil, nil); ack.ReasonCode != mqtt.Success {
		t.Fatalf("anonymous refused: 0x%02x", byte(ack.ReasonCode))
	}
	// A username is still checked.
	if ack := rawConnect(t, b, mqtt.V5, "named", ptr("alice"), ptr("wrong")); ack.ReasonCode != mqtt.BadUserNameOrPassword {
		t.Fatalf("wrong password: 0x%02x", byte(ack.ReasonCode))
	}
}

// TestAuthFailuresRateLimitedAndLoggedWithoutSecrets: after
// MaxAuthFailures failures from one address, even the right password is
// refused until the window passes; no password appears in the log.
func TestAuthFailuresRateLimitedAndLoggedWithoutSecrets(t *testing.T) {
	var logs syncBuffer
	window := 400 * time.Millisecond
	b, _, _ := startWithFiles(t, passwdLine(t, "alice", "right-pw"), "", false, func(o *broker.Options) {
		o.MaxAuthFailures = 3
		o.AuthFailureWindow = window
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	start := time.Now()
	for i := range 3 {
		if ack := rawConnect(t, b, mqtt.V5, "x", ptr("alice"), ptr("guess-"+string(rune('a'+i)))); ack.ReasonCode != mqtt.BadUserNameOrPassword {
			t.Fatalf("failure %d: 0x%02x", i, byte(ack.ReasonCode))
		}
	}
	ack := rawConnect(t, b, mqtt.V5, "x", ptr("alice"), ptr("right-pw"))
	if time.Since(start) < window && ack.ReasonCode != mqtt.NotAuthorized {
		t.Fatalf("right password during the block: 0x%02x, want 0x87", byte(ack.ReasonCode))
	}
	brokertest.Eventually(t, 5*time.Second, func() error {
		if ack := rawConnect(t, b, mqtt.V5, "x", ptr("alice"), ptr("right-pw")); ack.ReasonCode != mqtt.Success {
			return fmt.Errorf("still refused: 0x%02x", byte(ack.ReasonCode))
		}
		return nil
	})
	if st := b.Server.Stats(); st.AuthFailures != 3 {
		t.Errorf("AuthFailures %d, want 3", st.AuthFailures)
	}
	out := logs.String()
	if !strings.Contains(out, "failed logins over the limit") || !strings.Contains(out, `bad username or password (username \"alice\")`) {
		t.Errorf("failures not logged:\n%s", out)
	}
	for _, secret := range []string{"right-pw", "guess-a", "guess-b", "guess-c"} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains password %q:\n%s", secret, out)
		}
	}
}

// TestAnonymousListeners: with anonymous clients refused in general, a
// listener named in AnonymousListeners still accepts them (a username is
// still checked there), and the other listeners do not.
func TestAnonymousListeners(t *testing.T) {
	fa, err := broker.NewFileAccess(broker.FileAccessConfig{
		PasswordFile:       writeFile(t, t.TempDir(), "passwd", passwdLine(t, "alice", "right")),
		AnonymousListeners: []string{"tcp"},
	})
	if err != nil {
		t.Fatal(err)
	}
	b := brokertest.Start(t, &broker.Options{Access: fa})
	connect := func(conn net.Conn, id string, user, pw *string) mqtt.ReasonCode {
		r := brokertest.NewRaw(conn, mqtt.V5)
		c := &mqtt.Connect{ProtocolLevel: mqtt.V5, ClientID: id, CleanStart: true}
		if user != nil {
			c.HasUsername, c.Username = true, *user
		}
		if pw != nil {
			c.HasPassword, c.Password = true, []byte(*pw)
		}
		return r.Connect(t, c).ReasonCode
	}
	if rc := connect(b.DialTCP(t), "anon-tcp", nil, nil); rc != mqtt.Success {
		t.Errorf("anonymous on tcp: CONNACK %v, want success", rc)
	}
	if rc := connect(b.DialTCP(t), "alice-tcp", ptr("alice"), ptr("wrong")); rc != mqtt.BadUserNameOrPassword {
		t.Errorf("wrong password on tcp: CONNACK %v, want 0x86", rc)
	}
	if rc := connect(b.DialWS(t), "anon-ws", nil, nil); rc != mqtt.NotAuthorized {
		t.Errorf("anonymous on websocket: CONNACK %v, want 0x87", rc)
	}
	if rc := connect(b.DialWS(t), "alice-ws", ptr("alice"), ptr("right")); rc != mqtt.Success {
		t.Errorf("alice on websocket: CONNACK %v, want success", rc)
	}
}
