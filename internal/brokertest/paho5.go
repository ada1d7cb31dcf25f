package brokertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/weirmq/weir/mqtt"
)

// DialTCP opens a TCP connection to the broker, closed when the test ends.
func (b *Broker) DialTCP(t testing.TB) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", b.Addr, WaitTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", b.Addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// DialWS opens an MQTT-over-WebSocket connection to the broker (binary
// messages, subprotocol "mqtt"), closed when the test ends.
func (b *Broker) DialWS(t testing.TB) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	wc, _, err := websocket.Dial(ctx, b.WSURL, &websocket.DialOptions{Subprotocols: []string{"mqtt"}})
	if err != nil {
		t.Fatalf("websocket dial %s: %v", b.WSURL, err)
	}
	if wc.Subprotocol() != "mqtt" {
		t.Fatalf("websocket subprotocol %q, want mqtt", wc.Subprotocol())
	}
	conn := websocket.NetConn(context.Background(), wc, websocket.MessageBinary)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Paho is a paho.golang MQTT 5.0 client connected to a test broker. What
// it receives is collected on channels so tests can wait with deadlines.
type Paho struct {
	*paho.Client
	Connack     *paho.Connack
	Msgs        chan *paho.Publish    // PUBLISH packets received, in order
	Disconnects chan *paho.Disconnect // DISCONNECT packets from the server
	Errs        chan error            // client errors (connection lost, …)
}

// ConnectPaho runs the MQTT 5.0 handshake cp over conn with a paho.golang
// client. cfg, when not nil, may adjust the client configuration before
// the client is created. It returns the client and the error of Connect
// (the client's Connack is set whenever the server answered); the client
// is disconnected when the test ends.
func ConnectPaho(t testing.TB, conn net.Conn, cp *paho.Connect, cfg func(*paho.ClientConfig)) (*Paho, error) {
	t.Helper()
	p := &Paho{
		Msgs:        make(chan *paho.Publish, 1024),
		Disconnects: make(chan *paho.Disconnect, 4),
		Errs:        make(chan error, 16),
	}
	cc := paho.ClientConfig{
		// paho writes one packet in several Writes (net.Buffers) from
		// several goroutines (the pinger sends its first PINGREQ at once);
		// over WebSocket each Write is a message, so without the lock
		// packets interleave.
		Conn: packets.NewThreadSafeConn(conn),
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(r paho.PublishReceived) (bool, error) {
				select {
				case p.Msgs <- r.Packet:
				default: // a test that lets 1024 messages pile up fails on counts anyway
				}
				return true, nil
			},
		},
		OnServerDisconnect: func(d *paho.Disconnect) {
			select {
			case p.Disconnects <- d:
			default:
			}
		},
		OnClientError: func(err error) {
			select {
			case p.Errs <- err:
			default:
			}
		},
		PacketTimeout: WaitTimeout,
	}
	if cfg != nil {
		cfg(&cc)
	}
	p.Client = paho.NewClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	ca, err := p.Client.Connect(ctx, cp)
	p.Connack = ca
	if err == nil {
		t.Cleanup(func() { _ = p.Client.Disconnect(&paho.Disconnect{ReasonCode: 0}) })
	}
	return p, err
}

// MustConnectPaho is ConnectPaho over a new TCP connection, failing the
// test if the connection is not accepted.
func (b *Broker) MustConnectPaho(t testing.TB, cp *paho.Connect) *Paho {
	t.Helper()
	p, err := ConnectPaho(t, b.DialTCP(t), cp, nil)
	if err != nil {
		t.Fatalf("connect %q: %v", cp.ClientID, err)
	}
	return p
}

// Next returns the next message received, failing the test if none arrives
// within WaitTimeout.
func (p *Paho) Next(t testing.TB) *paho.Publish {
	t.Helper()
	select {
	case m := <-p.Msgs:
		return m
	case <-time.After(WaitTimeout):
		t.Fatalf("client %q: no message within %v", p.ClientID(), WaitTimeout)
		return nil
	}
}

// ExpectDisconnect waits for a DISCONNECT from the server and fails the
// test unless it comes within WaitTimeout with reason code want.
func (p *Paho) ExpectDisconnect(t testing.TB, want mqtt.ReasonCode) {
	t.Helper()
	select {
	case d := <-p.Disconnects:
		if d.ReasonCode != byte(want) {
			t.Errorf("DISCONNECT reason 0x%02x, want 0x%02x (%v)", d.ReasonCode, byte(want), want)
		}
	case err := <-p.Errs:
		t.Fatalf("connection ended without DISCONNECT 0x%02x: %v", byte(want), err)
	case <-time.After(WaitTimeout):
		t.Fatalf("no DISCONNECT within %v", WaitTimeout)
	}
}

// NoMessage fails the test if a message arrives within d.
func (p *Paho) NoMessage(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case m := <-p.Msgs:
		t.Fatalf("client %q: unexpected message on %q: %q", p.ClientID(), m.Topic, m.Payload)
	case <-time.After(d):
	}
}

