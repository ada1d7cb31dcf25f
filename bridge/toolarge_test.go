package bridge_test

import (
	"strings"
	"testing"
	"time"

	"github.com/weirmq/weir/bridge"
	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

// TestInTooLarge publishes upstream, on an in rule's topic, messages
// larger than the local broker's max_packet_size (QoS 1 and 2) and then a
// small one: the large ones are dropped and counted as too_large, the
// small one arrives, the bridge stays connected and still forwards out.
// Over MQTT 3.1.1 the upstream cannot be told the limit; before, the
// bridge's connection ended at the large message, and the upstream sent
// it first again at each reconnection, for good.
func TestInTooLarge(t *testing.T) {
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			up := startMosquitto(t)
			local := localBroker(t, &broker.Options{MaxPacketSize: 1024})
			br := startBridge(t, local, bridge.Config{
				Name: "up", Address: addr(up), Version: v, ClientID: "weir-gw", SessionExpiry: time.Hour,
				Out: []bridge.OutRule{{Filter: "s/#", QoS: 1, Policy: bridge.DropOldest}},
				In:  []bridge.InRule{{Filter: "cmd/#", QoS: 2}},
			})
			waitConnected(t, br)
			localSub := brokertest.ConnectPaho311(t, local, tcp, "local-sub", nil)
			localSub.MustSubscribe("cmd/#", 2)
			upSub := brokertest.ConnectPaho311(t, up.Broker(), tcp, "up-sub", nil)
			upSub.MustSubscribe("s/#", 1)
			upPub := brokertest.ConnectPaho311(t, up.Broker(), tcp, "up-pub", nil)
			big := strings.Repeat("x", 4000)
			upPub.MustPublish("cmd/big1", 1, false, big)
			upPub.MustPublish("cmd/big2", 2, false, big)
			upPub.MustPublish("cmd/small", 1, false, "ok")
			if m := localSub.Next(); m.Topic() != "cmd/small" || string(m.Payload()) != "ok" {
				t.Fatalf("local subscriber got %q (%d bytes), want cmd/small", m.Topic(), len(m.Payload()))
			}
			brokertest.ConnectPaho311(t, local, tcp, "local-pub", nil).MustPublish("s/after", 1, false, "out")
			if m := upSub.Next(); m.Topic() != "s/after" {
				t.Fatalf("upstream got %q, want s/after", m.Topic())
			}
			st := br.Status()
			if !st.Connected {
				t.Fatalf("bridge not connected: %+v", st)
			}
			// A 5.0 upstream is told the limit and does not send them.
			if want := map[mqtt.Version]int64{mqtt.V311: 2, mqtt.V5: 0}[v]; st.Dropped["in[0]"]["too_large"] != want {
				t.Fatalf("dropped %v, want in[0] too_large = %d", st.Dropped, want)
			}
		})
	}
}
