package broker_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

func encode(t *testing.T, v mqtt.Version, pkts ...mqtt.Packet) []byte {
	t.Helper()
	var b []byte
	for _, p := range pkts {
		var err error
		if b, err = p.AppendTo(b, v); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// wsDial opens a WebSocket to url offering protos as subprotocols.
func wsDial(t *testing.T, url string, protos ...string) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: protos})
}

// TestWebSocketFraming checks §6.0: one MQTT packet may span several
// WebSocket messages, and one message may carry several packets.
func TestWebSocketFraming(t *testing.T) {
	b := brokertest.Start(t, nil)
	c, _, err := wsDial(t, b.WSURL, "mqtt")
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if got := c.Subprotocol(); got != "mqtt" {
		t.Fatalf("subprotocol %q, want mqtt [MQTT-6.0.0-3]", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	send := func(p []byte) {
		if err := c.Write(ctx, websocket.MessageBinary, p); err != nil {
			t.Fatal(err)
		}
	}
	// CONNECT split across three messages.
	connect := encode(t, mqtt.V311, &mqtt.Connect{ProtocolLevel: mqtt.V311, CleanStart: true, ClientID: "ws-framing"})
	send(connect[:1])
	send(connect[1:5])
	send(connect[5:])
	// SUBSCRIBE and PUBLISH (to itself) in one message.
	send(encode(t, mqtt.V311,
		&mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "ws/t", QoS: 1}}},
		&mqtt.Publish{QoS: 1, PacketID: 2, Topic: []byte("ws/t"), Payload: []byte("framed")}))

	nc := websocket.NetConn(ctx, c, websocket.MessageBinary)
	rd := mqtt.NewReader(nc, 0)
	want := map[mqtt.PacketType]bool{mqtt.CONNACK: false, mqtt.SUBACK: false, mqtt.PUBACK: false, mqtt.PUBLISH: false}
	for seen := 0; seen < len(want); {
		pkt, err := rd.ReadPacket()
		if err != nil {
			t.Fatalf("after %d packets: %v", seen, err)
		}
		p, err := mqtt.Decode(pkt, mqtt.V311)
		if err != nil {
			t.Fatal(err)
		}
		if done, ok := want[p.Type()]; !ok || done {
			t.Fatalf("unexpected %v", p.Type())
		}
		want[p.Type()] = true
		seen++
		if pub, ok := p.(*mqtt.Publish); ok && !bytes.Equal(pub.Payload, []byte("framed")) {
			t.Fatalf("payload %q", pub.Payload)
		}
	}
}

// TestWebSocketNeedsMQTTSubprotocol: a client that does not offer the
// "mqtt" subprotocol is refused [MQTT-6.0.0-3]; "mqttv3.1" is accepted for
// old clients.
func TestWebSocketNeedsMQTTSubprotocol(t *testing.T) {
	b := brokertest.Start(t, nil)
	c, _, err := wsDial(t, b.WSURL)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _, err = c.Read(ctx)
		if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Fatalf("without subprotocol: read error %v, want close 1008", err)
		}
	}
	c, _, err = wsDial(t, b.WSURL, "mqttv3.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if c.Subprotocol() != "mqttv3.1" {
		t.Fatalf("subprotocol %q", c.Subprotocol())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageBinary, encode(t, mqtt.V31, &mqtt.Connect{ProtocolLevel: mqtt.V31, CleanStart: true, ClientID: "old"})); err != nil {
		t.Fatal(err)
	}
	_, msg, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ack mqtt.Connack
	if err := ack.Decode(msg, mqtt.V31); err != nil || ack.ReasonCode != 0 {
		t.Fatalf("CONNACK %x: %v %v", msg, err, ack.ReasonCode)
	}
}

// TestWebSocketWrongPath: other paths are not the MQTT endpoint.
func TestWebSocketWrongPath(t *testing.T) {
	b := brokertest.Start(t, nil)
	_, resp, err := wsDial(t, "ws://"+b.WSAddr+"/other", "mqtt")
	if err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("dial /other: err %v resp %v, want 404", err, resp)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("timed out")
	}
}
