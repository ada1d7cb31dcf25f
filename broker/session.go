package broker

import (
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weirmq/weir/broker/subtree"
	"github.com/weirmq/weir/mqtt"
	"github.com/weirmq/weir/store"
)

// session is the server side of one client id: subscriptions, messages
// queued and in flight, inbound QoS 2 state and the will. It outlives
// connections when its expiry interval is non-zero.
type session struct {
	srv       *Server
	id        string
	connected atomic.Bool                // a connection is attached and ready
	who       atomic.Pointer[ClientInfo] // identity of the last connection, for read access (auth.go)

	mu          sync.Mutex
	c           *client // attached connection, nil while offline
	ready       bool    // CONNACK has been sent on c
	version     mqtt.Version
	expiry      uint32 // session expiry interval, seconds
	subs        map[string]subscription
	nextPID     uint16
	inflight    map[uint16]*outMsg
	resend      []*outMsg // in flight from an earlier connection, not yet re-sent on c; oldest first
	queue       []*outMsg // waiting for the inflight window, oldest first
	queueHead   int
	queueBytes  int
	seq         uint64
	inbound     map[uint16]struct{} // QoS 2 packet ids with PUBREC sent
	will        *store.Will         // will of the attached or last connection
	willTimer   *time.Timer
	expiryTimer *time.Timer
	lastSeen    time.Time // when the last connection ended
	ended       bool      // removed from the server
	stored      bool      // the store may hold state of this session

	// A persistent session keeps at most Options.QueueMemoryWindow queued
	// messages in memory; beyond that its deliveries stay in the store
	// only (the backlog) and are read back in order as the queue drains,
	// so a long offline queue costs disk, not memory.
	spilling     bool                // new persisted deliveries go to the backlog
	backlog      int                 // queue entries in the store and not in memory
	backlogBytes int                 // their size
	loadedSeq    uint64              // highest seq in memory or read back; the backlog is above it
	storedBytes  int64               // size of this session\'s queue entries in the store
	pending      []uint64            // seqs of persisted deliveries reserved and not yet delivered, ascending
	pendingDone  map[uint64]struct{} // of those, delivered out of order
	admitting    int                 // internal sessions: bytes of those, counted in the budget (admitLocked)

	// outbox is set for internal sessions (internal.go): their queue is
	// bounded by its byte budget and policy instead of the queue limits.
	outbox *InternalOptions
	// live-first internal sessions (internal.go, deliverLiveLocked): the
	// first liveCount messages of the queue are live ones put ahead of
	// the backlog; liveSeqs are those among them whose entries the
	// backlog refill must skip.
	liveCount int
	liveSeqs  map[uint64]struct{}
	// topicIndex indexes the backlog of an internal session by topic for
	// KeepLastPerTopic (outbox_index.go); nil until first needed.
	topicIndex *outboxIndex
	// Backlog pacing of internal sessions (internal.go, pacedLocked).
	attachSeq uint64      // ss.seq when the connection resumed the session
	paceNext  time.Time   // when the next backlog message may go
	paceTimer *time.Timer // pumps again at paceNext
}

// subscription is what the tree stores for a session's filter.
type subscription struct {
	filter string            // as subscribed, with any $share prefix
	opts   mqtt.Subscription // QoS is the granted QoS
	id     int               // subscription identifier, 0 none
}

// outMsg is one message on its way to this session.
type outMsg struct {
	seq       uint64
	msg       *store.Message
	qos       byte
	retain    bool
	subIDs    []int
	pid       uint16
	state     store.EntryState
	persisted bool                                   // has a store queue entry
	group     *subtree.Group[*session, subscription] // shared subscription it came through
	queued    time.Time                              // when queued, for internal sessions' status
}

func newSession(s *Server, id string) *session {
	return &session{
		srv:    s,
		id:     id,
		outbox: s.internalOptions(id),
	}
}

// The maps of a session are allocated at their first entry: most sessions
// of idle connections never get one, and three empty maps are 144 bytes of
// every connection. (Reading, ranging over and deleting from a nil map is
// fine; only these add to them.)

