package broker_test

import (
	"fmt"
	"os"
	"testing"
	"time"
	"net"

	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

func TestZZExplore(t *testing.T) {
	dir := "/tmp/explore/data"
	os.RemoveAll(dir)
	c := brokertest.StartChild(t, brokertest.ChildOptions{DataDir: dir})
	conn, _ := net.Dial("tcp", c.Addr())
	r := brokertest.NewRaw(conn, mqtt.V311)
	r.Connect(t, &mqtt.Connect{ClientID: "sub", ProtocolLevel: mqtt.V311})
	r.Send(t, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "c/#", QoS: 1}}})
	r.Expect(t, mqtt.SUBACK)
	r.Send(t, &mqtt.Disconnect{})
	conn, _ = net.Dial("tcp", c.Addr())
	p := brokertest.NewRaw(conn, mqtt.V311)
	p.Connect(t, &mqtt.Connect{ClientID: "pub", ProtocolLevel: mqtt.V311, CleanStart: true})
	for i := 0; i < 200; i++ {
		pl := []byte(fmt.Sprintf("small-%d", i))
		if i%10 == 0 { pl = make([]byte, 4096) }
		p.Send(t, &mqtt.Publish{QoS: 1, PacketID: uint16(i+1), Topic: []byte("c/x"), Payload: pl})
		p.Expect(t, mqtt.PUBACK)
	}
	p.Send(t, &mqtt.Publish{QoS: 1, PacketID: 9999, Retain: true, Topic: []byte("ret"), Payload: []byte("kept")})
	p.Expect(t, mqtt.PUBACK)
	if os.Getenv("KILL") != "" { c.Kill() } else { c.Term() }
	time.Sleep(0)
	t.Log(c.Logs())
}
