//go:build linux

package broker_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

// Parked connections (broker/park_linux.go): an idle plain-TCP connection
// has no reader goroutine; these tests check that everything a connection
// does still works while it is parked.

// waitParked waits until n connections of b are parked.
func waitParked(t *testing.T, b *brokertest.Broker, n int) {
	t.Helper()
	brokertest.Eventually(t, 10*time.Second, func() error {
		if got := b.Server.Stats().Parked; got != n {
			return fmt.Errorf("%d connections parked, want %d", got, n)
		}
		return nil
	})
}

// TestParkedConnectionReceivesDelivery: a subscriber idle long enough to
// be parked still gets what is published to it, and wakes up when it
// sends a packet.
func TestParkedConnectionReceivesDelivery(t *testing.T) {
	b := brokertest.Start(t, nil)
	sub := b.DialRaw(t)
	sub.Connect(t, &mqtt.Connect{ClientID: "parked-sub", CleanStart: true})
	sub.Send(t, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "park/#", QoS: 1}}})
	sub.Expect(t, mqtt.SUBACK)
	waitParked(t, b, 1) // after the SUBSCRIBE, idle for parkAfter

	pub := b.DialRaw(t)
	pub.Connect(t, &mqtt.Connect{ClientID: "parked-pub", CleanStart: true})
	pub.Send(t, &mqtt.Publish{QoS: 1, PacketID: 7, Topic: []byte("park/a"), Payload: []byte("hello")})
	pub.Expect(t, mqtt.PUBACK)
	p := sub.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
	if string(p.Topic) != "park/a" || string(p.Payload) != "hello" || p.QoS != 1 {
		t.Fatalf("parked subscriber got %+v", p)
	}
	// Its PUBACK wakes it; the message is complete, and it answers pings.
	sub.Send(t, &mqtt.Puback{PacketID: p.PacketID})
	sub.Send(t, &mqtt.Pingreq{})
	sub.Expect(t, mqtt.PINGRESP)
	// Parked again once idle, and delivered to again.
	waitParked(t, b, 2)
	pub.Send(t, &mqtt.Publish{QoS: 0, Topic: []byte("park/b"), Payload: []byte("again")})
	if p := sub.Expect(t, mqtt.PUBLISH).(*mqtt.Publish); string(p.Payload) != "again" {
		t.Fatalf("parked subscriber got %+v", p)
	}
}

// TestParkedKeepAliveExpiry: a parked client that sends nothing is
// disconnected once 1.5 × its keep-alive has passed [MQTT-3.1.2-24], not
// before, and within the parked connections' sweep of a second after it.
func TestParkedKeepAliveExpiry(t *testing.T) {
	b := brokertest.Start(t, nil)
	c := b.DialRaw(t)
	start := time.Now()
	c.Connect(t, &mqtt.Connect{ClientID: "parked-ka", CleanStart: true, KeepAlive: 2})
	waitParked(t, b, 1) // parked at once after CONNECT: nothing followed it
	c.ExpectDisconnect(t, mqtt.KeepAliveTimeout)
	took := time.Since(start)
	const ka = 3 * time.Second // 1.5 × 2 s
	if took < ka || took > ka+ka/16+time.Second+time.Second {
		t.Errorf("disconnected %v after CONNECT, want %v to %v", took, ka, ka+ka/16+2*time.Second)
	}
	waitParked(t, b, 0)
}

// TestParkedTakeover: a new connection with the client id of a parked one
// takes its session over [MQTT-3.1.4-3]; the parked one gets DISCONNECT
// 0x8E and is closed.
func TestParkedTakeover(t *testing.T) {
	b := brokertest.Start(t, nil)
	old := b.DialRaw(t)
	old.Connect(t, &mqtt.Connect{ClientID: "parked-take", Props: mqtt.Properties{SessionExpiry: 60}})
	waitParked(t, b, 1)
	nc := b.DialRaw(t)
	ack := nc.Connect(t, &mqtt.Connect{ClientID: "parked-take", Props: mqtt.Properties{SessionExpiry: 60}})
	if !ack.SessionPresent || ack.ReasonCode != mqtt.Success {
		t.Fatalf("CONNACK %+v, want session present", ack)
	}
	old.ExpectDisconnect(t, mqtt.SessionTakenOver)
	nc.Send(t, &mqtt.Pingreq{})
	nc.Expect(t, mqtt.PINGRESP)
}

