package store

import (
	"errors"
	"time"

	"github.com/weirmq/weir/mqtt"
)

// ErrClosed is returned by a Store after Close.
var ErrClosed = errors.New("store: closed")

// Message is one application message as the broker keeps it: immutable once
// created and shared by every session it is queued for. ID is assigned by
// the broker and is unique for the life of the store.
type Message struct {
	ID      uint64
	Topic   string
	Payload []byte
	QoS     byte // QoS the publisher used
	Retain  bool
	// Props holds the MQTT 5.0 PUBLISH properties that travel with the
	// message (payload format, content type, response topic, correlation
	// data, user properties); nil when there are none. Message Expiry is
	// kept as Expiry instead.
	Props *mqtt.Properties
	// Expiry is when the message expires (zero: never) [MQTT-3.3.2-5].
	Expiry time.Time
	// Origin is the client id of the publisher, for No Local.
	Origin string
}

// Size is the approximate number of bytes the message holds, for budgets.
func (m *Message) Size() int {
	n := 64 + len(m.Topic) + len(m.Payload) + len(m.Origin)
	if p := m.Props; p != nil {
		n += 256 + len(p.ContentType) + len(p.ResponseTopic) + len(p.CorrelationData)
		for _, u := range p.User {
			n += len(u.Key) + len(u.Value) + 32
		}
	}
	return n
}

// Expired reports whether the message has expired at now.
func (m *Message) Expired(now time.Time) bool {
	return !m.Expiry.IsZero() && !now.Before(m.Expiry)
}

// SessionRecord is the persistent part of a session.
type SessionRecord struct {
	ClientID       string
	Version        mqtt.Version
	ExpirySeconds  uint32    // session expiry interval
	DisconnectedAt time.Time // zero while connected
	Subscriptions  []Subscription
	Will           *Will
	// Username is the user name of the session's last connection and
	// HasUsername whether it had one: access control checks what a session
	// restored from the store may receive with them until its client
	// connects again.
	Username    string
	HasUsername bool
}

// Subscription is one subscription of a session.
type Subscription struct {
	Filter  string // as sent, including any $share/{group}/ prefix
	Options mqtt.Subscription
	ID      int // MQTT 5.0 Subscription Identifier, 0 if none
}

// Will is a stored will message and when it is due.
type Will struct {
	Message *Message
	Delay   uint32 // seconds after disconnect (MQTT 5.0 Will Delay Interval)
	// MessageExpiry is the will's Message Expiry Interval in seconds (0:
	// none); it counts from when the will is published.
	MessageExpiry uint32
}

// QueueEntry is one message queued for a session, in delivery order (Seq).
// PacketID is non-zero once the message has been sent and awaits its
// acknowledgement; State then says which one.
type QueueEntry struct {
	Seq      uint64
	MsgID    uint64
	QoS      byte // granted QoS for this delivery
	Retain   bool // retain flag to deliver with (retain-as-published)
	SubIDs   []int
	PacketID uint16
	State    EntryState
	// Size is the message's Size, recorded with the entry so that a
	// queue's bytes can be counted without reading its messages
	// (QueueEntries). 0: unknown.
	Size int
	// Queued is when the message was queued for the session, kept to the
	// second; zero if not recorded (the broker records it for internal
	// sessions, whose status reports the age of the oldest waiting
	// message, also after a restart).
	Queued time.Time
	// Group is the shared subscription ("$share/{group}/{filter}") the
	// message came through, "" if none: a shared message a member did not
	// complete goes to another member, also after it was read back from
	// the store.
	Group string
}

// EntryState is where an outbound QoS 1/2 delivery stands.
type EntryState byte

// Outbound delivery states.
const (
	EntryQueued   EntryState = iota // not sent yet
	EntrySent                       // PUBLISH sent, awaiting PUBACK/PUBREC
	EntryReleased                   // PUBREC received, PUBREL sent, awaiting PUBCOMP
)

