package broker

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"testing"
)

// addrConn is a net.Conn with a given remote address.
type addrConn struct {
	net.Conn
	remote net.Addr
}

func (a addrConn) RemoteAddr() net.Addr { return a.remote }

// TestConnLoggerOrder checks that a connection's attributes come first, in
// the order With would put them (the client id once CONNECT set it), and
// that addresses are logged as strings by the JSON handler too.
func TestConnLoggerOrder(t *testing.T) {
	for _, mk := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var got, want bytes.Buffer
		addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1883}
		c := &client{srv: &Server{log: slog.New(mk(&got))}, conn: addrConn{remote: addr}, transport: "tcp"}
		c.initLog()
		c.log.Info("before", "n", 0)
		c.id = "c1"
		c.log.Info("hello", "n", 1)
		c.log.With("k", "v").Info("with", "n", 2)
		w := slog.New(mk(&want)).With("remote", "127.0.0.1:1883", "transport", "tcp")
		w.Info("before", "n", 0)
		w = w.With("client", "c1")
		w.Info("hello", "n", 1)
		w.With("k", "v").Info("with", "n", 2)
		strip := func(s string) string { // not the times
			var out []string
			for _, l := range strings.Split(s, "\n") {
				if i := strings.Index(l, "msg"); i >= 0 {
					out = append(out, l[i:])
				}
			}
			return strings.Join(out, "\n")
		}
		if strip(got.String()) != strip(want.String()) {
			t.Errorf("got  %s\nwant %s", got.String(), want.String())
		}
	}
}
