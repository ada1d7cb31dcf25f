package bridge_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	"github.com/weirmq/weir/bridge"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

// TestForwardBothWays forwards QoS 0, 1 and 2 messages out with topic
// remapping and retain, and brings upstream messages in with remapping,
// over an MQTT 3.1.1 and an MQTT 5.0 upstream connection.
func TestForwardBothWays(t *testing.T) {
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		t.Run(v.String(), func(t *testing.T) {
			up := startMosquitto(t)
			local := localBroker(t, nil)
			// Retained before the bridge exists: forwarded once, retained.
			brokertest.ConnectPaho311(t, local, tcp, "early", nil).MustPublish("site/pre", 1, true, "early")
			br := startBridge(t, local, bridge.Config{
				Name: "up", Address: addr(up), Version: v, ClientID: "weir-gw",
				MessageIDProperty: "weir-message-id",
				Out: []bridge.OutRule{{Filter: "site/#", StripPrefix: "site/", AddPrefix: "gw/", QoS: 2,
					Retain: true, Policy: bridge.DropOldest}},
				In: []bridge.InRule{{Filter: "cmd/gw/#", StripPrefix: "cmd/gw/", AddPrefix: "commands/", QoS: 2}},
			})
			waitConnected(t, br)

			upSub := brokertest.ConnectPaho311(t, up.Broker(), tcp, "upstream-sub", nil)
			brokertest.Eventually(t, 5*time.Second, func() error {
				if br.Status().Forwarded < 1 {
					return errNotYet
				}
				return nil
			})
			upSub.MustSubscribe("gw/#", 2)
			if m := upSub.Next(); m.Topic() != "gw/pre" || !m.Retained() || string(m.Payload()) != "early" {
				t.Fatalf("upstream got %q retained=%v %q, want the retained gw/pre", m.Topic(), m.Retained(), m.Payload())
			}
			localSub := brokertest.ConnectPaho311(t, local, tcp, "local-sub", nil)
			localSub.MustSubscribe("commands/#", 2)
			pub := brokertest.ConnectPaho311(t, local, tcp, "local-pub", nil)

			for qos := byte(0); qos <= 2; qos++ {
				pub.MustPublish(fmt.Sprintf("site/q%d", qos), qos, false, fmt.Sprintf("payload %d", qos))
				m := upSub.Next()
				if want := fmt.Sprintf("gw/q%d", qos); m.Topic() != want || m.Qos() != qos ||
					string(m.Payload()) != fmt.Sprintf("payload %d", qos) {
					t.Fatalf("upstream got %q qos %d %q, want %q qos %d", m.Topic(), m.Qos(), m.Payload(), want, qos)
				}
			}
			// Retained: a later upstream subscriber gets it with the flag.
			pub.MustPublish("site/state", 1, true, "on")
			if m := upSub.Next(); m.Topic() != "gw/state" {
				t.Fatalf("upstream got %q, want gw/state", m.Topic())
			}
			late := brokertest.ConnectPaho311(t, up.Broker(), tcp, "upstream-late", nil)
			late.MustSubscribe("gw/state", 1)
			if m := late.Next(); !m.Retained() || string(m.Payload()) != "on" {
				t.Fatalf("late upstream subscriber got retained=%v %q, want the retained \"on\"", m.Retained(), m.Payload())
			}
			// Not matching any out rule: stays local.
			pub.MustPublish("other/x", 1, false, "local only")

			upPub := brokertest.ConnectPaho311(t, up.Broker(), tcp, "upstream-pub", nil)
			for qos := byte(0); qos <= 2; qos++ {
				upPub.MustPublish(fmt.Sprintf("cmd/gw/c%d", qos), qos, false, fmt.Sprintf("command %d", qos))
				m := localSub.Next()
				if want := fmt.Sprintf("commands/c%d", qos); m.Topic() != want || m.Qos() != qos {
					t.Fatalf("local got %q qos %d, want %q qos %d", m.Topic(), m.Qos(), want, qos)
				}
			}
			// Nothing else arrived upstream (other/x, or commands echoed).
			select {
			case m := <-upSub.Msgs:
				t.Fatalf("unexpected upstream message %q %q", m.Topic(), m.Payload())
			case <-time.After(200 * time.Millisecond):
			}
			brokertest.Eventually(t, 5*time.Second, func() error {
				st := br.Status()
				if st.Forwarded != 5 || st.Received != 3 || st.OutboxMessages != 0 || st.InFlight != 0 {
					return fmt.Errorf("status %+v, want 5 forwarded, 3 received, empty outbox", st)
				}
				return nil
			})
		})
	}
}

// TestMessageIDProperty checks that MQTT 5.0 upstreams get a stable
// message id user property.
func TestMessageIDProperty(t *testing.T) {
	up := startMosquitto(t)
	local := localBroker(t, nil)
	br := startBridge(t, local, bridge.Config{
		Name: "up", Address: addr(up), Version: mqtt.V5, ClientID: "gw-7", MessageIDProperty: "msg-id",
		Out: []bridge.OutRule{{Filter: "a/#", QoS: 1, Policy: bridge.DropOldest}},
	})
	waitConnected(t, br)
	upSub := up.Broker().MustConnectPaho(t, &paho5.Connect{ClientID: "up-sub", CleanStart: true, KeepAlive: 30})
	upSub.MustSubscribe(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "a/#", QoS: 1}}})
	pub := brokertest.ConnectPaho311(t, local, tcp, "local-pub", nil)
	pub.MustPublish("a/1", 1, false, "x")
	pub.MustPublish("a/2", 1, false, "y")
	var ids []string
	for range 2 {
		m := upSub.Next(t)
		if m.Properties == nil {
			t.Fatalf("no properties on %q", m.Topic)
		}
		id := ""
		for _, u := range m.Properties.User {
			if u.Key == "msg-id" {
				id = u.Value
			}
		}
		if !strings.HasPrefix(id, "gw-7/") || len(id) == len("gw-7/") {
			t.Fatalf("message %q: msg-id %q, want gw-7/<id>", m.Topic, id)
		}
		ids = append(ids, id)
	}
	if ids[0] == ids[1] {
		t.Fatalf("two messages with the same id %q", ids[0])
	}
}

// TestInWhileAway checks that with a kept upstream session (clean_start
// false) messages published upstream while the bridge was stopped arrive
// locally once it runs again.
func TestInWhileAway(t *testing.T) {
	up := startMosquitto(t)
	local := localBroker(t, nil)
	cfg := bridge.Config{
		Name: "up", Address: addr(up), Version: mqtt.V5, ClientID: "weir-gw", SessionExpiry: time.Hour,
		In: []bridge.InRule{{Filter: "cmd/#", AddPrefix: "from-cloud/", QoS: 1}},
	}
	localSub := brokertest.ConnectPaho311(t, local, tcp, "local-sub", nil)
	localSub.MustSubscribe("from-cloud/#", 1)

	br, err := bridge.New(local.Server, cfg, brokertest.Discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { br.Run(ctx); close(done) }()
	waitConnected(t, br)
	cancel()
	<-done

	upPub := brokertest.ConnectPaho311(t, up.Broker(), tcp, "upstream-pub", nil)
	for i := range 3 {
		upPub.MustPublish("cmd/x", 1, false, fmt.Sprint(i))
	}
	startBridge(t, local, cfg)
	for i := range 3 {
		if m := localSub.Next(); m.Topic() != "from-cloud/cmd/x" || string(m.Payload()) != fmt.Sprint(i) {
			t.Fatalf("local got %q %q, want from-cloud/cmd/x %d", m.Topic(), m.Payload(), i)
		}
	}
}
