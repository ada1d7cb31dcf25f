package bridge_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/weirmq/weir/bridge"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

// TestSysStatus checks the status topics under $SYS/broker/bridge/<name>/:
// connected, forwarded and the outbox follow what happens.
func TestSysStatus(t *testing.T) {
	up := startMosquitto(t)
	local := localBroker(t, nil)
	br := startBridge(t, local, bridge.Config{
		Name: "cloud", Address: addr(up), Version: mqtt.V5, ClientID: "weir-gw", StatusInterval: 20 * time.Millisecond,
		Out: []bridge.OutRule{{Filter: "s/#", QoS: 1, Policy: bridge.DropOldest}},
	})
	waitConnected(t, br)
	sub := brokertest.ConnectPaho311(t, local, tcp, "dashboard", nil)
	sub.MustSubscribe(bridge.SysPrefix+"cloud/#", 0)
	latest := map[string]string{}
	want := func(topic, value string) {
		t.Helper()
		brokertest.Eventually(t, 10*time.Second, func() error {
			for {
				select {
				case m := <-sub.Msgs:
					latest[m.Topic()] = string(m.Payload())
					continue
				default:
				}
				break
			}
			if got := latest[bridge.SysPrefix+"cloud/"+topic]; got != value {
				return fmt.Errorf("%s is %q, want %q", topic, got, value)
			}
			return nil
		})
	}
	want("connected", "1")
	pub := brokertest.ConnectPaho311(t, local, tcp, "pub", nil)
	pub.MustPublish("s/1", 1, false, "x")
	want("forwarded", "1")
	up.Stop()
	want("connected", "0")
	pub.MustPublish("s/2", 1, false, "y")
	want("outbox/messages", "1")
}
