// Package bridge forwards messages between the local broker and upstream
// MQTT brokers, store-and-forward: what a local publisher was acknowledged
// for reaches the upstream broker even if the uplink is down for hours or
// the gateway restarts meanwhile (within the outbox budget).
//
// # How it is durable
//
// A bridge is an internal persistent session of the local broker
// (broker.Server.RegisterInternal, client id "\x00bridge/<name>", which no
// network client can use since MQTT strings cannot contain U+0000
// [MQTT-1.5.4-2]), subscribed to the filters of its out rules. So the
// outbox is that session's queue, and its durability is the broker's:
// the queue entry of a message is written in the same store commit that
// acknowledges the publisher; long queues stay on disk and are streamed
// back; in-flight state (packet ids, QoS 2 progress) survives a crash.
// The bridge deviates from DESIGN.md §5's b/<bridge>/<seq> key schema on
// purpose: the outbox is q/<session>/<seq>, the schema every persistent
// session already uses, so there is one storage path to test and no
// store.Store change.
//
// The bridge itself keeps no state but, in memory, the set of released
// QoS 2 messages it is publishing again (released.go). Each connection
// attempt opens the upstream connection, then the local one (an in-memory
// pipe, broker.Server.DialInternal), and relays packets between them with the
// same packet ids: a local PUBLISH goes upstream as is (topic remapped),
// and the upstream PUBACK comes back as the local one; for QoS 2 the
// upstream PUBREC goes to the local session, which stores "released"
// before its PUBREL goes up, and the upstream PUBCOMP completes it. The
// broker therefore dequeues a message only after the upstream broker
// completed it; whatever was unacknowledged when the uplink or the gateway
// died is re-sent by the broker's session resumption, with DUP and the
// same packet id, in the original order. A QoS 2 delivery past PUBREC is
// re-sent as the whole message marked released (InternalOptions.
// ResendReleased, released.go): the bridge sends PUBREL to an upstream
// that kept the session and publishes the message again to one that lost
// it. QoS 1 is at least once. QoS 0 is stored in the outbox like the rest
// and dequeued once written to the upstream connection (at most once
// upstream). The in direction mirrors this (the local broker keeps the
// inbound QoS 2 packet ids until PUBREL).
//
// # What it must never do
//
// Acknowledge a message to one side before the other side acknowledged it;
// refuse a local publisher because an uplink is down (the outbox budget
// drops by its policy instead, counted).
package bridge
