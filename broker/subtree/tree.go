package subtree

import (
	"strings"
	"sync"

	"github.com/weirmq/weir/mqtt"
)

// Tree maps topic filters to subscribers. K identifies a subscriber (the
// broker uses a *session pointer); V is the subscription's data (options,
// subscription identifier).
//
// A subscription is identified by its filter and its key: one subscriber
// has at most one subscription per filter [MQTT-3.8.4-3], and a shared
// filter "$share/{group}/{filter}" is a different filter from "{filter}".
//
// All methods are safe for concurrent use. Match runs under a read lock, so
// many publishers match concurrently; Subscribe and Unsubscribe take the
// write lock. The zero value is an empty tree ready to use.
type Tree[K comparable, V any] struct {
	mu   sync.RWMutex
	root node[K, V]
	n    int // number of subscriptions, shared members included
}

// New returns an empty tree.
func New[K comparable, V any]() *Tree[K, V] {
	return &Tree[K, V]{}
}

// Len returns the number of subscriptions in the tree, counting each member
// of each shared group once.
func (t *Tree[K, V]) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.n
}

// Subscribe adds the subscription of key to filter with data val, or
// replaces val if key already has a subscription to exactly this filter
// [MQTT-3.8.4-3]; it reports whether it replaced one. Replacing keeps a
// shared-group member's place in the round-robin order.
//
// filter is a valid topic filter (see mqtt.ValidateTopicFilter) and may be
// a shared subscription "$share/{group}/{filter}" [MQTT-4.8.2-1]
// [MQTT-4.8.2-2]. Subscribe does not validate it beyond what it must do to
// split a shared filter: a "$share" filter that mqtt.ParseShared rejects is
// ignored and Subscribe returns false.
//
// The tree keeps its own copies of the filter's levels and of the group
// name, not substrings of filter, so it does not keep alive whatever memory
// filter was cut from (a whole decoded SUBSCRIBE packet, say).
func (t *Tree[K, V]) Subscribe(filter string, key K, val V) (replaced bool) {
	group, topicFilter, shared, err := mqtt.ParseShared(filter)
	if err != nil {
		return false
	}
	if !shared {
		topicFilter = filter
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	n := &t.root
	forEachLevel(topicFilter, func(level string) { n = n.childOrCreate(level) })
	if shared {
		replaced = n.groupOrCreate(group, topicFilter).put(key, val)
	} else {
		replaced = n.putSub(key, val)
	}
	if !replaced {
		t.n++
	}
	return replaced
}

// SharedGroup returns the shared group of the shared filter
// "$share/{group}/{filter}", or nil if it has no members (or filter is not
// a shared filter).
func (t *Tree[K, V]) SharedGroup(filter string) *Group[K, V] {
	group, topicFilter, shared, err := mqtt.ParseShared(filter)
	if err != nil || !shared {
		return nil
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := &t.root
	forEachLevel(topicFilter, func(level string) {
		if n != nil {
			n = n.child(level)
		}
	})
	if n == nil {
		return nil
	}
	if i := n.groupIndex(group); i >= 0 {
		return n.groups[i]
	}
	return nil
}

// Unsubscribe removes key's subscription to filter (which may be a shared
// filter, as for Subscribe) and reports whether it existed. Nodes and
// shared groups left empty are removed, so the memory of a tree whose
// subscriptions have all gone is returned.
func (t *Tree[K, V]) Unsubscribe(filter string, key K) bool {
	group, topicFilter, shared, err := mqtt.ParseShared(filter)
	if err != nil {
		return false
	}
	if !shared {
		topicFilter = filter
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	n := &t.root
	forEachLevel(topicFilter, func(level string) {
		if n != nil {
			n = n.child(level)
		}
	})
	if n == nil {
		return false
	}
	var removed bool
	if shared {
		i := n.groupIndex(group)
		if i < 0 {
			return false
		}
		g := n.groups[i]
		removed = g.remove(key)
		if removed && g.Len() == 0 {
			n.groups[i] = n.groups[len(n.groups)-1]
			n.groups[len(n.groups)-1] = nil
			n.groups = n.groups[:len(n.groups)-1]
			if len(n.groups) == 0 {
				n.groups = nil
			}
		}
	} else {
		removed = n.removeSub(key)
	}
	if !removed {
		return false
	}
	t.n--
	n.prune()
	return true
}

// Match finds the subscriptions whose filter matches topic, a valid topic
// name (see mqtt.ValidateTopicName), with the same rules as
// mqtt.MatchTopic (§4.7): levels are compared byte for byte [MQTT-4.7.3-4];
// '+' matches exactly one level, possibly empty (§4.7.1.3); '#' matches its
// own level and every level below, including the parent level ("sport/#"
// matches "sport", §4.7.1.2); a topic starting with '$' is not matched by a
// filter whose first level is '+' or '#' [MQTT-4.7.2-1].
//
// Match calls visit once for each matching non-shared subscription. If one
// subscriber has several matching filters, visit is called once per filter;
// merging them (and choosing the maximum QoS, [MQTT-3.3.5-1]) is the
// caller's job. For each shared group whose filter matches, Match calls
// visitShared once with the group, whatever the number of members; the
// caller picks a member with Group.Next. Either callback may be nil. The
// order of the calls is unspecified.
//
// Match does not allocate. The callbacks run while Match holds the tree's
// read lock: they must not call Subscribe or Unsubscribe on this tree
// (that deadlocks), should not call Len (a recursive read lock deadlocks
// if a writer is waiting) and should be short, since writers wait for them.
func (t *Tree[K, V]) Match(topic string, visit func(key K, val V), visitShared func(g *Group[K, V])) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	m := matcher[K, V]{topic: topic, visit: visit, visitShared: visitShared}
	// [MQTT-4.7.2-1]: the root's wildcards do not match a "$" topic.
	m.match(&t.root, 0, len(topic) > 0 && topic[0] == '$')
}

// matcher carries Match's arguments through the recursion, so each level
// passes one pointer and an index instead of four values.
type matcher[K comparable, V any] struct {
	topic       string
	visit       func(key K, val V)
	visitShared func(g *Group[K, V])
}

// match matches the children of n against the topic level that starts at
// byte start, and recursively the levels after it. noWild suppresses n's
// '+' and '#' children (the root for a "$" topic).
func (m *matcher[K, V]) match(n *node[K, V], start int, noWild bool) {
	if !noWild && n.hash != nil {
		m.emit(n.hash) // '#' matches this level and everything below it
	}
	end := strings.IndexByte(m.topic[start:], '/')
	last := end < 0
	if last {
		end = len(m.topic)
	} else {
		end += start
	}
	if c := n.child(m.topic[start:end]); c != nil {
		m.descend(c, end, last)
	}
	if !noWild && n.plus != nil {
		m.descend(n.plus, end, last)
	}
}

// descend continues with node c, which matched the level ending at byte
// end; last says whether that was the topic's last level.
func (m *matcher[K, V]) descend(c *node[K, V], end int, last bool) {
	if !last {
		m.match(c, end+1, false)
		return
	}
	m.emit(c)
	if c.hash != nil {
		m.emit(c.hash) // "a/#" matches "a" (§4.7.1.2)
	}
}

// emit reports the subscriptions and shared groups whose filter ends at n.
func (m *matcher[K, V]) emit(n *node[K, V]) {
	if m.visit != nil {
		for i := range n.subs {
			m.visit(n.subs[i].key, n.subs[i].val)
		}
	}
	if m.visitShared != nil {
		for _, g := range n.groups {
			m.visitShared(g)
		}
	}
}

// forEachLevel calls f with each '/'-separated level of s, in order,
// including empty levels. It does not allocate.
func forEachLevel(s string, f func(level string)) {
	for {
		i := strings.IndexByte(s, '/')
		if i < 0 {
			f(s)
			return
		}
		f(s[:i])
		s = s[i+1:]
	}
}
