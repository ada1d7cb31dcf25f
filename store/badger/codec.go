package badgerstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/weirmq/weir/mqtt"
	"github.com/weirmq/weir/store"
)

// Value encodings. Every value starts with a version byte (valueV1) so
// that the format can change without a migration of old data; a decoder
// rejects versions it does not know. Integers are unsigned varints
// (encoding/binary) unless said otherwise, signed ints zig-zag varints,
// strings and byte slices a varint length and the bytes. Decoders check
// every length and reject trailing bytes, so a damaged value is reported
// (as a *CorruptError naming its key) and never read as something else.
const valueV1 = 1

// entryV2 is the queue-entry encoding that adds the message's Size and
// shared Group, entryV3 the time it was queued; older entries still
// decode, with what they lack zero (unknown).
const (
	entryV2 = 2
	entryV3 = 3
)

// ErrCorrupt is matched (errors.Is) by every error about stored data that
// cannot be decoded.
var ErrCorrupt = errors.New("badgerstore: corrupt data")

// CorruptError reports a stored value (or key) that cannot be decoded.
type CorruptError struct {
	Key    []byte
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("badgerstore: corrupt value at key %s: %s", formatKey(e.Key), e.Reason)
}

// Unwrap makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

func corrupt(key []byte, err error) error {
	if err == nil {
		return nil
	}
	return &CorruptError{Key: append([]byte(nil), key...), Reason: err.Error()}
}

// encoder appends to a byte slice.
type encoder struct{ b []byte }

func (e *encoder) byte(v byte)      { e.b = append(e.b, v) }
func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) bytes(p []byte)   { e.uvarint(uint64(len(p))); e.b = append(e.b, p...) }

func (e *encoder) time(t time.Time) {
	e.varint(t.Unix())
	e.uvarint(uint64(t.Nanosecond()))
}

// decoder reads what encoder wrote. The first failure sticks: later reads
// return zero values and err keeps the first reason.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format+" (at byte %d of %d)", append(args, d.off, len(d.b))...)
	}
}

func (d *decoder) byte(what string) byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.fail("truncated before %s", what)
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad varint for %s", what)
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad varint for %s", what)
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) uint(what string, max uint64) uint64 {
	v := d.uvarint(what)
	if v > max {
		d.fail("%s %d out of range", what, v)
		return 0
	}
	return v
}

func (d *decoder) int(what string) int {
	v := d.varint(what)
	if v < math.MinInt || v > math.MaxInt {
		d.fail("%s %d out of range", what, v)
		return 0
	}
	return int(v)
}

// raw returns a length-prefixed byte string, aliasing the input.
func (d *decoder) raw(what string) []byte {
	n := d.uvarint(what + " length")
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail("%s length %d exceeds the %d bytes left", what, n, len(d.b)-d.off)
		return nil
	}
	p := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return p
}

func (d *decoder) str(what string) string { return string(d.raw(what)) }

// bytes returns a copy of a length-prefixed byte string; nil when empty.
func (d *decoder) bytes(what string) []byte {
	p := d.raw(what)
	if len(p) == 0 {
		return nil
	}
	return append([]byte(nil), p...)
}

func (d *decoder) time(what string) time.Time {
	sec := d.varint(what + " seconds")
	nsec := d.uint(what+" nanoseconds", 999_999_999)
	if d.err != nil {
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec))
}

// count reads a number of items that each take at least one byte.
func (d *decoder) count(what string) int {
	n := d.uvarint(what)
	if d.err == nil && n > uint64(len(d.b)-d.off) {
		d.fail("%d %s cannot fit in the %d bytes left", n, what, len(d.b)-d.off)
		return 0
	}
	return int(n)
}

func (d *decoder) version(what string) {
	if v := d.byte(what + " encoding version"); d.err == nil && v != valueV1 {
		d.fail("unknown %s encoding version %d", what, v)
	}
}

// end reports the first failure, or trailing bytes.
func (d *decoder) end() error {
	if d.err == nil && d.off != len(d.b) {
		d.fail("%d trailing bytes", len(d.b)-d.off)
	}
	return d.err
}

