package broker

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"testing"
)

// TestConnLoggerOrder checks that a connection's attributes come first, in
// the order given, as slog's With puts them, and that addresses are logged
// as strings by the JSON handler too.
func TestConnLoggerOrder(t *testing.T) {
	for _, mk := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var got, want bytes.Buffer
		addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1883}
		connLogger(slog.New(mk(&got)), slog.Any("remote", addrValue{addr}), slog.String("transport", "tcp")).
			With("client", "c1").Info("hello", "n", 1)
		slog.New(mk(&want)).With("remote", "127.0.0.1:1883", "transport", "tcp").
			With("client", "c1").Info("hello", "n", 1)
		strip := func(s string) string { return s[strings.Index(s, "msg"):] } // not the time
		if strip(got.String()) != strip(want.String()) {
			t.Errorf("got  %s\nwant %s", got.String(), want.String())
		}
	}
}
