package retain

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirmq/weir/mqtt"
	"github.com/weirmq/weir/store"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// msg returns a retained message on topic with payload.
func msg(topic, payload string) *store.Message {
	return &store.Message{Topic: topic, Payload: []byte(payload), QoS: 1, Retain: true}
}

// expiring returns a retained message on topic that expires at exp.
func expiring(topic, payload string, exp time.Time) *store.Message {
	m := msg(topic, payload)
	m.Expiry = exp
	return m
}

func payload(m *store.Message) string {
	if m == nil {
		return "<nil>"
	}
	return string(m.Payload)
}

// matched returns the sorted topics that Match(filter, now) reports.
func matched(x *Index, filter string, now time.Time) []string {
	var got []string
	x.Match(filter, now, func(m *store.Message) bool {
		got = append(got, m.Topic)
		return true
	})
	slices.Sort(got)
	return got
}

// check verifies the Index's invariants by walking the tree: Len and Bytes
// agree with the messages in it, every message sits at the node of its
// topic, no node other than the root is empty, empty child maps are nil,
// parent links are right, and nextExpiry is no later than any expiry.
func check(t *testing.T, x *Index) {
	t.Helper()
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.root.msg != nil {
		t.Errorf("root holds message %q", x.root.msg.Topic)
	}
	count, bytes := 0, 0
	var walk func(n *node, path []string)
	walk = func(n *node, path []string) {
		if n.children != nil && len(n.children) == 0 {
			t.Errorf("node %q has an empty, non-nil children map", strings.Join(path, "/"))
		}
		if m := n.msg; m != nil {
			count++
			bytes += m.Size()
			if want := strings.Join(path, "/"); m.Topic != want {
				t.Errorf("message with topic %q stored at %q", m.Topic, want)
			}
			if !m.Expiry.IsZero() && (x.nextExpiry.IsZero() || m.Expiry.Before(x.nextExpiry)) {
				t.Errorf("nextExpiry %v is after %q's expiry %v", x.nextExpiry, m.Topic, m.Expiry)
			}
		}
		for k, c := range n.children {
			p := append(slices.Clip(path), k)
			if c.parent != n || c.key != k {
				t.Errorf("node %q: bad parent link or key %q", strings.Join(p, "/"), c.key)
			}
			if c.msg == nil && len(c.children) == 0 {
				t.Errorf("empty node %q left in the tree", strings.Join(p, "/"))
			}
			walk(c, p)
		}
	}
	walk(&x.root, nil)
	if count != x.count || bytes != x.bytes {
		t.Errorf("Len/Bytes = %d/%d, tree holds %d messages of %d bytes", x.count, x.bytes, count, bytes)
	}
}

