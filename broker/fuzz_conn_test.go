package broker_test

import (
	"io"
	"net"
	"sync"
	"testing"

	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

// pipeListener hands the server ends of in-memory connections to Serve.
type pipeListener struct {
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.UnixAddr{Name: "pipe", Net: "pipe"} }

// FuzzConnection sends a valid CONNECT (MQTT 5.0 or 3.1.1, by the first
// input byte) followed by the rest of the input as raw bytes — random
// packet sequences, well-formed or not — to a running broker, then closes
// the connection. The broker must never panic (its handlers recover and
// count panics, so the count is checked), and must end the connection by
// itself once the client is gone.
func FuzzConnection(f *testing.F) {
	seq := func(v mqtt.Version, pkts ...mqtt.Packet) []byte {
		b := []byte{byte(v)}
		for _, p := range pkts {
			var err error
			if b, err = p.AppendTo(b, v); err != nil {
				f.Fatal(err)
			}
		}
		return b
	}
	sub := &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "a/#", QoS: 2}, {Filter: "$share/g/b/+", QoS: 1}}}
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		f.Add(seq(v, sub,
			&mqtt.Publish{QoS: 0, Topic: []byte("a/b"), Payload: []byte("x")},
			&mqtt.Publish{QoS: 1, PacketID: 2, Topic: []byte("a/c"), Payload: []byte("y"), Retain: true},
			&mqtt.Publish{QoS: 2, PacketID: 3, Topic: []byte("b/d"), Payload: []byte("z")},
			&mqtt.Pubrel{PacketID: 3},
			&mqtt.Puback{PacketID: 1},
			&mqtt.Pubrec{PacketID: 2},
			&mqtt.Pubcomp{PacketID: 2},
			&mqtt.Unsubscribe{PacketID: 4, Filters: []string{"a/#"}},
			&mqtt.Pingreq{},
			&mqtt.Disconnect{}))
		f.Add(seq(v, &mqtt.Publish{QoS: 2, PacketID: 7, Topic: []byte("a"), Payload: []byte("1")},
			&mqtt.Publish{QoS: 2, PacketID: 7, Dup: true, Topic: []byte("a"), Payload: []byte("1")}))
	}
	f.Add([]byte{byte(mqtt.V5), 0x30, 0xff, 0xff, 0xff, 0x7f}) // huge remaining length
	f.Add([]byte{byte(mqtt.V311), 0x10, 0x00})                 // a second CONNECT

	l := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	srv, err := broker.New(&broker.Options{Logger: brokertest.Discard(), MaxPacketSize: 64 << 10})
	if err != nil {
		f.Fatal(err)
	}
	go srv.Serve(l)
	f.Cleanup(func() { srv.Close() })

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		v := mqtt.V5
		if data[0]&1 == 0 {
			v = mqtt.V311
		}
		cp := &mqtt.Connect{ProtocolLevel: v, ClientID: "fuzz", CleanStart: true}
		connect, err := cp.AppendTo(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		client, server := net.Pipe()
		l.conns <- server
		drained := make(chan struct{})
		go func() {
			io.Copy(io.Discard, client) // whatever the broker answers
			close(drained)
		}()
		// Writes fail once the broker closed the connection (a protocol
		// error): what was written up to then is what it saw.
		if _, err := client.Write(connect); err == nil {
			client.Write(data[1:])
		}
		client.Close()
		<-drained
		if n := srv.Stats().Panics; n != 0 {
			t.Fatalf("the broker recovered from %d panics", n)
		}
	})
}
