package broker_test

import (
	"fmt"
	"testing"

	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

// offlineSubscriber leaves a persistent session subscribed to filter at
// QoS 1 and disconnects.
func offlineSubscriber(t *testing.T, b *brokertest.Broker, id, filter string) {
	t.Helper()
	c := b.DialRaw(t)
	c.Connect(t, &mqtt.Connect{ProtocolLevel: mqtt.V5, ClientID: id, Props: mqtt.Properties{SessionExpiry: 3600}})
	c.Send(t, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: filter, QoS: 1}}})
	c.Expect(t, mqtt.SUBACK)
	c.Send(t, &mqtt.Disconnect{})
	c.ExpectClosed(t)
}

func publishV5(t *testing.T, c *brokertest.Raw, pid uint16, topic string, qos byte, payload string) mqtt.ReasonCode {
	t.Helper()
	c.Send(t, &mqtt.Publish{QoS: qos, PacketID: pid, Topic: []byte(topic), Payload: []byte(payload)})
	if qos == 0 {
		return 0
	}
	return c.Expect(t, mqtt.PUBACK).(*mqtt.Puback).ReasonCode
}

// TestQuotaSessionQueueFull: when a persistent session's queue is full, a
// QoS 1 PUBLISH routed to it is refused as a whole with 0x97 Quota
// exceeded (MQTT 5.0), queued QoS 0 messages are dropped first to make
// room, and every refusal is counted.
func TestQuotaSessionQueueFull(t *testing.T) {
	b := brokertest.Start(t, &broker.Options{MaxQueuedMessages: 5})
	offlineSubscriber(t, b, "full", "q/#")
	pub := b.DialRaw(t)
	pub.Connect(t, &mqtt.Connect{ProtocolLevel: mqtt.V5, CleanStart: true, ClientID: "pub"})

	for i := range 3 {
		if rc := publishV5(t, pub, uint16(i+1), "q/a", 1, fmt.Sprint("one-", i)); rc != mqtt.Success {
			t.Fatalf("QoS 1 #%d: reason %v", i, rc)
		}
	}
	for i := range 2 {
		publishV5(t, pub, 0, "q/a", 0, fmt.Sprint("zero-", i))
	}
	// 5 queued (3 QoS 1, 2 QoS 0): the next two QoS 1 replace the QoS 0 ones.
	for i := 3; i < 5; i++ {
		if rc := publishV5(t, pub, uint16(i+1), "q/a", 1, fmt.Sprint("one-", i)); rc != mqtt.Success {
			t.Fatalf("QoS 1 #%d after QoS 0: reason %v, want QoS 0 dropped to make room", i, rc)
		}
	}
	if rc := publishV5(t, pub, 6, "q/a", 1, "one-5"); rc != mqtt.QuotaExceeded {
		t.Fatalf("QoS 1 into a full queue: reason %v, want 0x97 quota exceeded", rc)
	}
	st := b.Server.Stats()
	if st.Dropped["quota_exceeded"] != 1 || st.Dropped["qos0_for_room"] != 2 {
		t.Fatalf("dropped %v, want quota_exceeded 1, qos0_for_room 2", st.Dropped)
	}

	// The subscriber gets exactly the five accepted QoS 1 messages.
	sub := b.DialRaw(t)
	sub.Connect(t, &mqtt.Connect{ProtocolLevel: mqtt.V5, ClientID: "full", Props: mqtt.Properties{SessionExpiry: 3600}})
	for i := range 5 {
		p := sub.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
		if want := fmt.Sprint("one-", i); string(p.Payload) != want {
			t.Fatalf("message %d: %q, want %q", i, p.Payload, want)
		}
		sub.Send(t, &mqtt.Puback{PacketID: p.PacketID})
	}
	// With the queue drained, publishing works again.
	if rc := publishV5(t, pub, 7, "q/a", 1, "again"); rc != mqtt.Success {
		t.Fatalf("after draining: reason %v", rc)
	}
	if p := sub.Expect(t, mqtt.PUBLISH).(*mqtt.Publish); string(p.Payload) != "again" {
		t.Fatalf("got %q", p.Payload)
	}
}

// TestQuotaStoreBudget: when MaxStoreBytes is spent, QoS 1/2 publishes that
// need the store are refused (0x97 for MQTT 5.0, disconnect without PUBACK
// for 3.1.1), QoS 0 keeps flowing to online subscribers, and service
// resumes once the queue drains.
func TestQuotaStoreBudget(t *testing.T) {
	b := brokertest.Start(t, &broker.Options{MaxStoreBytes: 4 << 10, MaxQueuedMessages: 1000})
	offlineSubscriber(t, b, "store", "s/#")
	online := b.DialRaw(t)
	online.Connect(t, &mqtt.Connect{ProtocolLevel: mqtt.V5, CleanStart: true, ClientID: "online"})
	online.Send(t, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "s/#"}}})
	online.Expect(t, mqtt.SUBACK)

	pub := b.DialRaw(t)
	pub.Connect(t, &mqtt.Connect{ProtocolLevel: mqtt.V5, CleanStart: true, ClientID: "pub"})
	payload := string(make([]byte, 512))
	accepted := 0
	for i := 1; ; i++ {
		if i > 100 {
			t.Fatal("store budget never reached")
		}
		rc := publishV5(t, pub, uint16(i), "s/x", 1, payload)
		if rc == mqtt.QuotaExceeded {
			break
		}
		if rc != mqtt.Success {
			t.Fatalf("reason %v", rc)
		}
		online.Expect(t, mqtt.PUBLISH)
		accepted++
	}
	if accepted < 4 || accepted > 8 {
		t.Fatalf("%d messages of 512 bytes accepted in a 4 KiB budget", accepted)
	}
	// QoS 0 still flows to the online subscriber, and the refused message
	// did not reach it.
	publishV5(t, pub, 0, "s/x", 0, "qos0")
	if p := online.Expect(t, mqtt.PUBLISH).(*mqtt.Publish); string(p.Payload) != "qos0" {
		t.Fatalf("online got %q, want the QoS 0 message (the refused one must not be delivered)", p.Payload)
	}

	// A 3.1.1 publisher is disconnected without an acknowledgement.
	old := brokertest.NewRaw(b.DialTCP(t), mqtt.V311)
	old.Connect(t, &mqtt.Connect{ProtocolLevel: mqtt.V311, CleanStart: true, ClientID: "old"})
	old.Send(t, &mqtt.Publish{QoS: 1, PacketID: 1, Topic: []byte("s/x"), Payload: []byte(payload)})
	old.ExpectClosed(t)

	// Draining the offline session frees the budget.
	sub := b.DialRaw(t)
	sub.Connect(t, &mqtt.Connect{ProtocolLevel: mqtt.V5, ClientID: "store", Props: mqtt.Properties{SessionExpiry: 3600}})
	for range accepted {
		p := sub.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
		if p.QoS == 1 {
			sub.Send(t, &mqtt.Puback{PacketID: p.PacketID})
		}
	}
	sub.Send(t, &mqtt.Disconnect{})
	brokertest.Eventually(t, brokertest.WaitTimeout, func() error {
		c := b.DialRaw(t)
		defer c.Conn.Close()
		c.Connect(t, &mqtt.Connect{ProtocolLevel: mqtt.V5, CleanStart: true, ClientID: "probe"})
		if rc := publishV5(t, c, 1, "s/x", 1, payload); rc != mqtt.Success {
			return fmt.Errorf("after draining: %v", rc)
		}
		return nil
	})
}
