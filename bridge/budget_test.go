package bridge_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/weirmq/weir/bridge"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
	"github.com/weirmq/weir/store"
)

// TestOutboxBudget fills the outbox of a bridge whose upstream is down
// beyond max_outbox_bytes and checks, per policy, which messages reach
// upstream once it is back, that the drops are counted under the rule,
// and that no local publisher was refused.
func TestOutboxBudget(t *testing.T) {
	// Every message has the same size: topic of 6 bytes, payload of 5,
	// publisher id "pub".
	size := (&store.Message{Topic: "xxx/aa", Payload: []byte("00000"), Origin: "pub"}).Size()
	cases := []struct {
		policy bridge.Policy
		topics []string // published round-robin, 20 messages in all
		want   map[string][]string
	}{
		{bridge.DropNew, []string{"new/aa"}, map[string][]string{
			"new/aa": {"00000", "00001", "00002", "00003", "00004", "00005", "00006", "00007", "00008", "00009"}}},
		{bridge.DropOldest, []string{"old/aa"}, map[string][]string{
			"old/aa": {"00010", "00011", "00012", "00013", "00014", "00015", "00016", "00017", "00018", "00019"}}},
		// Five topics, four values each: the last two of each survive.
		{bridge.KeepLastPerTopic, []string{"lst/a0", "lst/a1", "lst/a2", "lst/a3", "lst/a4"}, map[string][]string{
			"lst/a0": {"00010", "00015"}, "lst/a1": {"00011", "00016"}, "lst/a2": {"00012", "00017"},
			"lst/a3": {"00013", "00018"}, "lst/a4": {"00014", "00019"}}},
	}
	for _, tc := range cases {
		t.Run(string(tc.policy), func(t *testing.T) {
			// The local broker listens first, so that it cannot take the
			// port mosquitto gives up while it is stopped.
			local := localBroker(t, nil)
			up := startMosquitto(t)
			got := map[string][]string{}
			msgs := make(chan paho.Message, 100)
			sub := brokertest.NewPaho311(t, up.Broker(), tcp, "collector", func(o *paho.ClientOptions) {
				o.SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
					SetMaxReconnectInterval(100 * time.Millisecond).
					SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { msgs <- m })
			})
			sub.MustConnect()
			sub.MustSubscribe("#", 1)
			up.Stop()

			br := startBridge(t, local, bridge.Config{
				Name: "up", Address: addr(up), Version: mqtt.V5, ClientID: "weir-gw",
				MaxOutboxBytes: int64(10 * size),
				Out: []bridge.OutRule{
					{Filter: "other/#", QoS: 1, Policy: bridge.DropNew},
					{Filter: "#", QoS: 1, Policy: tc.policy},
				},
			})
			pub := brokertest.ConnectPaho311(t, local, tcp, "pub", nil)
			for i := range 20 {
				// MustPublish fails the test unless the PUBACK comes:
				// the budget never refuses the publisher.
				pub.MustPublish(tc.topics[i%len(tc.topics)], 1, false, fmt.Sprintf("%05d", i))
			}
			st := br.Status()
			if st.OutboxMessages != 10 || st.OutboxBytes != int64(10*size) {
				t.Errorf("outbox %d messages %d bytes, want 10 and %d", st.OutboxMessages, st.OutboxBytes, 10*size)
			}
			wantDrops := map[string]map[string]int64{"out[1]": {"outbox_full": 10}}
			if !reflect.DeepEqual(st.Dropped, wantDrops) {
				t.Errorf("dropped %v, want %v", st.Dropped, wantDrops)
			}
			if n := local.Server.Stats().Dropped["quota_exceeded"]; n != 0 {
				t.Errorf("%d publishes refused", n)
			}

			up.Start()
			for n := 0; n < 10; n++ {
				select {
				case m := <-msgs:
					got[m.Topic()] = append(got[m.Topic()], string(m.Payload()))
				case <-time.After(10 * time.Second):
					t.Fatalf("after %d messages: no more upstream; got %v", n, got)
				}
			}
			select {
			case m := <-msgs:
				t.Errorf("unexpected 11th message %q %q", m.Topic(), m.Payload())
			case <-time.After(200 * time.Millisecond):
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("upstream got %v\nwant %v", got, tc.want)
			}
		})
	}
}
