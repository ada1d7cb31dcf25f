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
	// failing that, an older queued message of a topic that has a newer
	// one queued (the oldest found: see supersededLocked); failing that —
	// every queued message is the latest of its topic — the new message.
	// The whole queue is searched, the part in memory and the part on disk
	// beyond Options.QueueMemoryWindow (through a topic index of the
	// latter, built at the first overflow that needs it; it costs 12–24
	// bytes per message on disk, 17 measured, and 120 bytes plus the name
	// per topic: outbox_index.go). Messages in flight never give way.
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
	// OnStoreFull is called (with no lock held) for each QoS 0 message not
	// queued for the session because the store budget
	// (Options.MaxStoreBytes) is spent. (A QoS 1/2 message is refused to
	// its publisher instead.)
	OnStoreFull func(topic string)
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

// PeerSessionLostProperty is a user property (value "1") of the CONNECT
// of an internal session with ResendReleased: the party its client passes
// messages on to — the bridge's upstream — lost what it had acknowledged,
// with its session. The session's QoS 2 deliveries past PUBREC then go
// back to sent, stored in the same commit as the session before CONNACK,
// and are re-sent as messages with DUP: if the server crashes before the
// peer has them again, they are re-sent that way again, never as a
// release of something the peer no longer holds.
const PeerSessionLostProperty = "weir-peer-session-lost"

// peerLostLocked puts the QoS 2 deliveries past PUBREC back to sent, for
// a client whose peer lost them (PeerSessionLostProperty), adding their
// entries to b. Expired ones stay released: they must not be published
// anew, and a PUBREL completes them whatever the peer holds.
func (ss *session) peerLostLocked(b *store.Batch) {
	now := time.Now()
	for _, om := range ss.inflight {
		if om.state != store.EntryReleased || om.msg == nil || om.msg.Expired(now) {
			continue
		}
		om.state = store.EntrySent
		if om.persisted {
			b.Enqueue(ss.id, ss.entry(om))
		}
	}
}

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
func (s *Server) DialInternal(id string) (net.Conn, error) { return s.dialInternal(id, false) }

// DialInternalIdle is DialInternal for a connection on which the session
// sends no message — nothing queued, re-sent or newly routed; it answers
// the client's own packets only — so that a client can set up the session
// (create it, subscribe) without taking delivery of what it holds, which
// stays queued for the next connection. The bridge primes its outbox so
// at start-up, before its upstream is reachable.
func (s *Server) DialInternalIdle(id string) (net.Conn, error) { return s.dialInternal(id, true) }

func (s *Server) dialInternal(id string, idle bool) (net.Conn, error) {
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
	c.internal, c.idle = o, idle
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
	// Oldest is when the oldest waiting message was queued (to the
	// second once it has been through the store; for entries written by
	// versions before the time was recorded, when it was read back).
	// Zero if none is held in memory (the oldest waiting messages are).
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
		if ss.queueLen() > ss.liveCount { // live-first: the backlog's head is older
			if t := ss.queue[ss.queueHead+ss.liveCount].queued; t.Before(st.Oldest) {
				st.Oldest = t
			}
		}
	}
	return st
}

