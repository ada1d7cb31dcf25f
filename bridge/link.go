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

// send encodes and writes p.
func (l *link) send(p mqtt.Packet) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	b, err := p.AppendTo(l.buf[:0], l.v)
	if err != nil {
		return err
	}
	l.buf = b
	if l.timeout > 0 {
		l.conn.SetWriteDeadline(time.Now().Add(l.timeout))
	}
	_, err = l.conn.Write(b)
	if cap(l.buf) > 64<<10 {
		l.buf = nil // do not keep the memory of one large message
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
