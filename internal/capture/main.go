// Command capture records the bytes that real MQTT clients send, as test
// fixtures for the mqtt package.
//
//	go run ./internal/capture -out testdata/packets
//
// It runs a minimal fake broker built on the mqtt package on 127.0.0.1 (one
// ephemeral port per scenario), drives real clients against it —
// mosquitto_pub and mosquitto_sub from the Debian package mosquitto-clients,
// github.com/eclipse/paho.mqtt.golang (3.1.1) and github.com/eclipse/paho.golang
// (5.0) — and writes every packet a client sent as
// <out>/<scenario>-<nn>-<type>.hex (lowercase hex, one packet, a trailing
// newline), nn being the packet's 1-based position in what that client sent.
// A packet whose bytes were already written for the same protocol version is
// not written again (CONNECTs always are: the tests read the protocol version
// from them). It then rewrites <out>/README.md, which says how each file was
// produced. Old *.hex files in <out> are removed before writing. If the
// codec rejects a packet, the packet is still written, and the program
// lists the rejections and exits with status 1.
//
// The program exits by itself: each scenario is bounded by a timeout and the
// whole run by a deadline.
package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	pahov5 "github.com/eclipse/paho.golang/paho"
	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/weirmq/weir/mqtt"
)

const (
	scenarioTimeout = 6 * time.Second  // per client run
	runDeadline     = 28 * time.Second // whole program
	topic           = "weir/test"
	payload         = "hello from capture"
)

// scenario is one client run against a fresh listener.
type scenario struct {
	name   string // file name prefix; also the client identifier
	client string // "mosquitto_pub", "mosquitto_sub", "paho.mqtt.golang", "paho.golang"
	// args are the command-line arguments of an external client, to which
	// -h 127.0.0.1 -p <port> is prepended.
	args []string
	// run drives a Go client against addr; how describes it for README.md.
	run func(ctx context.Context, addr string) error
	how string
	// deliver makes the broker send one PUBLISH, at the granted QoS, to a
	// topic matching the first filter of each SUBSCRIBE, after deliverDelay.
	deliver      bool
	deliverDelay time.Duration
	timeout      time.Duration // of the client run; scenarioTimeout if zero
	note         string        // extra README remark
}

// recorded is one packet a client sent.
type recorded struct {
	seq     int
	raw     []byte
	version mqtt.Version
	err     error // the codec's decode error, if any
}

var (
	codecMu     sync.Mutex
	codecErrors []string
)

func main() {
	out := flag.String("out", "testdata/packets", "directory to write the .hex files and README.md into")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("capture: ")
	time.AfterFunc(runDeadline, func() {
		log.Print("run deadline exceeded, giving up")
		os.Exit(2)
	})
	for _, c := range []string{"mosquitto_pub", "mosquitto_sub"} {
		if _, err := exec.LookPath(c); err != nil {
			log.Fatalf("%s not found: install the Debian package mosquitto-clients", c)
		}
	}

	scenarios := allScenarios()
	results := make([][]recorded, len(scenarios))
	for i := range scenarios {
		results[i] = runScenario(&scenarios[i])
	}

	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	old, _ := filepath.Glob(filepath.Join(*out, "*.hex"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			log.Fatal(err)
		}
	}
	files := writeFiles(*out, scenarios, results)
	if err := os.WriteFile(filepath.Join(*out, "README.md"), readme(scenarios, results, files), 0o644); err != nil {
		log.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if f.dupOf == "" {
			n++
		}
	}
	fmt.Printf("wrote %d packet files and README.md to %s\n", n, *out)
	if len(codecErrors) > 0 {
		fmt.Printf("the codec rejected %d packet(s):\n", len(codecErrors))
		for _, e := range codecErrors {
			fmt.Println("  " + e)
		}
		os.Exit(1)
	}
}

// mosq builds the common part of a mosquitto client command line.
func mosq(version, id string, rest ...string) []string {
	return append([]string{"-V", version, "-i", id}, rest...)
}