// Queue entry: version (entryV3), MsgID, QoS, State|Retain<<7, PacketID,
// SubIDs, Size, Group, Queued (Unix seconds, zig-zag; 0 for none).
// Version 2 had no Queued, version 1 neither Size nor Group.

func encodeEntry(e *store.QueueEntry) ([]byte, error) {
	if e.QoS > 2 {
		return nil, fmt.Errorf("badgerstore: queue entry Seq %d: invalid QoS %d", e.Seq, e.QoS)
	}
	if e.State > store.EntryReleased {
		return nil, fmt.Errorf("badgerstore: queue entry Seq %d: invalid state %d", e.Seq, e.State)
	}
	enc := encoder{b: make([]byte, 0, 16+2*len(e.SubIDs)+len(e.Group))}
	enc.byte(entryV3)
	enc.uvarint(e.MsgID)
	enc.byte(e.QoS)
	st := byte(e.State)
	if e.Retain {
		st |= 0x80
	}
	enc.byte(st)
	enc.uvarint(uint64(e.PacketID))
	enc.uvarint(uint64(len(e.SubIDs)))
	for _, id := range e.SubIDs {
		enc.varint(int64(id))
	}
	enc.uvarint(uint64(max(e.Size, 0)))
	enc.str(e.Group)
	var queued int64
	if !e.Queued.IsZero() {
		queued = e.Queued.Unix()
	}
	enc.varint(queued)
	return enc.b, nil
}

// decodeEntry decodes a queue entry; Seq is not part of the value.
func decodeEntry(v []byte) (store.QueueEntry, error) {
	d := decoder{b: v}
	var e store.QueueEntry
	ver := d.byte("queue entry encoding version")
	if d.err == nil && ver != valueV1 && ver != entryV2 && ver != entryV3 {
		d.fail("unknown queue entry encoding version %d", ver)
	}
	e.MsgID = d.uvarint("MsgID")
	e.QoS = d.byte("QoS")
	st := d.byte("state")
	e.PacketID = uint16(d.uint("PacketID", math.MaxUint16))
	if n := d.count("SubIDs"); n > 0 {
		e.SubIDs = make([]int, n)
		for i := range e.SubIDs {
			e.SubIDs[i] = d.int("SubID")
		}
	}
	if ver >= entryV2 {
		e.Size = int(d.uint("Size", math.MaxInt32))
		e.Group = d.str("Group")
	}
	if ver >= entryV3 {
		if sec := d.varint("Queued"); sec != 0 {
			e.Queued = time.Unix(sec, 0)
		}
	}
	if d.err == nil {
		switch {
		case e.QoS > 2:
			d.fail("invalid QoS %d", e.QoS)
		case st&0x7f > byte(store.EntryReleased):
			d.fail("invalid state %d", st&0x7f)
		}
	}
	e.Retain = st&0x80 != 0
	e.State = store.EntryState(st & 0x7f)
	return e, d.end()
}

// entryMsgID decodes only what Open needs to count references.
func entryMsgID(v []byte) (uint64, error) {
	e, err := decodeEntry(v)
	return e.MsgID, err
}

// Message: version, flags (retain, has props, has expiry), QoS, ID,
// Topic, Origin, [Expiry], [Props], Payload.

const (
	msgRetain = 1 << iota
	msgProps
	msgExpiry
)

func encodeMessage(m *store.Message) ([]byte, error) {
	enc := encoder{b: make([]byte, 0, 24+len(m.Topic)+len(m.Origin)+len(m.Payload))}
	if err := enc.message(m); err != nil {
		return nil, err
	}
	return enc.b, nil
}

