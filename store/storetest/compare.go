package storetest

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/weirmq/weir/mqtt"
	"github.com/weirmq/weir/store"
)

// Fixtures. Every test builds new values for what it commits and never
// modifies them afterwards (the memory store keeps the pointers).

// expiryAt is a message expiry with nanoseconds and a monotonic reading.
var expiryAt = time.Now().Add(90 * time.Minute)

// disconnectedAt is a time with nanoseconds in a zone that is neither UTC
// nor Local: a store may give it back in any zone, but Equal.
var disconnectedAt = time.Date(2031, 5, 17, 10, 11, 12, 123456789, time.FixedZone("X", 5*3600+30*60))

// plainMessage returns a message with no properties and no expiry.
func plainMessage(id uint64, topic string) *store.Message {
	return &store.Message{
		ID:      id,
		Topic:   topic,
		Payload: fmt.Appendf(nil, "payload of %d", id),
		QoS:     1,
	}
}

// fullMessage returns a message with every field set, its properties as a
// decoded PUBLISH would have them.
func fullMessage(id uint64, topic string) *store.Message {
	p := &mqtt.Properties{
		PayloadFormat:   1,
		ContentType:     "application/json; charset=utf-8",
		ResponseTopic:   "reply/" + topic,
		CorrelationData: []byte{0, 1, 2, 0xfe, 0xff},
		User: []mqtt.UserProperty{
			{Key: "k", Value: "v1"},
			{Key: "k", Value: "v2"}, // repeated keys keep their order
			{Key: "empty", Value: ""},
			{Key: "ünï/+#", Value: "ß 🙂"},
		},
	}
	p.Set(mqtt.PropPayloadFormat)
	p.Set(mqtt.PropContentType)
	p.Set(mqtt.PropResponseTopic)
	p.Set(mqtt.PropCorrelationData)
	return &store.Message{
		ID:      id,
		Topic:   topic,
		Payload: append([]byte{0, 0xff, '\n'}, fmt.Sprintf("full payload of %d", id)...),
		QoS:     2,
		Retain:  true,
		Props:   p,
		Expiry:  expiryAt,
		Origin:  "publisher/1",
	}
}

// sameTime reports whether a and b are the same instant, the zero time
// only matching the zero time.
func sameTime(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero() == b.IsZero()
	}
	return a.Equal(b)
}

// normProps returns p with nil standing for no properties and for empty
// slices, so that a serializing store need not tell them apart.
func normProps(p *mqtt.Properties) mqtt.Properties {
	if p == nil {
		return mqtt.Properties{}
	}
	n := *p
	if len(n.CorrelationData) == 0 {
		n.CorrelationData = nil
	}
	if len(n.SubscriptionIDs) == 0 {
		n.SubscriptionIDs = nil
	}
	if len(n.AuthData) == 0 {
		n.AuthData = nil
	}
	if len(n.User) == 0 {
		n.User = nil
	}
	return n
}

// diffMessage describes how got differs from want; "" when it does not.
func diffMessage(want, got *store.Message) string {
	if want == nil || got == nil {
		if want == got {
			return ""
		}
		return fmt.Sprintf("message = %+v, want %+v", got, want)
	}
	var d []string
	if got.ID != want.ID {
		d = append(d, fmt.Sprintf("ID = %d, want %d", got.ID, want.ID))
	}
	if got.Topic != want.Topic {
		d = append(d, fmt.Sprintf("Topic = %q, want %q", got.Topic, want.Topic))
	}
	if !bytes.Equal(got.Payload, want.Payload) {
		d = append(d, fmt.Sprintf("Payload = %q, want %q", got.Payload, want.Payload))
	}
	if got.QoS != want.QoS {
		d = append(d, fmt.Sprintf("QoS = %d, want %d", got.QoS, want.QoS))
	}
	if got.Retain != want.Retain {
		d = append(d, fmt.Sprintf("Retain = %v, want %v", got.Retain, want.Retain))
	}
	if gp, wp := normProps(got.Props), normProps(want.Props); !reflect.DeepEqual(gp, wp) {
		d = append(d, fmt.Sprintf("Props = %+v, want %+v", gp, wp))
	}
	if !sameTime(got.Expiry, want.Expiry) {
		d = append(d, fmt.Sprintf("Expiry = %v, want %v", got.Expiry, want.Expiry))
	}
	if got.Origin != want.Origin {
		d = append(d, fmt.Sprintf("Origin = %q, want %q", got.Origin, want.Origin))
	}
	return strings.Join(d, "; ")
}

