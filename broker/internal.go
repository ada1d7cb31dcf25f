package broker

import (
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/weirmq/weir/mqtt"
	"github.com/weirmq/weir/store"
)

// Internal sessions are how in-process components such as the bridge
// (package bridge) use the broker's persistent-session machinery instead of
// a storage path of their own: they connect through DialInternal as an
// ordinary MQTT 5.0 client, over an in-memory pipe, with a client id that
// no network client can use, and get what every persistent session gets —
// queue entries written in the publisher's commit, long queues spilled to
// the store and streamed back, in-flight state that survives a restart,
// dequeue on acknowledgement. What they need beyond that is configured
// here: a byte budget with a drop policy that gives way instead of
// refusing the publisher, and the store message id in each PUBLISH.

// InternalPrefix starts every internal client id. MQTT strings cannot
// contain U+0000 [MQTT-1.5.4-2], so no network client can take over or
// collide with an internal session.
const InternalPrefix = "\x00"

// OverflowPolicy says what gives way when a message does not fit an
// internal session's byte budget. The publisher is never refused.
type OverflowPolicy int

// Overflow policies.
const (
	// DropNew drops the message that does not fit.
	DropNew OverflowPolicy = iota
	// DropOldest drops the oldest queued (not in-flight) messages of the
	// session until the new one fits; if none can go, the new one is dropped.
	DropOldest
	// KeepLastPerTopic drops the oldest queued message of the same topic;
	// failing that, the oldest queued message that has a newer one of its
	// topic queued; failing that, the new message. Only the part of the
	// queue held in memory (Options.QueueMemoryWindow) is searched.
	KeepLastPerTopic
)

// InternalOptions configures an internal session.
type InternalOptions struct {
	// ID is the session's client id; it must start with InternalPrefix.
	ID string
	// MaxBytes bounds the bytes (store.Message.Size) of the messages queued
	// for the session and not in flight; 0 means no bound. It replaces
	// Options.MaxQueuedMessages and MaxQueuedBytes for this session.
	// Options.MaxStoreBytes still applies to the whole store.
	MaxBytes int64
	// Policy returns what gives way for a message on topic that does not
	// fit MaxBytes. nil means DropNew.
	Policy func(topic string) OverflowPolicy
	// OnDrop is called (with the session locked: it must not call into the
	// server) for each message the budget dropped, with the policy that
	// dropped it.
	OnDrop func(topic string, p OverflowPolicy)
	// LiveFirst sends messages that arrive while the session is connected
	// and has a backlog ahead of that backlog (in their own order), so that
	// live data is not held up by a long queue drain; otherwise messages
	// go out in the order they arrived.
	LiveFirst bool
	// BacklogRate, when positive, bounds in messages per second how fast
	// the backlog — the messages queued before the current connection —
	// is sent, so that a long outage does not end in a burst; with
	// LiveFirst, live messages are not held back by it.
	BacklogRate float64
	// MessageIDProperty, when set, names a user property added to every
	// PUBLISH sent to the session, holding the message's store id in
	// decimal: stable across restarts and re-sends of the same message.
	MessageIDProperty string
	// ResendReleased makes a resuming session re-send each QoS 2 delivery
	// that was past PUBREC as a PUBLISH (DUP, same packet id, the whole
	// message) carrying the user property ReleasedProperty last, instead of
	// a PUBREL. The client answers it like the PUBREL it stands for
	// (PUBCOMP), or first with PUBREC (which is answered with PUBREL
	// again). The bridge needs the message itself when the party that had
	// acknowledged it — the upstream broker — lost its session meanwhile.
	ResendReleased bool
}

// ReleasedProperty is the user property (with value "1") that marks a
// PUBLISH re-sent to an internal session with ResendReleased for a
// delivery that is past PUBREC.
const ReleasedProperty = "weir-released"

// ErrNotInternal is returned for an id that does not start with
// InternalPrefix.
var ErrNotInternal = errors.New("broker: internal session id must start with InternalPrefix")

// RegisterInternal sets the options of internal session o.ID. Register
// before the server serves its listeners, so that the budget applies to the
// first message routed to a session loaded from the store.
func (s *Server) RegisterInternal(o InternalOptions) error {
	if len(o.ID) < 2 || o.ID[:1] != InternalPrefix {
		return ErrNotInternal
	}
	io := &o
	s.mu.Lock()
	if s.internal == nil {
		s.internal = make(map[string]*InternalOptions)
	}
	s.internal[o.ID] = io
	ss := s.sessions[o.ID]
	s.mu.Unlock()
	if ss != nil {
		ss.mu.Lock()
		ss.outbox = io
		ss.mu.Unlock()
	}
	return nil
}