func (e *encoder) message(m *store.Message) error {
	if m.QoS > 2 {
		return fmt.Errorf("badgerstore: message %d: invalid QoS %d", m.ID, m.QoS)
	}
	var flags byte
	if m.Retain {
		flags |= msgRetain
	}
	if m.Props != nil {
		flags |= msgProps
	}
	if !m.Expiry.IsZero() {
		flags |= msgExpiry
	}
	e.byte(valueV1)
	e.byte(flags)
	e.byte(m.QoS)
	e.uvarint(m.ID)
	e.str(m.Topic)
	e.str(m.Origin)
	if flags&msgExpiry != 0 {
		e.time(m.Expiry)
	}
	if flags&msgProps != 0 {
		e.props(m.Props)
	}
	e.bytes(m.Payload)
	return nil
}

func decodeMessage(v []byte) (*store.Message, error) {
	d := decoder{b: v}
	m := d.message()
	if err := d.end(); err != nil {
		return nil, err
	}
	return m, nil
}

func (d *decoder) message() *store.Message {
	m := new(store.Message)
	d.version("message")
	flags := d.byte("flags")
	if d.err == nil && flags&^(msgRetain|msgProps|msgExpiry) != 0 {
		d.fail("unknown message flags 0x%02x", flags)
	}
	m.QoS = d.byte("QoS")
	if d.err == nil && m.QoS > 2 {
		d.fail("invalid QoS %d", m.QoS)
	}
	m.Retain = flags&msgRetain != 0
	m.ID = d.uvarint("ID")
	m.Topic = d.str("Topic")
	m.Origin = d.str("Origin")
	if flags&msgExpiry != 0 {
		m.Expiry = d.time("Expiry")
	}
	if flags&msgProps != 0 {
		m.Props = d.props()
	}
	m.Payload = d.bytes("Payload")
	return m
}

// Properties: version-less (inside a message), Present, then a 32-bit mask
// of the fields that follow, in the order of mqtt.Properties. A field not
// in the mask is zero. TestPropertiesRoundTripEveryField fails when
// mqtt.Properties gains a field this does not know.

const propFields = 27 // fields of mqtt.Properties besides Present

func (e *encoder) props(p *mqtt.Properties) {
	e.uvarint(uint64(p.Present))
	at := len(e.b)
	e.b = append(e.b, 0, 0, 0, 0)
	var mask uint32
	field := func(i int, nonZero bool) bool {
		if nonZero {
			mask |= 1 << i
		}
		return nonZero
	}
	u8 := func(i int, v byte) {
		if field(i, v != 0) {
			e.byte(v)
		}
	}
	uv := func(i int, v uint64) {
		if field(i, v != 0) {
			e.uvarint(v)
		}
	}
	str := func(i int, v string) {
		if field(i, v != "") {
			e.str(v)
		}
	}
	bin := func(i int, v []byte) {
		if field(i, len(v) != 0) {
			e.bytes(v)
		}
	}
	u8(0, p.PayloadFormat)
	uv(1, uint64(p.MessageExpiry))
	str(2, p.ContentType)
	str(3, p.ResponseTopic)
	bin(4, p.CorrelationData)
	if field(5, len(p.SubscriptionIDs) != 0) {
		e.uvarint(uint64(len(p.SubscriptionIDs)))
		for _, id := range p.SubscriptionIDs {
			e.varint(int64(id))
		}
	}
	uv(6, uint64(p.SessionExpiry))
	str(7, p.AssignedClientID)
	uv(8, uint64(p.ServerKeepAlive))
	str(9, p.AuthMethod)
	bin(10, p.AuthData)
	u8(11, p.RequestProblemInfo)
	uv(12, uint64(p.WillDelay))
	u8(13, p.RequestResponseInfo)
	str(14, p.ResponseInfo)
	str(15, p.ServerReference)
	str(16, p.ReasonString)
	uv(17, uint64(p.ReceiveMaximum))
	uv(18, uint64(p.TopicAliasMaximum))
	uv(19, uint64(p.TopicAlias))
	u8(20, p.MaximumQoS)
	u8(21, p.RetainAvailable)
	if field(22, len(p.User) != 0) {
		e.uvarint(uint64(len(p.User)))
		for _, u := range p.User {
			e.str(u.Key)
			e.str(u.Value)
		}
	}
	uv(23, uint64(p.MaximumPacketSize))
	u8(24, p.WildcardSubAvailable)
	u8(25, p.SubIDAvailable)
	u8(26, p.SharedSubAvailable)
	binary.BigEndian.PutUint32(e.b[at:], mask)
}

