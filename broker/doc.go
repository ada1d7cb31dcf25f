// Package broker is Weir's MQTT server: listeners (TCP, WebSocket, TLS,
// secure WebSocket), client connections, sessions, the subscription tree,
// QoS state machines, access control and limits.
//
// Server is shaped like net/http.Server: configure it with Options, then
// Serve a listener (or ListenAndServe), and stop it with Shutdown or Close.
// It can be embedded in another Go program.
//
// Access control is pluggable: Options.Access (an AccessControl; FileAccess
// reads Mosquitto's password and ACL files), Options.TLS (a TLSConfig that
// reloads its files), Options.Authenticators (MQTT 5.0 enhanced
// authentication). With none of them set, every client may do everything.
//
// The broker acknowledges a QoS 1 or QoS 2 PUBLISH only from the store's
// commit callback, so whatever durability the store offers is what an
// acknowledgement means. It must never import the bridge.
package broker
