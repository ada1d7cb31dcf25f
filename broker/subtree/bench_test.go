package subtree

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
)

type benchSess struct{ n int }

// benchTree builds a tree with n subscriptions shaped like a gateway's:
// topics "site{s}/dev{d}/{metric}", about 80% exact subscriptions and 20%
// wildcards ("site{s}/+/temp", "site{s}/dev{d}/#", "+/dev{d}/status",
// "site{s}/#", a few "$share/…" groups), from n/10 subscribers. It returns
// the tree and topics to publish to, most of which have subscribers.
func benchTree(n int) (*Tree[*benchSess, uint8], []string) {
	rng := rand.New(rand.NewPCG(42, uint64(n)))
	metrics := []string{"temp", "hum", "pres", "status", "battery", "rssi"}
	sites := max(n/1000, 10)
	devs := max(n/sites/2, 10) // devices per site
	topic := func() string {
		return fmt.Sprintf("site%d/dev%d/%s", rng.IntN(sites), rng.IntN(devs), metrics[rng.IntN(len(metrics))])
	}
	sess := make([]*benchSess, max(n/10, 1))
	for i := range sess {
		sess[i] = &benchSess{i}
	}
	tr := New[*benchSess, uint8]()
	for tr.Len() < n {
		var f string
		switch r := rng.IntN(100); {
		case r < 80:
			f = topic()
		case r < 88:
			f = fmt.Sprintf("site%d/+/%s", rng.IntN(sites), metrics[rng.IntN(len(metrics))])
		case r < 94:
			f = fmt.Sprintf("site%d/dev%d/#", rng.IntN(sites), rng.IntN(devs))
		case r < 97:
			f = fmt.Sprintf("+/dev%d/status", rng.IntN(devs))
		case r < 99:
			f = fmt.Sprintf("site%d/#", rng.IntN(sites))
		default:
			f = fmt.Sprintf("$share/g%d/site%d/+/+", rng.IntN(3), rng.IntN(sites))
		}
		tr.Subscribe(f, sess[rng.IntN(len(sess))], uint8(rng.IntN(3)))
	}
	topics := make([]string, 1024)
	for i := range topics {
		topics[i] = topic()
	}
	return tr, topics
}

// BenchmarkMatch matches random three-level topics against trees of 10,000
// and 100,000 subscriptions. matches/op is the average number of callbacks.
func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		tr, topics := benchTree(n)
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			var hits int
			visit := func(*benchSess, uint8) { hits++ }
			visitShared := func(g *Group[*benchSess, uint8]) {
				if _, _, ok := g.Next(nil); ok {
					hits++
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				tr.Match(topics[i%len(topics)], visit, visitShared)
				i++
			}
			b.ReportMetric(float64(hits)/float64(i), "matches/op")
		})
		b.Run(fmt.Sprintf("subs=%d/parallel", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var hits int
				visit := func(*benchSess, uint8) { hits++ }
				visitShared := func(g *Group[*benchSess, uint8]) { g.Next(nil) }
				i := 0
				for pb.Next() {
					tr.Match(topics[i%len(topics)], visit, visitShared)
					i++
				}
			})
		})
	}
}

// BenchmarkSubscribe measures adding and removing one subscription in a
// tree of 10,000.
func BenchmarkSubscribe(b *testing.B) {
	tr, _ := benchTree(10_000)
	s := &benchSess{-1}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		f := fmt.Sprintf("site%d/dev%d/temp", i%50, i%997)
		tr.Subscribe(f, s, 1)
		tr.Unsubscribe(f, s)
		i++
	}
}

// BenchmarkChildLookup compares the two child indexes of a node, a slice
// scanned linearly and a map, for k children with short levels like
// "temp" or "dev12" (every lookup hits). It is how kidsMapMin was chosen.
func BenchmarkChildLookup(b *testing.B) {
	for _, k := range []int{2, 4, 8, 12, 16, 32} {
		levels := make([]string, k)
		var slice, hashed node[int, int]
		hashed.kidMap = map[string]*node[int, int]{}
		for i := range levels {
			levels[i] = fmt.Sprintf("dev%d", i)
			c := &node[int, int]{level: levels[i]}
			slice.kids = append(slice.kids, c)
			hashed.kidMap[levels[i]] = c
		}
		// Look up substrings of one topic, as Match does.
		topics := make([]string, 64)
		for i := range topics {
			topics[i] = "site/" + levels[(i*7)%k] + "/x"
		}
		for _, v := range []struct {
			name string
			n    *node[int, int]
		}{{"slice", &slice}, {"map", &hashed}} {
			b.Run(fmt.Sprintf("kids=%d/%s", k, v.name), func(b *testing.B) {
				i := 0
				for b.Loop() {
					t := topics[i%len(topics)]
					if v.n.literal(t[5:len(t)-2]) == nil {
						b.Fatal("miss")
					}
					i++
				}
			})
		}
	}
}

// BenchmarkTreeMemory reports the heap bytes per subscription of the trees
// BenchmarkMatch uses (the subscriber values themselves excluded).
func BenchmarkTreeMemory(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			var perSub float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				tr, _ := benchTree(n)
				runtime.GC()
				runtime.ReadMemStats(&after)
				perSub = float64(after.HeapAlloc-before.HeapAlloc-uint64(n/10)*8) / float64(tr.Len())
				runtime.KeepAlive(tr)
			}
			b.ReportMetric(perSub, "B/sub")
		})
	}
}