// TestParkedShutdown: Shutdown reaches parked connections (DISCONNECT
// 0x8B for MQTT 5.0) and waits for them, and does not wait long.
func TestParkedShutdown(t *testing.T) {
	b := brokertest.Start(t, nil)
	c := b.DialRaw(t)
	c.Connect(t, &mqtt.Connect{ClientID: "parked-shut", CleanStart: true})
	c311 := brokertest.NewRaw(b.DialTCP(t), mqtt.V311)
	c311.Connect(t, &mqtt.Connect{ClientID: "parked-shut-311", CleanStart: true})
	waitParked(t, b, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Server.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	c.ExpectDisconnect(t, mqtt.ServerShuttingDown)
	c311.ExpectClosed(t)
	if got := b.Server.Stats().Parked; got != 0 {
		t.Errorf("%d connections parked after Shutdown", got)
	}
}

// TestParkedSlowConsumer: a parked subscriber that reads nothing is still
// cut off as a slow consumer, and its connection ends (it is no longer
// counted): closing a parked connection wakes a reader that ends it.
func TestParkedSlowConsumer(t *testing.T) {
	b := brokertest.Start(t, &broker.Options{
		OutboundBufferBytes: 16 << 10,
		SlowConsumerTimeout: 300 * time.Millisecond,
		MaxPacketSize:       128 << 10,
	})
	conn := dialSmallRecvBuf(t, b.Addr)
	slow := brokertest.NewRaw(conn, mqtt.V311)
	slow.Connect(t, &mqtt.Connect{CleanStart: true, ClientID: "parked-slow"})
	slow.Send(t, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "flood"}}})
	slow.Expect(t, mqtt.SUBACK)
	pub := brokertest.NewRaw(b.DialTCP(t), mqtt.V311)
	pub.Connect(t, &mqtt.Connect{CleanStart: true, ClientID: "parked-slow-pub"})
	waitParked(t, b, 2) // both idle since their last packet

	payload := make([]byte, 32<<10)
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; b.Server.Stats().SlowConsumers == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("parked slow consumer not disconnected; stats %+v", b.Server.Stats())
		}
		pub.Send(t, &mqtt.Publish{Topic: []byte("flood"), Payload: payload})
	}
	brokertest.Eventually(t, 5*time.Second, func() error {
		if n := b.Server.Stats().Connections; n != 1 {
			return fmt.Errorf("%d connections, want 1 (the slow one closed)", n)
		}
		return nil
	})
	pub.Send(t, &mqtt.Pingreq{})
	pub.Expect(t, mqtt.PINGRESP)
}

// TestParkedClose: Close closes parked connections at once and returns.
func TestParkedClose(t *testing.T) {
	b := brokertest.Start(t, nil)
	c := b.DialRaw(t)
	c.Connect(t, &mqtt.Connect{ClientID: "parked-close", CleanStart: true})
	waitParked(t, b, 1)
	done := make(chan error, 1)
	go func() { done <- b.Server.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5s with a parked connection")
	}
	c.ExpectClosed(t)
}

// TestParkedIdleConnectionsCost: 2,000 connected, idle MQTT 3.1.1
// connections are all parked and cost no goroutine stack: that is what
// parking is for (docs/benchmarks.md, "Memory per idle connection"). The
// clients are in this process but hold no goroutines, so the stacks
// measured are the broker's; the heap measured holds both ends.
func TestParkedIdleConnectionsCost(t *testing.T) {
	const n = 2000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < 2*n+hxSilentMargin {
		t.Skipf("open-file limit %d too low for %d connections at both ends", lim.Cur, n)
	}
	b := brokertest.Start(t, nil)
	before := hxHeap()
	connect, err := (&mqtt.Connect{ProtocolLevel: mqtt.V311, CleanStart: true, KeepAlive: 600}).AppendTo(nil, mqtt.V311)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, err := net.DialTimeout("tcp", b.Addr, brokertest.WaitTimeout)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(brokertest.WaitTimeout))
		var ack [4]byte
		if _, err := c.Write(connect); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if _, err := io.ReadFull(c, ack[:]); err != nil || ack[0] != 0x20 || ack[3] != 0 {
			t.Fatalf("connection %d: CONNACK % x, %v", i, ack, err)
		}
	}
	waitParked(t, b, n)
	peak := hxHeap()
	heapPer := (float64(peak.HeapAlloc) - float64(before.HeapAlloc)) / n
	stackPer := (float64(peak.StackInuse) - float64(before.StackInuse)) / n
	t.Logf("%d parked connections: live heap %.2f KiB per connection (both ends), goroutine stacks %.0f B per connection",
		n, heapPer/1024, stackPer)
	// A goroutine per connection would be 2 KiB of stack each (4 KiB
	// with -race). Measured: 130–310 B, which is not per connection but
	// the stacks the runtime keeps in its pools after the connections'
	// CONNECT goroutines ended (about 0.5 MiB here).
	if stackPer > 1024 {
		t.Errorf("goroutine stacks %.0f B per parked connection, want at most 1024", stackPer)
	}
	if heapPer > 4<<10 {
		t.Errorf("live heap %.0f B per parked connection (both ends), want at most %d", heapPer, 4<<10)
	}
}