func (ss *session) addSubLocked(filter string, sub subscription) {
	if ss.subs == nil {
		ss.subs = make(map[string]subscription)
	}
	ss.subs[filter] = sub
}

func (ss *session) addInflightLocked(om *outMsg) {
	if ss.inflight == nil {
		ss.inflight = make(map[uint16]*outMsg)
	}
	ss.inflight[om.pid] = om
}

func (ss *session) addInboundLocked(pid uint16) {
	if ss.inbound == nil {
		ss.inbound = make(map[uint16]struct{})
	}
	ss.inbound[pid] = struct{}{}
}

func (ss *session) persistent() bool { return ss.expiry > 0 }

// queueLen is the number of messages waiting for the inflight window.
func (ss *session) queueLen() int { return len(ss.queue) - ss.queueHead }

func (ss *session) pushLocked(om *outMsg) {
	ss.queue = append(ss.queue, om)
	ss.queueBytes += om.msg.Size()
	if ss.outbox != nil && om.queued.IsZero() {
		// Read back from the store, it keeps the time it was queued
		// (QueueEntry.Queued) if its entry has one.
		om.queued = time.Now()
	}
}

func (ss *session) popLocked() *outMsg {
	om := ss.queue[ss.queueHead]
	ss.queue[ss.queueHead] = nil
	ss.queueHead++
	if ss.liveCount > 0 {
		ss.liveCount--
	}
	ss.queueBytes -= om.msg.Size()
	if ss.queueHead == len(ss.queue) {
		ss.queue = ss.queue[:0]
		ss.queueHead = 0
		if cap(ss.queue) > 1024 {
			ss.queue = nil // give back the memory of a burst
		}
	}
	return om
}

// reserve decides whether a message of size bytes at QoS qos can be taken
// by this session, and allocates its queue sequence number. persist says
// whether the delivery must be stored before the publisher is acknowledged.
func (ss *session) reserve(qos byte, size int) (seq uint64, persist, ok bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	seq, persist, res := ss.reserveLocked(qos, size)
	return seq, persist, res == reserved
}

// reservation is the outcome of reserveLocked.
type reservation int

const (
	reserved  reservation = iota
	skipped               // nothing to do: session ended, or QoS 0 for nobody
	queueFull             // the session's queue is at its limit
	storeFull             // the store budget (Options.MaxStoreBytes) is spent
)

func (ss *session) reserveLocked(qos byte, size int) (seq uint64, persist bool, res reservation) {
	if ss.ended {
		return 0, false, skipped
	}
	online := ss.c != nil
	if qos == 0 && !online && !ss.persistent() {
		return 0, false, skipped
	}
	// An internal session's queue is a bridge's outbox: it keeps QoS 0
	// messages on disk too, so that they survive a crash and a long outage
	// does not hold them in memory. (Other sessions keep QoS 0 in memory
	// only, to keep QoS 0 cheap: saveQoS0Queues.)
	persist = ss.persistent() && (qos > 0 || ss.outbox != nil)
	// Messages that go straight out need no queue room; the rest do.
	maxMsgs, maxBytes := ss.srv.opts.MaxQueuedMessages, ss.srv.opts.MaxQueuedBytes
	if ss.outbox != nil {
		// Bounded by admitLocked (internal.go) instead, before routing.
		maxMsgs, maxBytes = math.MaxInt, math.MaxInt
	}
	if !(online && ss.ready && ss.queueLen() == 0 && ss.backlog == 0) {
		for ss.queueLen()+ss.backlog >= maxMsgs || ss.queueBytes+ss.backlogBytes+size > maxBytes {
			// QoS 0 messages waiting for an offline client go first.
			if qos == 0 || !ss.dropQueuedQoS0Locked() {
				if !persist {
					// A persistent session's refusal is counted as a
					// refused PUBLISH instead.
					ss.srv.drop(dropQueueFull, ss.id)
				}
				return 0, false, queueFull
			}
		}
	}
	if persist && !ss.srv.storeRoom(size) {
		return 0, false, storeFull
	}
	ss.seq++
	if persist {
		ss.stored = true
		ss.pending = append(ss.pending, ss.seq)
		ss.storedBytes += int64(size)
		ss.srv.storedBytes.Add(int64(size))
	}
	return ss.seq, persist, reserved
}

