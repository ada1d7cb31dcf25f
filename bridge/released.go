package bridge

import (
	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/mqtt"
)

// QoS 2 out messages past PUBREC at a reconnection.
//
// The local session stores that upstream acknowledged a QoS 2 message
// (PUBREC) before the bridge releases it upstream (PUBREL). When the
// session resumes, it re-sends such a message whole, marked with
// broker.ReleasedProperty (broker.InternalOptions.ResendReleased), and
// the bridge sends what upstream needs:
//   - upstream kept the bridge's session (CONNACK Session Present): it has
//     the message or already delivered it, so PUBREL with the same packet
//     id completes the exchange without a second delivery [MQTT-4.4.0-1];
//   - it did not (clean start, expired, an upstream restart without
//     persistence): PUBREL would find nothing, and an upstream that
//     delivers on PUBREL (Mosquitto) would lose the message. The bridge
//     says so in its local CONNECT (broker.PeerSessionLostProperty), and
//     the local session puts those deliveries back to sent — stored
//     before CONNACK — and re-sends them as the message with DUP, which
//     the bridge forwards like any other: upstream delivers it a second
//     time only if it had delivered it before it lost the session. Since
//     the state is stored, a crash while upstream does not have them yet
//     re-sends them as messages again, whatever session upstream reports
//     then. (A marked message with upstream's session lost cannot come;
//     should it, it is forwarded as the message.)

// takeReleased removes the released mark from the user properties of a
// PUBLISH from the local session and reports whether it was there (it is
// the last one).
func takeReleased(pr *mqtt.Properties) bool {
	n := len(pr.User)
	if n == 0 || pr.User[n-1].Key != broker.ReleasedProperty {
		return false
	}
	pr.User = pr.User[:n-1]
	if n == 1 {
		pr.User = nil
		pr.Present &^= mqtt.PropSet(0).Add(mqtt.PropUserProperty)
	}
	return true
}
