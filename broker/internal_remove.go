package broker

import (
	"strings"
	"time"

	"github.com/weirmq/weir/store"
)

// RemoveUnregisteredInternal ends every internal session whose id starts
// with prefix and that no RegisterInternal call claimed — the outbox of a
// bridge removed from the configuration, which would otherwise keep
// queueing what its subscriptions match until the store is full. Its
// subscriptions go, and its queue is deleted from the store. It returns
// what each removed session held. Call it after registering the internal
// sessions in use and before serving.
func (s *Server) RemoveUnregisteredInternal(prefix string) map[string]InternalStatus {
	if !strings.HasPrefix(prefix, InternalPrefix) {
		return nil
	}
	s.mu.Lock()
	var stale []*session
	for id, ss := range s.sessions {
		if strings.HasPrefix(id, prefix) && s.internal[id] == nil {
			stale = append(stale, ss)
		}
	}
	s.mu.Unlock()
	removed := make(map[string]InternalStatus, len(stale))
	for _, ss := range stale {
		st := s.InternalStatus(ss.id)
		s.mu.Lock()
		ss.mu.Lock()
		online := ss.c != nil
		ss.mu.Unlock()
		// Online: someone dialled it (DialInternal refuses unregistered
		// ids, so only a registration that came meanwhile): keep it.
		if !online && s.sessions[ss.id] == ss && s.internal[ss.id] == nil {
			s.endSessionLocked(ss) // internal sessions have no will
			removed[ss.id] = st
		}
		s.mu.Unlock()
	}
	return removed
}

// RemoveRetained deletes the retained messages whose topics match filter
// — the status topics of a bridge removed from the configuration, for
// instance — from memory and from the store, and returns how many.
func (s *Server) RemoveRetained(filter string) int {
	var topics []string
	s.retained.Match(filter, time.Now(), func(m *store.Message) bool {
		topics = append(topics, m.Topic)
		return true
	})
	var b store.Batch
	n := 0
	for _, t := range topics {
		if s.retained.Delete(t) != nil {
			b.DeleteRetained(t)
			n++
		}
	}
	s.commit(&b, nil)
	return n
}
