package bridge_test

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"

	"github.com/weirmq/weir/bridge"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, as PEM files in a temporary directory.
type testPKI struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	ca := brokertest.NewCA(t, "weir test CA")
	var p testPKI
	p.CA = ca.WriteCA(t, dir, "ca.pem")
	p.ServerCert, p.ServerKey = ca.WriteCert(t, dir, "server", "127.0.0.1", true)
	p.ClientCert, p.ClientKey = ca.WriteCert(t, dir, "client", "weir-gateway", false)
	return p
}

// TestTLSClientCertificate bridges to a mosquitto TLS listener that
// requires a client certificate signed by the test CA.
func TestTLSClientCertificate(t *testing.T) {
	pki := newTestPKI(t)
	up := startMosquitto(t, "cafile "+pki.CA, "certfile "+pki.ServerCert, "keyfile "+pki.ServerKey,
		"require_certificate true", "tls_version tlsv1.2")

	// Without a client certificate the listener refuses the handshake, so
	// the bridge's success below depends on its certificate.
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(pki.CA)
	pool.AppendCertsFromPEM(caPEM)
	if c, err := tls.Dial("tcp", up.Addr, &tls.Config{RootCAs: pool}); err == nil {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1)) // TLS 1.3 reports the refusal on the first read
		c.Close()
		if err == nil {
			t.Fatal("mosquitto accepted a TLS client without a certificate")
		}
	}

	local := localBroker(t, nil)
	br := startBridge(t, local, bridge.Config{
		Name: "tls", Address: "tls://" + up.Addr, Version: mqtt.V311, ClientID: "weir-gw",
		TLS: bridge.TLSConfig{CAFile: pki.CA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey},
		Out: []bridge.OutRule{{Filter: "s/#", QoS: 1, Policy: bridge.DropOldest}},
	})
	waitConnected(t, br)
	pub := brokertest.ConnectPaho311(t, local, tcp, "pub", nil)
	pub.MustPublish("s/1", 1, false, "over tls")
	brokertest.Eventually(t, 5*time.Second, func() error {
		if st := br.Status(); st.Forwarded != 1 {
			return errNotYet
		}
		return nil
	})
}

// TestWebSocketUpstream bridges over MQTT-over-WebSocket. The upstream
// is a second Weir: Debian's mosquitto 2.0.11 cannot open a WebSocket
// listener here ("Unable to start any listening sockets").
func TestWebSocketUpstream(t *testing.T) {
	up := localBroker(t, nil)
	upSub := brokertest.ConnectPaho311(t, up, tcp, "up-sub", nil)
	upSub.MustSubscribe("s/#", 1)
	local := localBroker(t, nil)
	br := startBridge(t, local, bridge.Config{
		Name: "ws", Address: up.WSURL, Version: mqtt.V5, ClientID: "weir-gw",
		Out: []bridge.OutRule{{Filter: "s/#", QoS: 1, Policy: bridge.DropOldest}},
	})
	waitConnected(t, br)
	brokertest.ConnectPaho311(t, local, tcp, "pub", nil).MustPublish("s/1", 1, false, "over websocket")
	if m := upSub.Next(); m.Topic() != "s/1" || string(m.Payload()) != "over websocket" {
		t.Fatalf("upstream got %q %q", m.Topic(), m.Payload())
	}
}
