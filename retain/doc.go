// Package retain is the broker's index of retained messages: at most one
// *store.Message per topic name, kept in memory in a tree with one level per
// topic level, so that a new subscription's retained messages are found by
// walking the tree along its topic filter instead of scanning every topic.
//
// The rules it implements (MQTT 3.1.1 §3.3.1.3 and MQTT 5.0 §3.3.1.3):
//
//   - A retained message replaces the one its topic had before
//     [MQTT-3.3.1-5] (3.1.1 and 5.0).
//   - A retained message with an empty payload removes the one its topic had
//     and is not stored itself (3.1.1 [MQTT-3.3.1-10] [MQTT-3.3.1-11],
//     5.0 [MQTT-3.3.1-6] [MQTT-3.3.1-7]).
//   - A retained message that has expired (MQTT 5.0 Message Expiry Interval)
//     is discarded and no longer delivered (5.0 §3.3.1.3, [MQTT-3.3.2-5]).
//   - A topic filter whose first level is a wildcard does not match topics
//     that begin with '$' [MQTT-4.7.2-1] (3.1.1 and 5.0).
//
// Matching follows mqtt.MatchTopic exactly: levels are split on '/' and
// compared byte for byte, and empty levels are real levels ("a//b" has
// three, "/a" has an empty first one).
//
// What this package must never do: persist anything, or decide policy. The
// broker writes retained messages to the store in the same batch that
// acknowledges the PUBLISH and then updates the Index; the Index only reads
// a store once, in Load at start-up. It never modifies a message (messages
// are immutable and shared), never validates topics (the broker has done
// that already), and never imports the broker.
package retain
