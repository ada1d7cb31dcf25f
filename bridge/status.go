package bridge

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Status is a snapshot of a bridge.
type Status struct {
	Name      string
	Connected bool
	// OutboxMessages and OutboxBytes are the messages waiting to go
	// upstream (not counting InFlight); OldestAge is how long the oldest
	// of those has waited (broker.InternalStatus.Oldest: to the second,
	// also across restarts).
	OutboxMessages int
	OutboxBytes    int64
	InFlight       int
	OldestAge      time.Duration
	// Forwarded counts messages acknowledged upstream (QoS 0: sent);
	// Received counts messages from upstream acknowledged locally.
	Forwarded int64
	Received  int64
	// Dropped counts messages not forwarded, by rule ("out[0]", "in[1]",
	// or "none" when no rule matches any more) and reason:
	// "outbox_full" (the budget policy), "upstream_rejected" (error
	// reason code from upstream), "too_large" (above the upstream's
	// Maximum Packet Size), "no_rule", "bad_topic" (remapped topic
	// invalid), "local_rejected" (the local broker refused an in message).
	Dropped map[string]map[string]int64
}

// DroppedTotal sums Dropped.
func (s Status) DroppedTotal() int64 {
	var n int64
	for _, m := range s.Dropped {
		for _, v := range m {
			n += v
		}
	}
	return n
}

// Status reports the bridge's state.
func (b *Bridge) Status() Status {
	o := b.srv.InternalStatus(b.localID)
	st := Status{Name: b.cfg.Name, Connected: b.stats.connected.Load(), OutboxMessages: o.Queued,
		OutboxBytes: o.QueuedBytes, InFlight: o.Inflight, Forwarded: b.stats.forwarded.Load(),
		Received: b.stats.received.Load(), Dropped: b.stats.dropped()}
	if !o.Oldest.IsZero() {
		st.OldestAge = time.Since(o.Oldest)
	}
	return st
}

type stats struct {
	connected atomic.Bool
	forwarded atomic.Int64
	received  atomic.Int64
	outRules  []string
	inRules   []string

	mu    sync.Mutex
	drops map[string]map[string]int64
}

func (s *stats) init(c Config) {
	for i := range c.Out {
		s.outRules = append(s.outRules, fmt.Sprintf("out[%d]", i))
	}
	for i := range c.In {
		s.inRules = append(s.inRules, fmt.Sprintf("in[%d]", i))
	}
	s.drops = make(map[string]map[string]int64)
}

// setConnected records the state and reports whether it changed.
func (s *stats) setConnected(up bool) bool { return s.connected.Swap(up) != up }

// drop counts a message of out rule r (-1: none) dropped for reason.
func (s *stats) drop(r int, reason string) { s.dropRule(s.outRules, r, reason) }

// dropIn counts a message of in rule r dropped for reason.
func (s *stats) dropIn(r int, reason string) { s.dropRule(s.inRules, r, reason) }

func (s *stats) dropRule(names []string, r int, reason string) {
	name := "none"
	if r >= 0 && r < len(names) {
		name = names[r]
	}
	s.mu.Lock()
	m := s.drops[name]
	if m == nil {
		m = make(map[string]int64)
		s.drops[name] = m
	}
	m[reason]++
	s.mu.Unlock()
}

func (s *stats) dropped() map[string]map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]map[string]int64, len(s.drops))
	for k, m := range s.drops {
		c := make(map[string]int64, len(m))
		for r, v := range m {
			c[r] = v
		}
		out[k] = c
	}
	return out
}
