package broker

import (
	"github.com/weirmq/weir/broker/subtree"
	"strings"
	"time"

	"github.com/weirmq/weir/store"
)

// loadSessions restores the sessions of the store at start-up: their
// subscriptions, queued messages and inbound QoS 2 state, with expiry
// timers counting from when they were last connected.
func (s *Server) loadSessions() error {
	now := time.Now()
	// The timers start once every session is loaded: a will already due
	// is published at once, and must find the subscriptions of sessions
	// restored after its own.
	var timed []*session
	err := s.store.Sessions(func(r *store.SessionRecord) error {
		ss := newSession(s, r.ClientID)
		ss.stored = true
		ss.version = r.Version
		ss.expiry = r.ExpirySeconds
		ss.will = r.Will
		// Access control checks what the session may receive with the
		// identity of its last connection until its client connects again.
		ss.who.Store(&ClientInfo{ClientID: r.ClientID, Username: r.Username, HasUsername: r.HasUsername,
			internal: strings.HasPrefix(r.ClientID, InternalPrefix)})
		ss.lastSeen = r.DisconnectedAt
		if ss.lastSeen.IsZero() {
			ss.lastSeen = now // it was connected when the broker stopped
		}
		for _, sub := range r.Subscriptions {
			v := subscription{filter: sub.Filter, opts: sub.Options, id: sub.ID}
			ss.addSubLocked(sub.Filter, v)
			s.subs.Subscribe(sub.Filter, ss, v)
		}
		if err := s.loadQueue(ss); err != nil {
			return err
		}
		if ss.queueLen()+ss.backlog+len(ss.inflight) > 0 {
			s.log.Info("restored queued messages", "client", r.ClientID, "in_memory", ss.queueLen()+len(ss.inflight),
				"in_store", ss.backlog)
		}
		if err := s.store.Inbound(r.ClientID, ss.addInboundLocked); err != nil {
			return err
		}
		s.sessions[r.ClientID] = ss
		if ss.expiry != 0xFFFFFFFF || ss.will != nil {
			timed = append(timed, ss)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, ss := range timed {
		ss.startRestoredTimers(now)
	}
	return nil
}

// startRestoredTimers starts the expiry and will timers of a session
// restored at start-up, counting from when it was last connected. They
// are set under ss.mu, which a timer due at once takes first: willDue
// and expire see the timer they were started by.
func (ss *session) startRestoredTimers(now time.Time) {
	s := ss.srv
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.expiry != 0xFFFFFFFF {
		left := ss.lastSeen.Add(time.Duration(ss.expiry) * time.Second).Sub(now)
		ss.expiryTimer = time.AfterFunc(max(left, 0), func() { s.expire(ss) })
	}
	if ss.will != nil {
		left := ss.lastSeen.Add(time.Duration(min(ss.will.Delay, ss.expiry)) * time.Second).Sub(now)
		ss.willTimer = time.AfterFunc(max(left, 0), func() { s.willDue(ss) })
	}
}

// loadQueue restores the queue of ss: messages in flight come back into
// memory (to be re-sent), and of the rest the first QueueMemoryWindow do;
// the others stay in the store as the backlog, only counted. Counting
// reads just the queue entries (each records its message's size), so a
// queue of a million messages costs one pass over small values, not a
// million message reads; the messages that come into memory are read in a
// second pass that stops at the last of them.
func (s *Server) loadQueue(ss *session) error {
	var lastMem uint64 // Seq of the last entry whose message comes into memory
	inMemory := 0
	err := s.store.QueueEntries(ss.id, 0, func(e store.QueueEntry) bool {
		ss.seq = max(ss.seq, e.Seq)
		ss.storedBytes += int64(e.Size)
		s.storedBytes.Add(int64(e.Size))
		switch {
		case e.PacketID != 0:
			lastMem = e.Seq
		case !ss.spilling && inMemory < s.opts.QueueMemoryWindow:
			inMemory++
			lastMem = e.Seq
			ss.loadedSeq = e.Seq
		default:
			ss.spilling = true
			ss.backlog++
			ss.backlogBytes += e.Size
		}
		return true
	})
	if err != nil || lastMem == 0 {
		return err
	}
	return s.store.Queue(ss.id, 0, func(e store.QueueEntry, m *store.Message) bool {
		if e.Seq > lastMem {
			return false
		}
		switch {
		case e.PacketID != 0:
			ss.addInflightLocked(s.storedOutMsg(e, m))
		case e.Seq <= ss.loadedSeq:
			ss.pushLocked(s.storedOutMsg(e, m))
		}
		// (Entries above loadedSeq that are not in flight are backlog,
		// read again by refillLocked.)
		return true
	})
}

// storedOutMsg is the delivery a queue entry read from the store stands
// for, with its packet id and state if it was in flight.
func (s *Server) storedOutMsg(e store.QueueEntry, m *store.Message) *outMsg {
	return &outMsg{seq: e.Seq, msg: m, qos: e.QoS, retain: e.Retain, subIDs: e.SubIDs,
		pid: e.PacketID, state: e.State, persisted: true, group: s.sharedGroup(e.Group), queued: e.Queued}
}

// sharedGroup returns the shared group a queue entry recorded (nil for
// none, or if the group has no members any more: the message then stays
// with its session).
func (s *Server) sharedGroup(filter string) *subtree.Group[*session, subscription] {
	if filter == "" {
		return nil
	}
	return s.subs.SharedGroup(filter)
}
