package broker

import (
	"net"
	"strings"
	"time"

	"github.com/weirmq/weir/mqtt"
	"github.com/weirmq/weir/store"
)

// addPerIPLocked counts conn against its source address (s.mu held) and
// reports whether MaxConnectionsPerIP allows it.
func (s *Server) addPerIPLocked(conn net.Conn) (host string, ok bool) {
	host = remoteHost(conn)
	if max := s.opts.MaxConnectionsPerIP; max > 0 && s.perIP[host] >= max {
		return host, false
	}
	s.perIP[host]++
	return host, true
}

func (s *Server) removePerIP(host string) {
	s.mu.Lock()
	if s.perIP[host]--; s.perIP[host] <= 0 {
		delete(s.perIP, host)
	}
	s.mu.Unlock()
}

// refusePerIP closes a connection over MaxConnectionsPerIP at once,
// before it costs a goroutine; there is no CONNACK, since reading the
// CONNECT is what a flood of connections would have us wait for.
func (s *Server) refusePerIP(conn net.Conn, host string) {
	conn.Close()
	s.stats.refused.Add(1)
	s.stats.perIPRefused.Add(1)
	now := time.Now().UnixNano()
	last := s.stats.perIPLogged.Load()
	if now-last >= int64(dropLogInterval) && s.stats.perIPLogged.CompareAndSwap(last, now) {
		s.log.Warn("connections refused: too many from one address", "remote", host,
			"max_connections_per_ip", s.opts.MaxConnectionsPerIP, "total", s.stats.perIPRefused.Load())
	}
}

// topicWithinLimits reports whether a topic name or filter respects
// MaxTopicLength and MaxTopicLevels.
func (s *Server) topicWithinLimits(t string) bool {
	if len(t) > s.opts.MaxTopicLength {
		return false
	}
	max := s.opts.MaxTopicLevels
	return max < 0 || strings.Count(t, "/")+1 <= max
}

// retainRoom reports whether m may become a retained message under
// MaxRetainedMessages and MaxRetainedBytes. A message that replaces or
// clears the retained message of its topic always may.
func (s *Server) retainRoom(m *store.Message) bool {
	maxN, maxB := s.opts.MaxRetainedMessages, s.opts.MaxRetainedBytes
	if maxN <= 0 && maxB <= 0 || len(m.Payload) == 0 {
		return true
	}
	old := s.retained.Get(m.Topic)
	if maxN > 0 && old == nil && s.retained.Len() >= maxN {
		return false
	}
	if maxB > 0 {
		n := int64(s.retained.Bytes()) + int64(m.Size())
		if old != nil {
			n -= int64(old.Size())
		}
		if n > maxB {
			return false
		}
	}
	return true
}

// tokenBucket limits a connection's PUBLISH rate. Only the reader
// goroutine uses it.
type tokenBucket struct {
	tokens float64
	last   time.Time
}

// wait blocks until a token is available and takes it. Blocking the
// reader is the back-pressure: the client's packets wait in its socket.
func (b *tokenBucket) wait(rate float64, burst int, now time.Time) time.Duration {
	if b.last.IsZero() {
		b.tokens, b.last = float64(burst), now
	}
	b.tokens = min(float64(burst), b.tokens+now.Sub(b.last).Seconds()*rate)
	b.last = now
	var waited time.Duration
	if b.tokens < 1 {
		waited = time.Duration((1 - b.tokens) / rate * float64(time.Second))
		time.Sleep(waited)
		b.tokens, b.last = 1, now.Add(waited)
	}
	b.tokens--
	return waited
}

// subscribeAllowed checks a new subscription (filter as sent, plain
// without any $share prefix) against the topic limits, the access
// control and MaxSubscriptionsPerClient, and returns the SUBACK failure
// code, or Success.
func (c *client) subscribeAllowed(filter, plain string) mqtt.ReasonCode {
	s := c.srv
	if !s.topicWithinLimits(filter) {
		return mqtt.TopicFilterInvalid
	}
	if a := s.opts.Access; a != nil && !c.sess.identity().internal && !a.CanSubscribe(c.sess.identity(), plain) {
		return mqtt.NotAuthorized
	}
	if max := s.opts.MaxSubscriptionsPerClient; max > 0 {
		ss := c.sess
		ss.mu.Lock()
		_, existed := ss.subs[filter]
		full := !existed && len(ss.subs) >= max
		ss.mu.Unlock()
		if full {
			return mqtt.QuotaExceeded
		}
	}
	return mqtt.Success
}
