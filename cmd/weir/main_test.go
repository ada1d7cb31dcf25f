package main

import (
	"bytes"
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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
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
		tcpAddr, wsAddr := freeAddr(t), freeAddr(t)
		cfg := writeFile(t, dir, "serve.yaml", fmt.Sprintf(
			"listeners:\n  tcp: %q\n  websocket: %q\n  websocket_path: /ws\nlog:\n  format: json\ndata_dir: %q\n",
			tcpAddr, wsAddr, filepath.Join(dir, "data")))
		p := startWeir(t, bin, "-config", cfg, "-log-level", "debug")

		checkFor(t, 10*time.Second, func() error {
			if p.exited() {
				return errStop
			}
			c, err := net.Dial("tcp", tcpAddr)
			if err == nil {
				c.Close()
			}
			return err
		}, p)

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
			t.Fatalf("websocket dial: %v\n%s", err, p.logs())
		}
		wsConn := websocket.NetConn(context.Background(), wc, websocket.MessageBinary)
		defer wsConn.Close()
		mqttConnect(t, wsConn)

		p.signal(syscall.SIGHUP)
		checkFor(t, 5*time.Second, func() error { return p.logged("SIGHUP: nothing to reload") }, p)

		p.signal(syscall.SIGTERM)
		code, err := p.wait(10 * time.Second)
		if err != nil {
			t.Fatalf("%v\n%s", err, p.logs())
		}
		if code != 0 {
			t.Errorf("exit %d, want 0\n%s", code, p.logs())
		}
		// The broker closed the client connection on its way out.
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("client connection still open after shutdown: %v", err)
		}

		// Logs are JSON, one object per line, with what an operator needs.
		var msgs []string
		for _, line := range strings.Split(strings.TrimSpace(p.logs()), "\n") {
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
		code, err := p.wait(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if code != 1 || !strings.Contains(p.logs(), "cannot serve") || !strings.Contains(p.logs(), "websocket listener disabled") {
			t.Errorf("exit %d, want 1\n%s", code, p.logs())
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
	args := []string{"build", "-o", bin, "-ldflags", "-X main.version=v1.2.3-test -X main.commit=0123abc"}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command(goBin, append(args, ".")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// weirEnv is the environment of the binary: a -race build otherwise
// sleeps a second at exit.
func weirEnv() []string {
	return append(os.Environ(), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
}

// runWeir runs the binary to completion and returns its combined output
// and exit code.
func runWeir(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir() // the default data_dir is relative
	cmd.Env = weirEnv()
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

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// mqttConnect sends an MQTT 3.1.1 CONNECT on c and checks the CONNACK.
func mqttConnect(t *testing.T, c net.Conn) {
	t.Helper()
	pkt, err := (&mqtt.Connect{ProtocolLevel: mqtt.V311, ClientID: "x" + c.LocalAddr().String(), CleanStart: true}).AppendTo(nil, 0)
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
		t.Fatalf("decode CONNACK % x: %v", raw, err)
	}
	if ack.ReasonCode != 0 {
		t.Fatalf("CONNACK return code %d", ack.ReasonCode)
	}
}

// process is a running weir binary.
type process struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{} // closed when the process has exited
	err  error         // from Wait, valid after done
}

func startWeir(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	p := &process{t: t, out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = t.TempDir() // the default data_dir is relative
	p.cmd.Env = weirEnv()
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits up to timeout for the process to exit and returns its code.
func (p *process) wait(timeout time.Duration) (int, error) {
	select {
	case <-p.done:
	case <-time.After(timeout):
		return -1, fmt.Errorf("weir still running after %v", timeout)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode(), nil
	}
	return 0, p.err
}

func (p *process) logs() string { return p.out.String() }

func (p *process) logged(s string) error {
	if strings.Contains(p.logs(), s) {
		return nil
	}
	return fmt.Errorf("not logged yet: %q", s)
}

// errStop makes checkFor give up at once.
var errStop = errors.New("process exited")

// checkFor polls cond every 10ms until it returns nil, failing the test
// with the last error (and p's logs) after timeout or on errStop.
func checkFor(t *testing.T, timeout time.Duration, cond func() error, p *process) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if errors.Is(err, errStop) || time.Now().After(deadline) {
			t.Fatalf("%v\nlogs:\n%s", err, p.logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
