package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

// TestBinary builds the weir binary once and runs it as an operator would.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	if runtime.GOOS == "windows" {
		t.Skip("uses SIGTERM and SIGHUP")
	}
	bin := buildWeir(t)
	dir := t.TempDir()

	t.Run("version", func(t *testing.T) {
		out, code := runWeir(t, bin, "-version")
		if code != 0 || !strings.HasPrefix(out, "weir v1.2.3-test (commit 0123abc, go") {
			t.Errorf("exit %d, output %q", code, out)
		}
	})

	t.Run("check-config example", func(t *testing.T) {
		abs, err := filepath.Abs(examplePath)
		if err != nil {
			t.Fatal(err)
		}
		out, code := runWeir(t, bin, "-check-config", abs)
		if code != 0 || out != "config OK\n" {
			t.Errorf("exit %d, output %q", code, out)
		}
	})

	t.Run("check-config bad", func(t *testing.T) {
		bad := writeFile(t, dir, "bad.yaml", "limits:\n  receive_maximum: 0\n  max_packet_size: 1XB\n  bogus: 1\ndurability: fast\n")
		out, code := runWeir(t, bin, "-check-config", bad)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		for _, want := range []string{
			bad + `: line 2: limits.receive_maximum: 0 is out of range 1..65535`,
			bad + `: line 3: limits.max_packet_size: invalid size "1XB"`,
			bad + `: line 4: limits.bogus: unknown key`,
			bad + `: line 5: durability: "fast" is not one of none, process, sync`,
			bad + `: 4 problems`,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "config OK") {
			t.Errorf("output says config OK:\n%s", out)
		}
	})

	t.Run("check-config missing file", func(t *testing.T) {
		out, code := runWeir(t, bin, "-check-config", filepath.Join(dir, "nope.yaml"))
		if code != 1 || !strings.Contains(out, "no such file") {
			t.Errorf("exit %d, output %q", code, out)
		}
	})

	t.Run("invalid config does not start", func(t *testing.T) {
		bad := writeFile(t, dir, "bad2.yaml", "log:\n  level: loud\n")
		out, code := runWeir(t, bin, "-config", bad)
		if code != 1 || !strings.Contains(out, `log.level: "loud" is not one of`) || strings.Contains(out, "listening") {
			t.Errorf("exit %d, output %q", code, out)
		}
	})

	t.Run("bad flags", func(t *testing.T) {
		for _, args := range [][]string{
			{"-log-level", "loud"},
			{"-log-format", "xml"},
			{"-no-such-flag"},
			{"extra-argument"},
			{"-config", examplePath, "-check-config", examplePath},
		} {
			if out, code := runWeir(t, bin, args...); code != 2 {
				t.Errorf("%q: exit %d, want 2; output %q", args, code, out)
			}
		}
	})

	t.Run("serve", func(t *testing.T) {
		tcpAddr, wsAddr := brokertest.FreeAddr(t), brokertest.FreeAddr(t)
		cfg := writeFile(t, dir, "serve.yaml", fmt.Sprintf(
			"listeners:\n  tcp: %q\n  websocket: %q\n  websocket_path: /ws\nlog:\n  format: json\ndata_dir: %q\n",
			tcpAddr, wsAddr, filepath.Join(dir, "data")))
		p := startWeir(t, bin, "-config", cfg, "-log-level", "debug")

		if _, err := p.WaitAccept(tcpAddr, 10*time.Second); err != nil {
			t.Fatalf("%v\nlogs:\n%s", err, p.Logs())
		}

		conn, err := net.Dial("tcp", tcpAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		mqttConnect(t, conn)

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		wc, _, err := websocket.Dial(ctx, "ws://"+wsAddr+"/ws", &websocket.DialOptions{Subprotocols: []string{"mqtt"}})
		if err != nil {
			t.Fatalf("websocket dial: %v\n%s", err, p.Logs())
		}
		wsConn := websocket.NetConn(context.Background(), wc, websocket.MessageBinary)
		defer wsConn.Close()
		mqttConnect(t, wsConn)

		sendSignal(t, p, syscall.SIGHUP)
		brokertest.Eventually(t, 5*time.Second, func() error { return logged(p, "SIGHUP: nothing to reload") })

		sendSignal(t, p, syscall.SIGTERM)
		code, ok := p.Wait(10 * time.Second)
		if !ok {
			t.Fatalf("weir still running 10s after SIGTERM\n%s", p.Logs())
		}
		if code != 0 {
			t.Errorf("exit %d, want 0\n%s", code, p.Logs())
		}
		// The broker closed the client connection on its way out.
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("client connection still open after shutdown: %v", err)
		}

		// Logs are JSON, one object per line, with what an operator needs.
		var msgs []string
		for _, line := range strings.Split(strings.TrimSpace(p.Logs()), "\n") {
			var rec struct {
				Msg       string `json:"msg"`
				Transport string `json:"transport"`
				Addr      string `json:"addr"`
			}
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("log line is not JSON: %q", line)
			}
			if rec.Msg == "listening" {
				rec.Msg += " " + rec.Transport + " " + rec.Addr
			}
			msgs = append(msgs, rec.Msg)
		}
		all := strings.Join(msgs, "\n")
		for _, want := range []string{
			"weir starting",
			"store opened",
			"listening tcp " + tcpAddr,
			"listening websocket " + wsAddr,
			"no authentication configured: any client may connect",
			"SIGHUP: nothing to reload (no TLS, no auth files)",
			"shutting down",
			"stopped",
		} {
			if !strings.Contains(all, want) {
				t.Errorf("logs lack %q:\n%s", want, all)
			}
		}
	})

	t.Run("listen error", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		cfg := writeFile(t, dir, "busy.yaml", fmt.Sprintf("listeners:\n  tcp: %q\n  websocket: \"-\"\n", l.Addr().String()))
		p := startWeir(t, bin, "-config", cfg)
		code, ok := p.Wait(10 * time.Second)
		if !ok {
			t.Fatalf("weir still running after 10s\n%s", p.Logs())
		}
		if code != 1 || !strings.Contains(p.Logs(), "cannot serve") || !strings.Contains(p.Logs(), "websocket listener disabled") {
			t.Errorf("exit %d, want 1\n%s", code, p.Logs())
		}
	})
}