// dropQueuedQoS0Locked drops the oldest QoS 0 message waiting in the
// memory queue, to make room for a QoS 1/2 one.
func (ss *session) dropQueuedQoS0Locked() bool {
	for i := ss.queueHead; i < len(ss.queue); i++ {
		if om := ss.queue[i]; om.qos == 0 {
			copy(ss.queue[i:], ss.queue[i+1:])
			ss.queue[len(ss.queue)-1] = nil
			ss.queue = ss.queue[:len(ss.queue)-1]
			ss.queueBytes -= om.msg.Size()
			ss.srv.drop(dropQoS0ForRoom, ss.id)
			return true
		}
	}
	return false
}

// deliver hands a routed message to the session: straight to the client
// when it is online with room in its window, else into the queue.
func (ss *session) deliver(d *delivery, m *store.Message) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.deliverLocked(d, m)
}

func (ss *session) deliverLocked(d *delivery, m *store.Message) {
	if d.persist {
		ss.settleDeliveryLocked(d)
	}
	if ss.ended {
		return
	}
	if d.qos == 0 && !d.persist {
		if ss.c != nil && ss.ready {
			om := outMsg{msg: m, retain: d.retain, subIDs: d.subIDs}
			ss.c.writePublish(&om, false)
			return
		}
		// QoS 0 for an offline persistent session is kept in memory only.
		ss.pushLocked(&outMsg{seq: d.seq, msg: m, retain: d.retain, subIDs: d.subIDs})
		return
	}
	// From here on: QoS 1/2, or QoS 0 stored in an internal session's
	// queue, which goes out in turn and is dequeued once written.
	if ss.outbox != nil && ss.outbox.LiveFirst && ss.c != nil && ss.ready &&
		(ss.queueLen() > 0 || ss.backlog > 0) {
		ss.deliverLiveLocked(d, m) // ahead of the backlog (internal.go)
		return
	}
	if d.persist && ss.spilling && d.seq > ss.loadedSeq {
		ss.backlog++ // it is in the store; refillLocked reads it back
		ss.backlogBytes += m.Size()
		ss.spilledLocked(d.seq, m) // outbox_index.go
		ss.pumpLocked()
		return
	}
	ss.pushLocked(&outMsg{seq: d.seq, msg: m, qos: d.qos, retain: d.retain, subIDs: d.subIDs,
		persisted: d.persist, group: d.group})
	if d.persist {
		// A delivery that is not stored (a retained message sent on
		// subscribe) says nothing of the store: raising loadedSeq to its
		// seq would skip the backlog below it.
		ss.loadedSeq = max(ss.loadedSeq, d.seq)
		if ss.queueLen() >= ss.srv.opts.QueueMemoryWindow {
			ss.spilling = true
		}
	}
	ss.pumpLocked()
}

// settleLocked records that the persisted delivery seq has been handed to
// the session (or abandoned): refills read the backlog only up to the
// highest seq below which every delivery has settled, so that they never
// read an entry whose delivery is still on its way.
func (ss *session) settleLocked(seq uint64) {
	if len(ss.pending) == 0 || ss.pending[0] != seq {
		if ss.pendingDone == nil {
			ss.pendingDone = make(map[uint64]struct{})
		}
		ss.pendingDone[seq] = struct{}{}
		return
	}
	ss.pending = ss.pending[1:]
	for len(ss.pending) > 0 {
		if _, ok := ss.pendingDone[ss.pending[0]]; !ok {
			break
		}
		delete(ss.pendingDone, ss.pending[0])
		ss.pending = ss.pending[1:]
	}
	if len(ss.pending) == 0 {
		ss.pending = nil
	}
}

// settleDeliveryLocked settles the persisted delivery d, handed to the
// session or abandoned (settleLocked), and takes it off the bytes an
// internal session's budget counts as on their way.
func (ss *session) settleDeliveryLocked(d *delivery) {
	ss.settleLocked(d.seq)
	if ss.outbox != nil {
		ss.admitting -= d.msgSize
	}
}