// diffEntry describes how got differs from want; "" when it does not.
func diffEntry(want, got store.QueueEntry) string {
	var d []string
	if got.Seq != want.Seq {
		d = append(d, fmt.Sprintf("Seq = %d, want %d", got.Seq, want.Seq))
	}
	if got.MsgID != want.MsgID {
		d = append(d, fmt.Sprintf("MsgID = %d, want %d", got.MsgID, want.MsgID))
	}
	if got.QoS != want.QoS {
		d = append(d, fmt.Sprintf("QoS = %d, want %d", got.QoS, want.QoS))
	}
	if got.Retain != want.Retain {
		d = append(d, fmt.Sprintf("Retain = %v, want %v", got.Retain, want.Retain))
	}
	if !slices.Equal(got.SubIDs, want.SubIDs) {
		d = append(d, fmt.Sprintf("SubIDs = %v, want %v", got.SubIDs, want.SubIDs))
	}
	if got.PacketID != want.PacketID {
		d = append(d, fmt.Sprintf("PacketID = %d, want %d", got.PacketID, want.PacketID))
	}
	if got.State != want.State {
		d = append(d, fmt.Sprintf("State = %d, want %d", got.State, want.State))
	}
	if got.Size != want.Size {
		d = append(d, fmt.Sprintf("Size = %d, want %d", got.Size, want.Size))
	}
	if got.Group != want.Group {
		d = append(d, fmt.Sprintf("Group = %q, want %q", got.Group, want.Group))
	}
	// Kept to the second (QueueEntry.Queued).
	if got.Queued.IsZero() != want.Queued.IsZero() || got.Queued.Unix() != want.Queued.Unix() {
		d = append(d, fmt.Sprintf("Queued = %v, want %v", got.Queued, want.Queued))
	}
	return strings.Join(d, "; ")
}

// diffSession describes how got differs from want; "" when it does not.
func diffSession(want, got *store.SessionRecord) string {
	var d []string
	if got.ClientID != want.ClientID {
		d = append(d, fmt.Sprintf("ClientID = %q, want %q", got.ClientID, want.ClientID))
	}
	if got.Version != want.Version {
		d = append(d, fmt.Sprintf("Version = %v, want %v", got.Version, want.Version))
	}
	if got.ExpirySeconds != want.ExpirySeconds {
		d = append(d, fmt.Sprintf("ExpirySeconds = %d, want %d", got.ExpirySeconds, want.ExpirySeconds))
	}
	if !sameTime(got.DisconnectedAt, want.DisconnectedAt) {
		d = append(d, fmt.Sprintf("DisconnectedAt = %v, want %v", got.DisconnectedAt, want.DisconnectedAt))
	}
	if len(got.Subscriptions) != len(want.Subscriptions) {
		d = append(d, fmt.Sprintf("Subscriptions = %+v, want %+v", got.Subscriptions, want.Subscriptions))
	} else {
		for i, w := range want.Subscriptions {
			if g := got.Subscriptions[i]; g != w {
				d = append(d, fmt.Sprintf("Subscriptions[%d] = %+v, want %+v", i, g, w))
			}
		}
	}
	if got.Username != want.Username || got.HasUsername != want.HasUsername {
		d = append(d, fmt.Sprintf("Username = %q (%v), want %q (%v)", got.Username, got.HasUsername, want.Username, want.HasUsername))
	}
	switch {
	case got.Will == nil && want.Will == nil:
	case got.Will == nil || want.Will == nil:
		d = append(d, fmt.Sprintf("Will = %+v, want %+v", got.Will, want.Will))
	default:
		if got.Will.Delay != want.Will.Delay {
			d = append(d, fmt.Sprintf("Will.Delay = %d, want %d", got.Will.Delay, want.Will.Delay))
		}
		if m := diffMessage(want.Will.Message, got.Will.Message); m != "" {
			d = append(d, "Will.Message: "+m)
		}
	}
	return strings.Join(d, "; ")
}
