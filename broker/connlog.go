package broker

import (
	"context"
	"log/slog"
	"net"
	"slices"
)

// connHandler adds a connection's attributes to the records it logs when
// they are logged. slog's own handlers copy themselves and format the
// attributes at With, a few hundred bytes per connection kept for as long
// as it lives, while most connections log only when they end.
type connHandler struct {
	h     slog.Handler
	attrs []slog.Attr
}

// connLogger returns log with attrs added lazily.
func connLogger(log *slog.Logger, attrs ...slog.Attr) *slog.Logger {
	return slog.New(&connHandler{h: log.Handler(), attrs: attrs})
}

func (c *connHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return c.h.Enabled(ctx, l)
}

// Handle logs r with the connection's attributes first, as With would.
func (c *connHandler) Handle(ctx context.Context, r slog.Record) error {
	nr := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	nr.AddAttrs(c.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		nr.AddAttrs(a)
		return true
	})
	return c.h.Handle(ctx, nr)
}

func (c *connHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &connHandler{h: c.h, attrs: append(slices.Clip(c.attrs), attrs...)}
}

// WithGroup is rare: the attributes so far are formatted then.
func (c *connHandler) WithGroup(name string) slog.Handler {
	return c.h.WithAttrs(c.attrs).WithGroup(name)
}

// addrValue logs a network address as its string, formatted only when a
// record is logged.
type addrValue struct{ net.Addr }

func (a addrValue) LogValue() slog.Value { return slog.StringValue(a.Addr.String()) }
