package bridge_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/weirmq/weir/bridge"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

// TestTwoWeirsNoLoop bridges Weir A to Weir B both ways on the same topic
// tree (out t/# and in t/#, MQTT 5.0): a message published on either side
// arrives once on each side and is never echoed back. No Local on the
// upstream subscription [MQTT-3.8.3-3] stops B from returning A's
// messages; No Local on the bridge's local subscriptions stops A from
// sending B's messages back.
func TestTwoWeirsNoLoop(t *testing.T) {
	b := localBroker(t, nil)
	a := localBroker(t, nil)
	br := startBridge(t, a, bridge.Config{
		Name: "to-b", Address: "tcp://" + b.Addr, Version: mqtt.V5, ClientID: "weir-a",
		Out: []bridge.OutRule{{Filter: "t/#", QoS: 1, Policy: bridge.DropOldest}},
		In:  []bridge.InRule{{Filter: "t/#", QoS: 1}},
	})
	waitConnected(t, br)
	subA := brokertest.ConnectPaho311(t, a, tcp, "sub-a", nil)
	subA.MustSubscribe("t/#", 1)
	subB := brokertest.ConnectPaho311(t, b, tcp, "sub-b", nil)
	subB.MustSubscribe("t/#", 1)
	// The upstream subscription is in place once B routes to it.
	brokertest.Eventually(t, 5*time.Second, func() error {
		if st := br.Status(); !st.Connected {
			return fmt.Errorf("not connected")
		}
		return nil
	})

	brokertest.ConnectPaho311(t, a, tcp, "pub-a", nil).MustPublish("t/from-a", 1, false, "a")
	pubB := brokertest.ConnectPaho311(t, b, tcp, "pub-b", nil)
	// B may take a moment to have the bridge's subscription: publish until
	// A sees one, then count.
	brokertest.Eventually(t, 5*time.Second, func() error {
		if st := br.Status(); st.Forwarded < 1 {
			return fmt.Errorf("not forwarded yet")
		}
		return nil
	})
	pubB.MustPublish("t/from-b", 1, false, "b")

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
	want := map[string]int{"t/from-a": 1, "t/from-b": 1}
	if got := count(subA); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("A's subscriber got %v, want %v", got, want)
	}
	if got := count(subB); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("B's subscriber got %v, want %v", got, want)
	}
	if st := br.Status(); st.Forwarded != 1 || st.Received != 1 {
		t.Errorf("bridge forwarded %d, received %d; want 1 and 1", st.Forwarded, st.Received)
	}
}