// settled is the highest seq at and below which all deliveries settled.
func (ss *session) settled() uint64 {
	if len(ss.pending) == 0 {
		return ss.seq
	}
	return ss.pending[0] - 1
}

// abandon settles deliveries whose store commit failed: they were never
// delivered and must not hold back the backlog.
func abandon(ds []delivery) {
	for i := range ds {
		if d := &ds[i]; d.s != nil && d.persist {
			d.s.mu.Lock()
			d.s.settleDeliveryLocked(d)
			d.s.releaseStoredLocked(d.msgSize)
			d.s.mu.Unlock()
		}
	}
}

// refillLocked reads the backlog from the store into the memory queue, in
// order, up to the memory window. Entries with a packet id are in flight
// and so already in memory.
func (ss *session) refillLocked() int {
	limit := ss.settled()
	want := ss.srv.opts.QueueMemoryWindow - ss.queueLen()
	loaded, bounded := 0, false
	err := ss.srv.store.Queue(ss.id, ss.loadedSeq, func(e store.QueueEntry, m *store.Message) bool {
		if e.Seq > limit {
			bounded = true
			return false
		}
		ss.loadedSeq = e.Seq
		// In flight, live (internal.go) or dropped from the backlog with
		// its dequeue not yet applied (outbox_index.go): not backlog.
		if e.PacketID != 0 || ss.skipLiveLocked(e.Seq) || ss.refilledLocked(e.Seq, m) {
			return true
		}
		ss.pushLocked(ss.srv.storedOutMsg(e, m))
		ss.backlog--
		ss.backlogBytes -= m.Size()
		loaded++
		return loaded < want
	})
	if err != nil {
		ss.srv.log.Error("reading queued messages from the store", "client", ss.id, "err", err)
		return loaded
	}
	ss.pruneLiveLocked() // internal.go
	if ss.backlog <= 0 || loaded < want && !bounded && len(ss.pending) == 0 {
		// Every store-only entry is back in memory (or the store has
		// nothing above loadedSeq and nothing is on its way): deliveries
		// can go to memory again.
		ss.spilling = false
		ss.backlog, ss.backlogBytes = 0, 0
	}
	ss.refillDoneLocked() // outbox_index.go
	return loaded
}

// pumpLocked sends queued messages while the client's window has room.
func (ss *session) pumpLocked() {
	c := ss.c
	if c == nil || !ss.ready {
		return
	}
	var b store.Batch
	if len(ss.resend) > 0 {
		ss.resendLocked(c, &b)
	}
	now := time.Now()
	var afterCommit []*outMsg
	for len(ss.inflight) < c.outWindow {
		if ss.queueLen() == 0 && (!ss.spilling || ss.refillLocked() == 0) {
			break
		}
		if ss.outbox != nil && !ss.pacedLocked() {
			break // backlog rate of an internal session (internal.go)
		}
		om := ss.popLocked()
		if om.msg.Expired(now) {
			ss.srv.drop(dropExpired, ss.id)
			ss.dequeueOp(&b, om)
			continue
		}
		if om.qos == 0 {
			c.writePublish(om, false)
			ss.dequeueOp(&b, om) // stored at a graceful shutdown
			continue
		}
		om.pid = ss.allocPIDLocked()
		om.state = store.EntrySent
		ss.addInflightLocked(om)
		if om.qos == 2 && om.persisted {
			// The packet id of a QoS 2 delivery is stored before the
			// PUBLISH goes out, so that a restart re-sends it with the
			// same id (a duplicate the client recognises), never as new.
			b.Enqueue(ss.id, ss.entry(om))
			afterCommit = append(afterCommit, om)
			continue
		}
		if !c.writePublish(om, false) {
			delete(ss.inflight, om.pid)
			ss.dequeueOp(&b, om)
		}
	}
	if len(afterCommit) == 0 {
		ss.srv.commit(&b, nil)
		return
	}
	// The callback may run at once, under ss.mu (memory store), or later
	// on the store's goroutine: it must not take ss.mu itself.
	ss.srv.commit(&b, func(error) {
		for _, om := range afterCommit {
			if !c.writePublish(om, false) {
				go ss.abortInflight(om)
			}
		}
	})
}

