package broker_test

import (
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

// TestSlowConsumer: a subscriber that stops reading loses QoS 0 messages
// (counted as slow_client drops) and is disconnected once it stays over its
// outbound buffer limit for SlowConsumerTimeout; the publisher is never
// blocked and other subscribers keep receiving.
func TestSlowConsumer(t *testing.T) {
	b := brokertest.Start(t, &broker.Options{
		OutboundBufferBytes: 16 << 10,
		SlowConsumerTimeout: 300 * time.Millisecond,
		MaxPacketSize:       128 << 10,
	})
	conn := dialSmallRecvBuf(t, b.Addr)
	slow := brokertest.NewRaw(conn, mqtt.V311)
	slow.Connect(t, &mqtt.Connect{ProtocolLevel: mqtt.V311, CleanStart: true, ClientID: "slow"})
	slow.Send(t, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "flood"}}})
	slow.Expect(t, mqtt.SUBACK)
	// From here on the slow client reads nothing.

	fast := b.DialRaw(t)
	fast.Connect(t, &mqtt.Connect{ProtocolLevel: mqtt.V311, CleanStart: true, ClientID: "fast"})
	fast.Send(t, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "flood/fast"}}})
	fast.Expect(t, mqtt.SUBACK)

	pub := b.DialRaw(t)
	pub.Connect(t, &mqtt.Connect{ProtocolLevel: mqtt.V311, CleanStart: true, ClientID: "pub"})
	payload := make([]byte, 32<<10)
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("slow consumer not disconnected; stats %+v", b.Server.Stats())
		}
		pub.Send(t, &mqtt.Publish{Topic: []byte("flood"), Payload: payload})
		if i%50 == 0 {
			st := b.Server.Stats()
			if st.SlowConsumers > 0 && st.Dropped["slow_client"] > 0 {
				break
			}
		}
	}
	// The publisher was not blocked: it still gets answers at once, and
	// another subscriber still receives.
	pub.Send(t, &mqtt.Publish{Topic: []byte("flood/fast"), Payload: []byte("still here")})
	if p, ok := fast.Expect(t, mqtt.PUBLISH).(*mqtt.Publish); !ok || string(p.Payload) != "still here" {
		t.Fatalf("fast subscriber got %v", p)
	}
	pub.Send(t, &mqtt.Pingreq{})
	pub.Expect(t, mqtt.PINGRESP)
	brokertest.Eventually(t, 5*time.Second, func() error {
		if n := b.Server.Stats().Connections; n != 2 {
			return fmt.Errorf("%d connections, want 2 (slow one closed)", n)
		}
		return nil
	})
}

// dialSmallRecvBuf connects to addr with a 4 KiB receive buffer, so that
// the kernel cannot absorb a flood to a client that reads nothing. The
// connection is closed when the test ends.
func dialSmallRecvBuf(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return serr
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
