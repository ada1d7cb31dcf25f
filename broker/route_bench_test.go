package broker

import (
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/weirmq/weir/mqtt"
	"github.com/weirmq/weir/store"
)

// BenchmarkRoute measures routing alone — matching the subscription
// tree, merging a session's overlapping subscriptions, reserving each
// session's place — for one message, without delivery or the network
// (BenchmarkFanInQoS1 and BenchmarkFanOutQoS1 measure those end to end).
// The subscribers are online and clean, so nothing is stored: the
// reservation is what a QoS 0 delivery to a connected client costs.
//
//	go test -run '^$' -bench BenchmarkRoute -benchmem ./broker/
func BenchmarkRoute(b *testing.B) {
	cases := []struct {
		name  string
		subs  func(i int) []string // the filters of session i
		n     int                  // sessions
		topic string
		want  int // deliveries per message
	}{
		// 1,000 sensors' topics, one subscriber each, and a dashboard
		// subscribed to all: a message matches two sessions.
		{"distinct-1000", func(i int) []string {
			if i == 0 {
				return []string{"site/+/temp", "site/#"} // merged into one delivery
			}
			return []string{fmt.Sprintf("site/s%d/temp", i)}
		}, 1000, "site/s500/temp", 2},
		// Fan-out: 100 sessions on the same topic.
		{"same-100", func(int) []string { return []string{"alerts/fire"} }, 100, "alerts/fire", 100},
		// No subscriber matches among 1,000.
		{"none-1000", func(i int) []string { return []string{fmt.Sprintf("site/s%d/temp", i)} }, 1000, "site/x/temp", 0},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			s, err := New(&Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			for i := range tc.n {
				ss := newSession(s, fmt.Sprintf("c%d", i))
				ss.c, ss.ready = &client{}, true // online: reserve counts a QoS 0 delivery
				for _, f := range tc.subs(i) {
					sub := subscription{filter: f, opts: mqtt.Subscription{Filter: f, QoS: 1}}
					ss.addSubLocked(f, sub)
					s.subs.Subscribe(f, ss, sub)
				}
			}
			var r router
			r.init(s)
			m := &store.Message{Topic: tc.topic, Payload: make([]byte, 64), QoS: 0}
			var batch store.Batch
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				batch.Ops = batch.Ops[:0]
				ds := r.route(m, &batch)
				if len(ds) != tc.want {
					b.Fatalf("%d deliveries, want %d", len(ds), tc.want)
				}
			}
		})
	}
}