func allScenarios() []scenario {
	pub := func(name string, args ...string) scenario {
		return scenario{name: name, client: "mosquitto_pub", args: mosq(versionFlag(name), name, args...)}
	}
	sub := func(name string, deliver bool, delay time.Duration, args ...string) scenario {
		return scenario{name: name, client: "mosquitto_sub", args: mosq(versionFlag(name), name, args...),
			deliver: deliver, deliverDelay: delay}
	}
	s := []scenario{
		pub("mosq-pub-v31-q0", "-t", topic, "-m", payload, "-q", "0"),
		pub("mosq-pub-v31-q1-will", "-t", topic, "-m", payload, "-q", "1", "-r",
			"--will-topic", "weir/will", "--will-payload", "gone", "--will-qos", "1", "--will-retain",
			"-u", "alice", "-P", "secret"),
		pub("mosq-pub-v31-q2", "-t", topic, "-m", payload, "-q", "2", "-k", "15"),
		pub("mosq-pub-v311-q0", "-t", topic, "-m", payload, "-q", "0", "-k", "30"),
		pub("mosq-pub-v311-q1-auth", "-t", topic, "-m", payload, "-q", "1", "-u", "alice", "-P", "secret"),
		pub("mosq-pub-v311-q2-retain-will", "-t", topic, "-m", payload, "-q", "2", "-r",
			"--will-topic", "weir/will", "--will-payload", "gone", "--will-qos", "2", "--will-retain",
			"-u", "bob"),
		pub("mosq-pub-v5-q0", "-t", topic, "-m", payload, "-q", "0"),
		pub("mosq-pub-v5-q1-props", "-t", topic, "-m", payload, "-q", "1", "-k", "20",
			"-D", "publish", "user-property", "k", "v",
			"-D", "publish", "message-expiry-interval", "60",
			"-D", "publish", "content-type", "text/plain",
			"-D", "connect", "session-expiry-interval", "300",
			"-D", "connect", "receive-maximum", "10"),
		pub("mosq-pub-v5-q2-retain-will", "-t", topic, "-m", payload, "-q", "2", "-r",
			"--will-topic", "weir/will", "--will-payload", "gone", "--will-qos", "1", "--will-retain",
			"-D", "will", "will-delay-interval", "30",
			"-D", "will", "user-property", "wk", "wv",
			"-u", "alice", "-P", "secret"),
		// mosquitto_sub 2.0.11 has no --nl, --rap or --retain-handling
		// (retain-as-published is --retain-as-published); No Local and
		// Retain Handling come from the paho.golang scenario.
		sub("mosq-sub-v5", true, 0, "-t", "a/+/c", "-t", "#", "-q", "2", "--retain-as-published",
			"-x", "600", "-D", "subscribe", "subscription-identifier", "5",
			"-D", "subscribe", "user-property", "sk", "sv", "-C", "1", "-W", "2"),
		sub("mosq-sub-v5-unsub", false, 0, "-t", "x/y", "-U", "a/+/c", "-U", "old/#", "-E", "-W", "2"),
		sub("mosq-sub-v311", true, 0, "-t", "a/+/c", "-q", "1", "-C", "1", "-W", "2"),
		sub("mosq-sub-v311-ping", true, 5600*time.Millisecond, "-t", "s/#", "-q", "2", "-k", "5",
			"-C", "1", "-W", "8"),
		sub("mosq-sub-v31", true, 0, "-t", "a/+/c", "-q", "2", "-U", "old/#", "-C", "1", "-W", "2"),
	}
	for i := range s {
		switch s[i].name {
		case "mosq-sub-v5":
			s[i].note = "mosquitto_sub 2.0.11 has no --nl, --rap or --retain-handling options; " +
				"it spells retain-as-published --retain-as-published. No Local and Retain Handling are covered by paho5-v5."
		case "mosq-sub-v5-unsub":
			s[i].note = "-U makes mosquitto_sub unsubscribe from each -U filter (one UNSUBSCRIBE each) right after subscribing; " +
				"-E makes it exit once the broker acknowledged."
		case "mosq-sub-v311-ping":
			s[i].timeout = 10 * time.Second
			s[i].note = "The broker delays its PUBLISH by 5.6 s so that the client's keep alive of 5 s (mosquitto's minimum) makes it send PINGREQ first."
		}
	}
	s = append(s,
		scenario{name: "paho3-v311", client: "paho.mqtt.golang", run: runPahoV3, deliver: true,
			how: "mqtt.NewClient with ProtocolVersion 4, ClientID \"paho3-v311\", CleanSession, KeepAlive 1 s, " +
				"username \"alice\" / password \"secret\", will \"weir/will\" \"gone\" QoS 1 retained; " +
				"Subscribe(\"p3/in/#\", 2) and Subscribe(\"p3/q1\", 1) (the broker sends one PUBLISH at the granted QoS for each, " +
				"so the client acknowledges with PUBREC/PUBCOMP and PUBACK; the program waits for each message and 100 ms more before going on); Publish QoS 0, 1 (retained) and 2 to \"p3/out\"; " +
				"idle 1.6 s (PINGREQ); Unsubscribe(\"p3/in/#\", \"p3/q1\"); Disconnect(100)."},
		scenario{name: "paho5-v5", client: "paho.golang", run: runPahoV5, deliver: true,
			how: "paho.NewClient over a net.Conn, Connect with ClientID \"paho5-v5\", CleanStart, KeepAlive 1, " +
				"username \"alice\" / password \"secret\", SessionExpiryInterval 60, ReceiveMaximum 20, " +
				"will \"weir/will\" \"gone\" QoS 1 with WillDelayInterval 5; pause 200 ms (its pinger sends a PINGREQ right after CONNACK); " +
				"Subscribe {\"p5/in/#\" QoS 2 NoLocal, \"p5/+/x\" QoS 1 RetainHandling 2} with SubscriptionIdentifier 7 " +
				"(the broker sends one QoS 2 PUBLISH, the client answers PUBREC/PUBCOMP; the program waits for it and 100 ms more); " +
				"Publish QoS 1 to \"p5/out\" with user property a=b, ContentType application/json, ResponseTopic \"p5/reply\", CorrelationData \"c1\"; " +
				"Publish QoS 2 retained with PayloadFormat 1 and MessageExpiry 120; idle 1.6 s (another PINGREQ); " +
				"Unsubscribe {\"p5/in/#\", \"p5/+/x\"}; Disconnect with reason 0x04 (disconnect with will message)."},
	)
	return s
}

