package bridge_test

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weirmq/weir/bridge"
	"github.com/weirmq/weir/internal/brokertest"
)

// TestCrashDuringOutage runs the real weir binary with a bridge, stops the
// upstream broker in the middle of a stream from 10 publishers, SIGKILLs
// weir during the outage, restarts it and then upstream, and resumes the
// stream: every message weir acknowledged reaches upstream, in order per
// topic.
func TestCrashDuringOutage(t *testing.T) { testCrash(t, 1, 10, 2000) }

// TestCrashDuringOutageQoS2 does the same with QoS 2 (5,000 messages).
// (Its log shows duplicates without DUP: one per publisher at most, the
// message whose PUBREC the kill cut off, which the publisher's new
// session sends again as a new message.)
func TestCrashDuringOutageQoS2(t *testing.T) { testCrash(t, 2, 5, 1000) }

func testCrash(t *testing.T, qos byte, publishers, perTopic int) {
	t.Parallel()
	up := startMosquitto(t)
	c := newCollector()
	subscribeCollector(t, up, "gw/#", qos, c)
	child := brokertest.StartChild(t, brokertest.ChildOptions{Config: map[string]any{
		"bridges": []map[string]any{{
			"name": "up", "address": "tcp://" + up.Addr, "version": "5", "client_id": "weir-gw",
			"min_backoff": "20ms", "max_backoff": "200ms",
			"out": []map[string]any{{"filter": "s/#", "add_prefix": "gw/", "qos": qos}},
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
					tok := pub.Publish(fmt.Sprintf("s/%d", i), qos, false, fmt.Sprintf("%d:%d", i, k))
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
	total := publishers * perTopic
	waitAcked(int64(total * 3 / 20))
	up.Stop()
	waitAcked(int64(total * 2 / 5))
	child.Kill()
	<-done
	ackedBeforeKill := acked.Load()
	if ackedBeforeKill >= int64(total) {
		t.Fatal("the stream ended before the kill: nothing was in the outbox")
	}
	child.Restart()
	up.Start()
	stream(perTopic) // the rest of the stream, after the restart
	brokertest.Eventually(t, 40*time.Second, func() error {
		if u, _ := c.count(); u < total {
			return fmt.Errorf("%d of %d messages upstream", u, total)
		}
		return nil
	})
	c.checkOrder(t, publishers, perTopic)
	_, dups := c.count()
	t.Logf("QoS %d: acknowledged before the kill: %d; upstream duplicates: %d (%d with DUP)", qos, ackedBeforeKill,
		dups, c.dupFlag)
}

// TestCrashDuringOutageQoS0 publishes QoS 0 messages matching a QoS 0
// out rule while upstream is down, waits until the bridge's status says
// the outbox holds them all, SIGKILLs weir, restarts it and then
// upstream: every message arrives, in order per topic. The outbox keeps
// QoS 0 on disk like QoS 1/2 (it was memory-only, and such a crash lost
// it all).
func TestCrashDuringOutageQoS0(t *testing.T) {
	t.Parallel()
	const publishers, perTopic = 4, 500
	// Upstream queues QoS 0 for the collector, which may reconnect after
	// the bridge.
	up := startMosquitto(t, "queue_qos0_messages true")
	c := newCollector()
	subscribeCollector(t, up, "gw/#", 1, c)
	up.Stop()
	child := brokertest.StartChild(t, brokertest.ChildOptions{Config: map[string]any{
		"bridges": []map[string]any{{
			"name": "up", "address": "tcp://" + up.Addr, "version": "5", "client_id": "weir-gw",
			"min_backoff": "20ms", "max_backoff": "200ms", "status_interval": "50ms",
			"out": []map[string]any{{"filter": "s/#", "add_prefix": "gw/", "qos": 0}},
		}},
	}})
	local := &brokertest.Broker{Addr: child.Addr()}
	status := brokertest.ConnectPaho311(t, local, tcp, "status", nil)
	status.MustSubscribe(bridge.SysPrefix+"up/outbox/messages", 0)

	var wg sync.WaitGroup
	for i := range publishers {
		pub := brokertest.ConnectPaho311(t, local, tcp, fmt.Sprintf("pub-%d", i), nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range perTopic {
				pub.MustPublish(fmt.Sprintf("s/%d", i), 0, false, fmt.Sprintf("%d:%d", i, k))
			}
		}()
	}
	wg.Wait()
	total := strconv.Itoa(publishers * perTopic)
	deadline := time.After(20 * time.Second)
	for queued := ""; queued != total; {
		select {
		case m := <-status.Msgs:
			queued = string(m.Payload())
		case <-deadline:
			t.Fatalf("the outbox never held the %s messages published (last status %q)", total, queued)
		}
	}
	child.Kill()
	child.Restart()
	up.Start()
	brokertest.Eventually(t, 30*time.Second, func() error {
		if u, _ := c.count(); u < publishers*perTopic {
			return fmt.Errorf("%d of %d messages upstream", u, publishers*perTopic)
		}
		return nil
	})
	c.checkOrder(t, publishers, perTopic)
}