// Store persists broker state. Implementations are safe for concurrent use.
type Store interface {
	// Commit applies the batch atomically and calls done once it is
	// durable at the store's level (immediately for the memory store).
	// done is called exactly once, from any goroutine, in commit order
	// for batches from one goroutine. The caller must not modify the
	// batch after calling Commit.
	Commit(b *Batch, done func(error))

	// Sessions calls fn for every stored session.
	Sessions(fn func(*SessionRecord) error) error
	// Queue calls fn for the queue entries of clientID with Seq > after,
	// in order, with their messages, until fn returns false.
	Queue(clientID string, after uint64, fn func(QueueEntry, *Message) bool) error
	// QueueEntries is Queue without the messages: it calls fn for the
	// entries of clientID with Seq > after, in order, until fn returns
	// false. Each entry's Size is set (from the message if the entry did
	// not record it). Unlike Queue it may include entries whose message
	// is not stored (only damaged stores have those). Reading entries
	// costs far less than reading messages: the broker counts a long
	// queue at start-up with it.
	QueueEntries(clientID string, after uint64, fn func(QueueEntry) bool) error
	// Inbound calls fn for each QoS 2 packet id of clientID whose PUBREC
	// was sent and whose PUBREL has not arrived.
	Inbound(clientID string, fn func(packetID uint16)) error
	// Retained calls fn for every retained message.
	Retained(fn func(*Message) error) error
	// MaxMessageID is the highest message id ever stored, so that the
	// broker continues above it after a restart.
	MaxMessageID() uint64

	// Close flushes and releases the store.
	Close() error
}

// Batch is an ordered set of writes committed together.
type Batch struct {
	Ops []Op
}

// Op is one write. Exactly the fields its Kind needs are set.
type Op struct {
	Kind     OpKind
	ClientID string
	Session  *SessionRecord
	Message  *Message
	Entry    QueueEntry
	PacketID uint16
	Topic    string
}

// OpKind says what an Op does.
type OpKind byte

// Kinds of writes.
const (
	// OpPutSession stores Session (replacing any with its ClientID).
	OpPutSession OpKind = iota + 1
	// OpDeleteSession removes the session ClientID with its queue and
	// inbound state, releasing the queued messages.
	OpDeleteSession
	// OpPutMessage stores Message; it is released when no queue entry
	// refers to it any more (or at once if none ever does).
	OpPutMessage
	// OpEnqueue adds (or updates, for the same Seq) Entry for ClientID.
	OpEnqueue
	// OpDequeue removes entry Entry.Seq of ClientID.
	OpDequeue
	// OpPutInbound records QoS 2 PacketID of ClientID as received.
	OpPutInbound
	// OpDeleteInbound forgets it (PUBREL arrived).
	OpDeleteInbound
	// OpPutRetained sets Message as the retained message of its topic.
	OpPutRetained
	// OpDeleteRetained removes the retained message of Topic.
	OpDeleteRetained
)

// Empty reports whether the batch has no writes.
func (b *Batch) Empty() bool { return b == nil || len(b.Ops) == 0 }

// PutSession appends an OpPutSession.
func (b *Batch) PutSession(s *SessionRecord) {
	b.Ops = append(b.Ops, Op{Kind: OpPutSession, Session: s})
}

// DeleteSession appends an OpDeleteSession.
func (b *Batch) DeleteSession(clientID string) {
	b.Ops = append(b.Ops, Op{Kind: OpDeleteSession, ClientID: clientID})
}

// PutMessage appends an OpPutMessage.
func (b *Batch) PutMessage(m *Message) { b.Ops = append(b.Ops, Op{Kind: OpPutMessage, Message: m}) }

// Enqueue appends an OpEnqueue.
func (b *Batch) Enqueue(clientID string, e QueueEntry) {
	b.Ops = append(b.Ops, Op{Kind: OpEnqueue, ClientID: clientID, Entry: e})
}

// Dequeue appends an OpDequeue.
func (b *Batch) Dequeue(clientID string, seq uint64) {
	b.Ops = append(b.Ops, Op{Kind: OpDequeue, ClientID: clientID, Entry: QueueEntry{Seq: seq}})
}

// PutInbound appends an OpPutInbound.
func (b *Batch) PutInbound(clientID string, id uint16) {
	b.Ops = append(b.Ops, Op{Kind: OpPutInbound, ClientID: clientID, PacketID: id})
}

// DeleteInbound appends an OpDeleteInbound.
func (b *Batch) DeleteInbound(clientID string, id uint16) {
	b.Ops = append(b.Ops, Op{Kind: OpDeleteInbound, ClientID: clientID, PacketID: id})
}

// PutRetained appends an OpPutRetained.
func (b *Batch) PutRetained(m *Message) { b.Ops = append(b.Ops, Op{Kind: OpPutRetained, Message: m}) }

// DeleteRetained appends an OpDeleteRetained.
func (b *Batch) DeleteRetained(topic string) {
	b.Ops = append(b.Ops, Op{Kind: OpDeleteRetained, Topic: topic})
}
