package bridge_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/weirmq/weir/bridge"
	"github.com/weirmq/weir/internal/brokertest"
)

// TestRemovedBridgeOutboxDeleted configures two bridges whose upstream is
// unreachable, queues messages for both, and restarts weir with one of
// them removed: the removed bridge's outbox is deleted at start-up and
// logged with what it held (it would otherwise keep queueing what its
// subscriptions match until the store is full), once, and its retained
// status topics are removed; the other bridge's outbox and status are
// kept.
func TestRemovedBridgeOutboxDeleted(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "tcp://" + l.Addr().String() // nothing listens there once closed
	l.Close()
	bridgeCfg := func(name string) map[string]any {
		return map[string]any{"name": name, "address": dead, "version": "5", "client_id": "weir-" + name,
			"min_backoff": "1s", "max_backoff": "5s", "status_interval": "100ms",
			"out": []map[string]any{{"filter": "s/#", "qos": 1}}}
	}
	cfg := map[string]any{"bridges": []map[string]any{bridgeCfg("keep"), bridgeCfg("gone")}}
	child := brokertest.StartChild(t, brokertest.ChildOptions{Config: cfg})
	pub := brokertest.ConnectPaho311(t, &brokertest.Broker{Addr: child.Addr()}, tcp, "pub", nil)
	const n = 10
	for k := range n {
		pub.MustPublish("s/0", 1, false, fmt.Sprintf("0:%d", k))
	}
	// Both bridges' status topics are retained.
	retainedStatus := func(name string) int {
		sub := brokertest.ConnectPaho311(t, &brokertest.Broker{Addr: child.Addr()}, tcp, "status-"+name, nil)
		defer sub.Disconnect(0)
		sub.MustSubscribe(bridge.SysPrefix+name+"/#", 0)
		got := 0
		for {
			select {
			case <-sub.Msgs:
				got++
			case <-time.After(300 * time.Millisecond):
				return got
			}
		}
	}
	brokertest.Eventually(t, 10*time.Second, func() error {
		if n := retainedStatus("gone"); n == 0 {
			return errNotYet
		}
		return nil
	})
	pub.Disconnect(0)
	if strings.Contains(child.RunLogs(), "outbox is deleted") {
		t.Fatalf("an outbox was deleted with both bridges configured:\n%s", child.RunLogs())
	}

	cfg["bridges"] = []map[string]any{bridgeCfg("keep")}
	child.Term()
	child.Start()
	logs := child.RunLogs()
	if !strings.Contains(logs, `msg="bridge removed from the configuration: its outbox is deleted" bridge=gone messages_not_forwarded=10 `) {
		t.Fatalf("no log line for the removed bridge's outbox with its %d messages:\n%s", n, logs)
	}
	if strings.Contains(logs, "bridge=keep messages_not_forwarded") {
		t.Fatalf("the configured bridge's outbox was deleted:\n%s", logs)
	}
	if n := retainedStatus("gone"); n != 0 {
		t.Fatalf("%d retained status topics of the removed bridge are left", n)
	}
	if n := retainedStatus("keep"); n == 0 {
		t.Fatal("the configured bridge's retained status topics are gone")
	}
	// The kept bridge, pointed at a live upstream, still forwards all.
	up := startMosquitto(t)
	c := newCollector()
	subscribeCollector(t, up, "s/#", 1, c)
	kept := bridgeCfg("keep")
	kept["address"] = addr(up)
	cfg["bridges"] = []map[string]any{kept}
	child.Term()
	child.Start()
	if logs := child.RunLogs(); strings.Contains(logs, "outbox is deleted") {
		t.Fatalf("the removed outbox was still in the store at the next start:\n%s", logs)
	}
	brokertest.Eventually(t, 20*time.Second, func() error {
		if u, _ := c.count(); u != n {
			return fmt.Errorf("%d of %d messages of the kept outbox upstream", u, n)
		}
		return nil
	})
	c.checkOrder(t, 1, n)
}
