package store

import (
	"sort"
	"sync"
)

// Memory is the in-memory Store (durability "none"): it commits at once
// and loses everything when the process ends. The zero value is not
// usable; call NewMemory.
type Memory struct {
	mu       sync.Mutex
	closed   bool
	sessions map[string]*memSession
	messages map[uint64]*memMessage
	retained map[string]*Message
	maxID    uint64
}

type memMessage struct {
	msg  *Message
	refs int
}

type memSession struct {
	rec     *SessionRecord
	queue   map[uint64]QueueEntry
	inbound map[uint16]struct{}
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{
		sessions: make(map[string]*memSession),
		messages: make(map[uint64]*memMessage),
		retained: make(map[string]*Message),
	}
}

// Commit implements Store; done is called before Commit returns.
func (s *Memory) Commit(b *Batch, done func(error)) {
	err := s.apply(b)
	if done != nil {
		done(err)
	}
}

func (s *Memory) apply(b *Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if b.Empty() {
		return nil
	}
	// Messages whose reference count reached zero during the batch (or
	// that were put and never referenced) are released only once the
	// whole batch is applied, so that the result does not depend on the
	// order of ops inside it: updating an entry in place, or dequeuing a
	// message and queueing it again in the same batch, keeps it.
	var release []uint64
	for i := range b.Ops {
		op := &b.Ops[i]
		switch op.Kind {
		case OpPutSession:
			ms := s.session(op.Session.ClientID)
			ms.rec = op.Session
		case OpDeleteSession:
			if ms, ok := s.sessions[op.ClientID]; ok {
				for _, e := range ms.queue {
					release = s.unref(release, e.MsgID)
				}
				delete(s.sessions, op.ClientID)
			}
		case OpPutMessage:
			if _, ok := s.messages[op.Message.ID]; !ok {
				s.messages[op.Message.ID] = &memMessage{msg: op.Message}
				release = append(release, op.Message.ID)
			}
			s.maxID = max(s.maxID, op.Message.ID)
		case OpEnqueue:
			ms := s.session(op.ClientID)
			// Reference the new message before releasing the old one:
			// an update of an entry keeps the same MsgID.
			if m, ok := s.messages[op.Entry.MsgID]; ok {
				m.refs++
			}
			if old, ok := ms.queue[op.Entry.Seq]; ok {
				release = s.unref(release, old.MsgID)
			}
			ms.queue[op.Entry.Seq] = op.Entry
		case OpDequeue:
			if ms, ok := s.sessions[op.ClientID]; ok {
				if e, ok := ms.queue[op.Entry.Seq]; ok {
					delete(ms.queue, op.Entry.Seq)
					release = s.unref(release, e.MsgID)
				}
			}
		case OpPutInbound:
			s.session(op.ClientID).inbound[op.PacketID] = struct{}{}
		case OpDeleteInbound:
			if ms, ok := s.sessions[op.ClientID]; ok {
				delete(ms.inbound, op.PacketID)
			}
		case OpPutRetained:
			s.retained[op.Message.Topic] = op.Message
			s.maxID = max(s.maxID, op.Message.ID)
		case OpDeleteRetained:
			delete(s.retained, op.Topic)
		}
	}
	for _, id := range release {
		if m, ok := s.messages[id]; ok && m.refs <= 0 {
			delete(s.messages, id)
		}
	}
	return nil
}

func (s *Memory) session(id string) *memSession {
	ms, ok := s.sessions[id]
	if !ok {
		ms = &memSession{queue: make(map[uint64]QueueEntry), inbound: make(map[uint16]struct{})}
		s.sessions[id] = ms
	}
	return ms
}

// unref drops one reference to message id and adds it to release when
// that was the last one.
func (s *Memory) unref(release []uint64, id uint64) []uint64 {
	if m, ok := s.messages[id]; ok {
		if m.refs--; m.refs <= 0 {
			release = append(release, id)
		}
	}
	return release
}

// Sessions implements Store.
func (s *Memory) Sessions(fn func(*SessionRecord) error) error {
	s.mu.Lock()
	recs := make([]*SessionRecord, 0, len(s.sessions))
	for _, ms := range s.sessions {
		if ms.rec != nil {
			recs = append(recs, ms.rec)
		}
	}
	s.mu.Unlock()
	for _, r := range recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// Queue implements Store.
func (s *Memory) Queue(clientID string, after uint64, fn func(QueueEntry, *Message) bool) error {
	s.mu.Lock()
	ms, ok := s.sessions[clientID]
	var entries []QueueEntry
	if ok {
		for _, e := range ms.queue {
			if e.Seq > after {
				entries = append(entries, e)
			}
		}
	}
	msgs := make([]*Message, len(entries))
	sort.Slice(entries, func(i, j int) bool { return entries[i].Seq < entries[j].Seq })
	for i, e := range entries {
		if m, ok := s.messages[e.MsgID]; ok {
			msgs[i] = m.msg
		}
	}
	s.mu.Unlock()
	for i, e := range entries {
		if msgs[i] == nil {
			continue
		}
		if !fn(e, msgs[i]) {
			break
		}
	}
	return nil
}

// QueueEntries implements Store.
func (s *Memory) QueueEntries(clientID string, after uint64, fn func(QueueEntry) bool) error {
	s.mu.Lock()
	var entries []QueueEntry
	if ms, ok := s.sessions[clientID]; ok {
		for _, e := range ms.queue {
			if e.Seq > after {
				if m, ok := s.messages[e.MsgID]; ok && e.Size == 0 {
					e.Size = m.msg.Size()
				}
				entries = append(entries, e)
			}
		}
	}
	s.mu.Unlock()
	sort.Slice(entries, func(i, j int) bool { return entries[i].Seq < entries[j].Seq })
	for _, e := range entries {
		if !fn(e) {
			break
		}
	}
	return nil
}

// Inbound implements Store.
func (s *Memory) Inbound(clientID string, fn func(uint16)) error {
	s.mu.Lock()
	var ids []uint16
	if ms, ok := s.sessions[clientID]; ok {
		for id := range ms.inbound {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		fn(id)
	}
	return nil
}

// Retained implements Store.
func (s *Memory) Retained(fn func(*Message) error) error {
	s.mu.Lock()
	msgs := make([]*Message, 0, len(s.retained))
	for _, m := range s.retained {
		msgs = append(msgs, m)
	}
	s.mu.Unlock()
	for _, m := range msgs {
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

// MaxMessageID implements Store.
func (s *Memory) MaxMessageID() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxID
}

// Close implements Store.
func (s *Memory) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

// MessageCount reports how many messages the store holds for queues (not
// counting retained messages), so that tests can check that a message is
// released when its last queue entry goes; see storetest.MessageCounter.
func (s *Memory) MessageCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.messages)
}