func (d *decoder) props() *mqtt.Properties {
	p := new(mqtt.Properties)
	p.Present = mqtt.PropSet(d.uvarint("property set"))
	var mask uint32
	if d.err == nil {
		if len(d.b)-d.off < 4 {
			d.fail("truncated before property mask")
			return p
		}
		mask = binary.BigEndian.Uint32(d.b[d.off:])
		d.off += 4
		if mask>>propFields != 0 {
			d.fail("unknown property fields in mask 0x%08x", mask)
			return p
		}
	}
	has := func(i int) bool { return mask&(1<<i) != 0 && d.err == nil }
	u8 := func(i int, v *byte, what string) {
		if has(i) {
			*v = d.byte(what)
		}
	}
	u16 := func(i int, v *uint16, what string) {
		if has(i) {
			*v = uint16(d.uint(what, math.MaxUint16))
		}
	}
	u32 := func(i int, v *uint32, what string) {
		if has(i) {
			*v = uint32(d.uint(what, math.MaxUint32))
		}
	}
	str := func(i int, v *string, what string) {
		if has(i) {
			*v = d.str(what)
		}
	}
	bin := func(i int, v *[]byte, what string) {
		if has(i) {
			*v = d.bytes(what)
		}
	}
	u8(0, &p.PayloadFormat, "PayloadFormat")
	u32(1, &p.MessageExpiry, "MessageExpiry")
	str(2, &p.ContentType, "ContentType")
	str(3, &p.ResponseTopic, "ResponseTopic")
	bin(4, &p.CorrelationData, "CorrelationData")
	if has(5) {
		n := d.count("SubscriptionIDs")
		p.SubscriptionIDs = make([]int, n)
		for i := range p.SubscriptionIDs {
			p.SubscriptionIDs[i] = d.int("SubscriptionID")
		}
	}
	u32(6, &p.SessionExpiry, "SessionExpiry")
	str(7, &p.AssignedClientID, "AssignedClientID")
	u16(8, &p.ServerKeepAlive, "ServerKeepAlive")
	str(9, &p.AuthMethod, "AuthMethod")
	bin(10, &p.AuthData, "AuthData")
	u8(11, &p.RequestProblemInfo, "RequestProblemInfo")
	u32(12, &p.WillDelay, "WillDelay")
	u8(13, &p.RequestResponseInfo, "RequestResponseInfo")
	str(14, &p.ResponseInfo, "ResponseInfo")
	str(15, &p.ServerReference, "ServerReference")
	str(16, &p.ReasonString, "ReasonString")
	u16(17, &p.ReceiveMaximum, "ReceiveMaximum")
	u16(18, &p.TopicAliasMaximum, "TopicAliasMaximum")
	u16(19, &p.TopicAlias, "TopicAlias")
	u8(20, &p.MaximumQoS, "MaximumQoS")
	u8(21, &p.RetainAvailable, "RetainAvailable")
	if has(22) {
		n := d.count("user properties")
		p.User = make([]mqtt.UserProperty, n)
		for i := range p.User {
			p.User[i].Key = d.str("user property key")
			p.User[i].Value = d.str("user property value")
		}
	}
	u32(23, &p.MaximumPacketSize, "MaximumPacketSize")
	u8(24, &p.WildcardSubAvailable, "WildcardSubAvailable")
	u8(25, &p.SubIDAvailable, "SubIDAvailable")
	u8(26, &p.SharedSubAvailable, "SharedSubAvailable")
	return p
}

// Session: version, Version, ExpirySeconds, flags (disconnected, will,
// username), [DisconnectedAt], subscriptions, [will], [Username]. ClientID
// is the key.

const (
	sessDisconnected = 1 << iota
	sessWill
	sessUsername // added later: records without it decode as no username
)

const (
	subNoLocal = 1 << iota
	subRetainAsPublished
)

