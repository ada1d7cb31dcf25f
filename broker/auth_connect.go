package broker

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/weirmq/weir/mqtt"
)

// authenticate decides whether the client of CONNECT p (client id id)
// may connect. It returns the client's identity and, after an enhanced
// authentication exchange, the Authentication Data for CONNACK. On
// refusal code is the CONNACK reason and why a log message without
// secrets.
func (c *client) authenticate(p *mqtt.Connect, id string) (ci *ClientInfo, authData []byte, code mqtt.ReasonCode, why string) {
	s := c.srv
	ci = &ClientInfo{ClientID: id, Username: p.Username, HasUsername: p.HasUsername,
		Remote: c.conn.RemoteAddr().String(), TLS: tlsState(c.conn), Listener: c.transport}
	if ci.Listener == "websocket" && ci.TLS != nil {
		ci.Listener = "wss"
	}
	if c.internal != nil {
		ci.internal = true // the server's own connection (DialInternal)
		return ci, nil, mqtt.Success, ""
	}
	host := remoteHost(c.conn)
	if !s.loginFails.allowed(host, time.Now()) {
		return ci, nil, mqtt.NotAuthorized, "too many failed logins from this address"
	}
	if s.opts.UseIdentityAsUsername && ci.TLS != nil {
		cn := certIdentity(ci.TLS)
		if cn == "" {
			return ci, nil, mqtt.NotAuthorized, "no verified client certificate with a common name"
		}
		ci.Username, ci.HasUsername, ci.CertAuthenticated = cn, true, true
	}
	method := ""
	if p.ProtocolLevel == mqtt.V5 {
		method = p.Props.AuthMethod
	}
	switch {
	case method != "":
		a := s.opts.Authenticators[method]
		if a == nil {
			// [MQTT-4.12.0-1]: an unsupported method is refused.
			return ci, nil, mqtt.BadAuthenticationMethod, "unsupported authentication method " + method
		}
		out, err := c.exchangeAuth(a, ci, method, p.Props.AuthData)
		if err != nil {
			s.loginFailed(c, host, ci, "enhanced authentication failed: "+err.Error())
			return ci, nil, mqtt.NotAuthorized, "enhanced authentication failed"
		}
		return ci, out, mqtt.Success, ""
	case ci.CertAuthenticated || s.opts.Access == nil:
		return ci, nil, mqtt.Success, ""
	}
	code = s.opts.Access.Authenticate(ci, p.Password, p.HasPassword)
	if code != mqtt.Success {
		why = "bad username or password"
		if code != mqtt.BadUserNameOrPassword {
			why = "not authorized"
		}
		s.loginFailed(c, host, ci, why)
		if ci.HasUsername {
			// The username helps find a misconfigured device; it is
			// clipped since it comes from the client. Never the password.
			why += fmt.Sprintf(" (username %q)", clip(ci.Username, 64))
		} else {
			why += " (no username)"
		}
		return ci, nil, code, why
	}
	return ci, nil, mqtt.Success, ""
}

// exchangeAuth runs an enhanced authentication exchange: AUTH 0x18
// packets back and forth until the Authenticator is done. Every packet
// must arrive within the connect timeout that is already armed.
func (c *client) exchangeAuth(a Authenticator, ci *ClientInfo, method string, in []byte) ([]byte, error) {
	ex := a.NewExchange(ci)
	for round := 0; ; round++ {
		out, done, err := ex.Step(ci, in)
		if err != nil || done {
			return out, err
		}
		if round == maxAuthRounds {
			return nil, errors.New("too many rounds")
		}
		c.writeRaw(&mqtt.Auth{ReasonCode: mqtt.ContinueAuthentication,
			Props: mqtt.Properties{AuthMethod: method, AuthData: out}}, mqtt.V5)
		pkt, err := c.rd.ReadPacket()
		if err != nil {
			return nil, err
		}
		if mqtt.PeekType(pkt) != mqtt.AUTH {
			return nil, errors.New("expected AUTH")
		}
		var reply mqtt.Auth
		if err := reply.Decode(pkt, mqtt.V5); err != nil {
			return nil, err
		}
		// [MQTT-4.12.0-5]: the method stays the same during the exchange.
		if reply.ReasonCode != mqtt.ContinueAuthentication || reply.Props.AuthMethod != method {
			return nil, errors.New("AUTH with another reason code or method")
		}
		in = reply.Props.AuthData
	}
}

// loginFailed counts a failed login of the client's source address and
// logs it, without the password; the log line says when the address
// starts being refused.
func (s *Server) loginFailed(c *client, host string, ci *ClientInfo, why string) {
	blocked := s.loginFails.fail(host, time.Now())
	s.stats.authFailures.Add(1)
	if blocked {
		c.log.Warn("failed logins over the limit; refusing this address for a while", "client", ci.ClientID,
			"username", ci.Username, "reason", why, "max_failures", s.opts.MaxAuthFailures,
			"window", s.opts.AuthFailureWindow.String())
	}
}

func remoteHost(conn net.Conn) string {
	a := conn.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(a); err == nil {
		return h
	}
	return a
}

// failLimiter counts failed logins per source address in fixed windows.
// Its table is bounded: when full, windows that have passed are dropped,
// and if none has, a new address is not tracked (it is limited no less
// than before the table filled: an attacker cannot evict entries).
type failLimiter struct {
	max    int
	window time.Duration
	mu     sync.Mutex
	m      map[string]*failEntry
}

type failEntry struct {
	start time.Time
	n     int
}

// failTableSize bounds the addresses a failLimiter tracks.
const failTableSize = 10000

func (f *failLimiter) allowed(host string, now time.Time) bool {
	if f.max < 0 {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.m[host]
	if e == nil || now.Sub(e.start) >= f.window {
		return true
	}
	return e.n < f.max
}

// fail counts a failure and reports whether host just reached the limit.
func (f *failLimiter) fail(host string, now time.Time) bool {
	if f.max < 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = make(map[string]*failEntry)
	}
	e := f.m[host]
	if e == nil || now.Sub(e.start) >= f.window {
		if e == nil && len(f.m) >= failTableSize {
			for h, old := range f.m {
				if now.Sub(old.start) >= f.window {
					delete(f.m, h)
				}
			}
			if len(f.m) >= failTableSize {
				return false
			}
		}
		e = &failEntry{start: now}
		f.m[host] = e
	}
	e.n++
	return e.n == f.max
}

// clip shortens s to at most n bytes for a log line.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