// abortInflight ends a delivery that can never be sent (expired, or too
// large for the client) after it was put in flight.
func (ss *session) abortInflight(om *outMsg) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.inflight[om.pid] != om {
		return
	}
	delete(ss.inflight, om.pid)
	var b store.Batch
	ss.dequeueOp(&b, om)
	ss.srv.commit(&b, nil)
	ss.pumpLocked()
}

// resendLocked re-sends (with DUP) the messages left in flight by an
// earlier connection [MQTT-4.4.0-1], oldest first, as far as the window of
// this connection allows: what is in flight counts against the client's
// Receive Maximum whichever connection it was sent on [MQTT-3.3.4-9].
func (ss *session) resendLocked(c *client, b *store.Batch) {
	live := ss.resend[:0]
	for _, om := range ss.resend {
		// Acknowledged meanwhile, or past PUBREC: nothing to re-send.
		if ss.inflight[om.pid] == om && om.state != store.EntryReleased {
			live = append(live, om)
		}
	}
	clear(ss.resend[len(live):])
	ss.resend = live
	for len(ss.resend) > 0 && len(ss.inflight)-len(ss.resend) < c.outWindow {
		om := ss.resend[0]
		ss.resend[0] = nil
		ss.resend = ss.resend[1:]
		if !c.writePublish(om, true) {
			delete(ss.inflight, om.pid)
			ss.dequeueOp(b, om)
		}
	}
	if len(ss.resend) == 0 {
		ss.resend = nil
	}
}

// releaseStoredLocked takes n bytes of queue entries off the budgets.
func (ss *session) releaseStoredLocked(n int) {
	ss.storedBytes -= int64(n)
	ss.srv.storedBytes.Add(-int64(n))
}

// allocPIDLocked returns a packet identifier not in flight. The window
// is at most 65535, so one is always free.
func (ss *session) allocPIDLocked() uint16 {
	for {
		ss.nextPID++
		if ss.nextPID == 0 {
			ss.nextPID = 1
		}
		if _, used := ss.inflight[ss.nextPID]; !used {
			return ss.nextPID
		}
	}
}

func (ss *session) entry(om *outMsg) store.QueueEntry {
	return store.QueueEntry{Seq: om.seq, MsgID: om.msg.ID, QoS: om.qos, Retain: om.retain,
		SubIDs: om.subIDs, PacketID: om.pid, State: om.state, Size: om.msg.Size(), Group: sharedFilter(om.group),
		Queued: om.queued}
}

func (ss *session) dequeueOp(b *store.Batch, om *outMsg) {
	if om.persisted {
		b.Dequeue(ss.id, om.seq)
		ss.releaseStoredLocked(om.msg.Size())
	}
}

// onPuback completes a QoS 1 delivery.
func (ss *session) onPuback(c *client, pid uint16) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	om, ok := ss.inflight[pid]
	if !ok || om.qos != 1 || ss.c != c {
		return // unknown ids are ignored, as for a late duplicate
	}
	ss.completeLocked(om)
}

// completeLocked ends a delivery the client acknowledged.
func (ss *session) completeLocked(om *outMsg) {
	delete(ss.inflight, om.pid)
	var b store.Batch
	ss.dequeueOp(&b, om)
	ss.srv.commit(&b, nil)
	ss.srv.stats.messagesSent.Add(1)
	ss.pumpLocked()
}

// onPubrec moves a QoS 2 delivery to its second phase and sends PUBREL.
func (ss *session) onPubrec(c *client, pid uint16, rc mqtt.ReasonCode) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.c != c {
		return
	}
	om, ok := ss.inflight[pid]
	if !ok || om.qos != 2 {
		// [MQTT-4.3.3] answer so the client can clean up its state.
		rel := &mqtt.Pubrel{PacketID: pid}
		if c.version == mqtt.V5 {
			rel.ReasonCode = mqtt.PacketIdentifierNotFound
		}
		c.send(rel)
		return
	}
	var b store.Batch
	if rc.IsError() {
		// The receiver refused the message: the delivery ends here
		// (§4.3.3; no PUBREL follows an error PUBREC).
		delete(ss.inflight, pid)
		ss.dequeueOp(&b, om)
		ss.srv.commit(&b, nil)
		ss.pumpLocked()
		return
	}
	om.state = store.EntryReleased
	if om.persisted {
		b.Enqueue(ss.id, ss.entry(om))
	}
	// PUBREL goes out only once the released state is durable, so that a
	// restart never re-sends the PUBLISH of a completed exchange.
	ss.srv.commit(&b, func(error) { c.send(&mqtt.Pubrel{PacketID: pid}) })
}

