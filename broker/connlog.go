package broker

import (
	"context"
	"log/slog"
)

// connHandler adds a connection's attributes (remote address, transport,
// and from CONNECT on the client id) to the records it logs, when they are
// logged. slog's own handlers copy themselves and format the attributes at
// With, and even a lazy copy with its attributes is a few hundred bytes
// per connection kept for as long as it lives, while most connections log
// only when they end; this handler is one pointer, held in the client.
type connHandler struct{ c *client }

// initLog sets up c.log; c.srv, c.conn and c.transport must be set.
func (c *client) initLog() { c.log = *slog.New(connHandler{c}) }

func (h connHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.c.srv.log.Handler().Enabled(ctx, l)
}

// Handle logs r with the connection's attributes first, as With would.
func (h connHandler) Handle(ctx context.Context, r slog.Record) error {
	nr := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	nr.AddAttrs(h.attrs()...)
	r.Attrs(func(a slog.Attr) bool {
		nr.AddAttrs(a)
		return true
	})
	return h.c.srv.log.Handler().Handle(ctx, nr)
}

// attrs returns the connection's attributes. The client id is set while
// CONNECT is handled, before the connection is visible to other
// goroutines that log (the session makes it so).
func (h connHandler) attrs() []slog.Attr {
	c := h.c
	a := []slog.Attr{slog.String("remote", c.conn.RemoteAddr().String()), slog.String("transport", c.transport)}
	if c.id != "" {
		a = append(a, slog.String("client", c.id))
	}
	return a
}

// WithAttrs and WithGroup are rare: the attributes so far are formatted
// then.
func (h connHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return h.c.srv.log.Handler().WithAttrs(append(h.attrs(), attrs...))
}

func (h connHandler) WithGroup(name string) slog.Handler {
	return h.c.srv.log.Handler().WithAttrs(h.attrs()).WithGroup(name)
}
