package broker_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

// TestQueueBeyondMemoryWindow: a persistent session's queue longer than
// QueueMemoryWindow is kept in the store and read back in order, whether
// it built up while the client was offline or while it was online and not
// acknowledging; nothing is lost or duplicated.
func TestQueueBeyondMemoryWindow(t *testing.T) {
	const window, n = 10, 500
	b := brokertest.Start(t, &broker.Options{QueueMemoryWindow: window, MaxQueuedMessages: 10 * n, MaxInflight: 5})

	sub := b.DialRaw(t)
	sub.Connect(t, &mqtt.Connect{ProtocolLevel: mqtt.V311, ClientID: "spill"})
	sub.Send(t, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "spill/#", QoS: 1}}})
	sub.Expect(t, mqtt.SUBACK)
	sub.Send(t, &mqtt.Disconnect{})
	sub.ExpectClosed(t) // offline before anything is published

	// Several publishers at once, so that store commits and deliveries
	// interleave; each one's messages must stay in order.
	const pubs = 4
	var wg sync.WaitGroup
	for p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pc := b.DialRaw(t)
			pc.Connect(t, &mqtt.Connect{ProtocolLevel: mqtt.V311, CleanStart: true, ClientID: fmt.Sprintf("pub%d", p)})
			for i := range n / pubs {
				pc.Send(t, &mqtt.Publish{QoS: 1, PacketID: uint16(i + 1), Topic: []byte(fmt.Sprintf("spill/%d", p)),
					Payload: []byte(fmt.Sprint(i))})
			}
			for range n / pubs {
				pc.Expect(t, mqtt.PUBACK)
			}
		}()
	}
	wg.Wait()

	sub = b.DialRaw(t)
	if ack := sub.Connect(t, &mqtt.Connect{ProtocolLevel: mqtt.V311, ClientID: "spill"}); !ack.SessionPresent {
		t.Fatal("session not present")
	}
	next := make([]int, pubs)
	for got := 0; got < n; got++ {
		p := sub.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
		var from, i int
		fmt.Sscanf(string(p.Topic), "spill/%d", &from)
		fmt.Sscan(string(p.Payload), &i)
		if p.Dup || i != next[from] {
			t.Fatalf("message %d: from %d got #%d dup=%v, want #%d", got, from, i, p.Dup, next[from])
		}
		next[from]++
		sub.Send(t, &mqtt.Puback{PacketID: p.PacketID})
	}
	// Nothing more: a QoS 1 probe to itself arrives next.
	sub.Send(t, &mqtt.Publish{QoS: 1, PacketID: 1, Topic: []byte("spill/probe"), Payload: []byte("end")})
	for {
		pk, err := sub.Read(brokertest.WaitTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := pk.(*mqtt.Publish); ok {
			if string(p.Topic) != "spill/probe" {
				t.Fatalf("extra message %s %q", p.Topic, p.Payload)
			}
			break
		}
	}
}