func encodeSession(s *store.SessionRecord) ([]byte, error) {
	enc := encoder{b: make([]byte, 0, 64)}
	var flags byte
	if !s.DisconnectedAt.IsZero() {
		flags |= sessDisconnected
	}
	if s.Will != nil {
		flags |= sessWill
	}
	if s.HasUsername {
		flags |= sessUsername
	}
	enc.byte(valueV1)
	enc.byte(byte(s.Version))
	enc.uvarint(uint64(s.ExpirySeconds))
	enc.byte(flags)
	if flags&sessDisconnected != 0 {
		enc.time(s.DisconnectedAt)
	}
	enc.uvarint(uint64(len(s.Subscriptions)))
	for i := range s.Subscriptions {
		sub := &s.Subscriptions[i]
		var f byte
		if sub.Options.NoLocal {
			f |= subNoLocal
		}
		if sub.Options.RetainAsPublished {
			f |= subRetainAsPublished
		}
		enc.str(sub.Filter)
		enc.str(sub.Options.Filter)
		enc.byte(sub.Options.QoS)
		enc.byte(f)
		enc.byte(sub.Options.RetainHandling)
		enc.varint(int64(sub.ID))
	}
	if w := s.Will; w != nil {
		enc.uvarint(uint64(w.Delay))
		enc.uvarint(uint64(w.MessageExpiry))
		if w.Message == nil {
			return nil, fmt.Errorf("badgerstore: session %q: will without a message", s.ClientID)
		}
		if err := enc.message(w.Message); err != nil {
			return nil, fmt.Errorf("badgerstore: session %q: will: %w", s.ClientID, err)
		}
	}
	if s.HasUsername {
		enc.str(s.Username)
	}
	return enc.b, nil
}

func decodeSession(clientID string, v []byte) (*store.SessionRecord, error) {
	d := decoder{b: v}
	s := &store.SessionRecord{ClientID: clientID}
	d.version("session")
	s.Version = mqtt.Version(d.byte("Version"))
	s.ExpirySeconds = uint32(d.uint("ExpirySeconds", math.MaxUint32))
	flags := d.byte("flags")
	if d.err == nil && flags&^(sessDisconnected|sessWill|sessUsername) != 0 {
		d.fail("unknown session flags 0x%02x", flags)
	}
	if flags&sessDisconnected != 0 {
		s.DisconnectedAt = d.time("DisconnectedAt")
	}
	if n := d.count("subscriptions"); n > 0 {
		s.Subscriptions = make([]store.Subscription, n)
		for i := range s.Subscriptions {
			sub := &s.Subscriptions[i]
			sub.Filter = d.str("Filter")
			sub.Options.Filter = d.str("Options.Filter")
			sub.Options.QoS = d.byte("Options.QoS")
			f := d.byte("Options flags")
			if d.err == nil && f&^(subNoLocal|subRetainAsPublished) != 0 {
				d.fail("unknown subscription flags 0x%02x", f)
			}
			sub.Options.NoLocal = f&subNoLocal != 0
			sub.Options.RetainAsPublished = f&subRetainAsPublished != 0
			sub.Options.RetainHandling = d.byte("Options.RetainHandling")
			sub.ID = d.int("subscription ID")
		}
	}
	if flags&sessWill != 0 && d.err == nil {
		w := new(store.Will)
		w.Delay = uint32(d.uint("Will.Delay", math.MaxUint32))
		w.MessageExpiry = uint32(d.uint("Will.MessageExpiry", math.MaxUint32))
		w.Message = d.message()
		s.Will = w
	}
	if flags&sessUsername != 0 {
		s.Username, s.HasUsername = d.str("Username"), true
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	return s, nil
}

// Max message id: version, 8 bytes big-endian.

func encodeMaxID(id uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{valueV1}, id)
}

func decodeMaxID(v []byte) (uint64, error) {
	if len(v) != 9 || v[0] != valueV1 {
		return 0, fmt.Errorf("want version %d and 8 bytes, have %d bytes", valueV1, len(v))
	}
	return binary.BigEndian.Uint64(v[1:]), nil
}
