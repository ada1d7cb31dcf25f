// Package subtree is the broker's subscription trie: it maps MQTT topic
// filters to subscribers and finds, for a published topic name, every
// subscription that matches it (MQTT 3.1.1 and 5.0 §4.7, shared
// subscriptions 5.0 §4.8.2).
//
// The tree is generic over the subscriber's identity K (the broker uses a
// session pointer) and the subscription's data V (options, subscription
// identifier), so it knows nothing about sessions, packets or delivery.
//
// Match is on the publish hot path: it does not allocate, takes only a read
// lock, and splits the topic by scanning indexes. Subscribe and Unsubscribe
// take the write lock.
//
// What this package must never do: validate filters or topics (the caller
// has, with mqtt.ValidateTopicFilter and mqtt.ValidateTopicName), deliver
// messages, merge a subscriber's overlapping subscriptions (the broker does,
// [MQTT-3.3.5-1]) or choose which shared-group member is online (the broker
// passes that policy to Group.Next).
package subtree
