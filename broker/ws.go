package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/coder/websocket"
)

// wsSubprotocols are the WebSocket subprotocols offered, in order of
// preference: "mqtt" for 3.1.1 and 5.0 [MQTT-6.0.0-3], "mqttv3.1" as old
// 3.1 clients ask.
var wsSubprotocols = []string{"mqtt", "mqttv3.1"}

// ServeWebSocket accepts MQTT over WebSocket connections on l at
// Options.WSPath until Shutdown or Close, then returns ErrServerClosed.
func (s *Server) ServeWebSocket(l net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle(s.opts.WSPath, s.WebSocketHandler())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: s.opts.ConnectTimeout, ErrorLog: nil}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.https = append(s.https, hs)
	s.mu.Unlock()
	err := hs.Serve(l)
	if errors.Is(err, http.ErrServerClosed) || s.isClosing() {
		return ErrServerClosed
	}
	return err
}

// WebSocketHandler returns an http.Handler that upgrades requests to
// WebSocket and serves MQTT on them, for embedding into an existing HTTP
// server. MQTT packets travel in binary messages; one packet may span
// several messages and one message may hold several packets (§6).
func (s *Server) WebSocketHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wc, err := websocket.Accept(w, r, &websocket.AcceptOptions{
			Subprotocols: wsSubprotocols,
			// Dashboards are served from other origins; access control is
			// MQTT's (authentication), not the browser's.
			InsecureSkipVerify: true,
			CompressionMode:    websocket.CompressionDisabled,
		})
		if err != nil {
			s.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
			return
		}
		if wc.Subprotocol() == "" {
			// [MQTT-6.0.0-3]: the client must offer "mqtt".
			wc.Close(websocket.StatusPolicyViolation, "subprotocol mqtt required")
			return
		}
		// The connection outlives this handler, so it must not use the
		// request's context.
		nc := websocket.NetConn(context.Background(), wc, websocket.MessageBinary)
		s.serveConn(&wsConn{Conn: nc, tls: r.TLS}, "websocket")
	})
}

// wsConn adapts websocket.NetConn to what the connection code expects:
// an expired read deadline reads as os.ErrDeadlineExceeded (NetConn
// reports it as a context error), and Close does not wait long for the
// peer's close frame.
type wsConn struct {
	net.Conn
	tls *tls.ConnectionState // of the HTTPS request (wss), nil for ws
}

func (c *wsConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		err = fmt.Errorf("%w (%v)", os.ErrDeadlineExceeded, err)
	}
	return n, err
}

func (c *wsConn) Close() error {
	c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	return c.Conn.Close()
}
