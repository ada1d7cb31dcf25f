package bridge_test

// Tests run against a real upstream broker: Debian's mosquitto, started
// by the test on a free loopback port with its own configuration file.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weirmq/weir/bridge"
	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/internal/brokertest"
)

// mosquitto is a mosquitto broker process of a test.
type mosquitto struct {
	t    testing.TB
	Addr string // 127.0.0.1:port
	conf string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// startMosquitto starts mosquitto on a free loopback port with extra
// lines appended to its configuration (persistence in a temporary
// directory, anonymous access, no queue limits). It skips the test if
// mosquitto is not installed, and is stopped when the test ends.
func startMosquitto(t testing.TB, extra ...string) *mosquitto {
	t.Helper()
	if _, err := exec.LookPath(mosquittoBin()); err != nil {
		t.Skip("mosquitto not installed (Debian package mosquitto; `make deps` installs it): upstream broker for the bridge tests")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	m := &mosquitto{t: t, Addr: addr, dir: t.TempDir()}
	lines := []string{
		"listener " + port + " 127.0.0.1",
		"allow_anonymous true",
		"user root", // as root, mosquitto would switch to user mosquitto, who cannot write the temporary directory
		"persistence true",
		"persistence_location " + m.dir + "/",
		"max_queued_messages 0",
		"max_inflight_messages 100",
		"log_dest stderr",
		"log_type error",
		"log_type warning",
	}
	lines = append(lines, extra...)
	m.conf = filepath.Join(m.dir, "mosquitto.conf")
	if err := os.WriteFile(m.conf, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m.Start()
	t.Cleanup(func() {
		if m.cmd != nil {
			m.cmd.Process.Kill()
			<-m.done
		}
		if t.Failed() {
			if data, err := os.ReadFile(filepath.Join(m.dir, "mosquitto.log")); err == nil {
				t.Logf("mosquitto log:\n%s", data)
			}
		}
	})
	return m
}

// mosquittoBin is the mosquitto executable: on PATH, else where Debian
// puts it (/usr/sbin is not on every PATH).
func mosquittoBin() string {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	return "/usr/sbin/mosquitto"
}

// Start (re)starts mosquitto and waits until its port accepts connections.
func (m *mosquitto) Start() {
	m.t.Helper()
	lf, err := os.OpenFile(filepath.Join(m.dir, "mosquitto.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		m.t.Fatal(err)
	}
	m.cmd = exec.Command(mosquittoBin(), "-c", m.conf)
	m.cmd.Stdout, m.cmd.Stderr = lf, lf
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("starting mosquitto: %v", err)
	}
	m.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); lf.Close(); close(done) }(m.cmd, m.done)
	brokertest.Eventually(m.t, 10*time.Second, func() error {
		select {
		case <-m.done:
			m.t.Fatalf("mosquitto exited at start-up; see %s", filepath.Join(m.dir, "mosquitto.log"))
		default:
		}
		c, err := net.DialTimeout("tcp", m.Addr, time.Second)
		if err != nil {
			return err
		}
		c.Close()
		return nil
	})
}

// Stop stops mosquitto gracefully (SIGTERM: it saves its persistence
// file) and waits for it to exit.
func (m *mosquitto) Stop() {
	m.t.Helper()
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		m.cmd.Process.Kill()
		<-m.done
	}
	m.cmd = nil
}

// Broker returns m in the shape of brokertest's helpers (TCP only).
func (m *mosquitto) Broker() *brokertest.Broker { return &brokertest.Broker{Addr: m.Addr} }

// tcp is brokertest's TCP transport.
var tcp = brokertest.Transports()[0]

// startBridge runs a bridge for cfg on the local broker b until the test
// ends (it stops before b does).
func startBridge(t testing.TB, b *brokertest.Broker, cfg bridge.Config) *bridge.Bridge {
	t.Helper()
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff, cfg.MaxBackoff = 20*time.Millisecond, 200*time.Millisecond
	}
	br, err := bridge.New(b.Server, cfg, brokertest.Discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { br.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return br
}

// waitConnected waits until br is connected upstream.
func waitConnected(t testing.TB, br *bridge.Bridge) {
	t.Helper()
	brokertest.Eventually(t, 10*time.Second, func() error {
		if !br.Status().Connected {
			return errors.New("bridge not connected")
		}
		return nil
	})
}

func localBroker(t testing.TB, opts *broker.Options) *brokertest.Broker {
	return brokertest.Start(t, opts)
}

func addr(m *mosquitto) string { return fmt.Sprintf("tcp://%s", m.Addr) }

var errNotYet = errors.New("not yet")
