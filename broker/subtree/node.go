package subtree

import "strings"

// Tuning of a node's child index and subscriber index. A level with few
// children keeps them in a slice, scanned linearly: for a handful of short
// levels that is faster than hashing and much smaller than a map. Past
// kidsMapMin children the node switches to a map, and back to a slice when
// it shrinks to kidsSliceMax (hysteresis, so one subscribe/unsubscribe at
// the boundary does not rebuild the index each time). See BenchmarkMatch.
const (
	kidsMapMin   = 9
	kidsSliceMax = 4

	// subIdxMin is the number of subscribers at one node past which a
	// key → index map is kept, so that subscribing many clients to the
	// same filter is not quadratic.
	subIdxMin = 16
)

// node is one level of a topic filter. The path from the root to a node
// spells the filter; the subscriptions and shared groups whose filter is
// exactly that path are stored at the node.
type node[K comparable, V any] struct {
	parent *node[K, V]
	level  string // this node's level; "+" or "#" for the wildcard children

	// Literal children, in kids while there are few and in kidMap (with
	// kids nil) when there are many.
	kids   []*node[K, V]
	kidMap map[string]*node[K, V]
	plus   *node[K, V] // child for '+'
	hash   *node[K, V] // child for '#'; it never has children

	subs   []entry[K, V] // non-shared subscriptions, unordered
	subIdx map[K]int     // key → index in subs, only when len(subs) > subIdxMin
	groups []*Group[K, V]
}

type entry[K comparable, V any] struct {
	key K
	val V
}

// child returns n's child for a topic filter level, or nil. level "+" and
// "#" name the wildcard children. It does not allocate.
func (n *node[K, V]) child(level string) *node[K, V] {
	switch level {
	case "+":
		return n.plus
	case "#":
		return n.hash
	}
	return n.literal(level)
}

// literal returns n's child for the literal level, or nil. It is the
// lookup that Match makes at every level, so it must not allocate.
func (n *node[K, V]) literal(level string) *node[K, V] {
	if n.kidMap != nil {
		return n.kidMap[level]
	}
	for _, c := range n.kids {
		if c.level == level {
			return c
		}
	}
	return nil
}

// childOrCreate returns n's child for a filter level, creating it if needed.
func (n *node[K, V]) childOrCreate(level string) *node[K, V] {
	if c := n.child(level); c != nil {
		return c
	}
	// A copy, so the tree does not keep the caller's whole filter (perhaps
	// a whole SUBSCRIBE packet) alive through a substring.
	c := &node[K, V]{parent: n, level: strings.Clone(level)}
	switch level {
	case "+":
		n.plus = c
	case "#":
		n.hash = c
	default:
		if n.kidMap != nil {
			n.kidMap[c.level] = c
		} else if len(n.kids) < kidsMapMin-1 {
			n.kids = append(n.kids, c)
		} else {
			n.kidMap = make(map[string]*node[K, V], len(n.kids)+1)
			for _, k := range n.kids {
				n.kidMap[k.level] = k
			}
			n.kidMap[c.level] = c
			n.kids = nil
		}
	}
	return c
}

// removeChild unlinks the child c from n.
func (n *node[K, V]) removeChild(c *node[K, V]) {
	switch {
	case n.plus == c:
		n.plus = nil
	case n.hash == c:
		n.hash = nil
	case n.kidMap != nil:
		delete(n.kidMap, c.level)
		if len(n.kidMap) <= kidsSliceMax {
			n.kids = make([]*node[K, V], 0, len(n.kidMap))
			for _, k := range n.kidMap {
				n.kids = append(n.kids, k)
			}
			n.kidMap = nil
			if len(n.kids) == 0 {
				n.kids = nil
			}
		}
	default:
		for i, k := range n.kids {
			if k == c {
				last := len(n.kids) - 1
				n.kids[i] = n.kids[last]
				n.kids[last] = nil
				n.kids = n.kids[:last]
				break
			}
		}
		if len(n.kids) == 0 {
			n.kids = nil
		}
	}
}

// empty reports whether n holds nothing: no subscription, no group and no
// child. Such a node (other than the root) is removed.
func (n *node[K, V]) empty() bool {
	return len(n.subs) == 0 && len(n.groups) == 0 && n.plus == nil && n.hash == nil &&
		len(n.kids) == 0 && len(n.kidMap) == 0
}

// prune removes n and then each of its ancestors that has become empty.
func (n *node[K, V]) prune() {
	for n.parent != nil && n.empty() {
		p := n.parent
		p.removeChild(n)
		n = p
	}
}

// subIndex returns the index of key in n.subs, or -1.
func (n *node[K, V]) subIndex(key K) int {
	if n.subIdx != nil {
		if i, ok := n.subIdx[key]; ok {
			return i
		}
		return -1
	}
	for i := range n.subs {
		if n.subs[i].key == key {
			return i
		}
	}
	return -1
}

// putSub adds or replaces key's non-shared subscription at n and reports
// whether it replaced one.
func (n *node[K, V]) putSub(key K, val V) (replaced bool) {
	if i := n.subIndex(key); i >= 0 {
		n.subs[i].val = val
		return true
	}
	n.subs = append(n.subs, entry[K, V]{key, val})
	switch {
	case n.subIdx != nil:
		n.subIdx[key] = len(n.subs) - 1
	case len(n.subs) > subIdxMin:
		n.subIdx = make(map[K]int, len(n.subs))
		for i := range n.subs {
			n.subIdx[n.subs[i].key] = i
		}
	}
	return false
}

// removeSub removes key's non-shared subscription at n and reports whether
// there was one. The last entry takes the removed one's place.
func (n *node[K, V]) removeSub(key K) bool {
	i := n.subIndex(key)
	if i < 0 {
		return false
	}
	last := len(n.subs) - 1
	if i != last {
		n.subs[i] = n.subs[last]
		if n.subIdx != nil {
			n.subIdx[n.subs[i].key] = i
		}
	}
	n.subs[last] = entry[K, V]{} // drop references for the GC
	n.subs = n.subs[:last]
	if n.subIdx != nil {
		delete(n.subIdx, key)
		if len(n.subs) <= subIdxMin/2 {
			n.subIdx = nil
		}
	}
	if len(n.subs) == 0 {
		n.subs = nil
	} else if cap(n.subs) > 32 && len(n.subs) < cap(n.subs)/4 {
		n.subs = append([]entry[K, V](nil), n.subs...) // give memory back
	}
	return true
}

// groupIndex returns the index in n.groups of the group called name, or -1.
// Groups per filter are few, so a scan is enough.
func (n *node[K, V]) groupIndex(name string) int {
	for i, g := range n.groups {
		if g.name == name {
			return i
		}
	}
	return -1
}

// groupOrCreate returns n's shared group called name, creating it (for the
// topic filter filter) if needed.
func (n *node[K, V]) groupOrCreate(name, filter string) *Group[K, V] {
	if i := n.groupIndex(name); i >= 0 {
		return n.groups[i]
	}
	g := newGroup[K, V](strings.Clone(name), strings.Clone(filter))
	n.groups = append(n.groups, g)
	return g
}