func TestSet(t *testing.T) {
	tests := []struct {
		name    string
		before  []*store.Message // Set first, in order
		set     *store.Message
		wantOld string // payload of the returned message, "<nil>" for nil
		topic   string // then Get(topic)
		wantGet string
		wantLen int
	}{
		{
			name: "[MQTT-3.3.1-5] set on an empty index stores the message",
			set:  msg("a/b", "1"), wantOld: "<nil>",
			topic: "a/b", wantGet: "1", wantLen: 1,
		},
		{
			name:   "[MQTT-3.3.1-5] set replaces the message of the same topic",
			before: []*store.Message{msg("a/b", "1")},
			set:    msg("a/b", "2"), wantOld: "1",
			topic: "a/b", wantGet: "2", wantLen: 1,
		},
		{
			name:   "set on another topic leaves the first alone",
			before: []*store.Message{msg("a/b", "1")},
			set:    msg("a/c", "2"), wantOld: "<nil>",
			topic: "a/b", wantGet: "1", wantLen: 2,
		},
		{
			name:   "set on a parent topic is a different topic",
			before: []*store.Message{msg("a/b", "1")},
			set:    msg("a", "2"), wantOld: "<nil>",
			topic: "a", wantGet: "2", wantLen: 2,
		},
		{
			name:   "3.1.1 [MQTT-3.3.1-10] 5.0 [MQTT-3.3.1-6] empty payload deletes the retained message",
			before: []*store.Message{msg("a/b", "1"), msg("a", "x")},
			set:    msg("a/b", ""), wantOld: "1",
			topic: "a/b", wantGet: "<nil>", wantLen: 1,
		},
		{
			name: "3.1.1 [MQTT-3.3.1-11] 5.0 [MQTT-3.3.1-7] empty payload is not stored",
			set:  msg("a/b", ""), wantOld: "<nil>",
			topic: "a/b", wantGet: "<nil>", wantLen: 0,
		},
		{
			name:   "empty payload on a parent topic deletes only the parent's message",
			before: []*store.Message{msg("a/b", "1"), msg("a", "x")},
			set:    msg("a", ""), wantOld: "x",
			topic: "a/b", wantGet: "1", wantLen: 1,
		},
		{
			name:   "empty levels: a//b, a/b and a/ are distinct topics",
			before: []*store.Message{msg("a/b", "1"), msg("a/", "3")},
			set:    msg("a//b", "2"), wantOld: "<nil>",
			topic: "a//b", wantGet: "2", wantLen: 3,
		},
		{
			name:   "empty first level: /a and a are distinct topics",
			before: []*store.Message{msg("a", "1")},
			set:    msg("/a", "2"), wantOld: "<nil>",
			topic: "a", wantGet: "1", wantLen: 2,
		},
		{
			name: "topic of only separators",
			set:  msg("//", "1"), wantOld: "<nil>",
			topic: "//", wantGet: "1", wantLen: 1,
		},
		{
			name:   "Get of a node without a message is nil",
			before: []*store.Message{msg("a/b/c", "1")},
			set:    msg("x", "2"), wantOld: "<nil>",
			topic: "a/b", wantGet: "<nil>", wantLen: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := New()
			for _, m := range tt.before {
				x.Set(m)
			}
			if old := x.Set(tt.set); payload(old) != tt.wantOld {
				t.Errorf("Set returned %s, want %s", payload(old), tt.wantOld)
			}
			if got := x.Get(tt.topic); payload(got) != tt.wantGet {
				t.Errorf("Get(%q) = %s, want %s", tt.topic, payload(got), tt.wantGet)
			}
			if x.Len() != tt.wantLen {
				t.Errorf("Len = %d, want %d", x.Len(), tt.wantLen)
			}
			check(t, x)
		})
	}
}

func TestDelete(t *testing.T) {
	x := New()
	x.Set(msg("a/b", "1"))
	x.Set(msg("a", "2"))
	if old := x.Delete("a/b/c"); old != nil {
		t.Errorf("Delete of a missing topic returned %s", payload(old))
	}
	if old := x.Delete("a/b"); payload(old) != "1" {
		t.Errorf("Delete(a/b) = %s, want 1", payload(old))
	}
	if old := x.Delete("a/b"); old != nil {
		t.Errorf("second Delete(a/b) = %s, want nil", payload(old))
	}
	if got := x.Get("a"); payload(got) != "2" {
		t.Errorf("Get(a) = %s after deleting a/b, want 2", payload(got))
	}
	check(t, x)
}

