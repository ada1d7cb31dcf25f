package retain

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/weirmq/weir/store"
)

// Index holds the retained messages, one per topic name. It is safe for
// concurrent use: lookups (Get, Match, Len, Bytes) run concurrently with one
// another; a change (Set, Delete, Expire, and each message Load adds)
// excludes everything else for the time it takes to change the tree. No
// lock is held while a callback runs.
//
// The zero value is not usable; call New.
type Index struct {
	mu    sync.RWMutex
	root  node // stands for zero levels; never holds a message itself
	count int  // messages in the tree
	bytes int  // sum of their Size()
	// nextExpiry is no later than the earliest Expiry of any message in the
	// tree (zero: no message has an expiry), so Expire can return at once
	// when nothing can have expired. Deletions leave it early; Expire makes
	// it exact again.
	nextExpiry time.Time
	// bufs recycles Match's result buffers (*[]*store.Message) so that
	// a subscription does not allocate one each time. It lives here, not
	// in a package variable: the package has no mutable global state.
	bufs sync.Pool
}

// node is one topic level. A node exists only while it holds a message or
// has children: deleting the last message below a node removes it.
type node struct {
	parent   *node
	key      string           // this level, as the key in parent.children
	children map[string]*node // nil when there are none
	msg      *store.Message
}

// New returns an empty Index.
func New() *Index {
	return &Index{}
}

// Set stores m as the retained message of m.Topic, replacing any message the
// topic had [MQTT-3.3.1-5] (3.1.1 and 5.0), and returns the message it
// replaced, or nil if there was none.
//
// If m has an empty payload, Set deletes the retained message of m.Topic
// instead and does not store m: 3.1.1 [MQTT-3.3.1-10] [MQTT-3.3.1-11], 5.0
// [MQTT-3.3.1-6] [MQTT-3.3.1-7]. It returns the deleted message, as Delete
// does.
//
// m.Topic must be a valid topic name (mqtt.ValidateTopicName); Set does not
// check it. The Index keeps m and never modifies it; the caller must not
// modify it either.
func (x *Index) Set(m *store.Message) (old *store.Message) {
	if len(m.Payload) == 0 {
		return x.Delete(m.Topic)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	n := &x.root
	for topic := m.Topic; ; {
		level, rest, more := strings.Cut(topic, "/")
		c := n.children[level]
		if c == nil {
			// Clone the level so the tree does not keep the whole
			// topic string of m alive after m is gone.
			c = &node{parent: n, key: strings.Clone(level)}
			if n.children == nil {
				n.children = make(map[string]*node, 1)
			}
			n.children[c.key] = c
		}
		n = c
		if !more {
			break
		}
		topic = rest
	}
	old, n.msg = n.msg, m
	if old != nil {
		x.bytes -= old.Size()
	} else {
		x.count++
	}
	x.bytes += m.Size()
	if !m.Expiry.IsZero() && (x.nextExpiry.IsZero() || m.Expiry.Before(x.nextExpiry)) {
		x.nextExpiry = m.Expiry
	}
	return old
}

// Delete removes the retained message of topic, if any, and returns it (nil
// if there was none). Tree nodes left without messages are removed.
func (x *Index) Delete(topic string) (old *store.Message) {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := x.find(topic)
	if n == nil || n.msg == nil {
		return nil
	}
	old, n.msg = n.msg, nil
	x.count--
	x.bytes -= old.Size()
	x.prune(n)
	return old
}

// Get returns the retained message of topic, or nil if there is none. It
// returns the message even if it has expired but Expire has not removed it
// yet; callers that care check m.Expired.
func (x *Index) Get(topic string) *store.Message {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if n := x.find(topic); n != nil {
		return n.msg
	}
	return nil
}

// Match calls fn for every retained message whose topic matches filter, as
// mqtt.MatchTopic defines it, skipping messages that have expired at now,
// until fn returns false. Messages are visited in no particular order.
//
// A topic that begins with '$' is not matched by a filter whose first level
// is '+' or '#' [MQTT-4.7.2-1]. "a/#" matches "a" itself.
//
// filter must be a valid, non-shared topic filter (mqtt.ValidateTopicFilter;
// reduce a shared one with mqtt.ParseShared first). Match walks the tree
// along filter and visits only the subtrees the filter can match; only a
// filter such as "#" or "+/#" visits every topic.
//
// The matching messages are collected under the read lock and fn is called
// after it is released, so fn may call any method of x (including Set and
// Delete), and a slow fn does not hold up publishers. fn sees the messages
// that matched when Match was called.
func (x *Index) Match(filter string, now time.Time, fn func(*store.Message) bool) {
	bp, _ := x.bufs.Get().(*[]*store.Message)
	if bp == nil {
		bp = new([]*store.Message)
	}
	x.mu.RLock()
	buf := match(&x.root, filter, true, now, (*bp)[:0])
	x.mu.RUnlock()
	for _, m := range buf {
		if !fn(m) {
			break
		}
	}
	clear(buf) // do not keep messages alive from the pool
	if cap(buf) <= maxPooledMatch {
		*bp = buf[:0]
		x.bufs.Put(bp)
	}
}

// maxPooledMatch is the largest buffer Match keeps for reuse; larger ones
// (a "#" over a big tree) are left to the garbage collector.
const maxPooledMatch = 4096

// Expire removes every message that has expired at now and returns them, so
// that the broker can delete them from the store too. It returns nil at once
// if no message can have expired.
func (x *Index) Expire(now time.Time) []*store.Message {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.nextExpiry.IsZero() || now.Before(x.nextExpiry) {
		return nil
	}
	var expired []*store.Message
	x.nextExpiry = time.Time{}
	x.expire(&x.root, now, &expired)
	return expired
}

// Len returns the number of retained messages, including expired ones that
// Expire has not removed yet.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.count
}