// TestPausedMidPacketNotParkedOrClosed: a client that pauses longer than
// the time to park in the middle of a packet (a slow or lossy link
// trickling a large PUBLISH) is neither parked (its bytes so far are in
// the read buffer) nor disconnected: only its keep-alive bounds the wait
// for the rest of the packet [MQTT-3.1.2-24]. With no keep-alive it may
// wait longer still.
func TestPausedMidPacketNotParkedOrClosed(t *testing.T) {
	for _, ka := range []uint16{60, 0} {
		t.Run(fmt.Sprint("keepalive=", ka), func(t *testing.T) {
			t.Parallel()
			b := brokertest.Start(t, nil)
			c := b.DialRaw(t)
			c.Connect(t, &mqtt.Connect{ClientID: "slow-link", CleanStart: true, KeepAlive: ka})
			pkt, err := (&mqtt.Publish{QoS: 1, PacketID: 9, Topic: []byte("slow/t"), Payload: make([]byte, 2000)}).AppendTo(nil, mqtt.V5)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Conn.Write(pkt[:1000]); err != nil {
				t.Fatal(err)
			}
			time.Sleep(broker.ParkAfter + 1500*time.Millisecond)
			if _, err := c.Conn.Write(pkt[1000:]); err != nil {
				t.Fatalf("the rest of the packet: %v (disconnected mid-packet)", err)
			}
			if p := c.Expect(t, mqtt.PUBACK).(*mqtt.Puback); p.PacketID != 9 {
				t.Fatalf("PUBACK for %d, want 9", p.PacketID)
			}
			c.Send(t, &mqtt.Pingreq{})
			c.Expect(t, mqtt.PINGRESP)
		})
	}
}

// TestStalledMidPacketKeepAlive: a client stalled in the middle of a
// packet is still disconnected once 1.5 × its keep-alive has passed
// without a whole packet [MQTT-3.1.2-24], although the time to park
// passed first.
func TestStalledMidPacketKeepAlive(t *testing.T) {
	b := brokertest.Start(t, nil)
	c := b.DialRaw(t)
	c.Connect(t, &mqtt.Connect{ClientID: "stalled", CleanStart: true, KeepAlive: 2})
	start := time.Now()
	if _, err := c.Conn.Write([]byte{0x32, 0x40, 0x00, 0x01, 't'}); err != nil { // a PUBLISH cut short
		t.Fatal(err)
	}
	c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, err := c.Read(10 * time.Second); err != nil {
			break // closed (after the DISCONNECT 0x8D)
		}
	}
	// 1.5 × 2 s, plus the keepAlive/16 a reader's deadline allows.
	if took := time.Since(start); took < 3*time.Second || took > 5*time.Second {
		t.Fatalf("closed %v after the stall, want between 3 s and 5 s", took.Round(time.Millisecond))
	}
}

// TestParkedConnectionLostPublishesWill: a parked client whose network
// connection goes without a DISCONNECT has its will published
// [MQTT-3.1.2-8], promptly: the epoll set sees the close.
func TestParkedConnectionLostPublishesWill(t *testing.T) {
	b := brokertest.Start(t, nil)
	watcher := b.DialRaw(t)
	watcher.Connect(t, &mqtt.Connect{ClientID: "watcher", CleanStart: true})
	watcher.Send(t, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "wills/#", QoS: 1}}})
	watcher.Expect(t, mqtt.SUBACK)

	dev := b.DialRaw(t)
	dev.Connect(t, &mqtt.Connect{ClientID: "device", CleanStart: true, KeepAlive: 600,
		Will: &mqtt.Will{Topic: "wills/device", Payload: []byte("gone"), QoS: 1}})
	waitParked(t, b, 2)
	lost := time.Now()
	dev.Conn.Close()
	p := watcher.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
	if string(p.Topic) != "wills/device" || string(p.Payload) != "gone" {
		t.Fatalf("watcher got %s %q, want the will", p.Topic, p.Payload)
	}
	if took := time.Since(lost); took > 2*time.Second {
		t.Fatalf("will published %v after the connection was lost", took)
	}
}