func TestMatch(t *testing.T) {
	topics := []string{
		"a", "a/b", "a/c", "a/b/c", "a/b/c/d", "b",
		"/a", "/", "a/", "a//b", "//",
		"$SYS/broker/uptime", "$SYS", "$x/a", "a/$SYS", "a/$x/b",
	}
	x := New()
	for _, tp := range topics {
		x.Set(msg(tp, tp))
	}
	check(t, x)
	tests := []struct {
		name   string
		filter string
		want   []string
	}{
		{"exact", "a/b", []string{"a/b"}},
		{"exact single level", "a", []string{"a"}},
		{"exact, no such topic", "a/x", nil},
		{"exact, longer than any topic", "a/b/c/d/e", nil},
		{"exact, node without message", "$SYS/broker", nil},
		{"+ matches one level", "a/+", []string{"a/", "a/$SYS", "a/b", "a/c"}},
		{"+ in the middle", "a/+/c", []string{"a/b/c"}},
		{"+ alone matches one-level topics", "+", []string{"a", "b"}},
		{"+/+ matches two-level topics", "+/+", []string{"/", "/a", "a/", "a/$SYS", "a/b", "a/c"}},
		{"# matches all but $ topics [MQTT-4.7.2-1]", "#", []string{
			"/", "/a", "//", "a", "a/", "a//b", "a/$SYS", "a/$x/b", "a/b", "a/b/c", "a/b/c/d", "a/c", "b",
		}},
		{"a/# matches a itself (§4.7.1.2)", "a/#", []string{
			"a", "a/", "a//b", "a/$SYS", "a/$x/b", "a/b", "a/b/c", "a/b/c/d", "a/c",
		}},
		{"a/b/# matches a/b and below", "a/b/#", []string{"a/b", "a/b/c", "a/b/c/d"}},
		{"+/# matches parent level", "+/#", []string{
			"/", "/a", "//", "a", "a/", "a//b", "a/$SYS", "a/$x/b", "a/b", "a/b/c", "a/b/c/d", "a/c", "b",
		}},
		{"a/+/#", "a/+/#", []string{"a/", "a//b", "a/$SYS", "a/$x/b", "a/b", "a/b/c", "a/b/c/d", "a/c"}},
		{"x/# with no x", "x/#", nil},
		{"[MQTT-4.7.2-1] $SYS/# matches $SYS topics", "$SYS/#", []string{"$SYS", "$SYS/broker/uptime"}},
		{"[MQTT-4.7.2-1] $SYS/+/uptime", "$SYS/+/uptime", []string{"$SYS/broker/uptime"}},
		{"[MQTT-4.7.2-1] +/broker/uptime does not match $SYS", "+/broker/uptime", nil},
		{"[MQTT-4.7.2-1] + does not match $SYS", "+", []string{"a", "b"}},
		{"[MQTT-4.7.2-1] +/a does not match $x/a", "+/a", []string{"/a"}},
		{"[MQTT-4.7.2-1] exact $x/a", "$x/a", []string{"$x/a"}},
		{"[MQTT-4.7.2-1] only the first level: a/+/b matches a/$x/b", "a/+/b", []string{"a//b", "a/$x/b"}},
		{"empty first level: /+", "/+", []string{"/", "/a"}},
		{"empty first level: /#", "/#", []string{"/", "/a", "//"}},
		{"empty level exact: a//b", "a//b", []string{"a//b"}},
		{"a/b does not match a//b", "a/b", []string{"a/b"}},
		{"+ matches an empty level", "a/+/b", []string{"a//b", "a/$x/b"}},
		{"trailing empty level a/", "a/", []string{"a/"}},
		{"only separators /", "/", []string{"/"}},
		{"only separators //", "//", []string{"//"}},
		{"+/+/+", "+/+/+", []string{"//", "a//b", "a/$x/b", "a/b/c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := mqtt.ValidateTopicFilter(tt.filter); err != nil {
				t.Fatalf("bad test: %v", err)
			}
			got := matched(x, tt.filter, t0)
			slices.Sort(tt.want)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Match(%q) = %q, want %q", tt.filter, got, tt.want)
			}
			// The tree walk must agree with the reference matcher.
			var ref []string
			for _, tp := range topics {
				if mqtt.MatchTopic(tt.filter, tp) {
					ref = append(ref, tp)
				}
			}
			slices.Sort(ref)
			if !slices.Equal(got, ref) {
				t.Errorf("Match(%q) = %q, mqtt.MatchTopic says %q", tt.filter, got, ref)
			}
		})
	}
}

