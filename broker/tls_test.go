package broker_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/eclipse/paho.golang/paho"

	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

// tlsEnv is a broker with a TLS and a secure WebSocket listener and the
// files they use.
type tlsEnv struct {
	b        *brokertest.Broker
	ca       *brokertest.CA
	dir      string
	files    broker.TLSFiles
	cfg      *broker.TLSConfig
	tlsAddr  string
	wssAddr  string
	certFile string
	keyFile  string
	caFile   string // the test CA's certificate
}

// startTLS runs a broker with TLS listeners; mod adjusts the files (e.g.
// to ask for client certificates) and the broker options.
func startTLS(t *testing.T, mod func(*tlsEnv, *broker.Options)) *tlsEnv {
	t.Helper()
	e := &tlsEnv{ca: brokertest.NewCA(t, "weir test CA"), dir: t.TempDir()}
	e.certFile, e.keyFile = e.ca.WriteCert(t, e.dir, "server", "server-1", true)
	e.caFile = e.ca.WriteCA(t, e.dir, "ca.crt")
	e.files = broker.TLSFiles{CertFile: e.certFile, KeyFile: e.keyFile}
	var o broker.Options
	if mod != nil {
		mod(e, &o)
	}
	cfg, err := broker.NewTLSConfig(e.files)
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = cfg
	e.b = brokertest.Start(t, &o)
	l, err := cfg.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl, err := cfg.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go e.b.Server.Serve(l)
	go e.b.Server.ServeWebSocket(wl)
	e.tlsAddr, e.wssAddr = l.Addr().String(), wl.Addr().String()
	return e
}

// clientTLS is a client configuration trusting the test CA, with the
// given client certificates.
func (e *tlsEnv) clientTLS(certs ...tls.Certificate) *tls.Config {
	return &tls.Config{RootCAs: e.ca.Pool(), ServerName: "127.0.0.1", Certificates: certs}
}

func (e *tlsEnv) dial(t *testing.T, c *tls.Config) (*tls.Conn, error) {
	t.Helper()
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: brokertest.WaitTimeout}, Config: c}
	conn, err := d.DialContext(context.Background(), "tcp", e.tlsAddr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { conn.Close() })
	tc := conn.(*tls.Conn)
	// With TLS 1.3 a refused client certificate shows on the first read,
	// so read once with a short deadline to surface it here.
	tc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var one [1]byte
	if _, err := tc.Read(one[:]); err != nil {
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			return nil, err
		}
	}
	tc.SetReadDeadline(time.Time{})
	return tc, nil
}

func (e *tlsEnv) mustPaho(t *testing.T, id string, c *tls.Config, cp *paho.Connect) *brokertest.Paho {
	t.Helper()
	conn, err := e.dial(t, c)
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	if cp == nil {
		cp = &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}
	}
	p, err := brokertest.ConnectPaho(t, conn, cp, nil)
	if err != nil {
		t.Fatalf("connect over TLS: %v", err)
	}
	return p
}

// roundTrip subscribes p to topic, publishes on it and waits for it.
func roundTrip(t *testing.T, p *brokertest.Paho, topic string) {
	t.Helper()
	p.MustSubscribe(t, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: topic, QoS: 1}}})
	p.MustPublish(t, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte("over tls")})
	if m := p.Next(t); m.Topic != topic || string(m.Payload) != "over tls" {
		t.Fatalf("got %q %q", m.Topic, m.Payload)
	}
}

func TestTLSPahoGolang(t *testing.T) {
	e := startTLS(t, nil)
	p := e.mustPaho(t, "tls-client", e.clientTLS(), nil)
	roundTrip(t, p, "tls/hello")
	if _, err := e.dial(t, &tls.Config{ServerName: "127.0.0.1"}); err == nil {
		t.Error("a client that does not trust the CA completed the handshake")
	}
}

