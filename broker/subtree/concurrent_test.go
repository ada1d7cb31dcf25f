package subtree

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/weirmq/weir/mqtt"
)

// TestConcurrent runs Match and Group.Next in several goroutines while
// others subscribe and unsubscribe; run it with -race. Each writer owns its
// keys, so at the end the tree must hold exactly what each writer left
// subscribed, and every match seen must have been a real match.
func TestConcurrent(t *testing.T) {
	type sess struct{ id int }
	filters := []string{
		"a/b/c", "a/+/c", "a/#", "#", "+/b/+", "a/b", "$SYS/#", "x/y",
		"$share/g/a/+/c", "$share/g/#", "$share/h/a/b/c",
	}
	topics := []string{"a/b/c", "a/b", "a", "x/y", "$SYS/a", "a/x/c"}

	tr := New[*sess, string]()
	const writers, readers = 4, 4
	iters := 2000
	if testing.Short() {
		iters = 200
	}
	var stop atomic.Bool
	var bad atomic.Int64
	var matches atomic.Int64

	var rwg sync.WaitGroup
	for r := range readers {
		rwg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 99))
			for !stop.Load() {
				topic := topics[rng.IntN(len(topics))]
				tr.Match(topic, func(k *sess, f string) {
					matches.Add(1)
					if !mqtt.MatchTopic(f, topic) {
						bad.Add(1)
					}
				}, func(g *Group[*sess, string]) {
					if !mqtt.MatchTopic(g.Filter(), topic) {
						bad.Add(1)
					}
					// Online members first, then anyone.
					if _, _, ok := g.Next(func(k *sess, _ string) bool { return k.id%2 == 0 }); !ok {
						if _, _, ok := g.Next(nil); !ok {
							bad.Add(1) // a group handed out by Match has members
						}
					}
				})
				_ = tr.Len()
				runtime.Gosched() // let the writers in; this test is about interleaving
			}
		})
	}

	var wwg sync.WaitGroup
	final := make([]map[string]bool, writers) // per writer: "filter key" subscribed at the end
	for w := range writers {
		wwg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			keys := []*sess{{w * 10}, {w*10 + 1}, {w*10 + 2}}
			have := map[string]bool{}
			for range iters {
				f := filters[rng.IntN(len(filters))]
				ki := rng.IntN(len(keys))
				id := fmt.Sprint(f, " ", ki)
				_, tf, shared, _ := mqtt.ParseShared(f)
				if !shared {
					tf = f
				}
				if rng.IntN(2) == 0 {
					if got := tr.Subscribe(f, keys[ki], tf); got != have[id] {
						t.Errorf("Subscribe(%q) replaced = %v, want %v", f, got, have[id])
					}
					have[id] = true
				} else {
					if got := tr.Unsubscribe(f, keys[ki]); got != have[id] {
						t.Errorf("Unsubscribe(%q) = %v, want %v", f, got, have[id])
					}
					delete(have, id)
				}
			}
			final[w] = have
		})
	}
	wwg.Wait()
	stop.Store(true)
	rwg.Wait()

	if n := bad.Load(); n != 0 {
		t.Errorf("%d wrong matches or empty groups", n)
	}
	want := 0
	for _, h := range final {
		want += len(h)
	}
	if tr.Len() != want {
		t.Errorf("Len = %d, want %d", tr.Len(), want)
	}
	checkTree(t, tr)
	t.Logf("%d matches seen", matches.Load())
}
