// Package store defines how the broker persists its state — sessions,
// messages queued for sessions, outbound in-flight state, inbound QoS 2
// state and retained messages — and provides the in-memory implementation.
//
// All writes go through Commit with a Batch, and the broker acknowledges a
// QoS 1/2 PUBLISH only from the done callback: that callback is the seam
// that lets a durable implementation (store/badger) group-commit many
// connections' writes and release their acknowledgements together.
//
// This package must never import the broker; implementations must pass the
// conformance suite in store/storetest.
package store
