package broker_test

// Hostile clients against the limits of limits.go: bounded in count and
// time, loopback only, while a healthy client keeps working.

import (
	"fmt"
	"testing"
	"time"

	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/mqtt"
)

// TestHostileSubscriptionFlood: 20,000 subscriptions from one client are
// capped at MaxSubscriptionsPerClient (default 1000); the rest get 0x97,
// the heap stays small and the healthy client keeps working.
func TestHostileSubscriptionFlood(t *testing.T) {
	b := hxStart(t, nil)
	healthy := hxStartHealthy(t, b.Addr)
	before := hxHeap()

	c := hxMustDial(t, b.Addr)
	c.mustConnect(t, mqtt.V5, "sub-flood", 60)
	const packets, perPacket = 200, 100
	go func() {
		for i := range packets {
			s := &mqtt.Subscribe{PacketID: uint16(i + 1)}
			for j := range perPacket {
				s.Subscriptions = append(s.Subscriptions, mqtt.Subscription{Filter: fmt.Sprintf("flood/%d/%d/#", i, j)})
			}
			if c.send(s) != nil {
				return
			}
		}
	}()
	granted, quota := 0, 0
	for range packets {
		p, err := c.recv()
		if err != nil {
			t.Fatalf("reading SUBACK: %v", err)
		}
		ack, ok := p.(*mqtt.Suback)
		if !ok {
			t.Fatalf("got %v, want SUBACK", p.Type())
		}
		for _, code := range ack.ReasonCodes {
			switch code {
			case 0:
				granted++
			case mqtt.QuotaExceeded:
				quota++
			default:
				t.Fatalf("SUBACK code 0x%02x", byte(code))
			}
		}
	}
	if granted != 1000 || quota != packets*perPacket-1000 {
		t.Fatalf("granted %d, quota exceeded %d; want 1000 and %d", granted, quota, packets*perPacket-1000)
	}
	healthy.alive(t)
	after := hxHeap()
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	// 1000 subscriptions cost well under a megabyte; 8 MiB leaves room
	// for the GC's and the race detector's noise, not for 20,000.
	if grew > 8<<20 {
		t.Errorf("heap grew by %d bytes with 1000 subscriptions held", grew)
	}
	t.Logf("20,000 filters sent, 1000 held; heap %+d KiB", grew>>10)
}

// TestHostilePublishFloodIsThrottled: a client sending QoS 0 PUBLISH as
// fast as it can is held to PublishRate by back-pressure, while the healthy
// client keeps its round trips.
func TestHostilePublishFloodIsThrottled(t *testing.T) {
	const rate, burst = 500, 50
	b := hxStart(t, func(o *broker.Options) { o.PublishRate, o.PublishBurst = rate, burst })
	healthy := hxStartHealthy(t, b.Addr)
	healthy.alive(t)

	c := hxMustDial(t, b.Addr)
	c.mustConnect(t, mqtt.V311, "pub-flood", 60)
	pkt := hxEncode(t, &mqtt.Publish{Topic: []byte("flood/x"), Payload: make([]byte, 64)}, mqtt.V311)
	batch := make([]byte, 0, 100*len(pkt))
	for range 100 {
		batch = append(batch, pkt...)
	}
	// MessagesReceived counts the healthy client's publishes too (one per
	// round); they are subtracted.
	from, fromRounds := b.Server.Stats().MessagesReceived, healthy.rounds.Load()
	start := time.Now()
	const flood = 1500 * time.Millisecond
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.SetWriteDeadline(start.Add(flood))
		for time.Since(start) < flood {
			if _, err := c.Write(batch); err != nil {
				return // the deadline: the broker is not reading
			}
		}
	}()
	healthy.alive(t) // while the flood goes on
	<-done
	elapsed := time.Since(start)
	got := b.Server.Stats().MessagesReceived - from - (healthy.rounds.Load() - fromRounds) // ± one round in flight
	limit := int64(rate*elapsed.Seconds()) + burst
	if got > limit+limit/10 {
		t.Errorf("%d PUBLISH handled in %v; PublishRate %d/s with burst %d allows %d", got, elapsed, rate, burst, limit)
	}
	if got < rate/2 {
		t.Errorf("only %d PUBLISH handled in %v: the flood was not served at its rate", got, elapsed)
	}
	t.Logf("flood: %d PUBLISH handled in %v (limit %d)", got, elapsed, limit)
}