// internalOptions returns the registered options of id, nil for others.
// s.mu must be held or the server not yet shared.
func (s *Server) internalOptions(id string) *InternalOptions {
	if len(id) == 0 || id[:1] != InternalPrefix {
		return nil
	}
	return s.internal[id]
}

// DialInternal returns the client end of a new in-memory connection to the
// server whose session is the registered internal session id, whatever
// client id its CONNECT carries. The caller speaks MQTT 5.0 on it.
func (s *Server) DialInternal(id string) (net.Conn, error) {
	s.mu.Lock()
	o := s.internalOptions(id)
	s.mu.Unlock()
	if o == nil {
		return nil, ErrNotInternal
	}
	cl, sv := net.Pipe()
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		cl.Close()
		sv.Close()
		return nil, ErrServerClosed
	}
	s.conns.Add(1)
	s.mu.Unlock()
	c := newClient(s, sv, "internal")
	c.internal = o
	go func() {
		defer s.conns.Done()
		if c.serve() {
			c.servePackets()
		}
	}()
	return cl, nil
}

// InternalStatus is what an internal session holds.
type InternalStatus struct {
	Queued      int   // messages waiting, in memory and in the store
	QueuedBytes int64 // their size
	Inflight    int   // sent and not yet acknowledged
	// Oldest is when the oldest waiting message in memory was queued, or
	// read back into memory from the store (so after an outage longer
	// than the memory window, or a restart, it understates the age).
	// Zero if none is in memory.
	Oldest time.Time
}

