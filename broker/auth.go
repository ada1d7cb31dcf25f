package broker

import (
	"crypto/tls"
	"strings"
	"unsafe"

	"github.com/weirmq/weir/mqtt"
)

// ClientInfo identifies a client to AccessControl and Authenticator.
type ClientInfo struct {
	ClientID    string
	Username    string
	HasUsername bool   // the CONNECT carried a username, or a certificate gave one
	Remote      string // source address, host:port
	// TLS is the connection's TLS state (MQTT over TLS or secure
	// WebSocket), nil for plain connections.
	TLS *tls.ConnectionState
	// CertAuthenticated is set when the username was taken from a
	// verified client certificate (Options.UseIdentityAsUsername).
	CertAuthenticated bool
	// Listener is the kind of listener the client came in on: "tcp",
	// "websocket", "tls" (MQTT over TLS) or "wss" (secure WebSocket).
	Listener string

	// internal: the connection of an internal session (a bridge,
	// internal.go), which the server opened itself; access control does
	// not apply to it.
	internal bool
}

// AccessControl authenticates clients at CONNECT and authorises each
// publish, subscription and delivery. Implementations must be safe for
// concurrent use; CanPublish and CanRead run once per message and
// subscriber, so they must be fast and must not block.
//
// FileAccess implements it over Mosquitto's password and ACL files.
type AccessControl interface {
	// Authenticate checks the credentials of a CONNECT. It returns
	// mqtt.Success to accept the client, mqtt.BadUserNameOrPassword for
	// wrong or unknown credentials, mqtt.NotAuthorized when the client
	// may not connect at all (an anonymous client where none are
	// allowed). It is not called for clients authenticated by their
	// certificate (Options.UseIdentityAsUsername) or by an Authenticator.
	Authenticate(c *ClientInfo, password []byte, hasPassword bool) mqtt.ReasonCode
	// CanPublish reports whether c may publish to topic (also checked for
	// its will when the will is published).
	CanPublish(c *ClientInfo, topic string) bool
	// CanRead reports whether a message on topic may be delivered to c.
	CanRead(c *ClientInfo, topic string) bool
	// CanSubscribe reports whether c may subscribe to filter (a shared
	// subscription's filter without its "$share/group/" prefix).
	CanSubscribe(c *ClientInfo, filter string) bool
}

// Authenticator is an MQTT 5.0 enhanced authentication method (§4.12),
// registered in Options.Authenticators under its method name. A CONNECT
// that names the method starts an exchange; the server and the client
// then trade AUTH packets (reason 0x18 Continue authentication) until
// Step reports done. Weir ships no method (no SCRAM); see the example in
// example_auth_test.go. Re-authentication (AUTH 0x19 after CONNACK) is
// not supported: the connection is closed with 0x82 Protocol error.
type Authenticator interface {
	// NewExchange starts the exchange for one CONNECT.
	NewExchange(c *ClientInfo) AuthExchange
}

// AuthExchange is one client's authentication exchange.
type AuthExchange interface {
	// Step takes the Authentication Data the client sent (in CONNECT,
	// then in each AUTH) and returns the data to send back. With done
	// false the data goes in an AUTH 0x18 and the client must answer;
	// with done true it goes in CONNACK and the client is in. A non-nil
	// error refuses the client (CONNACK 0x87 Not authorized). Step may set
	// c.Username / c.HasUsername to the identity it authenticated, which
	// the ACL then uses.
	Step(c *ClientInfo, in []byte) (out []byte, done bool, err error)
}

// maxAuthRounds bounds an enhanced authentication exchange.
const maxAuthRounds = 8

// identity returns the ClientInfo that read access of ss is checked
// with: that of its last connection, or, for a session restored from the
// store whose client has not connected since the restart, an anonymous
// client with the session's id.
func (ss *session) identity() *ClientInfo {
	if ci := ss.who.Load(); ci != nil {
		return ci
	}
	return &ClientInfo{ClientID: ss.id, internal: strings.HasPrefix(ss.id, InternalPrefix)}
}

// canRead reports whether the access control lets ss receive a message
// on topic.
func (s *Server) canRead(ss *session, topic string) bool {
	a := s.opts.Access
	ci := ss.identity()
	return a == nil || ci.internal || a.CanRead(ci, topic)
}

// canPublish reports whether the access control lets c publish to topic.
func (s *Server) canPublish(c *ClientInfo, topic string) bool {
	a := s.opts.Access
	return a == nil || c.internal || a.CanPublish(c, topic)
}

// readable reports whether the message being routed may go to ss.
func (r *router) readable(ss *session) bool {
	return r.srv.opts.Access == nil || r.srv.canRead(ss, r.msg.Topic)
}

// publishAllowed checks a PUBLISH's topic (the alias's topic when the
// packet has none) against the access control.
func (c *client) publishAllowed(topic []byte, aliased string) bool {
	t := aliased
	if t == "" {
		t = bytesString(topic)
	}
	return c.srv.canPublish(c.sess.identity(), t)
}

// bytesString views b as a string without copying, for checks that do
// not keep it.
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
