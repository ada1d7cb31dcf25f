package subtree

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/weirmq/weir/mqtt"
)

// Clause numbers are MQTT 3.1.1's where 3.1.1 has the rule ([MQTT-4.8.2-x]
// is 5.0 only). Cases that come from the spec's non-normative examples cite
// the section.

// hit is one callback from Match: a non-shared subscription (key, filter)
// or a shared group (group name, filter, shared=true).
type hit struct {
	key    string
	filter string
	shared bool
}

// matchAll runs Match and returns every callback, sorted. For a test tree
// the value V is the filter the subscription was made with.
func matchAll(tr *Tree[string, string], topic string) []hit {
	var hits []hit
	tr.Match(topic,
		func(key, filter string) { hits = append(hits, hit{key, filter, false}) },
		func(g *Group[string, string]) { hits = append(hits, hit{g.Name(), g.Filter(), true}) })
	slices.SortFunc(hits, cmpHit)
	return hits
}

func cmpHit(a, b hit) int {
	if a.shared != b.shared {
		if a.shared {
			return 1
		}
		return -1
	}
	return cmp.Or(strings.Compare(a.key, b.key), strings.Compare(a.filter, b.filter))
}

// TestMatchSpecExamples checks one filter against one topic, for the
// examples of §4.7 and the rules around them; each case is also checked
// against mqtt.MatchTopic so that the tree and the reference agree.
func TestMatchSpecExamples(t *testing.T) {
	tests := []struct {
		name   string
		filter string
		topic  string
		match  bool
	}{
		// §4.7.1.2 multi-level wildcard
		{"[MQTT-4.7.1-2] §4.7.1.2 sport/tennis/player1/# matches its parent", "sport/tennis/player1/#", "sport/tennis/player1", true},
		{"[MQTT-4.7.1-2] §4.7.1.2 sport/tennis/player1/# one level below", "sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
		{"[MQTT-4.7.1-2] §4.7.1.2 sport/tennis/player1/# two levels below", "sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
		{"[MQTT-4.7.1-2] §4.7.1.2 sport/# matches sport", "sport/#", "sport", true},
		{"[MQTT-4.7.1-2] §4.7.1.2 sport/# matches sport/", "sport/#", "sport/", true},
		{"[MQTT-4.7.1-2] §4.7.1.2 sport/# does not match sports", "sport/#", "sports", false},
		{"[MQTT-4.7.1-2] §4.7.1.2 sport/# does not match another first level", "sport/#", "news/sport", false},
		{"[MQTT-4.7.1-2] §4.7.1.2 # matches every topic", "#", "sport/tennis/player1", true},
		{"[MQTT-4.7.1-2] §4.7.1.2 # matches a one-level topic", "#", "sport", true},
		{"[MQTT-4.7.1-2] §4.7.1.2 # matches /", "#", "/", true},
		{"[MQTT-4.7.1-2] §4.7.1.2 sport/tennis/# matches below", "sport/tennis/#", "sport/tennis/player2", true},
		{"[MQTT-4.7.1-2] +/# matches one level", "+/#", "a", true},
		{"[MQTT-4.7.1-2] a/+/# matches a/b", "a/+/#", "a/b", true},
		{"[MQTT-4.7.1-2] a/+/# does not match a", "a/+/#", "a", false},

		// §4.7.1.3 single-level wildcard
		{"[MQTT-4.7.1-3] §4.7.1.3 sport/tennis/+ matches player1", "sport/tennis/+", "sport/tennis/player1", true},
		{"[MQTT-4.7.1-3] §4.7.1.3 sport/tennis/+ matches player2", "sport/tennis/+", "sport/tennis/player2", true},
		{"[MQTT-4.7.1-3] §4.7.1.3 sport/tennis/+ not one level further", "sport/tennis/+", "sport/tennis/player1/ranking", false},
		{"[MQTT-4.7.1-3] §4.7.1.3 sport/+ does not match sport", "sport/+", "sport", false},
		{"[MQTT-4.7.1-3] §4.7.1.3 sport/+ matches sport/ (empty level)", "sport/+", "sport/", true},
		{"[MQTT-4.7.1-3] §4.7.1.3 +/+ matches /finance", "+/+", "/finance", true},
		{"[MQTT-4.7.1-3] §4.7.1.3 /+ matches /finance", "/+", "/finance", true},
		{"[MQTT-4.7.1-3] §4.7.1.3 + does not match /finance", "+", "/finance", false},
		{"[MQTT-4.7.1-3] §4.7.1.3 sport/+/player1", "sport/+/player1", "sport/tennis/player1", true},
		{"[MQTT-4.7.1-3] + matches a one-level topic", "+", "finance", true},
		{"[MQTT-4.7.1-3] + matches the empty first level of /", "+/+", "/", true},
		{"[MQTT-4.7.1-3] +/+/+ needs three levels", "+/+/+", "a/b", false},
		{"[MQTT-4.7.1-3] + then literal", "+/tennis/#", "sport/tennis", true},

		// §4.7.2 topics beginning with $
		{"[MQTT-4.7.2-1] §4.7.2 # does not match $SYS", "#", "$SYS/broker/uptime", false},
		{"[MQTT-4.7.2-1] # does not match a one-level $ topic", "#", "$SYS", false},
		{"[MQTT-4.7.2-1] §4.7.2 +/monitor/Clients does not match $SYS", "+/monitor/Clients", "$SYS/monitor/Clients", false},
		{"[MQTT-4.7.2-1] + does not match $", "+", "$", false},
		{"[MQTT-4.7.2-1] +/# does not match $SYS/x", "+/#", "$SYS/x", false},
		{"[MQTT-4.7.2-1] §4.7.2 $SYS/# matches $SYS/...", "$SYS/#", "$SYS/broker/clients", true},
		{"[MQTT-4.7.2-1] §4.7.2 $SYS/# matches $SYS", "$SYS/#", "$SYS", true},
		{"[MQTT-4.7.2-1] §4.7.2 $SYS/monitor/+ matches", "$SYS/monitor/+", "$SYS/monitor/Clients", true},
		{"[MQTT-4.7.2-1] wildcards below the first level match after $", "$SYS/+/#", "$SYS/monitor/Clients", true},
		{"[MQTT-4.7.2-1] only a leading $ counts", "#", "a/$SYS", true},
		{"[MQTT-4.7.2-1] + at level two after a normal first level", "a/+", "a/$x", true},

		// §4.7.3 topic semantics
		{"[MQTT-4.7.3-4] §4.7.3 case sensitive", "ACCOUNTS", "Accounts", false},
		{"[MQTT-4.7.3-4] §4.7.3 exact", "Accounts payable", "Accounts payable", true},
		{"[MQTT-4.7.3-4] §4.7.3 /finance differs from finance", "/finance", "finance", false},
		{"[MQTT-4.7.3-4] finance differs from /finance", "finance", "/finance", false},
		{"[MQTT-4.7.3-4] trailing / is another level", "a", "a/", false},
		{"[MQTT-4.7.3-4] no normalization", "caf\u00e9", "cafe\u0301", false},
		{"§4.7.1.1 empty middle level", "a//b", "a//b", true},
		{"§4.7.1.1 + matches empty middle level", "a/+/b", "a//b", true},
		{"prefix is not a match", "a/b", "a/bc", false},
		{"longer topic is not a match", "a/b", "a/b/c", false},
		{"shorter topic is not a match", "a/b/c", "a/b", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := mqtt.ValidateTopicFilter(tc.filter); err != nil {
				t.Fatalf("bad test: filter %q: %v", tc.filter, err)
			}
			if err := mqtt.ValidateTopicName(tc.topic); err != nil {
				t.Fatalf("bad test: topic %q: %v", tc.topic, err)
			}
			if ref := mqtt.MatchTopic(tc.filter, tc.topic); ref != tc.match {
				t.Fatalf("bad test: mqtt.MatchTopic(%q, %q) = %v", tc.filter, tc.topic, ref)
			}
			tr := New[string, string]()
			tr.Subscribe(tc.filter, "c", tc.filter)
			var want []hit
			if tc.match {
				want = []hit{{"c", tc.filter, false}}
			}
			if got := matchAll(tr, tc.topic); !slices.Equal(got, want) {
				t.Errorf("Match(%q) with filter %q = %v, want %v", tc.topic, tc.filter, got, want)
			}

			// The same filter as a shared subscription [MQTT-4.8.2-2]: the
			// rules apply to the filter after the share name.
			tr = New[string, string]()
			tr.Subscribe("$share/g/"+tc.filter, "c", tc.filter)
			want = nil
			if tc.match {
				want = []hit{{"g", tc.filter, true}}
			}
			if got := matchAll(tr, tc.topic); !slices.Equal(got, want) {
				t.Errorf("Match(%q) with filter $share/g/%s = %v, want %v", tc.topic, tc.filter, got, want)
			}
		})
	}
}

// TestMatchMany has many subscriptions in one tree, so that matches have to
// be found along several paths at once.
func TestMatchMany(t *testing.T) {
	tr := New[string, string]()
	subs := []struct{ filter, key string }{
		{"sport/tennis/player1", "exact"},
		{"sport/tennis/player1", "exact2"},
		{"sport/tennis/+", "plus"},
		{"sport/+/player1", "plusmid"},
		{"+/tennis/player1", "plusfirst"},
		{"+/+/+", "plus3"},
		{"sport/#", "hash"},
		{"sport/tennis/player1/#", "hashparent"},
		{"#", "all"},
		{"sport/tennis/player2", "other"},
		{"sport/tennis", "short"},
		{"$SYS/#", "sys"},
		{"+/monitor/Clients", "monitor"},
		{"$share/g1/sport/tennis/+", "s1"},
		{"$share/g1/sport/tennis/+", "s2"},
		{"$share/g2/sport/tennis/+", "s3"},
		{"$share/g1/sport/#", "s4"},
		{"$share/g1/#", "s5"},
		{"$share/g1/$SYS/#", "s6"},
	}
	for _, s := range subs {
		tr.Subscribe(s.filter, s.key, strings.TrimPrefix(strings.TrimPrefix(s.filter, "$share/g1/"), "$share/g2/"))
	}
	if got := tr.Len(); got != len(subs) {
		t.Fatalf("Len = %d, want %d", got, len(subs))
	}
	tests := []struct {
		topic string
		want  []hit
	}{
		{"sport/tennis/player1", []hit{
			{"all", "#", false},
			{"exact", "sport/tennis/player1", false},
			{"exact2", "sport/tennis/player1", false},
			{"hash", "sport/#", false},
			{"hashparent", "sport/tennis/player1/#", false},
			{"plus", "sport/tennis/+", false},
			{"plus3", "+/+/+", false},
			{"plusfirst", "+/tennis/player1", false},
			{"plusmid", "sport/+/player1", false},
			{"g1", "#", true},
			{"g1", "sport/#", true},
			{"g1", "sport/tennis/+", true}, // one call for s1 and s2
			{"g2", "sport/tennis/+", true},
		}},
		{"sport/tennis", []hit{
			{"all", "#", false},
			{"hash", "sport/#", false},
			{"short", "sport/tennis", false},
			{"g1", "#", true},
			{"g1", "sport/#", true},
		}},
		{"sport", []hit{
			{"all", "#", false},
			{"hash", "sport/#", false},
			{"g1", "#", true},
			{"g1", "sport/#", true},
		}},
		{"$SYS/monitor/Clients", []hit{ // [MQTT-4.7.2-1]
			{"sys", "$SYS/#", false},
			{"g1", "$SYS/#", true},
		}},
		{"news", []hit{
			{"all", "#", false},
			{"g1", "#", true},
		}},
	}
	for _, tc := range tests {
		want := slices.Clone(tc.want)
		slices.SortFunc(want, cmpHit)
		if got := matchAll(tr, tc.topic); !slices.Equal(got, want) {
			t.Errorf("Match(%q):\n got %v\nwant %v", tc.topic, got, want)
		}
	}
	checkTree(t, tr)
}

func TestMatchNilCallbacks(t *testing.T) {
	tr := New[string, string]()
	tr.Subscribe("a", "c", "")
	tr.Subscribe("$share/g/a", "c", "")
	tr.Match("a", nil, nil) // must not panic
	n := 0
	tr.Match("a", func(string, string) { n++ }, nil)
	tr.Match("a", nil, func(*Group[string, string]) { n++ })
	if n != 2 {
		t.Errorf("callbacks called %d times, want 2", n)
	}
}

// TestSubscribeReplace: a subscription with the same filter and key
// replaces the existing one [MQTT-3.8.4-3]; a different filter, a different
// key, or the same filter shared, is a new one.
func TestSubscribeReplace(t *testing.T) {
	type opts struct{ qos byte }
	tr := New[string, opts]()
	steps := []struct {
		filter   string
		key      string
		qos      byte
		replaced bool
		len      int
	}{
		{"a/b", "c1", 0, false, 1},
		{"a/b", "c1", 1, true, 1}, // [MQTT-3.8.4-3]
		{"a/b", "c2", 2, false, 2},
		{"a/+", "c1", 0, false, 3},
		{"$share/g/a/b", "c1", 0, false, 4},
		{"$share/g/a/b", "c1", 2, true, 4},  // [MQTT-3.8.4-3] shared
		{"$share/h/a/b", "c1", 0, false, 5}, // another group
		{"a/b", "c1", 2, true, 5},
	}
	for i, s := range steps {
		if got := tr.Subscribe(s.filter, s.key, opts{s.qos}); got != s.replaced {
			t.Errorf("step %d: Subscribe(%q, %q) = %v, want %v", i, s.filter, s.key, got, s.replaced)
		}
		if got := tr.Len(); got != s.len {
			t.Errorf("step %d: Len = %d, want %d", i, got, s.len)
		}
	}
	var got []string
	tr.Match("a/b", func(k string, o opts) {
		got = append(got, fmt.Sprint(k, " qos", o.qos))
	}, func(g *Group[string, opts]) {
		if g.Len() != 1 {
			t.Errorf("group %s has %d members, want 1", g.Name(), g.Len())
		}
		k, o, _ := g.Next(nil)
		got = append(got, fmt.Sprint(g.Name(), ":", k, " qos", o.qos))
	})
	slices.Sort(got)
	want := []string{"c1 qos0", "c1 qos2", "c2 qos2", "g:c1 qos2", "h:c1 qos0"}
	if !slices.Equal(got, want) {
		t.Errorf("after replacing: %q, want %q", got, want)
	}
	checkTree(t, tr)
}

// TestSubscribeInvalidShared: a shared filter that mqtt.ParseShared rejects
// [MQTT-4.8.2-1] [MQTT-4.8.2-2] is ignored rather than stored literally.
func TestSubscribeInvalidShared(t *testing.T) {
	for _, f := range []string{"$share", "$share/", "$share/g", "$share/g/", "$share//a", "$share/g+/a", "$share/#/a"} {
		tr := New[string, string]()
		if tr.Subscribe(f, "c", f) {
			t.Errorf("Subscribe(%q) replaced", f)
		}
		if tr.Len() != 0 || !tr.root.empty() {
			t.Errorf("Subscribe(%q) stored something", f)
		}
		if tr.Unsubscribe(f, "c") {
			t.Errorf("Unsubscribe(%q) = true", f)
		}
	}
	// "$shared" and "$SHARE" are not shared subscriptions: ordinary filters.
	tr := New[string, string]()
	tr.Subscribe("$shared/a", "c", "$shared/a")
	tr.Subscribe("$SHARE/g/a", "c", "$SHARE/g/a")
	if got := matchAll(tr, "$shared/a"); !slices.Equal(got, []hit{{"c", "$shared/a", false}}) {
		t.Errorf("Match($shared/a) = %v", got)
	}
	if got := matchAll(tr, "$SHARE/g/a"); !slices.Equal(got, []hit{{"c", "$SHARE/g/a", false}}) {
		t.Errorf("Match($SHARE/g/a) = %v", got)
	}
}

// TestUnsubscribePrune: removing every subscription leaves an empty tree
// (no nodes, no groups), whatever the order.
func TestUnsubscribePrune(t *testing.T) {
	filters := []string{
		"a", "a/b", "a/b/c", "a/+", "a/+/c", "a/#", "+", "#", "+/+", "/", "//", "a//",
		"$SYS/#", "$share/g/a/b", "$share/g/#", "$share/h/a/b",
	}
	// Enough children at one level to use the map, and enough keys at one
	// node to use the key index, so that both are shrunk again.
	for i := range 3 * kidsMapMin {
		filters = append(filters, fmt.Sprintf("wide/%d/x", i))
	}
	keys := make([]string, 3*subIdxMin)
	for i := range keys {
		keys[i] = fmt.Sprint("k", i)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		tr := New[string, string]()
		type sub struct{ f, k string }
		var all []sub
		for _, f := range filters {
			for _, k := range keys[:1+rng.IntN(len(keys))] {
				tr.Subscribe(f, k, f)
				all = append(all, sub{f, k})
			}
		}
		checkTree(t, tr)
		if tr.Len() != len(all) {
			t.Fatalf("round %d: Len = %d, want %d", round, tr.Len(), len(all))
		}
		rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		for i, s := range all {
			if !tr.Unsubscribe(s.f, s.k) {
				t.Fatalf("round %d: Unsubscribe(%q, %q) = false", round, s.f, s.k)
			}
			if tr.Unsubscribe(s.f, s.k) {
				t.Fatalf("round %d: second Unsubscribe(%q, %q) = true", round, s.f, s.k)
			}
			if i%50 == 0 {
				checkTree(t, tr)
			}
		}
		if tr.Len() != 0 {
			t.Errorf("round %d: Len = %d after removing all", round, tr.Len())
		}
		if !tr.root.empty() || tr.root.kids != nil || tr.root.kidMap != nil {
			t.Errorf("round %d: tree not empty after removing all: %+v", round, tr.root)
		}
	}
}

func TestUnsubscribeMissing(t *testing.T) {
	tr := New[string, string]()
	tr.Subscribe("a/b", "c1", "")
	tr.Subscribe("$share/g/a/b", "c1", "")
	for _, tc := range []struct{ filter, key string }{
		{"a/b", "c2"},             // other key
		{"a", "c1"},               // prefix node without subscriptions
		{"a/b/c", "c1"},           // no such node
		{"a/+", "c1"},             // wildcard is not the literal
		{"a/#", "c1"},             //
		{"$share/h/a/b", "c1"},    // other group
		{"$share/g/a/b", "c2"},    // not a member
		{"$share/g/a/+", "c1"},    // other filter
		{"$share/g/a", "c1"},      // prefix node
		{"$share/g/a/b/c/d", "x"}, // no node
	} {
		if tr.Unsubscribe(tc.filter, tc.key) {
			t.Errorf("Unsubscribe(%q, %q) = true", tc.filter, tc.key)
		}
	}
	if tr.Len() != 2 {
		t.Errorf("Len = %d, want 2", tr.Len())
	}
	checkTree(t, tr)
}

// TestSubscribeCopiesFilter: the tree does not keep substrings of the
// caller's filter (which might share memory with a packet buffer).
func TestSubscribeCopiesFilter(t *testing.T) {
	tr := New[string, string]()
	buf := []byte("$share/grp/abc/def")
	f := string(buf)
	tr.Subscribe(f, "c", "")
	var g *Group[string, string]
	tr.Match("abc/def", nil, func(x *Group[string, string]) { g = x })
	if g == nil {
		t.Fatal("no group")
	}
	if unsafeSameMemory(f, g.Name()) {
		t.Error("group name points into the filter")
	}
	if unsafeSameMemory(f, g.Filter()) {
		t.Error("group filter points into the filter")
	}
	if g.Name() != "grp" || g.Filter() != "abc/def" {
		t.Errorf("Name, Filter = %q, %q", g.Name(), g.Filter())
	}
	if n := tr.root.literal("abc"); n == nil || unsafeSameMemory(f, n.level) {
		t.Error("node level points into the filter")
	}
}

// TestMatchRandom compares Match with a brute-force scan of every
// subscription with mqtt.MatchTopic, over random filters and topics made
// from a small alphabet of levels (so that they collide often), while
// subscriptions are added and removed.
func TestMatchRandom(t *testing.T) {
	levels := []string{"a", "b", "c", "", "$", "$SYS", "ab"}
	rng := rand.New(rand.NewPCG(7, 11))
	randTopic := func() string {
		n := 1 + rng.IntN(5)
		ls := make([]string, n)
		for i := range ls {
			ls[i] = levels[rng.IntN(len(levels))]
		}
		s := strings.Join(ls, "/")
		if s == "" {
			s = "a"
		}
		return s
	}
	randFilter := func() string {
		n := 1 + rng.IntN(5)
		ls := make([]string, n)
		for i := range ls {
			switch r := rng.IntN(10); {
			case r < 3:
				ls[i] = "+"
			case r < 4 && i == n-1:
				ls[i] = "#"
			default:
				ls[i] = levels[rng.IntN(len(levels))]
			}
		}
		s := strings.Join(ls, "/")
		if s == "" {
			s = "+"
		}
		switch rng.IntN(6) {
		case 0:
			s = "$share/g1/" + s
		case 1:
			s = "$share/g2/" + s
		}
		return s
	}
	type sub struct{ filter, key string }
	model := map[sub]bool{} // the subscriptions, and in order:
	var order []sub
	tr := New[string, string]()
	for iter := range 3000 {
		// Change the subscriptions: add, or remove a random one; keep
		// between about 100 and 300 of them.
		for range 3 {
			if len(order) > 100 && rng.IntN(300) < len(order) {
				i := rng.IntN(len(order))
				s := order[i]
				order[i] = order[len(order)-1]
				order = order[:len(order)-1]
				if !tr.Unsubscribe(s.filter, s.key) {
					t.Fatalf("Unsubscribe(%q, %q) = false", s.filter, s.key)
				}
				delete(model, s)
				continue
			}
			s := sub{randFilter(), fmt.Sprint("k", rng.IntN(8))}
			if err := mqtt.ValidateTopicFilter(s.filter); err != nil {
				t.Fatalf("generated filter %q: %v", s.filter, err)
			}
			if got := tr.Subscribe(s.filter, s.key, strings.TrimPrefix(strings.TrimPrefix(s.filter, "$share/g1/"), "$share/g2/")); got != model[s] {
				t.Fatalf("Subscribe(%q, %q) replaced = %v, want %v", s.filter, s.key, got, model[s])
			}
			if !model[s] {
				order = append(order, s)
			}
			model[s] = true
		}
		if tr.Len() != len(model) {
			t.Fatalf("Len = %d, want %d", tr.Len(), len(model))
		}

		topic := randTopic()
		if err := mqtt.ValidateTopicName(topic); err != nil {
			t.Fatalf("generated topic %q: %v", topic, err)
		}
		wantSet := map[hit]bool{}
		var want []hit
		for s := range model {
			group, f, shared, _ := mqtt.ParseShared(s.filter)
			if !shared {
				f = s.filter
			}
			if !mqtt.MatchTopic(f, topic) {
				continue
			}
			h := hit{s.key, f, false}
			if shared {
				h = hit{group, f, true}
				if wantSet[h] {
					continue // one call per group
				}
				wantSet[h] = true
			}
			want = append(want, h)
		}
		slices.SortFunc(want, cmpHit)
		if got := matchAll(tr, topic); !slices.Equal(got, want) {
			t.Fatalf("iteration %d: Match(%q):\n got %v\nwant %v", iter, topic, got, want)
		}
		if iter%100 == 0 {
			checkTree(t, tr)
		}
	}
	// Remove everything: the tree is empty again.
	for s := range model {
		tr.Unsubscribe(s.filter, s.key)
	}
	if tr.Len() != 0 || !tr.root.empty() {
		t.Errorf("tree not empty: Len %d", tr.Len())
	}
}

// FuzzMatch checks the tree against mqtt.MatchTopic for one filter and one
// topic, plain and shared.
func FuzzMatch(f *testing.F) {
	f.Add("sport/#", "sport")
	f.Add("+/+", "/finance")
	f.Add("#", "$SYS/x")
	f.Add("a//+/#", "a//b/c")
	f.Fuzz(func(t *testing.T, filter, topic string) {
		if mqtt.ValidateTopicFilter(filter) != nil || mqtt.ValidateTopicName(topic) != nil {
			return
		}
		want := false
		group, tf, shared, _ := mqtt.ParseShared(filter)
		if shared {
			want = mqtt.MatchTopic(tf, topic)
		} else {
			want = mqtt.MatchTopic(filter, topic)
		}
		tr := New[int, int]()
		tr.Subscribe(filter, 1, 0)
		got := 0
		tr.Match(topic, func(int, int) { got++ }, func(g *Group[int, int]) {
			if g.Name() != group || g.Filter() != tf {
				t.Errorf("group %q %q, want %q %q", g.Name(), g.Filter(), group, tf)
			}
			got++
		})
		if (got == 1) != want || got > 1 {
			t.Errorf("filter %q topic %q: %d callbacks, MatchTopic says %v", filter, topic, got, want)
		}
		if !tr.Unsubscribe(filter, 1) || tr.Len() != 0 || !tr.root.empty() {
			t.Errorf("filter %q: not removed cleanly", filter)
		}
	})
}

// counter is a non-capturing way for the allocation test to count calls.
type counter struct{ plain, shared, picked int }

// TestMatchNoAllocs: matching a three-level topic against exact, '+', '#'
// and shared subscriptions, with pre-built callbacks, does not allocate;
// nor does picking a group member.
func TestMatchNoAllocs(t *testing.T) {
	tr := New[*counter, int]()
	k1, k2 := &counter{}, &counter{}
	for _, f := range []string{
		"sport/tennis/player1", "sport/tennis/+", "sport/+/player1", "+/tennis/player1",
		"sport/#", "#", "sport/tennis/player1/#", "$share/g/sport/+/+", "other/x", "sport/golf",
	} {
		tr.Subscribe(f, k1, 1)
		tr.Subscribe(f, k2, 2)
	}
	// Make the first level wide enough to use the map.
	for i := range 2 * kidsMapMin {
		tr.Subscribe(fmt.Sprintf("wide%d/x", i), k1, 0)
	}
	c := &counter{}
	accept := func(k *counter, v int) bool { return v == 2 }
	visit := func(k *counter, v int) { c.plain++ }
	visitShared := func(g *Group[*counter, int]) {
		c.shared++
		if _, _, ok := g.Next(accept); ok {
			c.picked++
		}
	}
	for _, topic := range []string{"sport/tennis/player1", "wide3/x", "nothing/here/at/all"} {
		allocs := testing.AllocsPerRun(1000, func() { tr.Match(topic, visit, visitShared) })
		if allocs != 0 {
			t.Errorf("Match(%q): %v allocations per call, want 0", topic, allocs)
		}
	}
	*c = counter{}
	tr.Match("sport/tennis/player1", visit, visitShared)
	if c.plain != 14 || c.shared != 1 || c.picked != 1 {
		t.Errorf("counts %+v, want 14 plain, 1 shared, 1 picked", *c)
	}
}

// unsafeSameMemory reports whether b lies inside a's memory.
func unsafeSameMemory(a, b string) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	pa, pb := strDataAddr(a), strDataAddr(b)
	return pb >= pa && pb < pa+uintptr(len(a))
}

