package bridge

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/mqtt"
)

// SysPrefix starts the topics a bridge publishes its status on:
// $SYS/broker/bridge/<name>/connected ("1" or "0"), …/outbox/messages,
// …/outbox/bytes, …/inflight, …/oldest_age (seconds), …/forwarded,
// …/received, …/dropped (total) and …/dropped/<rule>/<reason>. They are
// retained, published when they change, at most every status interval.
const SysPrefix = "$SYS/broker/bridge/"

// statusID is the client id of the internal session that publishes the
// status topics (it holds nothing: clean, QoS 0).
func statusID(name string) string { return broker.InternalPrefix + "bridge-status/" + name }

// sysPublisher publishes a bridge's status on the local broker.
type sysPublisher struct {
	b    *Bridge
	conn net.Conn
	link *link
	last map[string]string // what was last published, by topic
}

// publish sends the values of st that changed since the last call. It
// reconnects to the local broker as needed; a failure is retried next
// time.
func (p *sysPublisher) publish(st Status) {
	vals := map[string]string{
		"connected":       "0",
		"outbox/messages": strconv.Itoa(st.OutboxMessages),
		"outbox/bytes":    strconv.FormatInt(st.OutboxBytes, 10),
		"inflight":        strconv.Itoa(st.InFlight),
		"oldest_age":      strconv.FormatInt(int64(st.OldestAge/time.Second), 10),
		"forwarded":       strconv.FormatInt(st.Forwarded, 10),
		"received":        strconv.FormatInt(st.Received, 10),
		"dropped":         strconv.FormatInt(st.DroppedTotal(), 10),
	}
	if st.Connected {
		vals["connected"] = "1"
	}
	for rule, m := range st.Dropped {
		for reason, n := range m {
			vals["dropped/"+rule+"/"+reason] = strconv.FormatInt(n, 10)
		}
	}
	if p.last == nil {
		p.last = map[string]string{}
	}
	for k, v := range vals {
		if p.last[k] == v {
			continue
		}
		if err := p.send(SysPrefix+p.b.cfg.Name+"/"+k, v); err != nil {
			p.b.log.Debug("publishing bridge status", "err", err)
			p.close()
			return
		}
		p.last[k] = v
	}
}

func (p *sysPublisher) send(topic, value string) error {
	if p.link == nil {
		if err := p.connect(); err != nil {
			return err
		}
	}
	return p.link.send(&mqtt.Publish{Topic: []byte(topic), Payload: []byte(value), Retain: true})
}

func (p *sysPublisher) connect() error {
	conn, err := p.b.srv.DialInternal(statusID(p.b.cfg.Name))
	if err != nil {
		return err
	}
	l := newLink(conn, mqtt.V5, 0, handshakeTimeout)
	if err := l.send(&mqtt.Connect{ProtocolLevel: mqtt.V5, CleanStart: true}); err != nil {
		conn.Close()
		return err
	}
	conn.SetReadDeadline(time.Now().Add(handshakeTimeout))
	pkt, err := l.read()
	if err != nil {
		conn.Close()
		return err
	}
	if ack, ok := pkt.(*mqtt.Connack); !ok || ack.ReasonCode != 0 {
		conn.Close()
		return fmt.Errorf("local broker refused the status session: %v", pkt)
	}
	conn.SetReadDeadline(time.Time{})
	// Nothing is expected back but a DISCONNECT at shutdown; reading
	// keeps the broker's writer from blocking on the pipe.
	go io.Copy(io.Discard, conn)
	p.conn, p.link = conn, l
	return nil
}

func (p *sysPublisher) close() {
	if p.conn != nil {
		p.conn.Close()
	}
	p.conn, p.link = nil, nil
}
