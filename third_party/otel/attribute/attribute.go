// Package attribute stands in for go.opentelemetry.io/otel/attribute: the
// constructors Badger calls, for spans that record nothing.
package attribute

// KeyValue is an attribute of a span; the no-op spans discard it.
type KeyValue struct{}

// Int returns an attribute that the no-op spans discard.
func Int(k string, v int) KeyValue { return KeyValue{} }

// String returns an attribute that the no-op spans discard.
func String(k, v string) KeyValue { return KeyValue{} }
