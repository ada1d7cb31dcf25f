package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/weirmq/weir/mqtt"
)

// client is one raw MQTT connection: buffered writes flushed by the caller
// once per batch, packets framed by mqtt.Reader over a buffered reader.
type client struct {
	conn net.Conn
	bw   *bufio.Writer
	br   *bufio.Reader
	rd   *mqtt.Reader
	v    mqtt.Version
	stop func() bool // detaches the close-on-cancel hook
	// flushOnRead makes every read from the socket first flush what is
	// buffered for writing, so that acknowledgements go out in one write
	// per batch of input and never wait behind a read that blocks. Only
	// for a connection whose reads and writes happen on one goroutine.
	flushOnRead bool
}

// connReader is what a client's bufio.Reader reads from.
type connReader struct{ c *client }

func (r connReader) Read(p []byte) (int, error) {
	if c := r.c; c.flushOnRead && c.bw.Buffered() > 0 {
		if err := c.bw.Flush(); err != nil {
			return 0, err
		}
	}
	return r.c.conn.Read(p)
}

type dialOpts struct {
	addr      string
	id        string
	clean     bool
	v         mqtt.Version
	keepAlive uint16
	bufSize   int           // bufio sizes; small for idle connections
	timeout   time.Duration // dial and CONNACK
	expiry    uint32        // MQTT 5.0 Session Expiry Interval
}

// dial connects and completes the CONNECT/CONNACK exchange. The connection
// is closed when ctx is done. It returns the CONNACK's Session Present.
func dial(ctx context.Context, o dialOpts) (*client, bool, error) {
	d := net.Dialer{Timeout: o.timeout}
	conn, err := d.DialContext(ctx, "tcp", o.addr)
	if err != nil {
		return nil, false, err
	}
	c := &client{conn: conn, v: o.v, bw: bufio.NewWriterSize(conn, o.bufSize)}
	c.br = bufio.NewReaderSize(connReader{c}, o.bufSize)
	c.rd = mqtt.NewReader(c.br, 0)
	c.stop = context.AfterFunc(ctx, func() { conn.Close() })
	cp := &mqtt.Connect{ProtocolLevel: o.v, CleanStart: o.clean, KeepAlive: o.keepAlive, ClientID: o.id}
	if o.v == mqtt.V5 {
		cp.Props.SessionExpiry = o.expiry
	}
	conn.SetDeadline(time.Now().Add(o.timeout))
	if err := c.send(cp); err == nil {
		err = c.flush()
	}
	var ca mqtt.Connack
	if err == nil {
		err = c.expect(&ca)
	}
	if err == nil && ca.ReasonCode != 0 {
		err = fmt.Errorf("CONNACK refused with code 0x%02X", byte(ca.ReasonCode))
	}
	if err != nil {
		c.close()
		return nil, false, fmt.Errorf("connect %s: %w", o.id, err)
	}
	conn.SetDeadline(time.Time{})
	return c, ca.SessionPresent, nil
}

// send encodes p into the write buffer.
func (c *client) send(p mqtt.Packet) error {
	b, err := p.AppendTo(c.bw.AvailableBuffer(), c.v)
	if err != nil {
		return err
	}
	_, err = c.bw.Write(b)
	return err
}

func (c *client) flush() error { return c.bw.Flush() }

// expect reads the next packet into p, which must be of the same type.
func (c *client) expect(p mqtt.Packet) error {
	pkt, err := c.rd.ReadPacket()
	if err != nil {
		return err
	}
	if got := mqtt.PeekType(pkt); got != p.Type() {
		return fmt.Errorf("got %v, want %v", got, p.Type())
	}
	return p.Decode(pkt, c.v)
}

// subscribe subscribes to filter at qos and waits for the SUBACK.
func (c *client) subscribe(filter string, qos byte, timeout time.Duration) error {
	c.conn.SetDeadline(time.Now().Add(timeout))
	defer c.conn.SetDeadline(time.Time{})
	s := &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: filter, QoS: qos}}}
	if err := c.send(s); err != nil {
		return err
	}
	if err := c.flush(); err != nil {
		return err
	}
	var sa mqtt.Suback
	if err := c.expect(&sa); err != nil {
		return fmt.Errorf("SUBACK: %w", err)
	}
	if len(sa.ReasonCodes) != 1 || byte(sa.ReasonCodes[0]) != qos {
		return fmt.Errorf("SUBACK granted %v, asked QoS %d", sa.ReasonCodes, qos)
	}
	return nil
}

// disconnect sends DISCONNECT and closes the connection.
func (c *client) disconnect() {
	c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	if c.send(&mqtt.Disconnect{}) == nil {
		c.flush()
	}
	c.close()
}

func (c *client) close() {
	if c.stop != nil {
		c.stop()
	}
	c.conn.Close()
}

// isClosed reports whether err is what reading or writing a connection
// returns after it was closed on purpose.
func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed)
}