func TestMatchStops(t *testing.T) {
	x := New()
	for i := range 10 {
		x.Set(msg(fmt.Sprintf("a/%d", i), "p"))
	}
	calls := 0
	x.Match("a/+", t0, func(*store.Message) bool {
		calls++
		return calls < 3
	})
	if calls != 3 {
		t.Errorf("fn called %d times after returning false on the 3rd, want 3", calls)
	}
}

// Match calls fn without holding the lock, so fn may change the index.
func TestMatchCallbackMayModify(t *testing.T) {
	x := New()
	for i := range 10 {
		x.Set(msg(fmt.Sprintf("a/%d", i), "p"))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		x.Match("a/#", t0, func(m *store.Message) bool {
			x.Delete(m.Topic)
			x.Set(msg("b/"+m.Topic, "q"))
			return true
		})
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Match deadlocked when fn changed the index")
	}
	if got := len(matched(x, "a/#", t0)); got != 0 {
		t.Errorf("%d messages left under a/", got)
	}
	if got := len(matched(x, "b/#", t0)); got != 10 {
		t.Errorf("%d messages under b/, want 10", got)
	}
	check(t, x)
}

func TestExpiry(t *testing.T) {
	past, future := t0.Add(-time.Second), t0.Add(time.Hour)
	tests := []struct {
		name      string
		m         *store.Message
		wantMatch bool // returned by Match at t0
		wantKept  bool // still in the index after Expire(t0)
	}{
		{"no expiry", msg("a/never", "p"), true, true},
		{"5.0 §3.3.1.3 [MQTT-3.3.2-5] expired in the past", expiring("a/past", "p", past), false, false},
		{"expires exactly now", expiring("a/now", "p", t0), false, false},
		{"expires in the future", expiring("a/future", "p", future), true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := New()
			x.Set(msg("keep", "k"))
			x.Set(tt.m)
			got := matched(x, "a/#", t0)
			if (len(got) == 1) != tt.wantMatch {
				t.Errorf("Match returned %q, want match %v", got, tt.wantMatch)
			}
			if got := matched(x, tt.m.Topic, t0); (len(got) == 1) != tt.wantMatch {
				t.Errorf("exact Match returned %q, want match %v", got, tt.wantMatch)
			}
			expired := x.Expire(t0)
			if tt.wantKept {
				if len(expired) != 0 {
					t.Errorf("Expire returned %d messages, want none", len(expired))
				}
				if x.Get(tt.m.Topic) != tt.m {
					t.Errorf("message was removed")
				}
			} else {
				if len(expired) != 1 || expired[0] != tt.m {
					t.Errorf("Expire returned %v, want the expired message", expired)
				}
				if x.Get(tt.m.Topic) != nil {
					t.Errorf("expired message still in the index")
				}
				if x.Len() != 1 || x.Bytes() != msg("keep", "k").Size() {
					t.Errorf("Len/Bytes = %d/%d after Expire, want 1/%d", x.Len(), x.Bytes(), msg("keep", "k").Size())
				}
				if _, ok := x.root.children["a"]; ok {
					t.Errorf("node of the expired message was not removed")
				}
			}
			check(t, x)
		})
	}
}

func TestExpireLater(t *testing.T) {
	x := New()
	x.Set(expiring("a/1", "p", t0.Add(1*time.Second)))
	x.Set(expiring("a/2", "p", t0.Add(2*time.Second)))
	x.Set(expiring("a/3", "p", t0.Add(3*time.Second)))
	x.Set(msg("a/never", "p"))
	if got := x.Expire(t0); got != nil {
		t.Errorf("Expire(t0) = %d messages, want none", len(got))
	}
	for i, want := range []string{"a/1", "a/2", "a/3"} {
		now := t0.Add(time.Duration(i+1) * time.Second)
		got := x.Expire(now)
		if len(got) != 1 || got[0].Topic != want {
			t.Errorf("Expire(t0+%ds) returned %v, want %s", i+1, got, want)
		}
		check(t, x)
	}
	if got := x.Expire(t0.Add(time.Hour)); got != nil {
		t.Errorf("Expire with no expiring messages left returned %d", len(got))
	}
	if x.Len() != 1 {
		t.Errorf("Len = %d, want 1", x.Len())
	}
	// Replacing an expiring message with one that never expires: nothing
	// expires later.
	x.Set(expiring("b", "p", t0.Add(time.Minute)))
	x.Set(msg("b", "q"))
	if got := x.Expire(t0.Add(2 * time.Minute)); got != nil {
		t.Errorf("Expire returned the replaced message: %v", got)
	}
	check(t, x)
}

