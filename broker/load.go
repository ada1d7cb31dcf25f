package broker

import (
	"time"

	"github.com/weirmq/weir/store"
)

// loadSessions restores the sessions of the store at start-up: their
// subscriptions, queued messages and inbound QoS 2 state, with expiry
// timers counting from when they were last connected.
func (s *Server) loadSessions() error {
	now := time.Now()
	return s.store.Sessions(func(r *store.SessionRecord) error {
		ss := newSession(s, r.ClientID)
		ss.stored = true
		ss.version = r.Version
		ss.expiry = r.ExpirySeconds
		ss.will = r.Will
		ss.lastSeen = r.DisconnectedAt
		if ss.lastSeen.IsZero() {
			ss.lastSeen = now // it was connected when the broker stopped
		}
		for _, sub := range r.Subscriptions {
			v := subscription{filter: sub.Filter, opts: sub.Options, id: sub.ID}
			ss.subs[sub.Filter] = v
			s.subs.Subscribe(sub.Filter, ss, v)
		}
		// Messages in flight come back into memory (to be re-sent); of
		// the rest, the first QueueMemoryWindow do, and the others stay
		// in the store as the backlog, counted here.
		err := s.store.Queue(r.ClientID, 0, func(e store.QueueEntry, m *store.Message) bool {
			ss.seq = max(ss.seq, e.Seq)
			ss.storedBytes += int64(m.Size())
			s.storedBytes.Add(int64(m.Size()))
			if e.PacketID != 0 {
				ss.inflight[e.PacketID] = &outMsg{seq: e.Seq, msg: m, qos: e.QoS, retain: e.Retain,
					subIDs: e.SubIDs, pid: e.PacketID, state: e.State, persisted: true}
				return true
			}
			if ss.spilling || ss.queueLen() >= s.opts.QueueMemoryWindow {
				ss.spilling = true
				ss.backlog++
				ss.backlogBytes += m.Size()
				return true
			}
			ss.pushLocked(&outMsg{seq: e.Seq, msg: m, qos: e.QoS, retain: e.Retain, subIDs: e.SubIDs, persisted: true})
			ss.loadedSeq = e.Seq
			return true
		})
		if err != nil {
			return err
		}
		if ss.queueLen()+ss.backlog+len(ss.inflight) > 0 {
			s.log.Info("restored queued messages", "client", r.ClientID, "in_memory", ss.queueLen()+len(ss.inflight),
				"in_store", ss.backlog)
		}
		if err := s.store.Inbound(r.ClientID, func(id uint16) { ss.inbound[id] = struct{}{} }); err != nil {
			return err
		}
		s.sessions[r.ClientID] = ss
		if ss.expiry != 0xFFFFFFFF {
			left := ss.lastSeen.Add(time.Duration(ss.expiry) * time.Second).Sub(now)
			ss.expiryTimer = time.AfterFunc(max(left, 0), func() { s.expire(ss) })
		}
		if ss.will != nil {
			left := ss.lastSeen.Add(time.Duration(min(ss.will.Delay, ss.expiry)) * time.Second).Sub(now)
			ss.willTimer = time.AfterFunc(max(left, 0), func() { s.willDue(ss) })
		}
		return nil
	})
}