func versionFlag(name string) string {
	switch {
	case strings.Contains(name, "-v311"):
		return "mqttv311"
	case strings.Contains(name, "-v31"):
		return "mqttv31"
	default:
		return "mqttv5"
	}
}

// runScenario runs one client against a fresh listener and returns what it
// sent.
func runScenario(sc *scenario) []recorded {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	b := &broker{sc: sc, conns: map[net.Conn]bool{}}
	go b.serve(ln)
	addr := ln.Addr().String()
	timeout := sc.timeout
	if timeout == 0 {
		timeout = scenarioTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var runErr error
	if sc.run != nil {
		runErr = sc.run(ctx, addr)
	} else {
		_, port, _ := net.SplitHostPort(addr)
		args := append([]string{"-h", "127.0.0.1", "-p", port}, sc.args...)
		cmd := exec.CommandContext(ctx, sc.client, args...)
		var stderr bytes.Buffer
		cmd.Stdout = io.Discard
		cmd.Stderr = &stderr
		runErr = cmd.Run()
		if runErr != nil && stderr.Len() > 0 {
			runErr = fmt.Errorf("%v: %s", runErr, strings.TrimSpace(stderr.String()))
		}
	}
	if runErr != nil {
		log.Printf("%s: client: %v", sc.name, runErr)
	}
	// Let the broker read what the client sent before it closed.
	wait := time.Now().Add(2 * time.Second)
	for time.Now().Before(wait) && b.active() > 0 {
		time.Sleep(20 * time.Millisecond)
	}
	ln.Close()
	b.closeAll()
	b.wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	log.Printf("%s: %d packets", sc.name, len(b.got))
	return b.got
}

// broker is the fake broker of one scenario.
type broker struct {
	sc    *scenario
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
	got   []recorded
}

func (b *broker) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.conns[c] = true
		b.mu.Unlock()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.handle(c)
			c.Close()
			b.mu.Lock()
			delete(b.conns, c)
			b.mu.Unlock()
		}()
	}
}

func (b *broker) active() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

func (b *broker) closeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for c := range b.conns {
		c.Close()
	}
}

