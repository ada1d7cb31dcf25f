package bridge_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/weirmq/weir/bridge"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

// TestTwoWeirsNoLoop bridges Weir A to Weir B both ways: a message
// published on either side arrives once on each side and is never echoed
// back. With MQTT 5.0 on the same topic tree (out t/# and in t/#), No
// Local on the upstream subscription [MQTT-3.8.3-3] stops B from returning
// A's messages, and No Local on the bridge's local subscriptions stops A
// from sending B's messages back; with 3.1.1, prefixes keep the two
// directions apart.
func TestTwoWeirsNoLoop(t *testing.T) {
	t.Run("5.0 no-local", func(t *testing.T) {
		testNoLoop(t, bridge.Config{
			Name: "to-b", Version: mqtt.V5, ClientID: "weir-a",
			Out: []bridge.OutRule{{Filter: "t/#", QoS: 1, Policy: bridge.DropOldest}},
			In:  []bridge.InRule{{Filter: "t/#", QoS: 1}},
		}, "t/from-b", "t/from-b", "t/from-a")
	})
	// 3.1.1 has no No Local: the topic spaces are kept apart by prefixes.
	t.Run("3.1.1 prefixes", func(t *testing.T) {
		testNoLoop(t, bridge.Config{
			Name: "to-b", Version: mqtt.V311, ClientID: "weir-a",
			Out: []bridge.OutRule{{Filter: "t/#", AddPrefix: "from-a/", QoS: 1, Policy: bridge.DropOldest}},
			In:  []bridge.InRule{{Filter: "to-a/#", StripPrefix: "to-a/", QoS: 1}},
		}, "to-a/t/from-b", "t/from-b", "from-a/t/from-a")
	})
}

// testNoLoop bridges Weir A to Weir B with cfg, publishes t/from-a on A
// and pubB on B (arriving on A as onA), and checks that A's subscriber to
// t/# and B's subscriber to # each see every message once.
func testNoLoop(t *testing.T, cfg bridge.Config, pubB, onA, onB string) {
	b := localBroker(t, nil)
	a := localBroker(t, nil)
	cfg.Address = "tcp://" + b.Addr
	br := startBridge(t, a, cfg)
	waitConnected(t, br)
	subA := brokertest.ConnectPaho311(t, a, tcp, "sub-a", nil)
	subA.MustSubscribe("t/#", 1)
	subB := brokertest.ConnectPaho311(t, b, tcp, "sub-b", nil)
	subB.MustSubscribe("#", 1)
	brokertest.ConnectPaho311(t, a, tcp, "pub-a", nil).MustPublish("t/from-a", 1, false, "a")
	pubBc := brokertest.ConnectPaho311(t, b, tcp, "pub-b", nil)
	// Once B acknowledged A's message it has also handled the bridge's
	// SUBSCRIBE, sent before it on the same connection.
	brokertest.Eventually(t, 5*time.Second, func() error {
		if st := br.Status(); st.Forwarded < 1 {
			return fmt.Errorf("not forwarded yet")
		}
		return nil
	})
	pubBc.MustPublish(pubB, 1, false, "b")

	count := func(p *brokertest.Paho311) map[string]int {
		n := map[string]int{}
		deadline := time.After(500 * time.Millisecond)
		for {
			select {
			case m := <-p.Msgs:
				n[m.Topic()]++
			case <-deadline:
				return n
			}
		}
	}
	if got, want := count(subA), map[string]int{"t/from-a": 1, onA: 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("A's subscriber got %v, want %v", got, want)
	}
	if got, want := count(subB), map[string]int{onB: 1, pubB: 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("B's subscriber got %v, want %v", got, want)
	}
	if st := br.Status(); st.Forwarded != 1 || st.Received != 1 {
		t.Errorf("bridge forwarded %d, received %d; want 1 and 1", st.Forwarded, st.Received)
	}
}