func buildWeir(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	bin := filepath.Join(t.TempDir(), "weir")
	// The release build tags (the Makefile's GOTAGS): the WebSocket
	// listener must work without net/http's HTTP/2.
	tags := brokertest.MakeVar(t, "../../Makefile", "GOTAGS")
	args := []string{"build", "-o", bin, "-tags", tags, "-ldflags", "-X main.version=v1.2.3-test -X main.commit=0123abc"}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command(goBin, append(args, ".")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// weirEnv is added to the environment of the binary: a -race build
// otherwise sleeps a second at exit.
func weirEnv() []string {
	return []string{"GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")}
}

// runWeir runs the binary to completion and returns its combined output
// and exit code.
func runWeir(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir() // the default data_dir is relative
	cmd.Env = append(os.Environ(), weirEnv()...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee) && ee.Exited():
		return string(out), ee.ExitCode()
	}
	t.Fatalf("weir %q: %v\n%s", args, err, out)
	return "", -1
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// mqttConnect sends an MQTT 3.1.1 CONNECT on c and checks the CONNACK.
func mqttConnect(t *testing.T, c net.Conn) {
	t.Helper()
	if code := connackCode(t, c, "", ""); code != 0 {
		t.Fatalf("CONNACK return code %d", code)
	}
}

// connackCode sends an MQTT 3.1.1 CONNECT with credentials on c and
// returns the CONNACK return code.
func connackCode(t *testing.T, c net.Conn, user, pw string) byte {
	t.Helper()
	p := &mqtt.Connect{ProtocolLevel: mqtt.V311, ClientID: "c" + c.LocalAddr().String(), CleanStart: true, KeepAlive: 60}
	if user != "" {
		p.HasUsername, p.Username, p.HasPassword, p.Password = true, user, true, []byte(pw)
	}
	pkt, err := p.AppendTo(nil, mqtt.V311)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(pkt); err != nil {
		t.Fatalf("write CONNECT: %v", err)
	}
	raw, err := mqtt.NewReader(c, 0).ReadPacket()
	if err != nil {
		t.Fatalf("read CONNACK: %v", err)
	}
	var ack mqtt.Connack
	if err := ack.Decode(raw, mqtt.V311); err != nil {
		t.Fatal(err)
	}
	return byte(ack.ReasonCode)
}

// startWeir starts the binary with args in a new temporary directory (the
// default data_dir is relative); it is killed, if still running, when the
// test ends.
func startWeir(t *testing.T, bin string, args ...string) *brokertest.Process {
	t.Helper()
	p, err := brokertest.StartProcess(t, brokertest.ProcessOptions{Dir: t.TempDir(), Env: weirEnv()}, append([]string{bin}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func sendSignal(t *testing.T, p *brokertest.Process, sig os.Signal) {
	t.Helper()
	if err := p.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// logged is nil once p has logged s; its error shows the logs.
func logged(p *brokertest.Process, s string) error {
	if strings.Contains(p.Logs(), s) {
		return nil
	}
	return fmt.Errorf("not logged yet: %q\nlogs:\n%s", s, p.Logs())
}