// conn is the broker side of one client connection.
type conn struct {
	b      *broker
	c      net.Conn
	wmu    sync.Mutex
	v      mqtt.Version
	nextID uint16
}

func (cn *conn) send(p mqtt.Packet) {
	buf, err := p.AppendTo(nil, cn.v)
	if err != nil {
		log.Printf("%s: encoding %v: %v", cn.b.sc.name, p.Type(), err)
		return
	}
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	cn.c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	cn.c.Write(buf)
}

func (b *broker) handle(c net.Conn) {
	cn := &conn{b: b, c: c}
	rd := mqtt.NewReader(c, 0)
	for seq := 1; ; seq++ {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		pkt, err := rd.ReadPacket()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				log.Printf("%s: read: %v", b.sc.name, err)
			}
			return
		}
		raw := bytes.Clone(pkt)
		t := mqtt.PeekType(raw)
		if t == mqtt.CONNECT {
			cn.v = rawLevel(raw)
		}
		p, derr := mqtt.Decode(raw, cn.v)
		if derr != nil {
			msg := fmt.Sprintf("%s packet %d (%v, protocol %v): %x: %v", b.sc.name, seq, t, cn.v, raw, derr)
			log.Print("CODEC REJECTED " + msg)
			codecMu.Lock()
			codecErrors = append(codecErrors, msg)
			codecMu.Unlock()
		}
		b.mu.Lock()
		b.got = append(b.got, recorded{seq: seq, raw: raw, version: cn.v, err: derr})
		b.mu.Unlock()
		if !cn.answer(t, p, raw) {
			return
		}
	}
}

// answer sends what a client needs in reply to a packet of type t, decoded
// as p (nil if the codec rejected it, in which case the fields needed are
// read from raw). It returns false when the connection should end.
func (cn *conn) answer(t mqtt.PacketType, p mqtt.Packet, raw []byte) bool {
	switch t {
	case mqtt.CONNECT:
		cn.send(&mqtt.Connack{})
	case mqtt.PUBLISH:
		qos, id := raw[0]>>1&3, uint16(0)
		if pp, ok := p.(*mqtt.Publish); ok {
			id = pp.PacketID
		} else if body := rawBody(raw); len(body) >= 2 {
			if n := 2 + int(body[0])<<8 | int(body[1]); len(body) >= n+2 {
				id = uint16(body[n])<<8 | uint16(body[n+1])
			}
		}
		switch qos {
		case 1:
			cn.send(&mqtt.Puback{PacketID: id})
		case 2:
			cn.send(&mqtt.Pubrec{PacketID: id})
		}
	case mqtt.PUBREL:
		cn.send(&mqtt.Pubcomp{PacketID: rawID(raw)})
	case mqtt.PUBREC:
		cn.send(&mqtt.Pubrel{PacketID: rawID(raw)})
	case mqtt.SUBSCRIBE:
		sp, ok := p.(*mqtt.Subscribe)
		if !ok {
			log.Printf("%s: cannot answer an undecodable SUBSCRIBE", cn.b.sc.name)
			return false
		}
		ack := &mqtt.Suback{PacketID: sp.PacketID}
		for _, s := range sp.Subscriptions {
			ack.ReasonCodes = append(ack.ReasonCodes, mqtt.ReasonCode(s.QoS))
		}
		cn.send(ack)
		if cn.b.sc.deliver {
			s := sp.Subscriptions[0]
			cn.nextID++
			pub := &mqtt.Publish{QoS: s.QoS, Topic: []byte(topicFor(s.Filter)),
				Payload: []byte("from the capture broker")}
			if s.QoS > 0 {
				pub.PacketID = cn.nextID
			}
			pub.Props.SubscriptionIDs = sp.Props.SubscriptionIDs
			go func() {
				time.Sleep(cn.b.sc.deliverDelay)
				cn.send(pub)
			}()
		}
	case mqtt.UNSUBSCRIBE:
		up, ok := p.(*mqtt.Unsubscribe)
		if !ok {
			log.Printf("%s: cannot answer an undecodable UNSUBSCRIBE", cn.b.sc.name)
			return false
		}
		ack := &mqtt.Unsuback{PacketID: up.PacketID}
		if cn.v == mqtt.V5 {
			ack.ReasonCodes = make([]mqtt.ReasonCode, len(up.Filters))
		}
		cn.send(ack)
	case mqtt.PINGREQ:
		cn.send(&mqtt.Pingresp{})
	case mqtt.DISCONNECT:
		return false
	}
	return true
}

