// Package brokertest starts Weir brokers for tests: in-process on an
// ephemeral loopback port, with both TCP and WebSocket listeners.
package brokertest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/weirmq/weir/broker"
)

// Broker is a running test broker.
type Broker struct {
	Server *broker.Server
	Addr   string // host:port of the TCP listener
	WSAddr string // host:port of the WebSocket listener
	WSURL  string // ws://host:port/mqtt
}

// TCPURL is the broker's address as a tcp:// URL (paho's form).
func (b *Broker) TCPURL() string { return "tcp://" + b.Addr }

// Start runs a broker with opts (nil: defaults) on 127.0.0.1 with
// ephemeral ports and shuts it down when the test ends. Logs go to the
// test log when WEIR_TEST_LOG is set, else are discarded.
func Start(t testing.TB, opts *broker.Options) *Broker {
	t.Helper()
	var o broker.Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		var w io.Writer = io.Discard
		if os.Getenv("WEIR_TEST_LOG") != "" {
			w = testWriter{t}
		}
		o.Logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := broker.New(&o)
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	go s.ServeWebSocket(wl)
	b := &Broker{Server: s, Addr: l.Addr().String(), WSAddr: wl.Addr().String()}
	b.WSURL = fmt.Sprintf("ws://%s%s", b.WSAddr, s.Options().WSPath)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("broker shutdown: %v", err)
		}
	})
	return b
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// Eventually polls cond every 10ms until it returns nil or timeout passes,
// then fails the test with cond's last error. Tests use it instead of
// sleeping.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Discard returns a logger that drops everything.
func Discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
