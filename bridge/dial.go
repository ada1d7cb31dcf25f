package bridge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"

	"github.com/coder/websocket"
)

// dial opens the transport to the upstream broker. life bounds a
// WebSocket connection (it ends the connection when cancelled); ctx bounds
// the dial only.
func (b *Bridge) dial(ctx, life context.Context) (net.Conn, error) {
	u, err := url.Parse(b.cfg.Address)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "tcp":
		var d net.Dialer
		return d.DialContext(ctx, "tcp", u.Host)
	case "tls":
		tc, err := b.tlsConfig(u.Hostname())
		if err != nil {
			return nil, err
		}
		d := tls.Dialer{Config: tc}
		return d.DialContext(ctx, "tcp", u.Host)
	case "ws", "wss":
		opts := &websocket.DialOptions{Subprotocols: []string{"mqtt"}}
		if u.Scheme == "wss" {
			tc, err := b.tlsConfig(u.Hostname())
			if err != nil {
				return nil, err
			}
			opts.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		}
		ws, _, err := websocket.Dial(ctx, u.String(), opts)
		if err != nil {
			return nil, err
		}
		ws.SetReadLimit(-1) // the MQTT reader enforces the packet size
		return websocket.NetConn(life, ws, websocket.MessageBinary), nil
	}
	return nil, fmt.Errorf("unsupported address scheme %q", u.Scheme)
}

// tlsConfig builds the client TLS configuration from the files of
// cfg.TLS; they are read at every connection, so renewed certificates are
// picked up without a restart.
func (b *Bridge) tlsConfig(host string) (*tls.Config, error) {
	t := b.cfg.TLS
	if t.Config != nil {
		return t.Config.Clone(), nil
	}
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if t.ServerName != "" {
		tc.ServerName = t.ServerName
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, errors.New("tls ca_file: no PEM certificate in " + t.CAFile)
		}
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
