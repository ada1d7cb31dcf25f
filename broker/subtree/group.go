package subtree

import "sync/atomic"

// Group is one shared subscription group for one topic filter (MQTT 5.0
// §4.8.2): the subscribers of "$share/{Name}/{Filter}". "$share/g/a" and
// "$share/g/b" are different groups; every subscription to "$share/g/a" is
// a member of the same group. Each message matching the filter goes to
// only one member (§4.8.2); the broker picks it with Next. Each member keeps
// its own V, since each is delivered at its own granted QoS [MQTT-4.8.2-3].
//
// A Group is created by Tree.Subscribe and handed out by Tree.Match. Its
// methods are safe for concurrent use, also outside Match's callback and
// while the tree changes: membership is an immutable slice replaced
// (copy on write, under the tree's write lock) on each change, so Next and
// Len see one consistent membership without taking a lock. A Group whose
// last member has unsubscribed is removed from the tree and stays empty;
// a later subscription to the same shared filter creates a new Group.
type Group[K comparable, V any] struct {
	name, filter string

	members atomic.Pointer[[]entry[K, V]] // in subscription order; never modified in place
	cursor  atomic.Uint64                 // position of the next round-robin start

	// idx maps a member's key to its index in *members. Only Tree methods
	// holding the write lock use it.
	idx map[K]int
}

func newGroup[K comparable, V any](name, filter string) *Group[K, V] {
	return &Group[K, V]{name: name, filter: filter, idx: make(map[K]int)}
}

// Name returns the group's share name: "g" for "$share/g/a/b".
func (g *Group[K, V]) Name() string { return g.name }

// Filter returns the topic filter without the "$share/{name}/" prefix:
// "a/b" for "$share/g/a/b".
func (g *Group[K, V]) Filter() string { return g.filter }

// Len returns the number of members.
func (g *Group[K, V]) Len() int {
	if ms := g.members.Load(); ms != nil {
		return len(*ms)
	}
	return 0
}

// Next returns the next member, in round-robin order, for which accept
// returns true, and ok=false if accept returns false for every member (or
// the group is empty). A nil accept accepts every member.
//
// The broker typically calls Next first accepting only members that are
// connected and then, if none is, accepting any member (whose session
// queues the message). Each call starts after the member the previous call
// chose, so members that accept take turns and a rejected member's turn
// passes to the next one rather than doubling up on it: with members A, B,
// C and B rejected, successive calls return A, C, A, C. accept is called
// at most Len times, with no lock held by Next (but Match's read lock is
// held if Next is called from visitShared).
//
// Next does not allocate. Under concurrent calls each call still starts at
// a distinct position (an atomic counter); the order is then round-robin
// only approximately, which is fine: the spec leaves the choice of member
// to the server (§4.8.2).
func (g *Group[K, V]) Next(accept func(key K, val V) bool) (key K, val V, ok bool) {
	p := g.members.Load()
	if p == nil || len(*p) == 0 {
		return key, val, false
	}
	ms := *p
	n := uint64(len(ms))
	start := g.cursor.Add(1) - 1
	for i := uint64(0); i < n; i++ {
		m := &ms[(start+i)%n]
		if accept == nil || accept(m.key, m.val) {
			if i > 0 {
				g.cursor.Add(i) // the skipped members do not get the next turn
			}
			return m.key, m.val, true
		}
	}
	return key, val, false
}

// NextPreferring returns the next member, in round-robin order, for
// which prefer returns true, or if there is none the next member for which
// accept does (prefer implies accept; nil accept accepts every member),
// and ok=false if accept rejects every member. Unlike Next(prefer)
// followed by Next(accept), it takes one turn of the round robin, so
// members still take turns when none is preferred (the two calls would
// both advance the order and hand every message to the same member).
func (g *Group[K, V]) NextPreferring(prefer, accept func(key K, val V) bool) (key K, val V, ok bool) {
	p := g.members.Load()
	if p == nil || len(*p) == 0 {
		return key, val, false
	}
	ms := *p
	n := uint64(len(ms))
	start := g.cursor.Add(1) - 1
	fallback := n
	for i := uint64(0); i < n; i++ {
		m := &ms[(start+i)%n]
		if accept != nil && !accept(m.key, m.val) {
			continue
		}
		if prefer(m.key, m.val) {
			if i > 0 {
				g.cursor.Add(i)
			}
			return m.key, m.val, true
		}
		fallback = min(fallback, i)
	}
	if fallback == n {
		return key, val, false
	}
	if fallback > 0 {
		g.cursor.Add(fallback)
	}
	m := &ms[(start+fallback)%n]
	return m.key, m.val, true
}

// put adds key as a member with val, or replaces its val in place (keeping
// its turn), and reports whether it replaced. Write lock held.
func (g *Group[K, V]) put(key K, val V) (replaced bool) {
	var old []entry[K, V]
	if p := g.members.Load(); p != nil {
		old = *p
	}
	if i, ok := g.idx[key]; ok {
		ms := append([]entry[K, V](nil), old...)
		ms[i].val = val
		g.members.Store(&ms)
		return true
	}
	ms := make([]entry[K, V], len(old), len(old)+1)
	copy(ms, old)
	ms = append(ms, entry[K, V]{key, val})
	g.idx[key] = len(ms) - 1
	g.members.Store(&ms)
	return false
}

// remove removes the member key, keeping the others' order, and reports
// whether it was a member. Write lock held.
func (g *Group[K, V]) remove(key K) bool {
	i, ok := g.idx[key]
	if !ok {
		return false
	}
	old := *g.members.Load()
	ms := make([]entry[K, V], 0, len(old)-1)
	ms = append(ms, old[:i]...)
	ms = append(ms, old[i+1:]...)
	delete(g.idx, key)
	for j := i; j < len(ms); j++ {
		g.idx[ms[j].key] = j
	}
	g.members.Store(&ms)
	return true
}
