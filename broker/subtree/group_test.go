package subtree

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// group returns the tree's shared group for a topic that only it matches.
func group(t *testing.T, tr *Tree[string, int], topic string) *Group[string, int] {
	t.Helper()
	var gs []*Group[string, int]
	tr.Match(topic, nil, func(g *Group[string, int]) { gs = append(gs, g) })
	if len(gs) != 1 {
		t.Fatalf("Match(%q): %d groups, want 1", topic, len(gs))
	}
	return gs[0]
}

// picks calls g.Next n times and returns the chosen keys ("-" for none).
func picks(g *Group[string, int], n int, accept func(string, int) bool) []string {
	var out []string
	for range n {
		k, _, ok := g.Next(accept)
		if !ok {
			k = "-"
		}
		out = append(out, k)
	}
	return out
}

func TestGroupIdentity(t *testing.T) {
	tr := New[string, int]()
	tr.Subscribe("$share/g/a/+", "c1", 0)
	tr.Subscribe("$share/g/a/+", "c2", 0) // same group
	tr.Subscribe("$share/g/a/#", "c1", 0) // same name, other filter: other group
	tr.Subscribe("$share/h/a/+", "c1", 0) // other name: other group
	var got []string
	tr.Match("a/b", nil, func(g *Group[string, int]) {
		got = append(got, fmt.Sprintf("%s %s %d", g.Name(), g.Filter(), g.Len()))
	})
	slices.Sort(got)
	want := []string{"g a/# 1", "g a/+ 2", "h a/+ 1"}
	if !slices.Equal(got, want) {
		t.Errorf("groups %q, want %q", got, want)
	}
}

func TestGroupRoundRobin(t *testing.T) {
	tr := New[string, int]()
	for i, k := range []string{"A", "B", "C"} {
		tr.Subscribe("$share/g/x", k, i)
	}
	g := group(t, tr, "x")
	if got, want := picks(g, 7, nil), []string{"A", "B", "C", "A", "B", "C", "A"}; !slices.Equal(got, want) {
		t.Errorf("round robin %q, want %q", got, want)
	}

	// Replacing a member's options keeps its place and updates its value
	// [MQTT-3.8.4-3].
	if !tr.Subscribe("$share/g/x", "A", 10) {
		t.Fatal("resubscribe did not replace")
	}
	g.cursor.Store(0)
	var vals []int
	for range 3 {
		_, v, _ := g.Next(nil)
		vals = append(vals, v)
	}
	if want := []int{10, 1, 2}; !slices.Equal(vals, want) {
		t.Errorf("values %v, want %v", vals, want)
	}
}

// TestGroupAccept: members that accept rejects are skipped, and their turn
// goes to the next member instead of giving one member two turns.
func TestGroupAccept(t *testing.T) {
	tr := New[string, int]()
	for i, k := range []string{"A", "B", "C", "D"} {
		tr.Subscribe("$share/g/x", k, i)
	}
	g := group(t, tr, "x")
	offline := map[string]bool{"B": true}
	online := func(k string, _ int) bool { return !offline[k] }

	if got, want := picks(g, 6, online), []string{"A", "C", "D", "A", "C", "D"}; !slices.Equal(got, want) {
		t.Errorf("B offline: %q, want %q", got, want)
	}
	offline["C"], offline["D"] = true, true
	if got, want := picks(g, 3, online), []string{"A", "A", "A"}; !slices.Equal(got, want) {
		t.Errorf("only A online: %q, want %q", got, want)
	}
	offline["A"] = true
	if got, want := picks(g, 2, online), []string{"-", "-"}; !slices.Equal(got, want) {
		t.Errorf("nobody online: %q, want %q", got, want)
	}
	// The broker's fallback: accept anyone, still in turn.
	any := func(string, int) bool { return true }
	got := picks(g, 4, any)
	slices.Sort(got)
	if want := []string{"A", "B", "C", "D"}; !slices.Equal(got, want) {
		t.Errorf("accept all, 4 calls: %q, want each member once", got)
	}

	// accept is called once per member at most.
	calls := 0
	g.Next(func(string, int) bool { calls++; return false })
	if calls != 4 {
		t.Errorf("accept called %d times, want 4", calls)
	}
}