// InternalStatus reports the queue of internal session id (zero if it does
// not exist).
func (s *Server) InternalStatus(id string) InternalStatus {
	s.mu.Lock()
	ss := s.sessions[id]
	s.mu.Unlock()
	if ss == nil {
		return InternalStatus{}
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	st := InternalStatus{Queued: ss.queueLen() + ss.backlog, QueuedBytes: int64(ss.queueBytes + ss.backlogBytes),
		Inflight: len(ss.inflight)}
	if ss.queueLen() > 0 {
		st.Oldest = ss.queue[ss.queueHead].queued
	}
	return st
}

// deliverLiveLocked queues a live QoS 1/2 message of a live-first
// internal session behind the live messages already queued and ahead of
// the backlog. If its delivery was persisted while the session is
// spilling, its store entry is above loadedSeq: the refill must skip it
// (skipLiveLocked), since it is in memory already.
func (ss *session) deliverLiveLocked(d *delivery, m *store.Message) {
	om := &outMsg{seq: d.seq, msg: m, qos: d.qos, retain: d.retain, subIDs: d.subIDs, persisted: d.persist,
		group: d.group, queued: time.Now()}
	if d.persist && ss.spilling && d.seq > ss.loadedSeq {
		if ss.liveSeqs == nil {
			ss.liveSeqs = make(map[uint64]struct{})
		}
		ss.liveSeqs[d.seq] = struct{}{}
	}
	i := ss.queueHead + ss.liveCount
	ss.queue = append(ss.queue, nil)
	copy(ss.queue[i+1:], ss.queue[i:])
	ss.queue[i] = om
	ss.queueBytes += m.Size()
	ss.liveCount++
	ss.pumpLocked()
}

// pacedLocked reports whether the head of the queue may be sent now
// under BacklogRate; if not, it arranges for the session to pump again
// when it may.
func (ss *session) pacedLocked() bool {
	rate := ss.outbox.BacklogRate
	if rate <= 0 || ss.liveCount > 0 {
		return true
	}
	if om := ss.queue[ss.queueHead]; om.seq > ss.attachSeq {
		return true // arrived during this connection: not backlog
	}
	now := time.Now()
	if now.Before(ss.paceNext) {
		if ss.paceTimer == nil {
			ss.paceTimer = time.AfterFunc(ss.paceNext.Sub(now), func() {
				ss.mu.Lock()
				defer ss.mu.Unlock()
				ss.paceTimer = nil
				ss.pumpLocked()
			})
		}
		return false
	}
	ss.paceNext = now.Add(time.Duration(float64(time.Second) / rate))
	return true
}

// skipLiveLocked reports whether the refill must skip the store entry seq
// because it is a live message already in memory (deliverLiveLocked).
func (ss *session) skipLiveLocked(seq uint64) bool {
	if _, ok := ss.liveSeqs[seq]; !ok {
		return false
	}
	delete(ss.liveSeqs, seq)
	return true
}

// pruneLiveLocked forgets the live entries the refill has passed: those
// it did not meet were completed, and dequeued, before it got there.
func (ss *session) pruneLiveLocked() {
	for s := range ss.liveSeqs {
		if s <= ss.loadedSeq {
			delete(ss.liveSeqs, s)
		}
	}
}

// admitLocked applies the byte budget of an internal session to a message
// of size bytes about to be routed to it: it makes room by the policy of
// the message's topic and reports whether the message is to be queued.
func (ss *session) admitLocked(o *InternalOptions, m *store.Message, size int) bool {
	if o.MaxBytes <= 0 || int64(ss.queueBytes+ss.backlogBytes+size) <= o.MaxBytes {
		return true
	}
	p := DropNew
	if o.Policy != nil {
		p = o.Policy(m.Topic)
	}
	var b store.Batch
	defer ss.srv.commit(&b, nil)
	for int64(ss.queueBytes+ss.backlogBytes+size) > o.MaxBytes {
		if ss.queueLen() == 0 && ss.spilling {
			ss.refillLocked()
		}
		i := -1
		switch p {
		case DropOldest:
			// The oldest of the backlog, behind any live messages.
			if ss.queueLen() > ss.liveCount {
				i = ss.queueHead + ss.liveCount
			} else if ss.queueLen() > 0 {
				i = ss.queueHead
			}
		case KeepLastPerTopic:
			i = ss.supersededLocked(m.Topic)
		}
		if i < 0 {
			ss.dropped(o, m.Topic, p)
			return false
		}
		om := ss.queue[i]
		if i < ss.queueHead+ss.liveCount {
			ss.liveCount--
		}
		delete(ss.liveSeqs, om.seq)
		copy(ss.queue[i:], ss.queue[i+1:])
		ss.queue[len(ss.queue)-1] = nil
		ss.queue = ss.queue[:len(ss.queue)-1]
		ss.queueBytes -= om.msg.Size()
		ss.dequeueOp(&b, om)
		ss.dropped(o, om.msg.Topic, p)
	}
	return true
}

func (ss *session) dropped(o *InternalOptions, topic string, p OverflowPolicy) {
	ss.srv.drop(dropOutbox, ss.id)
	if o.OnDrop != nil {
		o.OnDrop(topic, p)
	}
}

// supersededLocked returns the index in ss.queue of the oldest queued
// message on topic, else of the oldest one that has a newer message of its
// own topic queued, else -1.
func (ss *session) supersededLocked(topic string) int {
	for i := ss.queueHead; i < len(ss.queue); i++ {
		if ss.queue[i].msg.Topic == topic {
			return i
		}
	}
	seen := make(map[string]struct{})
	best := -1
	for i := len(ss.queue) - 1; i >= ss.queueHead; i-- {
		t := ss.queue[i].msg.Topic
		if _, ok := seen[t]; ok {
			best = i
		} else {
			seen[t] = struct{}{}
		}
	}
	return best
}

// withMessageID returns the user properties of m with the message id
// property of an internal session appended (a copy: m is shared).
func withMessageID(o *InternalOptions, m *store.Message, user []mqtt.UserProperty) []mqtt.UserProperty {
	out := make([]mqtt.UserProperty, len(user), len(user)+1)
	copy(out, user)
	return append(out, mqtt.UserProperty{Key: o.MessageIDProperty, Value: strconv.FormatUint(m.ID, 10)})
}

// resendReleasedLocked re-sends a QoS 2 delivery past PUBREC when the
// session resumes: a PUBREL [MQTT-4.4.0-1], or for an internal session
// with ResendReleased the whole message, marked (see ReleasedProperty).
// An expired message goes as a PUBREL: whoever acknowledged it may still
// complete it, and it must not be published anew.
func (ss *session) resendReleasedLocked(c *client, om *outMsg) {
	if o := c.internal; o != nil && o.ResendReleased && om.msg != nil &&
		(om.msg.Expiry.IsZero() || time.Until(om.msg.Expiry) > 0) && c.writePublish(om, true) {
		return
	}
	c.send(&mqtt.Pubrel{PacketID: om.pid})
}