func TestLenBytes(t *testing.T) {
	x := New()
	a1, a2, b := msg("a", "1"), msg("a", "longer payload"), msg("b/c", "xyz")
	b.Props = &mqtt.Properties{ContentType: "text/plain"}
	steps := []struct {
		name      string
		do        func()
		wantLen   int
		wantBytes int
	}{
		{"empty", func() {}, 0, 0},
		{"set a", func() { x.Set(a1) }, 1, a1.Size()},
		{"set b/c (with properties)", func() { x.Set(b) }, 2, a1.Size() + b.Size()},
		{"[MQTT-3.3.1-5] replace a with a bigger message", func() { x.Set(a2) }, 2, a2.Size() + b.Size()},
		{"replace a with the same message", func() { x.Set(a2) }, 2, a2.Size() + b.Size()},
		{"delete missing topic", func() { x.Delete("c") }, 2, a2.Size() + b.Size()},
		{"empty payload on missing topic", func() { x.Set(msg("c", "")) }, 2, a2.Size() + b.Size()},
		{"3.1.1 [MQTT-3.3.1-10] 5.0 [MQTT-3.3.1-6] empty payload deletes a", func() { x.Set(msg("a", "")) }, 1, b.Size()},
		{"delete b/c", func() { x.Delete("b/c") }, 0, 0},
	}
	for _, s := range steps {
		s.do()
		if x.Len() != s.wantLen || x.Bytes() != s.wantBytes {
			t.Errorf("%s: Len/Bytes = %d/%d, want %d/%d", s.name, x.Len(), x.Bytes(), s.wantLen, s.wantBytes)
		}
		check(t, x)
	}
}

func TestNodeCleanup(t *testing.T) {
	topics := []string{"a", "a/b", "a/b/c", "a/b/c/d", "/", "//", "/x", "a//b", "$SYS/x", "p/q/r/s/t"}
	t.Run("partial", func(t *testing.T) {
		x := New()
		x.Set(msg("a", "1"))
		x.Set(msg("a/b/c", "2"))
		x.Delete("a/b/c")
		a := x.root.children["a"]
		if a == nil || a.msg == nil {
			t.Fatal("node a lost with its message")
		}
		if a.children != nil {
			t.Errorf("a still has children %v after deleting a/b/c", a.children)
		}
		check(t, x)
	})
	for _, how := range []string{"Delete", "empty payload", "Expire", "reverse order"} {
		t.Run(how, func(t *testing.T) {
			x := New()
			for _, tp := range topics {
				x.Set(expiring(tp, "p", t0))
			}
			check(t, x)
			switch how {
			case "Delete":
				for _, tp := range topics {
					x.Delete(tp)
				}
			case "empty payload":
				for _, tp := range topics {
					x.Set(msg(tp, ""))
				}
			case "Expire":
				if got := x.Expire(t0); len(got) != len(topics) {
					t.Errorf("Expire returned %d messages, want %d", len(got), len(topics))
				}
			case "reverse order":
				for _, tp := range slices.Backward(topics) {
					x.Delete(tp)
				}
			}
			if x.root.children != nil {
				t.Errorf("root still has children: %v", x.root.children)
			}
			if x.Len() != 0 || x.Bytes() != 0 {
				t.Errorf("Len/Bytes = %d/%d, want 0/0", x.Len(), x.Bytes())
			}
			check(t, x)
		})
	}
}

