package bridge

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/weirmq/weir/mqtt"
)

// Config configures one bridge.
type Config struct {
	// Name identifies the bridge in logs, status and its local session.
	Name string
	// Address of the upstream broker: tcp://host:port, tls://host:port,
	// ws://host:port/path or wss://host:port/path.
	Address string
	// Version is mqtt.V311 or mqtt.V5.
	Version mqtt.Version
	// ClientID, Username and Password are sent in the upstream CONNECT.
	ClientID string
	Username string
	Password string
	// TLS applies to tls:// and wss:// addresses.
	TLS TLSConfig
	// KeepAlive is the upstream keep-alive. Default 60s.
	KeepAlive time.Duration
	// CleanStart asks the upstream broker for a new session on every
	// connection. false keeps the upstream session (and its subscriptions
	// for in rules) across reconnects, which exactly-once QoS 2 needs.
	CleanStart bool
	// SessionExpiry is the upstream session expiry (MQTT 5.0; whole
	// seconds). Ignored for 3.1.1, where a session without clean start
	// never expires.
	SessionExpiry time.Duration
	// Window bounds the QoS 1/2 messages sent upstream and not yet
	// acknowledged (also capped by the upstream's Receive Maximum).
	// Default 64.
	Window int
	// MaxOutboxBytes bounds the messages waiting to go upstream (message
	// bytes, store.Message.Size); over it each out rule's Policy decides
	// what is dropped. 0: no bound but the store's.
	MaxOutboxBytes int64
	// MessageIDProperty names the MQTT 5.0 user property that carries a
	// message's stable id upstream (the same on every re-send), so that
	// upstream consumers can de-duplicate; "" sends none. The value is
	// "<client id>/<local message id>".
	MessageIDProperty string
	// MinBackoff and MaxBackoff bound the wait between connection
	// attempts; it doubles per failure, with jitter. Defaults 1s and 1m.
	MinBackoff, MaxBackoff time.Duration
	// StatusInterval is how often the status is checked, and logged and
	// published under SysPrefix if it changed. Default 10s.
	StatusInterval time.Duration
	// Backfill is the order after an outage: InOrder (default) sends the
	// backlog first, LiveFirst sends new messages ahead of it.
	Backfill Backfill
	// BackfillRate, when positive, bounds in messages per second how fast
	// the backlog of an outage is sent (with LiveFirst, behind the live
	// messages, which it does not hold back).
	BackfillRate float64
	// Out rules select local messages for upstream; In rules select
	// upstream messages for the local broker. The first rule whose filter
	// matches a topic applies.
	Out []OutRule
	In  []InRule
}

// TLSConfig is the TLS setup for the upstream connection.
type TLSConfig struct {
	CAFile     string // PEM CA certificates; "" uses the system roots
	CertFile   string // PEM client certificate, with KeyFile
	KeyFile    string
	ServerName string // "" uses the host of Address
	// Config, when not nil, is used as is (for programs embedding Weir).
	Config *tls.Config
}

// OutRule forwards local messages matching Filter upstream.
type OutRule struct {
	Filter string // local topic filter
	// The remote topic is AddPrefix + the local topic without StripPrefix.
	StripPrefix string
	AddPrefix   string
	// QoS is the highest QoS forwarded with (messages keep a lower one).
	QoS byte
	// Retain forwards the retain flag as published; false clears it.
	Retain bool
	// Policy applies when the outbox budget is full.
	Policy Policy
}

// InRule brings upstream messages matching Filter to the local broker.
type InRule struct {
	Filter string // remote topic filter
	// The local topic is AddPrefix + the remote topic without StripPrefix.
	StripPrefix string
	AddPrefix   string
	QoS         byte // subscription QoS upstream
}

// Backfill is the order of backlog and live messages after an outage.
type Backfill string

// Backfill orders.
const (
	InOrder   Backfill = "in-order"
	LiveFirst Backfill = "live-first"
)

// Policy says what gives way when the outbox budget is full.
type Policy string

// Outbox policies.
const (
	DropOldest       Policy = "drop-oldest"
	DropNew          Policy = "drop-new"
	KeepLastPerTopic Policy = "keep-last-per-topic"
)

// Defaults.
const (
	DefaultKeepAlive  = 60 * time.Second
	DefaultWindow     = 64
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = time.Minute
	// DefaultStatusInterval is the default Config.StatusInterval.
	DefaultStatusInterval = 10 * time.Second
)

// FieldError is one problem of a Config: Field is the key (as in the YAML
// configuration, e.g. "out[1].filter").
type FieldError struct {
	Field string
	Msg   string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Msg }