// MustSubscribe subscribes and fails the test unless every subscription is
// granted (reason code below 0x80).
func (p *Paho) MustSubscribe(t testing.TB, s *paho.Subscribe) *paho.Suback {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	sa, err := p.Subscribe(ctx, s)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	for i, rc := range sa.Reasons {
		if rc >= 0x80 {
			t.Fatalf("subscription %d refused: reason 0x%02x", i, rc)
		}
	}
	return sa
}

// MustPublish publishes and fails the test on an error (for QoS 1 and 2,
// a reason code of 0x80 or more is an error too). It returns the response.
func (p *Paho) MustPublish(t testing.TB, m *paho.Publish) *paho.PublishResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	r, err := p.Publish(ctx, m)
	if err != nil {
		t.Fatalf("publish to %q: %v", m.Topic, err)
	}
	return r
}

// Raw is an MQTT client that speaks through the project's codec one packet
// at a time, for tests that must send or see the wire form.
type Raw struct {
	Conn     net.Conn
	V        mqtt.Version
	LastSize int // bytes of the last packet Read returned, fixed header included
	rd       *mqtt.Reader
}

// NewRaw wraps conn; packets are encoded and decoded at level v.
func NewRaw(conn net.Conn, v mqtt.Version) *Raw {
	return &Raw{Conn: conn, V: v, rd: mqtt.NewReader(conn, 0)}
}

// DialRaw opens a TCP connection for a raw MQTT 5.0 client.
func (b *Broker) DialRaw(t testing.TB) *Raw {
	t.Helper()
	return NewRaw(b.DialTCP(t), mqtt.V5)
}

// Send encodes and writes p, failing the test on an error.
func (r *Raw) Send(t testing.TB, p mqtt.Packet) {
	t.Helper()
	b, err := p.AppendTo(nil, r.V)
	if err != nil {
		t.Fatalf("encode %v: %v", p.Type(), err)
	}
	r.SendBytes(t, b)
}

// SendBytes writes b as it is.
func (r *Raw) SendBytes(t testing.TB, b []byte) {
	t.Helper()
	r.Conn.SetWriteDeadline(time.Now().Add(WaitTimeout))
	if _, err := r.Conn.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// Read returns the next packet, decoded, waiting at most d. A PUBLISH is
// copied out of the read buffer.
func (r *Raw) Read(d time.Duration) (mqtt.Packet, error) {
	r.Conn.SetReadDeadline(time.Now().Add(d))
	pkt, err := r.rd.ReadPacket()
	if err != nil {
		return nil, err
	}
	r.LastSize = len(pkt)
	p, err := mqtt.Decode(pkt, r.V)
	if err != nil {
		return nil, fmt.Errorf("decoding %v: %w", mqtt.PeekType(pkt), err)
	}
	if pub, ok := p.(*mqtt.Publish); ok {
		p = pub.Clone()
	}
	return p, nil
}

// Expect returns the next packet, failing the test unless it arrives within
// WaitTimeout and has type want.
func (r *Raw) Expect(t testing.TB, want mqtt.PacketType) mqtt.Packet {
	t.Helper()
	p, err := r.Read(WaitTimeout)
	if err != nil {
		t.Fatalf("waiting for %v: %v", want, err)
	}
	if p.Type() != want {
		t.Fatalf("got %v %+v, want %v", p.Type(), p, want)
	}
	return p
}

// Connect sends c (MQTT 5.0 unless c says otherwise) and returns the
// CONNACK, failing the test if there is none.
func (r *Raw) Connect(t testing.TB, c *mqtt.Connect) *mqtt.Connack {
	t.Helper()
	if c.ProtocolLevel == 0 {
		c.ProtocolLevel = r.V
	}
	r.V = c.ProtocolLevel
	r.Send(t, c)
	return r.Expect(t, mqtt.CONNACK).(*mqtt.Connack)
}

// ExpectDisconnect reads until a DISCONNECT arrives (other packets are
// skipped), fails the test unless its reason code is want, then expects
// the server to close the connection.
func (r *Raw) ExpectDisconnect(t testing.TB, want mqtt.ReasonCode) *mqtt.Disconnect {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for {
		p, err := r.Read(time.Until(deadline))
		if err != nil {
			t.Fatalf("waiting for DISCONNECT 0x%02x: %v", byte(want), err)
		}
		d, ok := p.(*mqtt.Disconnect)
		if !ok {
			continue
		}
		if d.ReasonCode != want {
			t.Fatalf("DISCONNECT reason 0x%02x (%v), want 0x%02x (%v); reason string %q",
				byte(d.ReasonCode), d.ReasonCode, byte(want), want, d.Props.ReasonString)
		}
		r.ExpectClosed(t)
		return d
	}
}

// ExpectClosed fails the test unless the server closes the connection
// within WaitTimeout without sending anything more.
func (r *Raw) ExpectClosed(t testing.TB) {
	t.Helper()
	p, err := r.Read(WaitTimeout)
	switch {
	case err == nil:
		t.Fatalf("expected the connection to be closed, got %v %+v", p.Type(), p)
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatalf("connection still open %v after the server should have closed it", WaitTimeout)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
	default:
		var ne *net.OpError
		if !errors.As(err, &ne) { // connection reset and the like
			t.Fatalf("waiting for close: %v", err)
		}
	}
}
