package bridge

import (
	"net"
	"sync"
	"time"

	"github.com/weirmq/weir/mqtt"
)

// link is one MQTT connection of the bridge, to the upstream broker or to
// the local one, framed and encoded with package mqtt. One goroutine reads;
// writes from any goroutine are serialised.
type link struct {
	conn net.Conn
	rd   *mqtt.Reader
	v    mqtt.Version

	wmu     sync.Mutex
	buf     []byte
	timeout time.Duration // write deadline; 0 none
}

func newLink(conn net.Conn, v mqtt.Version, maxPacket int, timeout time.Duration) *link {
	return &link{conn: conn, rd: mqtt.NewReader(conn, maxPacket), v: v, timeout: timeout}
}

// send encodes and writes p, with whatever queue left unwritten.
func (l *link) send(p mqtt.Packet) error { return l.write(p, true) }

// queue encodes p to be written by the next send or flush: a reader that
// has more packets already buffered queues what they cause, so that one
// write carries many packets.
func (l *link) queue(p mqtt.Packet) error { return l.write(p, false) }

// flush writes what queue left.
func (l *link) flush() error { return l.write(nil, true) }

func (l *link) write(p mqtt.Packet, flush bool) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if p != nil {
		b, err := p.AppendTo(l.buf, l.v)
		if err != nil {
			return err
		}
		l.buf = b
	}
	if !flush && len(l.buf) < 64<<10 || len(l.buf) == 0 {
		return nil
	}
	if l.timeout > 0 {
		l.conn.SetWriteDeadline(time.Now().Add(l.timeout))
	}
	_, err := l.conn.Write(l.buf)
	if cap(l.buf) > 256<<10 {
		l.buf = nil // do not keep the memory of one large message
	} else {
		l.buf = l.buf[:0]
	}
	return err
}

// read returns the next packet, decoded; it is valid until the next read.
func (l *link) read() (mqtt.Packet, error) {
	pkt, err := l.rd.ReadPacket()
	if err != nil {
		return nil, err
	}
	return mqtt.Decode(pkt, l.v)
}
