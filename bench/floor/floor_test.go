//go:build linux

package main

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/weirmq/weir/mqtt"
)

// The relay does what weir-bench's pub/sub scenarios need: CONNACK,
// SUBACK, a PUBACK to the publisher for each QoS 1 PUBLISH and the PUBLISH
// forwarded unchanged to the subscriber, whichever way it makes its system
// calls.
func TestRelayAcknowledgesAndForwards(t *testing.T) {
	for name, sc := range map[string]syscalls{"raw": rawCalls, "runtime": runtimeCalls} {
		t.Run(name, func(t *testing.T) {
			rl, err := newRelay(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, sc)
			if err != nil {
				t.Fatal(err)
			}
			addr := rl.addr().String()
			done := make(chan error, 1)
			go func() { done <- rl.serve(time.Now().Add(3 * time.Second)) }()
			defer func() {
				rl.stop.Store(true)
				if err := <-done; err != nil {
					t.Error(err)
				}
				rl.close()
			}()

			sub := dialMQTT(t, addr, "sub")
			sub.send(t, &mqtt.Subscribe{PacketID: 7, Subscriptions: []mqtt.Subscription{{Filter: "t/#", QoS: 1}}})
			var sa mqtt.Suback
			sub.expect(t, &sa)
			if sa.PacketID != 7 || len(sa.ReasonCodes) != 1 || sa.ReasonCodes[0] != 1 {
				t.Fatalf("SUBACK %+v, want packet 7 granting QoS 1", sa)
			}

			pub := dialMQTT(t, addr, "pub")
			for id := uint16(1); id <= 3; id++ {
				pub.send(t, &mqtt.Publish{Topic: []byte("t/a"), QoS: 1, PacketID: id, Payload: []byte{byte(id)}})
			}
			for id := uint16(1); id <= 3; id++ {
				var pa mqtt.Puback
				pub.expect(t, &pa)
				if pa.PacketID != id {
					t.Fatalf("PUBACK for %d, want %d", pa.PacketID, id)
				}
				var p mqtt.Publish
				sub.expect(t, &p)
				if p.PacketID != id || p.QoS != 1 || string(p.Topic) != "t/a" || len(p.Payload) != 1 || p.Payload[0] != byte(id) {
					t.Fatalf("forwarded %+v, want message %d on t/a at QoS 1", p, id)
				}
				sub.send(t, &mqtt.Puback{PacketID: id})
			}
			pub.send(t, &mqtt.Disconnect{})
			sub.send(t, &mqtt.Disconnect{})
			pub.conn.Close()
			sub.conn.Close()
		})
	}
}

type testConn struct {
	conn net.Conn
	rd   *mqtt.Reader
}

func dialMQTT(t *testing.T, addr, id string) *testConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	c := &testConn{conn: conn, rd: mqtt.NewReader(bufio.NewReader(conn), 0)}
	c.send(t, &mqtt.Connect{ProtocolLevel: mqtt.V311, CleanStart: true, ClientID: id})
	var ca mqtt.Connack
	c.expect(t, &ca)
	if ca.ReasonCode != 0 {
		t.Fatalf("CONNACK code %d", ca.ReasonCode)
	}
	return c
}

func (c *testConn) send(t *testing.T, p mqtt.Packet) {
	t.Helper()
	b, err := p.AppendTo(nil, mqtt.V311)
	if err == nil {
		_, err = c.conn.Write(b)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func (c *testConn) expect(t *testing.T, p mqtt.Packet) {
	t.Helper()
	pkt, err := c.rd.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	if got := mqtt.PeekType(pkt); got != p.Type() {
		t.Fatalf("got %v, want %v", got, p.Type())
	}
	if err := p.Decode(pkt, mqtt.V311); err != nil {
		t.Fatal(err)
	}
}

// A relay refuses what it does not speak: MQTT 5.0 is closed at CONNECT.
func TestRelayRefusesMQTT5(t *testing.T) {
	rl, err := newRelay(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, runtimeCalls)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- rl.serve(time.Now().Add(2 * time.Second)) }()
	defer func() { rl.stop.Store(true); <-done; rl.close() }()
	conn, err := net.DialTimeout("tcp", rl.addr().String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	b, _ := (&mqtt.Connect{ProtocolLevel: mqtt.V5, ClientID: "x"}).AppendTo(nil, mqtt.V5)
	conn.Write(b)
	if n, err := conn.Read(make([]byte, 16)); err == nil {
		t.Fatalf("got %d bytes, want the connection closed", n)
	}
}