// deliverLiveLocked queues a live message of a live-first
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
	if o.MaxBytes <= 0 || int64(ss.queueBytes+ss.backlogBytes+ss.admitting+size) <= o.MaxBytes {
		return true
	}
	p := DropNew
	if o.Policy != nil {
		p = o.Policy(m.Topic)
	}
	var b store.Batch
	var gen uint64 // batch of drops from disk (outbox_index.go), 0 if none
	triedIndex := false
	defer func() {
		var done func(error)
		if x := ss.topicIndex; gen != 0 {
			// Until the dequeues are applied, refills skip the entries.
			done = func(err error) { x.markApplied(gen, err) }
		}
		ss.srv.commit(&b, done)
	}()
	for int64(ss.queueBytes+ss.backlogBytes+ss.admitting+size) > o.MaxBytes {
		i := -1
		switch p {
		case DropOldest:
			if ss.queueLen() == 0 && ss.spilling {
				ss.refillLocked()
			}
			// The oldest of the backlog, behind any live messages.
			if ss.queueLen() > ss.liveCount {
				i = ss.queueHead + ss.liveCount
			} else if ss.queueLen() > 0 {
				i = ss.queueHead
			}
		case KeepLastPerTopic:
			var dt *diskTopic
			var unlocked bool
			if i, dt, unlocked = ss.supersededLocked(m.Topic, !triedIndex); unlocked {
				// The index was built (or failed to be) without ss.mu:
				// the session may have changed meanwhile.
				triedIndex = true
				continue
			}
			if dt != nil {
				if gen == 0 {
					ss.topicIndex.gen++
					gen = ss.topicIndex.gen
				}
				ss.dropStoredLocked(&b, dt, gen, o, p)
				continue
			}
		}
		if i < 0 {
			ss.dropped(o, m.Topic, p)
			return false
		}
		om := ss.queue[i]
		if i < ss.queueHead+ss.liveCount {
			ss.liveCount--
		}
		// (A live message stays in liveSeqs: its entry may lie in the
		// backlog's range, and until the dequeue below is applied a
		// refill could read it back.)
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

// supersededLocked picks what gives way for a new message on topic under
// KeepLastPerTopic, among the queued messages (not in flight) in memory and
// on disk: the oldest message on topic; failing that, the oldest message
// that has a newer one of its own topic queued, searched among those in
// memory and, on disk, among the oldest message of each topic that has a
// newer one in memory or on disk — of the topics with several messages on
// disk, at most multiScan are looked at (all when there are fewer), in no
// particular order; failing that, nothing. It returns the message's index
// in ss.queue, or its topic on disk (dropStoredLocked drops that topic's
// oldest), or -1 and nil.
//
// The backlog is searched through the topic index (outbox_index.go). If
// build is set and the index is not built, supersededLocked builds it
// (or waits for the build under way), which releases ss.mu while the
// store is read, and reports unlocked instead of a pick: the caller must
// look at the session afresh. If the index cannot be built, only memory
// is searched.
func (ss *session) supersededLocked(topic string, build bool) (i int, dt *diskTopic, unlocked bool) {
	mi := -1
	for i := ss.queueHead; i < len(ss.queue); i++ {
		if om := ss.queue[i]; om.msg.Topic == topic && (mi < 0 || om.seq < ss.queue[mi].seq) {
			mi = i
		}
	}
	// Memory apart from live messages holds seqs up to loadedSeq, the
	// backlog only above it.
	if mi >= ss.queueHead+ss.liveCount && mi >= 0 {
		return mi, nil, false
	}
	var x *outboxIndex
	if ss.backlog > 0 {
		if x = ss.topicIndex; x != nil {
			x.pruneDropped(ss.loadedSeq)
		}
		if (x == nil || !x.built) && build {
			ss.buildIndexLocked()
			return -1, nil, true
		}
		if x != nil && !x.built {
			x = nil // the store could not be read: memory only
		}
	}
	if x != nil {
		if dt := x.topics[topic]; dt != nil && (mi < 0 || dt.seqs[0] < ss.queue[mi].seq) {
			return -1, dt, false
		}
	}
	if mi >= 0 {
		return mi, nil, false
	}

	newest := make(map[string]uint64) // newest seq in memory of each topic
	for i := ss.queueHead; i < len(ss.queue); i++ {
		om := ss.queue[i]
		newest[om.msg.Topic] = max(newest[om.msg.Topic], om.seq)
	}
	best, bestSeq := -1, uint64(0)
	for i := ss.queueHead; i < len(ss.queue); i++ {
		om := ss.queue[i]
		later := newest[om.msg.Topic] > om.seq
		if !later && x != nil {
			dt := x.topics[om.msg.Topic]
			later = dt != nil && dt.seqs[len(dt.seqs)-1] > om.seq
		}
		if later && (best < 0 || om.seq < bestSeq) {
			best, bestSeq = i, om.seq
		}
	}
	if x == nil {
		return best, nil, false
	}
	var disk *diskTopic
	consider := func(dt *diskTopic) {
		if s := dt.seqs[0]; (best < 0 || s < bestSeq) && (disk == nil || s < disk.seqs[0]) {
			disk = dt
		}
	}
	n := 0
	for dt := range x.multi {
		if n++; n > multiScan {
			break
		}
		consider(dt)
	}
	for t, s := range newest {
		if dt := x.topics[t]; dt != nil && dt.seqs[0] < s {
			consider(dt)
		}
	}
	if disk != nil {
		return -1, disk, false
	}
	return best, nil, false
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