// rawLevel reads the protocol level of a CONNECT without the codec.
func rawLevel(raw []byte) mqtt.Version {
	body := rawBody(raw)
	if len(body) < 2 {
		return 0
	}
	n := int(body[0])<<8 | int(body[1])
	if len(body) < 2+n+1 {
		return 0
	}
	return mqtt.Version(body[2+n])
}

// rawBody returns what follows the fixed header.
func rawBody(raw []byte) []byte {
	for i := 1; i < len(raw) && i <= 4; i++ {
		if raw[i]&0x80 == 0 {
			return raw[i+1:]
		}
	}
	return nil
}

func rawID(raw []byte) uint16 {
	body := rawBody(raw)
	if len(body) < 2 {
		return 0
	}
	return uint16(body[0])<<8 | uint16(body[1])
}

// topicFor returns a topic name that filter matches.
func topicFor(filter string) string {
	levels := strings.Split(filter, "/")
	for i, l := range levels {
		if l == "+" || l == "#" {
			levels[i] = "x"
		}
	}
	return strings.Join(levels, "/")
}

func runPahoV3(ctx context.Context, addr string) error {
	opts := pahov3.NewClientOptions().
		AddBroker("tcp://"+addr).
		SetClientID("paho3-v311").
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetKeepAlive(time.Second).
		SetPingTimeout(time.Second).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(2*time.Second).
		SetUsername("alice").
		SetPassword("secret").
		SetWill("weir/will", "gone", 1, true)
	c := pahov3.NewClient(opts)
	wait := func(what string, tok pahov3.Token) error {
		if !tok.WaitTimeout(2 * time.Second) {
			return fmt.Errorf("%s: timeout", what)
		}
		if err := tok.Error(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	if err := wait("connect", c.Connect()); err != nil {
		return err
	}
	got := make(chan struct{}, 4)
	h := func(pahov3.Client, pahov3.Message) { got <- struct{}{} }
	// Each subscription gets one message from the broker; let its
	// acknowledgements finish before the next step, so that the order of
	// the recorded packets does not depend on timing.
	for _, s := range []struct {
		filter string
		qos    byte
	}{{"p3/in/#", 2}, {"p3/q1", 1}} {
		if err := wait("subscribe", c.Subscribe(s.filter, s.qos, h)); err != nil {
			return err
		}
		select {
		case <-got:
		case <-time.After(2 * time.Second):
			return errors.New("no message delivered")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := wait("publish 0", c.Publish("p3/out", 0, false, "qos0")); err != nil {
		return err
	}
	if err := wait("publish 1", c.Publish("p3/out", 1, true, "qos1")); err != nil {
		return err
	}
	if err := wait("publish 2", c.Publish("p3/out", 2, false, "qos2")); err != nil {
		return err
	}
	time.Sleep(1600 * time.Millisecond)
	if err := wait("unsubscribe", c.Unsubscribe("p3/in/#", "p3/q1")); err != nil {
		return err
	}
	c.Disconnect(100)
	return nil
}

func runPahoV5(ctx context.Context, addr string) error {
	nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	got := make(chan struct{}, 4)
	c := pahov5.NewClient(pahov5.ClientConfig{
		Conn:          nc,
		PacketTimeout: 2 * time.Second,
		OnPublishReceived: []func(pahov5.PublishReceived) (bool, error){
			func(pahov5.PublishReceived) (bool, error) { got <- struct{}{}; return true, nil },
		},
	})
	u32 := func(v uint32) *uint32 { return &v }
	u16 := func(v uint16) *uint16 { return &v }
	if _, err := c.Connect(ctx, &pahov5.Connect{
		ClientID:     "paho5-v5",
		CleanStart:   true,
		KeepAlive:    1,
		UsernameFlag: true, Username: "alice",
		PasswordFlag: true, Password: []byte("secret"),
		Properties: &pahov5.ConnectProperties{
			SessionExpiryInterval: u32(60),
			ReceiveMaximum:        u16(20),
		},
		WillMessage:    &pahov5.WillMessage{Topic: "weir/will", Payload: []byte("gone"), QoS: 1},
		WillProperties: &pahov5.WillProperties{WillDelayInterval: u32(5)},
	}); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	// paho.golang's pinger sends a first PINGREQ right after CONNACK; let it
	// go out before the next step so that the packet order is stable.
	time.Sleep(200 * time.Millisecond)
	subID := 7
	if _, err := c.Subscribe(ctx, &pahov5.Subscribe{
		Properties: &pahov5.SubscribeProperties{SubscriptionIdentifier: &subID},
		Subscriptions: []pahov5.SubscribeOptions{
			{Topic: "p5/in/#", QoS: 2, NoLocal: true},
			{Topic: "p5/+/x", QoS: 1, RetainHandling: 2},
		},
	}); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	select {
	case <-got:
	case <-time.After(2 * time.Second):
		return errors.New("no message delivered")
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := c.Publish(ctx, &pahov5.Publish{
		QoS: 1, Topic: "p5/out", Payload: []byte(`{"n":1}`),
		Properties: &pahov5.PublishProperties{
			ContentType:     "application/json",
			ResponseTopic:   "p5/reply",
			CorrelationData: []byte("c1"),
			User:            pahov5.UserProperties{{Key: "a", Value: "b"}},
		},
	}); err != nil {
		return fmt.Errorf("publish 1: %w", err)
	}
	pf := byte(1)
	if _, err := c.Publish(ctx, &pahov5.Publish{
		QoS: 2, Retain: true, Topic: "p5/out", Payload: []byte("qos2"),
		Properties: &pahov5.PublishProperties{PayloadFormat: &pf, MessageExpiry: u32(120)},
	}); err != nil {
		return fmt.Errorf("publish 2: %w", err)
	}
	time.Sleep(1600 * time.Millisecond)
	if _, err := c.Unsubscribe(ctx, &pahov5.Unsubscribe{Topics: []string{"p5/in/#", "p5/+/x"}}); err != nil {
		return fmt.Errorf("unsubscribe: %w", err)
	}
	return c.Disconnect(&pahov5.Disconnect{ReasonCode: 0x04})
}

// file is one recorded packet and where it went.
type file struct {
	scenario int
	rec      recorded
	name     string // base name of the .hex file
	dupOf    string // set when not written: the file holding the same bytes
}

func typeName(t mqtt.PacketType) string { return strings.ToLower(t.String()) }

func writeFiles(dir string, scenarios []scenario, results [][]recorded) []file {
	type key struct {
		v   mqtt.Version
		raw string
	}
	seen := map[key]string{}
	var files []file
	for i, sc := range scenarios {
		for _, r := range results[i] {
			f := file{scenario: i, rec: r,
				name: fmt.Sprintf("%s-%02d-%s.hex", sc.name, r.seq, typeName(mqtt.PeekType(r.raw)))}
			k := key{r.version, string(r.raw)}
			if prev, ok := seen[k]; ok && mqtt.PeekType(r.raw) != mqtt.CONNECT {
				f.dupOf = prev
			} else {
				seen[k] = f.name
				if err := os.WriteFile(filepath.Join(dir, f.name), []byte(hex.EncodeToString(r.raw)+"\n"), 0o644); err != nil {
					log.Fatal(err)
				}
			}
			files = append(files, f)
		}
	}
	return files
}

// versions describes the clients used, for README.md.
func versions() []string {
	var v []string
	if out, err := exec.Command("mosquitto_pub", "--help").Output(); err == nil || len(out) > 0 {
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, " version ") {
				v = append(v, "`mosquitto_pub --help`: "+strings.TrimSpace(l))
				break
			}
		}
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "mosquitto-clients").Output(); err == nil {
		v = append(v, "Debian package mosquitto-clients "+string(out))
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if strings.HasPrefix(d.Path, "github.com/eclipse/paho") {
				v = append(v, "Go module "+d.Path+" "+d.Version)
			}
		}
	}
	v = append(v, "Go "+runtime.Version()+" (paho clients, recorder)")
	return v
}

func readme(scenarios []scenario, results [][]recorded, files []file) []byte {
	var b bytes.Buffer
	b.WriteString(`# Captured MQTT packets

Real bytes that real MQTT clients sent, recorded by ` + "`internal/capture`" + `, used by
` + "`mqtt/captures_test.go`" + `: each file must decode at its scenario's protocol version and
re-encode to the same bytes, except a few listed with the reason in ` + "`nonCanonical`" + `
there (properties in another order, a Success reason code or empty property
length written explicitly).
This file is generated by the recorder: edit ` + "`internal/capture/main.go`" + `, not this file.

## Re-recording

    go run ./internal/capture -out testdata/packets

needs ` + "`mosquitto_pub`/`mosquitto_sub`" + ` (Debian package mosquitto-clients) on the PATH
and takes about 10 s. It removes the old ` + "`*.hex`" + ` files, runs every scenario
below against a minimal fake broker built on the ` + "`mqtt`" + ` package (127.0.0.1, a
fresh ephemeral port per scenario) and rewrites this README; it exits with status 1, after listing them, if the
codec rejected any packet. Client identifiers
and payloads are fixed, so a re-recording with the same client versions gives
the same bytes. The broker answers CONNECT with a success CONNACK in the
client's protocol version, PUBLISH with PUBACK or PUBREC, PUBREL with PUBCOMP,
SUBSCRIBE with a SUBACK granting the requested QoS, UNSUBSCRIBE with UNSUBACK,
PINGREQ with PINGRESP; in the scenarios marked "broker delivers" it also sends
one PUBLISH at the granted QoS to a topic matching the first filter of each
SUBSCRIBE, so that the client's PUBACK / PUBREC / PUBCOMP get recorded too.

## Format

` + "`<scenario>-<nn>-<type>.hex`" + `: one whole packet (fixed header included) as lowercase
hex followed by a newline. ` + "`nn`" + ` is the packet's 1-based position in the stream
the client sent, ` + "`type`" + ` its control packet type. A packet whose bytes were already
recorded for the same protocol version is not written again (listed below as a
duplicate), so numbers can have gaps. Every scenario has its CONNECT (always
written): the protocol version of all files of a scenario is the protocol level
of that CONNECT (3 = 3.1, 4 = 3.1.1, 5 = 5.0); the scenario name also says it.

The bytes of each packet are deterministic for given client versions; the
Go scenarios pause briefly between steps so that the order of their packets,
and so the numbering, is stable too, but it still depends on timing in
principle (where a keep-alive PINGREQ falls, for instance).

## Client versions

`)
	for _, v := range versions() {
		b.WriteString("- " + v + "\n")
	}
	b.WriteString("\n## Scenarios\n")
	for i, sc := range scenarios {
		fmt.Fprintf(&b, "\n### %s\n\n", sc.name)
		if sc.run == nil {
			fmt.Fprintf(&b, "%s:\n\n    %s -h 127.0.0.1 -p <port> %s\n\n", sc.client, sc.client, shellJoin(sc.args))
		} else {
			fmt.Fprintf(&b, "%s (Go): %s\n\n", sc.client, sc.how)
		}
		if sc.deliver {
			if sc.deliverDelay > 0 {
				fmt.Fprintf(&b, "Broker delivers (after %v).", sc.deliverDelay)
			} else {
				b.WriteString("Broker delivers.")
			}
			b.WriteString(" ")
		}
		if sc.note != "" {
			b.WriteString(sc.note + " ")
		}
		if len(results[i]) > 0 {
			fmt.Fprintf(&b, "Protocol %v.\n\n", results[i][0].version)
		}
		for _, f := range files {
			if f.scenario != i {
				continue
			}
			if f.dupOf != "" {
				fmt.Fprintf(&b, "- %02d %s: same bytes as `%s`, not written\n", f.rec.seq, typeName(mqtt.PeekType(f.rec.raw)), f.dupOf)
			} else {
				fmt.Fprintf(&b, "- `%s`\n", f.name)
			}
		}
	}
	return b.Bytes()
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " #+*?'\"$\\") {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		} else {
			q[i] = a
		}
	}
	return strings.Join(q, " ")
}
