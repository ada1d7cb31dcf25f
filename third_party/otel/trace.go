// Package otel stands in for go.opentelemetry.io/otel in the weir build:
// it provides only the calls Badger makes, and they do nothing. See
// PATCHED.md.
package otel

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
)

// Tracer returns a tracer whose spans record nothing, which is what the
// real otel.Tracer returns while no TracerProvider is registered (weir
// never registers one).
func Tracer(name string) NoopTracer { return NoopTracer{} }

// NoopTracer starts spans that record nothing.
type NoopTracer struct{}

// Start returns ctx unchanged and a span that records nothing.
func (NoopTracer) Start(ctx context.Context, spanName string) (context.Context, NoopSpan) {
	return ctx, NoopSpan{}
}

// NoopSpan records nothing.
type NoopSpan struct{}

// SetAttributes does nothing.
func (NoopSpan) SetAttributes(kv ...attribute.KeyValue) {}

// End does nothing.
func (NoopSpan) End() {}