// TestGroupMembersLeave: members that unsubscribe leave the rotation, the
// others keep their order, and the group goes when the last one leaves.
func TestGroupMembersLeave(t *testing.T) {
	tr := New[string, int]()
	for _, k := range []string{"A", "B", "C", "D"} {
		tr.Subscribe("$share/g/x", k, 0)
	}
	tr.Subscribe("x", "plain", 0)
	g := group(t, tr, "x")

	if !tr.Unsubscribe("$share/g/x", "B") {
		t.Fatal("Unsubscribe B = false")
	}
	if g.Len() != 3 {
		t.Errorf("Len = %d, want 3", g.Len())
	}
	g.cursor.Store(0)
	if got, want := picks(g, 6, nil), []string{"A", "C", "D", "A", "C", "D"}; !slices.Equal(got, want) {
		t.Errorf("after B left: %q, want %q", got, want)
	}
	if g2 := group(t, tr, "x"); g2 != g {
		t.Error("group changed identity while it still had members")
	}

	tr.Subscribe("$share/g/x", "E", 0) // joins at the end
	g.cursor.Store(0)
	if got, want := picks(g, 4, nil), []string{"A", "C", "D", "E"}; !slices.Equal(got, want) {
		t.Errorf("after E joined: %q, want %q", got, want)
	}

	for _, k := range []string{"A", "C", "D", "E"} {
		if !tr.Unsubscribe("$share/g/x", k) {
			t.Fatalf("Unsubscribe %s = false", k)
		}
	}
	if g.Len() != 0 {
		t.Errorf("Len = %d after all left", g.Len())
	}
	if _, _, ok := g.Next(nil); ok {
		t.Error("Next on an empty group returned a member")
	}
	n := 0
	tr.Match("x", func(string, int) { n++ }, func(*Group[string, int]) { t.Error("empty group still matched") })
	if n != 1 {
		t.Errorf("plain subscription matched %d times, want 1", n)
	}
	tr.Unsubscribe("x", "plain")
	if tr.Len() != 0 || !tr.root.empty() {
		t.Error("tree not empty")
	}

	// Subscribing again creates a new group.
	tr.Subscribe("$share/g/x", "A", 0)
	if g2 := group(t, tr, "x"); g2 == g || g2.Len() != 1 {
		t.Error("resubscribing did not create a new group")
	}
}

// TestGroupNextConcurrent: concurrent Next calls share the turns out evenly.
func TestGroupNextConcurrent(t *testing.T) {
	tr := New[string, int]()
	const members, workers, each = 5, 8, 1000
	for i := range members {
		tr.Subscribe("$share/g/x", fmt.Sprint("m", i), i)
	}
	g := group(t, tr, "x")
	var counts [members]atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				_, v, ok := g.Next(nil)
				if !ok {
					t.Error("Next failed")
					return
				}
				counts[v].Add(1)
			}
		})
	}
	wg.Wait()
	for i := range counts {
		if got, want := counts[i].Load(), int64(workers*each/members); got != want {
			t.Errorf("member %d got %d turns, want %d", i, got, want)
		}
	}
}

// TestSharedGroupLookup: SharedGroup finds the group a shared filter
// subscribed to, and nothing for unknown groups or plain filters.
func TestSharedGroupLookup(t *testing.T) {
	var tr Tree[string, int]
	tr.Subscribe("$share/g/a/+", "s1", 1)
	tr.Subscribe("a/+", "s2", 1)
	g := tr.SharedGroup("$share/g/a/+")
	if g == nil || g.Name() != "g" || g.Filter() != "a/+" || g.Len() != 1 {
		t.Fatalf("SharedGroup($share/g/a/+) = %v", g)
	}
	if g != group(t, &tr, "a/b") {
		t.Error("SharedGroup returned another group than Match visits")
	}
	for _, f := range []string{"$share/h/a/+", "$share/g/a/b", "a/+", "$share/g/x"} {
		if g := tr.SharedGroup(f); g != nil {
			t.Errorf("SharedGroup(%q) = %v, want nil", f, g)
		}
	}
	tr.Unsubscribe("$share/g/a/+", "s1")
	if g := tr.SharedGroup("$share/g/a/+"); g != nil {
		t.Errorf("SharedGroup after the last member left = %v, want nil", g)
	}
}

// TestNextPreferring: preferred members take turns; when none is
// preferred the accepted ones still take turns (not the same one every
// time); rejected members are never chosen.
func TestNextPreferring(t *testing.T) {
	var tr Tree[string, int]
	for _, k := range []string{"a", "b", "c"} {
		tr.Subscribe("$share/g/t", k, 0)
	}
	g := tr.SharedGroup("$share/g/t")
	run := func(n int, prefer, accept func(string, int) bool) []string {
		var out []string
		for range n {
			k, _, ok := g.NextPreferring(prefer, accept)
			if !ok {
				k = "-"
			}
			out = append(out, k)
		}
		return out
	}
	none := func(string, int) bool { return false }
	notC := func(k string, _ int) bool { return k != "c" }
	onlyB := func(k string, _ int) bool { return k == "b" }
	count := func(ks []string) map[string]int {
		m := map[string]int{}
		for _, k := range ks {
			m[k]++
		}
		return m
	}
	if got := count(run(6, none, nil)); got["a"] != 2 || got["b"] != 2 || got["c"] != 2 {
		t.Errorf("none preferred, all accepted: %v, want 2 each", got)
	}
	if got := count(run(6, none, notC)); got["a"] != 3 || got["b"] != 3 {
		t.Errorf("none preferred, c rejected: %v, want a and b 3 each", got)
	}
	if got := count(run(4, onlyB, nil)); got["b"] != 4 {
		t.Errorf("b preferred: %v, want b every time", got)
	}
	if got := run(2, none, func(string, int) bool { return false }); got[0] != "-" || got[1] != "-" {
		t.Errorf("all rejected: %v, want none", got)
	}
}