func TestLoad(t *testing.T) {
	st := store.NewMemory()
	defer st.Close()
	commit := func(b *store.Batch) {
		t.Helper()
		var err error
		st.Commit(b, func(e error) { err = e })
		if err != nil {
			t.Fatalf("Commit: %v", err)
		}
	}
	b := &store.Batch{}
	b.PutRetained(&store.Message{ID: 1, Topic: "a/b", Payload: []byte("1"), Retain: true})
	b.PutRetained(&store.Message{ID: 2, Topic: "a/c", Payload: []byte("2"), Retain: true})
	b.PutRetained(&store.Message{ID: 3, Topic: "$SYS/x", Payload: []byte("3"), Retain: true})
	b.PutRetained(&store.Message{ID: 4, Topic: "old", Payload: []byte("4"), Retain: true, Expiry: t0})
	commit(b)
	b = &store.Batch{}
	b.PutRetained(&store.Message{ID: 5, Topic: "a/b", Payload: []byte("5"), Retain: true}) // replaces 1
	b.DeleteRetained("a/c")
	commit(b)

	x := New()
	if err := x.Load(st); err != nil {
		t.Fatalf("Load: %v", err)
	}
	check(t, x)
	if x.Len() != 3 {
		t.Errorf("Len = %d, want 3", x.Len())
	}
	for topic, want := range map[string]string{"a/b": "5", "a/c": "<nil>", "$SYS/x": "3", "old": "4"} {
		if got := payload(x.Get(topic)); got != want {
			t.Errorf("Get(%q) = %s, want %s", topic, got, want)
		}
	}
	if got := matched(x, "#", t0); !slices.Equal(got, []string{"a/b"}) {
		t.Errorf("Match(#) after Load = %q, want [a/b]", got)
	}
	// The expired message was loaded so that Expire hands it back for
	// deletion from the store.
	if got := x.Expire(t0); len(got) != 1 || got[0].ID != 4 {
		t.Errorf("Expire after Load = %v, want message 4", got)
	}
}

// failingStore is a Store whose Retained fails after one message.
type failingStore struct {
	store.Store
	err error
}

func (f failingStore) Retained(fn func(*store.Message) error) error {
	if err := fn(msg("a", "1")); err != nil {
		return err
	}
	return f.err
}

func TestLoadError(t *testing.T) {
	boom := errors.New("boom")
	x := New()
	err := x.Load(failingStore{err: boom})
	if !errors.Is(err, boom) {
		t.Errorf("Load error = %v, want it to wrap %v", err, boom)
	}
}

// Writers and matchers at once; run with -race.
func TestConcurrent(t *testing.T) {
	x := New()
	levels := []string{"a", "b", "c", "", "$SYS"}
	filters := []string{"#", "a/#", "+/+", "a/+/c", "$SYS/#", "+/b/#", "/#", "a/b/c"}
	topic := func(r *rand.Rand) string {
		n := 1 + r.IntN(3)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = levels[r.IntN(len(levels))]
		}
		return strings.Join(parts, "/")
	}
	const writers, matchers, iters = 4, 4, 2000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range iters {
				tp := topic(r)
				switch r.IntN(5) {
				case 0:
					x.Delete(tp)
				case 1:
					x.Set(msg(tp, ""))
				case 2:
					x.Set(expiring(tp, "e", t0.Add(time.Duration(r.IntN(10))*time.Second)))
				case 3:
					x.Expire(t0.Add(time.Duration(i%10) * time.Second))
				default:
					x.Set(msg(tp, "p"))
				}
			}
		}()
	}
	for m := range matchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(m), 2))
			for range iters {
				now := t0.Add(time.Duration(r.IntN(10)) * time.Second)
				x.Match(filters[r.IntN(len(filters))], now, func(m *store.Message) bool {
					if m.Expired(now) {
						t.Errorf("Match returned %q, expired at %v", m.Topic, now)
					}
					return true
				})
				x.Get(topic(r))
				x.Len()
				x.Bytes()
			}
		}()
	}
	wg.Wait()
	check(t, x)
}