// Bytes returns the sum of Size() of the retained messages, for budgets.
func (x *Index) Bytes() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.bytes
}

// Load adds every retained message of st (store.Store.Retained) to x, as
// Set does. It keeps messages that have already expired: the next Expire
// returns them, so the broker deletes them from the store as well.
func (x *Index) Load(st store.Store) error {
	err := st.Retained(func(m *store.Message) error {
		x.Set(m)
		return nil
	})
	if err != nil {
		return fmt.Errorf("retain: load retained messages: %w", err)
	}
	return nil
}

// find returns the node of topic, or nil. The caller holds x.mu.
func (x *Index) find(topic string) *node {
	n := &x.root
	for {
		level, rest, more := strings.Cut(topic, "/")
		if n = n.children[level]; n == nil || !more {
			return n
		}
		topic = rest
	}
}

// prune removes n and then its ancestors for as long as they hold no message
// and have no children. The caller holds x.mu for writing.
func (x *Index) prune(n *node) {
	for n != &x.root && n.msg == nil && len(n.children) == 0 {
		p := n.parent
		delete(p.children, n.key)
		if len(p.children) == 0 {
			p.children = nil // a map never shrinks; drop it
		}
		n.parent = nil
		n = p
	}
}

// expire removes the messages expired at now below n (and n's own),
// appending them to out, removes the nodes that become empty, and lowers
// x.nextExpiry to the earliest expiry that remains. It reports whether n is
// now empty. The caller holds x.mu for writing.
func (x *Index) expire(n *node, now time.Time, out *[]*store.Message) (empty bool) {
	if m := n.msg; m != nil && !m.Expiry.IsZero() {
		if m.Expired(now) {
			*out = append(*out, m)
			n.msg = nil
			x.count--
			x.bytes -= m.Size()
		} else if x.nextExpiry.IsZero() || m.Expiry.Before(x.nextExpiry) {
			x.nextExpiry = m.Expiry
		}
	}
	for k, c := range n.children {
		if x.expire(c, now, out) {
			c.parent = nil
			delete(n.children, k)
		}
	}
	if len(n.children) == 0 {
		n.children = nil
	}
	return n.msg == nil && n.children == nil
}

// match appends to out the live messages below n whose topics (the levels
// that lead to n followed by the rest) match filter, the part of the topic
// filter that is still to be matched. first is true at the root, where a
// wildcard does not match a level that begins with '$' [MQTT-4.7.2-1]. The
// caller holds x.mu.
func match(n *node, filter string, first bool, now time.Time, out []*store.Message) []*store.Message {
	level, rest, more := strings.Cut(filter, "/")
	switch level {
	case "#":
		// '#' matches the parent level too ("a/#" matches "a") and
		// everything below it. The root holds no message.
		out = appendLive(out, n.msg, now)
		for k, c := range n.children {
			if first && isDollar(k) {
				continue
			}
			out = appendAll(c, now, out)
		}
	case "+":
		for k, c := range n.children {
			if first && isDollar(k) {
				continue
			}
			if more {
				out = match(c, rest, false, now, out)
			} else {
				out = appendLive(out, c.msg, now)
			}
		}
	default:
		c := n.children[level]
		switch {
		case c == nil:
		case more:
			out = match(c, rest, false, now, out)
		default:
			out = appendLive(out, c.msg, now)
		}
	}
	return out
}

// appendAll appends the live messages of n and of every node below it.
func appendAll(n *node, now time.Time, out []*store.Message) []*store.Message {
	out = appendLive(out, n.msg, now)
	for _, c := range n.children {
		out = appendAll(c, now, out)
	}
	return out
}

// appendLive appends m unless it is nil or has expired at now.
func appendLive(out []*store.Message, m *store.Message, now time.Time) []*store.Message {
	if m == nil || m.Expired(now) {
		return out
	}
	return append(out, m)
}

func isDollar(level string) bool { return len(level) > 0 && level[0] == '$' }
