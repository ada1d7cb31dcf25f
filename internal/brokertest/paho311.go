package brokertest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/weirmq/weir/mqtt"
)

// WaitTimeout bounds every wait of the helpers in this file: a packet, a
// token, a message that should arrive.
const WaitTimeout = 5 * time.Second

// Transport is one way of reaching a test broker.
type Transport struct {
	Name string
	// URL is the broker's URL for paho: tcp://… or ws://….
	URL func(b *Broker) string
	// Dial opens a raw connection that carries MQTT bytes.
	Dial func(b *Broker) (net.Conn, error)
}

// Transports returns TCP and WebSocket, for tests that run each scenario
// over both.
func Transports() []Transport {
	return []Transport{
		{
			Name: "tcp",
			URL:  func(b *Broker) string { return b.TCPURL() },
			Dial: func(b *Broker) (net.Conn, error) { return net.DialTimeout("tcp", b.Addr, WaitTimeout) },
		},
		{
			Name: "ws",
			URL:  func(b *Broker) string { return b.WSURL },
			Dial: func(b *Broker) (net.Conn, error) {
				// paho's WebSocket connector: binary messages, subprotocol "mqtt".
				return paho.NewWebsocket(b.WSURL, nil, WaitTimeout, nil, nil)
			},
		},
	}
}

// Paho311 is a paho MQTT 3.1.1 client of a test broker. Every message
// it receives goes to Msgs (subscriptions register no per-filter handler,
// so a message matching several of them is still seen once, as sent).
type Paho311 struct {
	paho.Client
	t    testing.TB
	Msgs chan paho.Message
	Lost chan error // connection-lost notifications

	mu   sync.Mutex
	conn net.Conn // underlying connection of the last connect
}

// NewPaho311 returns an unconnected paho 3.1.1 client with id for b over tr,
// with auto-reconnect off and clean session on; configure (may be nil)
// changes its options. The client is disconnected when the test ends.
func NewPaho311(t testing.TB, b *Broker, tr Transport, id string, configure func(*paho.ClientOptions)) *Paho311 {
	t.Helper()
	pc := &Paho311{t: t, Msgs: make(chan paho.Message, 4096), Lost: make(chan error, 4)}
	o := paho.NewClientOptions().
		AddBroker(tr.URL(b)).
		SetClientID(id).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectTimeout(WaitTimeout).
		SetWriteTimeout(WaitTimeout).
		SetKeepAlive(30 * time.Second).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { pc.Msgs <- m }).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case pc.Lost <- err:
			default:
			}
		}).
		SetCustomOpenConnectionFn(func(*url.URL, paho.ClientOptions) (net.Conn, error) {
			c, err := tr.Dial(b)
			if err == nil {
				pc.mu.Lock()
				pc.conn = c
				pc.mu.Unlock()
			}
			return c, err
		})
	if configure != nil {
		configure(o)
	}
	pc.Client = paho.NewClient(o)
	t.Cleanup(func() {
		if pc.IsConnectionOpen() {
			pc.Disconnect(100)
		}
	})
	return pc
}

// ConnectPaho311 returns a connected paho 3.1.1 client (see NewPaho311).
func ConnectPaho311(t testing.TB, b *Broker, tr Transport, id string, configure func(*paho.ClientOptions)) *Paho311 {
	t.Helper()
	pc := NewPaho311(t, b, tr, id, configure)
	pc.MustConnect()
	return pc
}

// MustConnect connects and returns CONNACK's session present flag.
func (pc *Paho311) MustConnect() (sessionPresent bool) {
	pc.t.Helper()
	tok := pc.Connect()
	if err := wait311(tok); err != nil {
		pc.t.Fatalf("paho connect: %v", err)
	}
	return tok.(*paho.ConnectToken).SessionPresent()
}

// MustSubscribe subscribes to filter and returns the granted QoS.
func (pc *Paho311) MustSubscribe(filter string, qos byte) byte {
	pc.t.Helper()
	tok := pc.Subscribe(filter, qos, nil)
	if err := wait311(tok); err != nil {
		pc.t.Fatalf("paho subscribe %q: %v", filter, err)
	}
	// paho keys the result by the filter without any "$share/group/".
	res := tok.(*paho.SubscribeToken).Result()
	if len(res) != 1 {
		pc.t.Fatalf("paho subscribe %q: results %v, want one", filter, res)
	}
	for _, granted := range res {
		return granted
	}
	return 0
}

// MustUnsubscribe unsubscribes and waits for UNSUBACK.
func (pc *Paho311) MustUnsubscribe(filters ...string) {
	pc.t.Helper()
	if err := wait311(pc.Unsubscribe(filters...)); err != nil {
		pc.t.Fatalf("paho unsubscribe %q: %v", filters, err)
	}
}

