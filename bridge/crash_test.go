package bridge_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weirmq/weir/internal/brokertest"
)

// TestCrashDuringOutage runs the real weir binary with a bridge, stops the
// upstream broker in the middle of a stream from 10 publishers, SIGKILLs
// weir during the outage, restarts it and then upstream, and resumes the
// stream: every message weir acknowledged reaches upstream, in order per
// topic.
func TestCrashDuringOutage(t *testing.T) {
	t.Parallel()
	const publishers, perTopic = 10, 2000
	up := startMosquitto(t)
	c := newCollector()
	subscribeCollector(t, up, "gw/#", 1, c)
	child := brokertest.StartChild(t, brokertest.ChildOptions{Config: map[string]any{
		"bridges": []map[string]any{{
			"name": "up", "address": "tcp://" + up.Addr, "version": "5", "client_id": "weir-gw",
			"min_backoff": "20ms", "max_backoff": "200ms",
			"out": []map[string]any{{"filter": "s/#", "add_prefix": "gw/", "qos": 1}},
		}},
	}})

	// Each publisher publishes its topic's messages in order, one at a
	// time, from next[i]; it stops at the first one not acknowledged (weir
	// was killed) and remembers where to go on.
	next := make([]atomic.Int64, publishers)
	var acked atomic.Int64
	stream := func(upto int) {
		var wg sync.WaitGroup
		for i := range publishers {
			pub := brokertest.ConnectPaho311(t, &brokertest.Broker{Addr: child.Addr()}, tcp, fmt.Sprintf("pub-%d", i), nil)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := int(next[i].Load()); k < upto; k++ {
					tok := pub.Publish(fmt.Sprintf("s/%d", i), 1, false, fmt.Sprintf("%d:%d", i, k))
					if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
						return
					}
					next[i].Store(int64(k + 1))
					acked.Add(1)
				}
			}()
		}
		wg.Wait()
	}
	waitAcked := func(n int64) {
		brokertest.Eventually(t, 30*time.Second, func() error {
			if a := acked.Load(); a < n {
				return fmt.Errorf("%d acknowledged, waiting for %d", a, n)
			}
			return nil
		})
	}

	done := make(chan struct{})
	go func() { defer close(done); stream(perTopic) }()
	waitAcked(3000)
	up.Stop()
	waitAcked(8000)
	child.Kill()
	<-done
	ackedBeforeKill := acked.Load()
	if ackedBeforeKill >= publishers*perTopic {
		t.Fatal("the stream ended before the kill: nothing was in the outbox")
	}
	child.Restart()
	up.Start()
	stream(perTopic) // the rest of the stream, after the restart
	total := publishers * perTopic
	brokertest.Eventually(t, 40*time.Second, func() error {
		if u, _ := c.count(); u < total {
			return fmt.Errorf("%d of %d messages upstream", u, total)
		}
		return nil
	})
	c.checkOrder(t, publishers, perTopic)
	_, dups := c.count()
	t.Logf("acknowledged before the kill: %d; upstream duplicates: %d", ackedBeforeKill, dups)
}
