package broker_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"time"

	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/mqtt"
)

// Example embeds a broker in a Go program: it serves a loopback listener,
// and a client (written with Weir's own codec, to stay dependency-free)
// subscribes, publishes to itself, receives its message and disconnects
// before the broker shuts down.
func Example() {
	srv, err := broker.New(&broker.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		log.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	// A minimal MQTT 3.1.1 client.
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	rd := mqtt.NewReader(conn, 0)
	send := func(p mqtt.Packet) {
		b, err := p.AppendTo(nil, mqtt.V311)
		if err == nil {
			_, err = conn.Write(b)
		}
		if err != nil {
			log.Fatal(err)
		}
	}
	recv := func() mqtt.Packet {
		pkt, err := rd.ReadPacket()
		if err != nil {
			log.Fatal(err)
		}
		p, err := mqtt.Decode(pkt, mqtt.V311)
		if err != nil {
			log.Fatal(err)
		}
		return p
	}

	send(&mqtt.Connect{ProtocolLevel: mqtt.V311, CleanStart: true, KeepAlive: 30, ClientID: "example"})
	fmt.Println("CONNACK:", recv().(*mqtt.Connack).ReasonCode)

	send(&mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "sensors/+/temp", QoS: 1}}})
	fmt.Println("SUBACK granted:", recv().(*mqtt.Suback).ReasonCodes)

	send(&mqtt.Publish{QoS: 1, PacketID: 2, Topic: []byte("sensors/kitchen/temp"), Payload: []byte("21.5")})
	// The PUBACK for our PUBLISH and the message routed back to us are
	// separate packets; wait for both.
	var acked, got bool
	for !acked || !got {
		switch p := recv().(type) {
		case *mqtt.Puback:
			acked = p.PacketID == 2
		case *mqtt.Publish:
			fmt.Printf("received %s: %s (QoS %d)\n", p.Topic, p.Payload, p.QoS)
			send(&mqtt.Puback{PacketID: p.PacketID})
			got = true
		}
	}
	send(&mqtt.Disconnect{})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("Serve returned:", <-served)
	// Output:
	// CONNACK: success
	// SUBACK granted: [granted QoS 1]
	// received sensors/kitchen/temp: 21.5 (QoS 1)
	// Serve returned: broker: server closed
}