// MustPublish publishes and waits until the exchange is complete (PUBACK,
// PUBCOMP, or written for QoS 0).
func (pc *Paho311) MustPublish(topic string, qos byte, retained bool, payload string) {
	pc.t.Helper()
	if err := wait311(pc.Publish(topic, qos, retained, []byte(payload))); err != nil {
		pc.t.Fatalf("paho publish %q: %v", topic, err)
	}
}

// Next returns the next message received, failing the test if none comes
// within WaitTimeout.
func (pc *Paho311) Next() paho.Message {
	pc.t.Helper()
	select {
	case m := <-pc.Msgs:
		return m
	case <-time.After(WaitTimeout):
		pc.t.Fatalf("no message received within %v", WaitTimeout)
		return nil
	}
}

// DropConnection closes the network connection under the client without
// a DISCONNECT, as a crashed device or a lost network would.
func (pc *Paho311) DropConnection() {
	pc.mu.Lock()
	c := pc.conn
	pc.mu.Unlock()
	if c == nil {
		pc.t.Fatal("DropConnection: never connected")
	}
	c.Close()
}

// WaitLost waits for the client to notice that its connection ended.
func (pc *Paho311) WaitLost(timeout time.Duration) error {
	select {
	case <-pc.Lost:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("connection not lost within %v", timeout)
	}
}

func wait311(tok paho.Token) error {
	if !tok.WaitTimeout(WaitTimeout) {
		return fmt.Errorf("no answer within %v", WaitTimeout)
	}
	return tok.Error()
}

// Raw311 speaks MQTT with Weir's own codec over a raw connection, for
// what a well-behaved client library will not do: withhold PUBACK, stop
// pinging, vanish.
type Raw311 struct {
	t       testing.TB
	Conn    net.Conn
	Version mqtt.Version
	rd      *mqtt.Reader
}

// DialRaw311 opens a raw connection to b over tr; it is closed when the test
// ends.
func DialRaw311(t testing.TB, b *Broker, tr Transport) *Raw311 {
	t.Helper()
	c, err := tr.Dial(b)
	if err != nil {
		t.Fatalf("dial %s: %v", tr.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return &Raw311{t: t, Conn: c, Version: mqtt.V311, rd: mqtt.NewReader(c, 0)}
}

// Send encodes and writes p.
func (c *Raw311) Send(p mqtt.Packet) {
	c.t.Helper()
	b, err := p.AppendTo(nil, c.Version)
	if err != nil {
		c.t.Fatalf("encode %v: %v", p.Type(), err)
	}
	c.Conn.SetWriteDeadline(time.Now().Add(WaitTimeout))
	if _, err := c.Conn.Write(b); err != nil {
		c.t.Fatalf("write %v: %v", p.Type(), err)
	}
}

// Read returns the next packet, decoded, or the read error; timeout bounds
// the wait. (Over WebSocket a timed-out connection is unusable.)
func (c *Raw311) Read(timeout time.Duration) (mqtt.Packet, error) {
	c.Conn.SetReadDeadline(time.Now().Add(timeout))
	pkt, err := c.rd.ReadPacket()
	if err != nil {
		return nil, err
	}
	return mqtt.Decode(append([]byte(nil), pkt...), c.Version)
}

// Expect reads the next packet and fails the test unless it arrives within
// WaitTimeout and has type T.
func Expect311[T mqtt.Packet](c *Raw311) T {
	c.t.Helper()
	p, err := c.Read(WaitTimeout)
	if err != nil {
		c.t.Fatalf("reading packet: %v", err)
	}
	v, ok := p.(T)
	if !ok {
		var want T
		c.t.Fatalf("got %v %+v, want %T", p.Type(), p, want)
	}
	return v
}

// Connect sends p (MQTT 3.1.1 unless p says otherwise) and returns the
// CONNACK, failing the test unless the connection is accepted.
func (c *Raw311) Connect(p *mqtt.Connect) *mqtt.Connack {
	c.t.Helper()
	if p.ProtocolLevel == 0 {
		p.ProtocolLevel = mqtt.V311
	}
	c.Version = p.ProtocolLevel
	c.Send(p)
	ack := Expect311[*mqtt.Connack](c)
	if ack.ReasonCode != 0 {
		c.t.Fatalf("CONNACK code %v", ack.ReasonCode)
	}
	return ack
}

// WaitClosed reads until the broker closes the connection and returns how
// long that took, or an error if it is still open after timeout or sends
// a packet.
func (c *Raw311) WaitClosed(timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	p, err := c.Read(timeout)
	took := time.Since(start)
	var re *mqtt.ReasonError
	switch {
	case err == nil:
		return took, fmt.Errorf("got %v, want the connection closed", p.Type())
	case isTimeout311(err):
		return took, fmt.Errorf("connection still open after %v", timeout)
	case errors.As(err, &re):
		return took, fmt.Errorf("bad packet from the broker: %w", err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return took, nil
	default:
		// Connection reset, WebSocket close frame: closed all the same.
		return took, nil
	}
}

func isTimeout311(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
