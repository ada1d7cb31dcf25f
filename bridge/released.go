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
// the bridge decides what upstream needs:
//   - upstream kept the bridge's session (CONNACK Session Present): it has
//     the message or already delivered it, so PUBREL with the same packet
//     id completes the exchange without a second delivery [MQTT-4.4.0-1];
//   - it did not (clean start, expired, an upstream restart without
//     persistence): PUBREL would find nothing, and an upstream that
//     delivers on PUBREL (Mosquitto) would lose the message; it is
//     published again, which delivers it a second time only if upstream
//     had delivered it before it lost the session.

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

// republishUp reports whether a released out message from a resuming
// local session must be published upstream again rather than released:
// upstream did not keep the session, or it is a new session that has not
// acknowledged the message yet.
func (r *relay) republishUp(pid uint16) bool {
	if !r.upKept || r.b.republished(pid) {
		r.b.setRepublished(pid, true)
		return true
	}
	return false
}

func (b *Bridge) republished(pid uint16) bool {
	b.repubMu.Lock()
	defer b.repubMu.Unlock()
	return b.republish[pid]
}

func (b *Bridge) setRepublished(pid uint16, on bool) {
	b.repubMu.Lock()
	defer b.repubMu.Unlock()
	if on {
		if b.republish == nil {
			b.republish = make(map[uint16]bool)
		}
		b.republish[pid] = true
	} else {
		delete(b.republish, pid)
	}
}