// TestMatchRandom compares Match with a brute-force scan of every stored
// topic through mqtt.MatchTopic, over random topics, filters, deletions
// and expiries.
func TestMatchRandom(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	levels := []string{"a", "b", "c", "", "$SYS", "$x", "a$", "ü"}
	randTopic := func() string {
		for {
			n := 1 + r.IntN(5)
			parts := make([]string, n)
			for i := range parts {
				parts[i] = levels[r.IntN(len(levels))]
			}
			if s := strings.Join(parts, "/"); mqtt.ValidateTopicName(s) == nil {
				return s
			}
		}
	}
	randFilter := func() string {
		for {
			n := 1 + r.IntN(5)
			parts := make([]string, n)
			for i := range parts {
				if r.IntN(3) == 0 {
					parts[i] = "+"
				} else {
					parts[i] = levels[r.IntN(len(levels))]
				}
			}
			if r.IntN(3) == 0 {
				parts[n-1] = "#"
			}
			if s := strings.Join(parts, "/"); mqtt.ValidateTopicFilter(s) == nil {
				return s
			}
		}
	}

	x := New()
	model := map[string]*store.Message{}
	now := t0
	for round := range 50 {
		for range 100 {
			tp := randTopic()
			switch r.IntN(6) {
			case 0:
				x.Delete(tp)
				delete(model, tp)
			case 1:
				x.Set(msg(tp, ""))
				delete(model, tp)
			case 2:
				m := expiring(tp, "e", now.Add(time.Duration(r.IntN(5)-2)*time.Second))
				x.Set(m)
				model[tp] = m
			default:
				m := msg(tp, strings.Repeat("p", r.IntN(10)+1))
				x.Set(m)
				model[tp] = m
			}
		}
		if round%5 == 4 {
			for _, m := range x.Expire(now) {
				if model[m.Topic] != m || !m.Expired(now) {
					t.Fatalf("Expire returned %q, which is not an expired stored message", m.Topic)
				}
				delete(model, m.Topic)
			}
		}
		check(t, x)
		bytes := 0
		for _, m := range model {
			bytes += m.Size()
		}
		if x.Len() != len(model) || x.Bytes() != bytes {
			t.Fatalf("round %d: Len/Bytes = %d/%d, model has %d/%d", round, x.Len(), x.Bytes(), len(model), bytes)
		}
		for range 100 {
			f := randFilter()
			var want []string
			for tp, m := range model {
				if mqtt.MatchTopic(f, tp) && !m.Expired(now) {
					want = append(want, tp)
				}
			}
			slices.Sort(want)
			if got := matched(x, f, now); !slices.Equal(got, want) {
				t.Fatalf("round %d: Match(%q) = %q, brute force %q", round, f, got, want)
			}
		}
		now = now.Add(time.Second)
	}
}

func BenchmarkMatch(b *testing.B) {
	x := New()
	// 10 sites × 10 devices × 100 sensors = 10,000 topics.
	for s := range 10 {
		for d := range 10 {
			for n := range 100 {
				x.Set(msg(fmt.Sprintf("site/%d/dev/%d/sensor/%d", s, d, n), "21.5"))
			}
		}
	}
	if x.Len() != 10000 {
		b.Fatalf("Len = %d", x.Len())
	}
	for _, bm := range []struct {
		filter string
		want   int
	}{
		{"site/3/dev/7/sensor/42", 1},
		{"site/3/dev/7/sensor/+", 100},
		{"site/+/dev/+/sensor/42", 100},
		{"site/3/#", 1000},
		{"+/+/+/+/+/100", 0},
		{"#", 10000},
	} {
		b.Run(bm.filter, func(b *testing.B) {
			b.ReportAllocs()
			now := t0
			for b.Loop() {
				n := 0
				x.Match(bm.filter, now, func(*store.Message) bool {
					n++
					return true
				})
				if n != bm.want {
					b.Fatalf("Match(%q) found %d, want %d", bm.filter, n, bm.want)
				}
			}
		})
	}
}
