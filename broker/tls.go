package broker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
)

// TLSFiles names the PEM files of a TLS listener.
type TLSFiles struct {
	// CertFile and KeyFile hold the server's certificate chain and its
	// private key. Both are required.
	CertFile string
	KeyFile  string
	// CAFile, when set, holds the certificates that client certificates
	// are verified against (mTLS). Without it client certificates are
	// neither asked for nor verified.
	CAFile string
	// RequireCertificate refuses clients without a valid certificate in
	// the TLS handshake. Needs CAFile. Without it a certificate is asked
	// for and verified when sent, but not required.
	RequireCertificate bool
	// MinVersion is the lowest TLS version accepted (tls.VersionTLS12,
	// tls.VersionTLS13). Default TLS 1.2.
	MinVersion uint16
}

// TLSConfig serves a TLS configuration read from files, and reads the
// files again on Reload. Connections that finished their handshake keep
// the certificate they got; new handshakes use the reloaded files, so a
// renewed certificate is picked up without dropping anyone.
type TLSConfig struct {
	files TLSFiles
	cur   atomic.Pointer[tls.Config]
}

// NewTLSConfig reads the files and returns a TLSConfig.
func NewTLSConfig(f TLSFiles) (*TLSConfig, error) {
	if f.MinVersion == 0 {
		f.MinVersion = tls.VersionTLS12
	}
	t := &TLSConfig{files: f}
	if err := t.Reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// Reload reads the files again. On error the previous configuration stays
// in force.
func (t *TLSConfig) Reload() error {
	f := t.files
	if f.CertFile == "" || f.KeyFile == "" {
		return errors.New("tls: cert_file and key_file are required")
	}
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return fmt.Errorf("tls: loading %s / %s: %w", f.CertFile, f.KeyFile, err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: f.MinVersion}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return fmt.Errorf("tls: reading ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("tls: %s holds no PEM certificate", f.CAFile)
		}
		c.ClientCAs = pool
		c.ClientAuth = tls.VerifyClientCertIfGiven
		if f.RequireCertificate {
			c.ClientAuth = tls.RequireAndVerifyClientCert
		}
	} else if f.RequireCertificate {
		return errors.New("tls: require_certificate needs ca_file")
	}
	t.cur.Store(c)
	return nil
}

// Config returns a tls.Config for a listener. It resolves every handshake
// through GetConfigForClient, so that it always uses the files as last
// (re)loaded.
func (t *TLSConfig) Config() *tls.Config {
	return &tls.Config{
		MinVersion: t.files.MinVersion,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return t.cur.Load(), nil
		},
	}
}

// Listen listens on addr (TCP) and wraps the listener in TLS.
func (t *TLSConfig) Listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return tls.NewListener(l, t.Config()), nil
}

// tlsState returns the TLS state of a connection that came in over TLS
// (directly or as a WebSocket over HTTPS), nil otherwise. The handshake is
// complete once the first packet has been read.
func tlsState(conn net.Conn) *tls.ConnectionState {
	switch c := conn.(type) {
	case *tls.Conn:
		st := c.ConnectionState()
		return &st
	case *wsConn:
		return c.tls
	}
	return nil
}

// certIdentity returns the common name of the verified client certificate
// of st, "" if there is none.
func certIdentity(st *tls.ConnectionState) string {
	if st == nil || len(st.VerifiedChains) == 0 || len(st.PeerCertificates) == 0 {
		return ""
	}
	return st.PeerCertificates[0].Subject.CommonName
}

// listenTLS starts the TLS listeners that Options ask for; each one's
// Serve result goes to errc.
func (s *Server) listenTLS(errc chan<- error) error {
	t := s.opts.TLS
	if t == nil {
		return nil
	}
	if a := s.opts.TLSAddr; a != "-" {
		l, err := t.Listen(a)
		if err != nil {
			return err
		}
		s.log.Info("listening", "transport", "tls", "addr", l.Addr().String(),
			"client_certificates", clientAuthName(t.files))
		go func() { errc <- s.Serve(l) }()
	}
	if a := s.opts.WSSAddr; a != "" && a != "-" {
		l, err := t.Listen(a)
		if err != nil {
			return err
		}
		s.log.Info("listening", "transport", "wss", "addr", l.Addr().String(), "path", s.opts.WSPath,
			"client_certificates", clientAuthName(t.files))
		go func() { errc <- s.ServeWebSocket(l) }()
	}
	return nil
}

func clientAuthName(f TLSFiles) string {
	switch {
	case f.RequireCertificate:
		return "required"
	case f.CAFile != "":
		return "verified if sent"
	}
	return "not asked for"
}