// onPubcomp completes a QoS 2 delivery.
func (ss *session) onPubcomp(c *client, pid uint16) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	om, ok := ss.inflight[pid]
	if !ok || om.state != store.EntryReleased || ss.c != c {
		return
	}
	ss.completeLocked(om)
}

// resumeLocked runs after CONNACK: it re-sends every unacknowledged
// message in its original order — PUBREL at once for those past PUBREC,
// PUBLISH with DUP within the client's Receive Maximum (resendLocked)
// [MQTT-4.4.0-1] — then sends what is queued.
func (ss *session) resumeLocked() {
	c := ss.c
	if c.idle {
		return // not ready: what is queued or routed meanwhile stays queued
	}
	ss.ready = true
	ss.connected.Store(true)
	ss.attachSeq = ss.seq // internal.go: what is queued up to here is backlog
	clear(ss.resend)
	ss.resend = ss.resend[:0]
	if len(ss.inflight) > 0 {
		oms := make([]*outMsg, 0, len(ss.inflight))
		for _, om := range ss.inflight {
			oms = append(oms, om)
		}
		sort.Slice(oms, func(i, j int) bool { return oms[i].seq < oms[j].seq })
		for _, om := range oms {
			if om.state == store.EntryReleased {
				ss.resendReleasedLocked(c, om)
			} else {
				ss.resend = append(ss.resend, om)
			}
		}
	}
	ss.pumpLocked()
}

// hasInbound reports whether QoS 2 packet id pid awaits its PUBREL; if not
// and add is set, it records it.
func (ss *session) addInbound(pid uint16) (dup bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if _, ok := ss.inbound[pid]; ok {
		return true
	}
	ss.addInboundLocked(pid)
	return false
}

func (ss *session) removeInbound(pid uint16) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if _, ok := ss.inbound[pid]; !ok {
		return false
	}
	delete(ss.inbound, pid)
	return true
}

// record is the persistent form of the session.
func (ss *session) recordLocked() *store.SessionRecord {
	ss.stored = true
	r := &store.SessionRecord{ClientID: ss.id, Version: ss.version, ExpirySeconds: ss.expiry,
		DisconnectedAt: ss.lastSeen, Will: ss.will}
	if ss.c != nil {
		r.DisconnectedAt = time.Time{}
	}
	if ci := ss.who.Load(); ci != nil {
		r.Username, r.HasUsername = ci.Username, ci.HasUsername
	}
	for _, sub := range ss.subs {
		r.Subscriptions = append(r.Subscriptions, store.Subscription{Filter: sub.filter, Options: sub.opts, ID: sub.id})
	}
	sort.Slice(r.Subscriptions, func(i, j int) bool { return r.Subscriptions[i].Filter < r.Subscriptions[j].Filter })
	return r
}

func (ss *session) stopTimers() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.stopTimersLocked()
}

func (ss *session) stopTimersLocked() {
	if ss.willTimer != nil {
		ss.willTimer.Stop()
		ss.willTimer = nil
	}
	if ss.expiryTimer != nil {
		ss.expiryTimer.Stop()
		ss.expiryTimer = nil
	}
}

// updateExpiryOnDisconnect applies a Session Expiry Interval sent in an
// MQTT 5.0 DISCONNECT; raising it from 0 is a protocol error
// [MQTT-3.14.2-2].
func (ss *session) updateExpiryOnDisconnect(c *client, v uint32) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.expiry == 0 && v != 0 {
		return closeWith(mqtt.ProtocolError, "session expiry raised from 0 on DISCONNECT [MQTT-3.14.2-2]")
	}
	if m := ss.srv.opts.MaxSessionExpiry; m > 0 && v > m {
		v = m
	}
	ss.expiry = v
	return nil
}