// Validate returns every problem of c.
func (c *Config) Validate() []FieldError {
	var errs []FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, FieldError{field, fmt.Sprintf(format, args...)})
	}
	if c.Name == "" || strings.ContainsAny(c.Name, "/+#\x00") {
		bad("name", "%q: must be set, without \"/\", \"+\", \"#\"", c.Name)
	}
	if u, err := url.Parse(c.Address); err != nil {
		bad("address", "%v", err)
	} else {
		switch u.Scheme {
		case "tcp", "tls", "ws", "wss":
			if u.Port() == "" {
				bad("address", "%q has no port", c.Address)
			}
		default:
			bad("address", "%q: use tcp://, tls://, ws:// or wss://host:port", c.Address)
		}
	}
	if c.Version != mqtt.V311 && c.Version != mqtt.V5 {
		bad("version", "must be 3.1.1 or 5")
	}
	if c.ClientID == "" && c.Version == mqtt.V311 && !c.CleanStart {
		bad("client_id", "must be set for a 3.1.1 upstream without clean start [MQTT-3.1.3-8]")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls.key_file", "cert_file and key_file go together")
	}
	if c.KeepAlive < 0 || c.KeepAlive > 65535*time.Second {
		bad("keep_alive", "%v is out of range 0..65535s", c.KeepAlive)
	}
	if c.SessionExpiry < 0 || c.SessionExpiry > 0xFFFFFFFF*time.Second {
		bad("session_expiry", "%v is out of range", c.SessionExpiry)
	}
	if c.Window < 0 || c.Window > 65535 {
		bad("window", "%d is out of range 1..65535", c.Window)
	}
	if c.MaxOutboxBytes < 0 {
		bad("max_outbox_bytes", "must not be negative")
	}
	if c.MinBackoff < 0 || c.MaxBackoff < 0 || c.MaxBackoff > 0 && c.MinBackoff > c.MaxBackoff {
		bad("max_backoff", "backoffs must not be negative, min_backoff at most max_backoff")
	}
	if c.Backfill != "" && c.Backfill != InOrder && c.Backfill != LiveFirst {
		bad("backfill", "%q is not in-order or live-first", c.Backfill)
	}
	if c.BackfillRate < 0 {
		bad("backfill_rate", "must not be negative")
	}
	if len(c.Out) == 0 && len(c.In) == 0 {
		bad("out", "a bridge needs at least one out or in rule")
	}
	for i, r := range c.Out {
		f := fmt.Sprintf("out[%d]", i)
		checkRule(bad, f, r.Filter, r.StripPrefix, r.AddPrefix, r.QoS)
		switch r.Policy {
		case DropOldest, DropNew, KeepLastPerTopic:
		default:
			bad(f+".policy", "%q is not drop-oldest, drop-new or keep-last-per-topic", r.Policy)
		}
	}
	for i, r := range c.In {
		checkRule(bad, fmt.Sprintf("in[%d]", i), r.Filter, r.StripPrefix, r.AddPrefix, r.QoS)
	}
	return errs
}

func checkRule(bad func(string, string, ...any), f, filter, strip, add string, qos byte) {
	if err := mqtt.ValidateTopicFilter(filter); err != nil {
		bad(f+".filter", "%q: %v", filter, err)
	} else if strings.HasPrefix(filter, "$share/") {
		bad(f+".filter", "%q: shared subscriptions cannot be bridged", filter)
	}
	if strings.ContainsAny(add, "+#\x00") {
		bad(f+".add_prefix", "%q must not contain wildcards", add)
	}
	if qos > 2 {
		bad(f+".qos", "%d is not 0, 1 or 2", qos)
	}
}

// mapTopic applies a rule's prefix rewriting; "" if the result is not a
// valid topic name.
func mapTopic(topic, strip, add string) string {
	t := add + strings.TrimPrefix(topic, strip)
	if mqtt.ValidateTopicName(t) != nil {
		return ""
	}
	return t
}

func (c *Config) withDefaults() Config {
	v := *c
	if v.KeepAlive == 0 {
		v.KeepAlive = DefaultKeepAlive
	}
	if v.Window == 0 {
		v.Window = DefaultWindow
	}
	if v.MinBackoff == 0 {
		v.MinBackoff = DefaultMinBackoff
	}
	if v.MaxBackoff == 0 {
		v.MaxBackoff = DefaultMaxBackoff
	}
	if v.StatusInterval <= 0 {
		v.StatusInterval = DefaultStatusInterval
	}
	return v
}