func TestTLSMinVersion(t *testing.T) {
	e := startTLS(t, nil)
	old := e.clientTLS()
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	if _, err := e.dial(t, old); err == nil {
		t.Fatal("TLS 1.1 accepted with the default minimum 1.2")
	}
	tls12 := e.clientTLS()
	tls12.MaxVersion = tls.VersionTLS12
	if _, err := e.dial(t, tls12); err != nil {
		t.Fatalf("TLS 1.2 refused: %v", err)
	}

	e13 := startTLS(t, func(e *tlsEnv, _ *broker.Options) { e.files.MinVersion = tls.VersionTLS13 })
	tls12 = e13.clientTLS()
	tls12.MaxVersion = tls.VersionTLS12
	if _, err := e13.dial(t, tls12); err == nil {
		t.Fatal("TLS 1.2 accepted with minimum 1.3")
	}
}

func TestMTLSRequireCertificate(t *testing.T) {
	e := startTLS(t, func(e *tlsEnv, _ *broker.Options) {
		e.files.CAFile, e.files.RequireCertificate = e.caFile, true
	})
	if _, err := e.dial(t, e.clientTLS()); err == nil {
		t.Fatal("client without a certificate accepted")
	}
	other := brokertest.NewCA(t, "other CA")
	_, _, foreign := other.Issue(t, "dev-9", false)
	if _, err := e.dial(t, e.clientTLS(foreign)); err == nil {
		t.Fatal("client certificate from another CA accepted")
	}
	_, _, good := e.ca.Issue(t, "dev-1", false)
	p := e.mustPaho(t, "dev-1", e.clientTLS(good), nil)
	roundTrip(t, p, "mtls/hello")
}

func TestNewTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	ca := brokertest.NewCA(t, "ca")
	cert, key := ca.WriteCert(t, dir, "s", "s", true)
	for name, f := range map[string]broker.TLSFiles{
		"missing key":             {CertFile: cert},
		"missing file":            {CertFile: cert, KeyFile: dir + "/none.key"},
		"require without CA":      {CertFile: cert, KeyFile: key, RequireCertificate: true},
		"CA file without PEM":     {CertFile: cert, KeyFile: key, CAFile: key + "x"},
		"key does not match cert": {CertFile: cert, KeyFile: ca.WriteCA(t, dir, "notakey")},
	} {
		if _, err := broker.NewTLSConfig(f); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// mtlsAccess starts a broker that requires client certificates, takes the
// username from their CN and applies an ACL.
// TestMTLSIdentityAsUsername: the username comes from the client
// certificate's CN, and the ACL applies to it.
func TestMTLSIdentityAsUsername(t *testing.T) {
	acl := writeFile(t, t.TempDir(), "acl", "pattern readwrite devices/%u/#\n")
	e := startTLS(t, func(e *tlsEnv, o *broker.Options) {
		// Certificates verified if sent, so that the refusal of a client
		// without one is the broker's, not the handshake's.
		e.files.CAFile = e.caFile
		fa, err := broker.NewFileAccess(broker.FileAccessConfig{ACLFile: acl})
		if err != nil {
			t.Fatal(err)
		}
		o.Access = fa
		o.UseIdentityAsUsername = true
	})

	_, _, cert := e.ca.Issue(t, "dev-7", false)
	// The CONNECT's username and password are ignored: the certificate is
	// the identity.
	p := e.mustPaho(t, "anything", e.clientTLS(cert), &paho.Connect{ClientID: "anything", CleanStart: true,
		KeepAlive: 30, Username: "admin", UsernameFlag: true, Password: []byte("x"), PasswordFlag: true})
	roundTrip(t, p, "devices/dev-7/temp")
	ctx, cancel := context.WithTimeout(context.Background(), brokertest.WaitTimeout)
	defer cancel()
	// paho reports a failure reason code as an error, with the response.
	res, err := p.Publish(ctx, &paho.Publish{Topic: "devices/admin/temp", QoS: 1, Payload: []byte("x")})
	if res == nil || res.ReasonCode != byte(mqtt.NotAuthorized) {
		t.Fatalf("publish outside the certificate's tree: %+v, %v; want reason 0x87", res, err)
	}

	// Without a certificate (allowed by this listener) the client is
	// refused: the identity is required.
	conn, err := e.dial(t, e.clientTLS())
	if err != nil {
		t.Fatal(err)
	}
	_, err = brokertest.ConnectPaho(t, conn, &paho.Connect{ClientID: "nocert", CleanStart: true,
		Username: "dev-7", UsernameFlag: true}, nil)
	if err == nil {
		t.Fatal("TLS client without a certificate accepted with use_identity_as_username")
	}
}

// TestTLSReloadKeepsConnections: new certificate files are used by new
// handshakes after Reload, while a connected client goes on working.
func TestTLSReloadKeepsConnections(t *testing.T) {
	e := startTLS(t, nil)
	before := e.mustPaho(t, "long-lived", e.clientTLS(), nil)
	roundTrip(t, before, "reload/a")

	c, k, _ := e.ca.Issue(t, "server-2", true)
	brokertest.WriteFileAtomic(t, e.certFile, c)
	brokertest.WriteFileAtomic(t, e.keyFile, k)
	if err := e.cfg.Reload(); err != nil {
		t.Fatal(err)
	}
	conn, err := e.dial(t, e.clientTLS())
	if err != nil {
		t.Fatal(err)
	}
	if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "server-2" {
		t.Fatalf("after reload the server presents %q, want server-2", cn)
	}
	before.MustPublish(t, &paho.Publish{Topic: "reload/a", QoS: 1, Payload: []byte("over tls")})
	if m := before.Next(t); m.Topic != "reload/a" {
		t.Fatalf("got %q", m.Topic)
	}

	// A broken file is refused and the current certificate stays.
	brokertest.WriteFileAtomic(t, e.keyFile, []byte("garbage"))
	if err := e.cfg.Reload(); err == nil {
		t.Fatal("reload of a broken key succeeded")
	}
	conn, err = e.dial(t, e.clientTLS())
	if err != nil {
		t.Fatalf("handshake after a failed reload: %v", err)
	}
	if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "server-2" {
		t.Fatalf("after a failed reload the server presents %q, want server-2", cn)
	}
}

func TestTLSWebSocket(t *testing.T) {
	e := startTLS(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), brokertest.WaitTimeout)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: e.clientTLS()}}
	wc, _, err := websocket.Dial(ctx, "wss://"+e.wssAddr+"/mqtt", &websocket.DialOptions{
		Subprotocols: []string{"mqtt"}, HTTPClient: hc})
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	conn := websocket.NetConn(context.Background(), wc, websocket.MessageBinary)
	t.Cleanup(func() { conn.Close() })
	p, err := brokertest.ConnectPaho(t, conn, &paho.Connect{ClientID: "wss", CleanStart: true, KeepAlive: 30}, nil)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, p, "wss/hello")
}

