package bridge_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/weirmq/weir/bridge"
	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

// TestBackfill queues a backlog of 3,000 messages while upstream is down
// (most of it spilled to the store: the memory window is 100), then
// publishes 20 live messages while the backlog drains. With live-first
// the live messages overtake the backlog; in-order they come after it.
// Either way every message arrives once, each stream in its own order.
func TestBackfill(t *testing.T) {
	t.Parallel()
	const backlog, live = 3000, 20
	for _, mode := range []bridge.Backfill{bridge.LiveFirst, bridge.InOrder} {
		t.Run(string(mode), func(t *testing.T) {
			local := localBroker(t, &broker.Options{QueueMemoryWindow: 100})
			up := startMosquitto(t)
			var mu sync.Mutex
			var arrivals []string // topic:payload in arrival order
			sub := brokertest.NewPaho311(t, up.Broker(), tcp, "collector", func(o *paho.ClientOptions) {
				o.SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
					SetMaxReconnectInterval(100 * time.Millisecond).SetOrderMatters(true).
					SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
						mu.Lock()
						arrivals = append(arrivals, m.Topic()+":"+string(m.Payload()))
						mu.Unlock()
					})
			})
			sub.MustConnect()
			sub.MustSubscribe("#", 1)
			up.Stop()
			br := startBridge(t, local, bridge.Config{
				Name: "up", Address: addr(up), Version: mqtt.V5, ClientID: "weir-gw", Window: 8, Backfill: mode,
				Out: []bridge.OutRule{{Filter: "#", QoS: 1, Policy: bridge.DropOldest}},
			})
			pub := brokertest.ConnectPaho311(t, local, tcp, "pub", nil)
			var last paho.Token
			for i := range backlog {
				last = pub.Publish("backlog", 1, false, fmt.Sprint(i))
			}
			if !last.WaitTimeout(30*time.Second) || last.Error() != nil {
				t.Fatalf("backlog not acknowledged: %v", last.Error())
			}
			up.Start()
			brokertest.Eventually(t, 10*time.Second, func() error {
				if st := br.Status(); st.Forwarded == 0 {
					return errNotYet
				}
				return nil
			})
			for i := range live {
				pub.MustPublish("live", 1, false, fmt.Sprint(i))
			}
			brokertest.Eventually(t, 30*time.Second, func() error {
				mu.Lock()
				defer mu.Unlock()
				if len(arrivals) < backlog+live {
					return fmt.Errorf("%d of %d arrived", len(arrivals), backlog+live)
				}
				return nil
			})
			mu.Lock()
			defer mu.Unlock()
			next := map[string]int{}
			lastLive, lastBacklog := 0, 0
			for pos, a := range arrivals {
				var topic string
				var n int
				fmt.Sscanf(a, "%s", &topic)
				for i := len(a) - 1; i >= 0; i-- {
					if a[i] == ':' {
						topic = a[:i]
						fmt.Sscan(a[i+1:], &n)
						break
					}
				}
				if n != next[topic] {
					t.Fatalf("arrival %d: %s, want %s:%d (lost, duplicated or out of order)", pos, a, topic, next[topic])
				}
				next[topic]++
				if topic == "live" {
					lastLive = pos
				} else {
					lastBacklog = pos
				}
			}
			if len(arrivals) != backlog+live {
				t.Fatalf("%d arrivals, want %d", len(arrivals), backlog+live)
			}
			t.Logf("%s: last live message arrived at position %d, last backlog message at %d", mode, lastLive, lastBacklog)
			switch mode {
			case bridge.LiveFirst:
				if lastLive > lastBacklog {
					t.Errorf("live-first: a live message came after the whole backlog")
				}
			case bridge.InOrder:
				if lastLive < lastBacklog {
					t.Errorf("in-order: a live message overtook the backlog")
				}
			}
		})
	}
}