func strDataAddr(s string) uintptr { return uintptr(unsafe.Pointer(unsafe.StringData(s))) }

// checkTree verifies the tree's invariants: no empty node below the root,
// parent links, the child and key indexes, and Len.
func checkTree[K comparable, V any](t *testing.T, tr *Tree[K, V]) {
	t.Helper()
	tr.mu.RLock()
	defer tr.mu.RUnlock()
	count := 0
	var walk func(n *node[K, V], path string)
	walk = func(n *node[K, V], path string) {
		if n != &tr.root && n.empty() {
			t.Errorf("empty node %q not pruned", path)
		}
		if n.kids != nil && n.kidMap != nil {
			t.Errorf("node %q has both kids and kidMap", path)
		}
		if len(n.kids) >= kidsMapMin {
			t.Errorf("node %q has %d kids in a slice", path, len(n.kids))
		}
		if n.subIdx != nil {
			if len(n.subIdx) != len(n.subs) {
				t.Errorf("node %q: subIdx has %d entries, subs %d", path, len(n.subIdx), len(n.subs))
			}
			for k, i := range n.subIdx {
				if i >= len(n.subs) || n.subs[i].key != k {
					t.Errorf("node %q: subIdx wrong", path)
				}
			}
		} else if len(n.subs) > subIdxMin {
			t.Errorf("node %q: %d subs without index", path, len(n.subs))
		}
		seen := map[K]bool{}
		for _, s := range n.subs {
			if seen[s.key] {
				t.Errorf("node %q: key %v twice", path, s.key)
			}
			seen[s.key] = true
		}
		count += len(n.subs)
		names := map[string]bool{}
		for _, g := range n.groups {
			if names[g.name] {
				t.Errorf("node %q: group %q twice", path, g.name)
			}
			names[g.name] = true
			if g.Len() == 0 {
				t.Errorf("node %q: empty group %q", path, g.name)
			}
			if g.filter != strings.TrimPrefix(path, "/") {
				t.Errorf("node %q: group filter %q", path, g.filter)
			}
			ms := *g.members.Load()
			if len(g.idx) != len(ms) {
				t.Errorf("group %q: idx has %d entries, members %d", g.name, len(g.idx), len(ms))
			}
			for k, i := range g.idx {
				if i >= len(ms) || ms[i].key != k {
					t.Errorf("group %q: idx wrong", g.name)
				}
			}
			count += len(ms)
		}
		var kids []*node[K, V]
		kids = append(kids, n.kids...)
		for l, c := range n.kidMap {
			if c.level != l {
				t.Errorf("node %q: kidMap key %q for level %q", path, l, c.level)
			}
			kids = append(kids, c)
		}
		if n.plus != nil {
			kids = append(kids, n.plus)
		}
		if n.hash != nil {
			kids = append(kids, n.hash)
		}
		for _, c := range kids {
			if c.parent != n {
				t.Errorf("node %q/%s: wrong parent", path, c.level)
			}
			walk(c, path+"/"+c.level)
		}
	}
	walk(&tr.root, "")
	if count != tr.n {
		t.Errorf("tree holds %d subscriptions, Len says %d", count, tr.n)
	}
}