// TestTLSMosquittoPub: the Mosquitto command-line client with --cafile,
// --cert and --key against a listener that requires certificates.
func TestTLSMosquittoPub(t *testing.T) {
	bin, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		t.Skip("mosquitto_pub not installed (Debian package mosquitto-clients)")
	}
	e := startTLS(t, func(e *tlsEnv, _ *broker.Options) {
		e.files.CAFile, e.files.RequireCertificate = e.caFile, true
	})
	caFile := e.caFile
	_, port, _ := net.SplitHostPort(e.tlsAddr)

	sub := e.b.MustConnectPaho(t, &paho.Connect{ClientID: "sub", CleanStart: true, KeepAlive: 30})
	sub.MustSubscribe(t, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "mosq/#", QoS: 1}}})

	cert, key := e.ca.WriteCert(t, e.dir, "client", "mosq-client", false)
	run := func(args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		base := []string{"-h", "127.0.0.1", "-p", port, "--cafile", caFile, "-q", "1", "-i", "mosq-pub"}
		out, err := exec.CommandContext(ctx, bin, append(base, args...)...).CombinedOutput()
		if err != nil {
			t.Logf("mosquitto_pub %v: %v: %s", args, err, out)
		}
		return err
	}
	if err := run("--cert", cert, "--key", key, "-t", "mosq/tls", "-m", "hello"); err != nil {
		t.Fatal("mosquitto_pub with a client certificate failed")
	}
	if m := sub.Next(t); m.Topic != "mosq/tls" || string(m.Payload) != "hello" {
		t.Fatalf("got %q %q", m.Topic, m.Payload)
	}
	if err := run("-t", "mosq/nocert", "-m", "x"); err == nil {
		t.Fatal("mosquitto_pub without a client certificate succeeded")
	}
}
