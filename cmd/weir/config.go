package main

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/weirmq/weir/broker"
	"gopkg.in/yaml.v3"
)

// config is the content of the configuration file. deploy/weir.example.yaml
// documents every key; config_test.go checks that it equals defaultConfig.
type config struct {
	Listeners           listenersConfig `yaml:"listeners"`
	Auth                authConfig      `yaml:"auth"`
	Limits              limitsConfig    `yaml:"limits"`
	ResponseInformation string          `yaml:"response_information"`
	Log                 logConfig       `yaml:"log"`
	// Durability is none (memory store), process or sync (Badger store).
	Durability string `yaml:"durability"`
	// DataDir is where the Badger store keeps its files.
	DataDir string `yaml:"data_dir"`
	// DiskReserve is the free space the store leaves on data_dir's file
	// system (badgerstore.Options.DiskReserve); 0: the store's default.
	DiskReserve size `yaml:"disk_reserve"`
	// Profile is auto, default or small (profile.go).
	Profile string `yaml:"profile"`
	// MemoryLimit is the Go runtime's soft memory limit; 0: see
	// goMemoryLimit.
	MemoryLimit size `yaml:"memory_limit"`
	// Bridges forward messages to and from upstream brokers (bridge.go).
	Bridges []bridgeConfig `yaml:"bridges"`
}

type listenersConfig struct {
	TCP           string `yaml:"tcp"`
	WebSocket     string `yaml:"websocket"` // "" or "-" disables it
	WebSocketPath string `yaml:"websocket_path"`
	// TLS configures the MQTT over TLS and secure WebSocket listeners
	// (security.go).
	TLS tlsConfig `yaml:"tls"`
}

// limitsConfig holds integers as int64 so that out-of-range values are
// reported by validate with their range, not as YAML type errors.
type limitsConfig struct {
	MaxConnections      int64    `yaml:"max_connections"`
	MaxPacketSize       size     `yaml:"max_packet_size"`
	ConnectTimeout      duration `yaml:"connect_timeout"`
	MaxKeepAlive        int64    `yaml:"max_keepalive"`
	ReceiveMaximum      int64    `yaml:"receive_maximum"`
	MaxInflight         int64    `yaml:"max_inflight"`
	MaxQueuedMessages   int64    `yaml:"max_queued_messages"`
	MaxQueuedBytes      size     `yaml:"max_queued_bytes"`
	QueueMemoryWindow   int64    `yaml:"queue_memory_window"`
	MaxStoreBytes       size     `yaml:"max_store_bytes"`
	OutboundBufferBytes size     `yaml:"outbound_buffer_bytes"`
	SlowConsumerTimeout duration `yaml:"slow_consumer_timeout"`
	TopicAliasMaximum   int64    `yaml:"topic_alias_maximum"`
	MaxSessionExpiry    int64    `yaml:"max_session_expiry"`

	MaxConnectionsPerIP       int64    `yaml:"max_connections_per_ip"`
	MaxTopicLength            int64    `yaml:"max_topic_length"`
	MaxTopicLevels            int64    `yaml:"max_topic_levels"`
	MaxSubscriptionsPerClient int64    `yaml:"max_subscriptions_per_client"`
	PublishRate               float64  `yaml:"publish_rate"`
	PublishBurst              int64    `yaml:"publish_burst"`
	MaxRetainedMessages       int64    `yaml:"max_retained_messages"`
	MaxRetainedBytes          size     `yaml:"max_retained_bytes"`
	MaxAuthFailures           int64    `yaml:"max_auth_failures"`
	AuthFailureWindow         duration `yaml:"auth_failure_window"`
}

type logConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// defaultConfig returns the configuration used without a file, and the
// values a file's missing keys take. They are broker.Options' defaults
// (config_test.go checks that they agree).
func defaultConfig() config {
	return config{
		Listeners: listenersConfig{TCP: ":1883", WebSocket: ":8080", WebSocketPath: "/mqtt",
			TLS: tlsConfig{MQTT: ":8883", MinVersion: "1.2"}},
		Auth: authConfig{AllowAnonymous: anonymousAuto, AnonymousListeners: []string{}},
		Limits: limitsConfig{
			MaxConnections:      10000,
			MaxPacketSize:       1 << 20,
			ConnectTimeout:      duration(10 * time.Second),
			MaxKeepAlive:        0,
			ReceiveMaximum:      1024,
			MaxInflight:         32,
			MaxQueuedMessages:   1000,
			MaxQueuedBytes:      16 << 20,
			QueueMemoryWindow:   1000,
			OutboundBufferBytes: 1 << 20,
			SlowConsumerTimeout: duration(30 * time.Second),
			TopicAliasMaximum:   64,
			MaxSessionExpiry:    0,

			MaxConnectionsPerIP:       0,
			MaxTopicLength:            4096,
			MaxTopicLevels:            128,
			MaxSubscriptionsPerClient: 1000,
			MaxAuthFailures:           10,
			AuthFailureWindow:         duration(time.Minute),
		},
		Log:        logConfig{Level: "info", Format: "text"},
		Durability: "process",
		DataDir:    "./weir-data",
		Profile:    profileAuto,
	}
}

// maxPacketSizeLimit is the largest packet MQTT can express.
const maxPacketSizeLimit = 268435460

// options returns the broker options for c, which must be valid.
func (c *config) options(logger *slog.Logger) broker.Options {
	l := c.Limits
	ws := c.Listeners.WebSocket
	if ws == "" {
		ws = "-"
	}
	tlsAddr := c.Listeners.TLS.MQTT
	if tlsAddr == "" {
		tlsAddr = "-"
	}
	burst := int(l.PublishBurst)
	if l.PublishRate > 0 && burst == 0 {
		burst = max(1, int(math.Ceil(l.PublishRate))) // broker.Options' default, made explicit
	}
	aliases := int(l.TopicAliasMaximum)
	if aliases == 0 {
		aliases = -1 // broker.Options: 0 means the default, negative none
	}
	return broker.Options{
		Addr:                c.Listeners.TCP,
		WSAddr:              ws,
		WSPath:              c.Listeners.WebSocketPath,
		Logger:              logger,
		MaxConnections:      int(l.MaxConnections),
		MaxPacketSize:       int(l.MaxPacketSize),
		ConnectTimeout:      time.Duration(l.ConnectTimeout),
		MaxKeepAlive:        uint16(l.MaxKeepAlive),
		ReceiveMaximum:      uint16(l.ReceiveMaximum),
		MaxInflight:         int(l.MaxInflight),
		MaxQueuedMessages:   int(l.MaxQueuedMessages),
		MaxQueuedBytes:      int(l.MaxQueuedBytes),
		QueueMemoryWindow:   int(l.QueueMemoryWindow),
		MaxStoreBytes:       int64(l.MaxStoreBytes),
		OutboundBufferBytes: int(l.OutboundBufferBytes),
		SlowConsumerTimeout: time.Duration(l.SlowConsumerTimeout),
		TopicAliasMaximum:   aliases,
		MaxSessionExpiry:    uint32(l.MaxSessionExpiry),
		ResponseInformation: c.ResponseInformation,

		TLSAddr:                   tlsAddr,
		WSSAddr:                   c.Listeners.TLS.WebSocket,
		UseIdentityAsUsername:     c.Listeners.TLS.UseIdentityAsUsername,
		MaxConnectionsPerIP:       int(l.MaxConnectionsPerIP),
		MaxTopicLength:            int(l.MaxTopicLength),
		MaxTopicLevels:            int(l.MaxTopicLevels),
		MaxSubscriptionsPerClient: int(l.MaxSubscriptionsPerClient),
		PublishRate:               l.PublishRate,
		PublishBurst:              burst,
		MaxRetainedMessages:       int(l.MaxRetainedMessages),
		MaxRetainedBytes:          int64(l.MaxRetainedBytes),
		MaxAuthFailures:           int(l.MaxAuthFailures),
		AuthFailureWindow:         time.Duration(l.AuthFailureWindow),
	}
}

// configError is one problem in a configuration file.
type configError struct {
	Line int    // 1-based line in the file; 0 if not known
	Path string // key path such as "limits.receive_maximum"; "" if not known
	Msg  string
}

func (e *configError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// loadConfig reads and validates the file at path. See parseConfig.
func loadConfig(path string) (config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return defaultConfig(), err
	}
	return parseConfig(data)
}

// parseConfig decodes a YAML configuration over the defaults and validates
// the result. It reports every problem it finds, in file order, joined
// with errors.Join, each a *configError naming its line and key; unknown
// keys are problems.
func parseConfig(data []byte) (config, error) {
	cfg := defaultConfig()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return cfg, yamlError(err)
	}
	idx := newKeyIndex(&root)

	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var errs []error
	var te *yaml.TypeError
	switch err := dec.Decode(&cfg); {
	case err == nil || errors.Is(err, io.EOF):
	case errors.As(err, &te):
		for _, msg := range te.Errors {
			errs = append(errs, idx.explain(msg))
		}
	default:
		return cfg, yamlError(err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		errs = append(errs, &configError{Line: next.Line, Msg: "only one YAML document is allowed"})
	}
	errs = append(errs, cfg.validate(idx)...)
	// In file order; problems without a line last.
	slices.SortStableFunc(errs, func(a, b error) int {
		return cmp.Compare(sortLine(a), sortLine(b))
	})
	return cfg, errors.Join(errs...)
}

func sortLine(err error) int {
	var ce *configError
	if errors.As(err, &ce) && ce.Line > 0 {
		return ce.Line
	}
	return math.MaxInt
}

// validate checks every value and returns one error per problem. idx, if
// not nil, supplies the line of each key.
func (c *config) validate(idx *keyIndex) []error {
	v := validator{idx: idx}

	tcp, ws := c.Listeners.TCP, c.Listeners.WebSocket
	v.addr("listeners.tcp", tcp)
	wsOn := ws != "" && ws != "-"
	if wsOn {
		v.addr("listeners.websocket", ws)
		if ws == tcp && !strings.HasSuffix(ws, ":0") {
			v.errorf("listeners.websocket", "%q is also listeners.tcp; use another port", ws)
		}
	}
	p := c.Listeners.WebSocketPath
	switch {
	case !strings.HasPrefix(p, "/"):
		v.errorf("listeners.websocket_path", "%q must start with \"/\"", p)
	case strings.ContainsAny(p, " \t\r\n{}?#"):
		v.errorf("listeners.websocket_path", "%q must not contain spaces, braces, \"?\" or \"#\"", p)
	}

	l := c.Limits
	if n := l.MaxConnections; n == 0 || n < -1 || n > math.MaxInt {
		v.errorf("limits.max_connections", "%d is out of range: use 1..%d, or -1 for no limit", n, math.MaxInt)
	}
	v.intRange("limits.max_packet_size", int64(l.MaxPacketSize), 16, maxPacketSizeLimit)
	v.positive("limits.connect_timeout", l.ConnectTimeout)
	v.intRange("limits.max_keepalive", l.MaxKeepAlive, 0, math.MaxUint16)
	v.intRange("limits.receive_maximum", l.ReceiveMaximum, 1, math.MaxUint16)
	v.intRange("limits.max_inflight", l.MaxInflight, 1, math.MaxUint16)
	v.intRange("limits.max_queued_messages", l.MaxQueuedMessages, 1, math.MaxInt)
	v.intRange("limits.max_queued_bytes", int64(l.MaxQueuedBytes), 1, math.MaxInt)
	v.intRange("limits.queue_memory_window", l.QueueMemoryWindow, 1, math.MaxInt)
	v.intRange("limits.max_store_bytes", int64(l.MaxStoreBytes), 0, math.MaxInt64)
	v.intRange("limits.outbound_buffer_bytes", int64(l.OutboundBufferBytes), 1, math.MaxInt)
	v.positive("limits.slow_consumer_timeout", l.SlowConsumerTimeout)
	v.intRange("limits.topic_alias_maximum", l.TopicAliasMaximum, 0, math.MaxUint16)
	v.intRange("limits.max_session_expiry", l.MaxSessionExpiry, 0, math.MaxUint32)
	v.intRange("limits.max_connections_per_ip", l.MaxConnectionsPerIP, 0, math.MaxInt32)
	v.intRange("limits.max_topic_length", l.MaxTopicLength, 1, math.MaxUint16)
	v.intRange("limits.max_topic_levels", l.MaxTopicLevels, 1, math.MaxUint16)
	if n := l.MaxSubscriptionsPerClient; n == 0 || n < -1 || n > math.MaxInt32 {
		v.errorf("limits.max_subscriptions_per_client", "%d is out of range: use 1..%d, or -1 for no limit", n, math.MaxInt32)
	}
	if r := l.PublishRate; r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
		v.errorf("limits.publish_rate", "%v is out of range: use a number of messages per second >= 0 (0: no limit)", r)
	}
	v.intRange("limits.publish_burst", l.PublishBurst, 0, math.MaxInt32)
	v.intRange("limits.max_retained_messages", l.MaxRetainedMessages, 0, math.MaxInt32)
	v.intRange("limits.max_retained_bytes", int64(l.MaxRetainedBytes), 0, math.MaxInt64)
	if n := l.MaxAuthFailures; n == 0 || n < -1 || n > math.MaxInt32 {
		v.errorf("limits.max_auth_failures", "%d is out of range: use 1..%d, or -1 for no limit", n, math.MaxInt32)
	}
	v.positive("limits.auth_failure_window", l.AuthFailureWindow)
	c.validateSecurity(&v)

	if r := c.ResponseInformation; len(r) > math.MaxUint16 || !utf8.ValidString(r) || strings.ContainsRune(r, 0) {
		v.errorf("response_information", "must be valid UTF-8 without U+0000, at most 65535 bytes")
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		v.errorf("log.level", "%v", err)
	}
	if err := checkFormat(c.Log.Format); err != nil {
		v.errorf("log.format", "%v", err)
	}
	switch c.Durability {
	case "none":
	case "process", "sync":
		if c.DataDir == "" {
			v.errorf("data_dir", "must be set for durability %q", c.Durability)
		}
		v.intRange("disk_reserve", int64(c.DiskReserve), 0, math.MaxInt64)
	default:
		v.errorf("durability", "%q is not one of none, process, sync", c.Durability)
	}
	if err := checkProfile(c.Profile); err != nil {
		v.errorf("profile", "%v", err)
	}
	v.intRange("memory_limit", int64(c.MemoryLimit), 0, math.MaxInt64)
	c.validateBridges(&v)
	return v.errs
}

// validator collects validation errors.
type validator struct {
	idx  *keyIndex
	errs []error
}

func (v *validator) errorf(path, format string, args ...any) {
	e := &configError{Path: path, Msg: fmt.Sprintf(format, args...)}
	if v.idx != nil {
		e.Line = v.idx.lineOf(path)
	}
	v.errs = append(v.errs, e)
}

func (v *validator) intRange(path string, n, lo, hi int64) {
	switch {
	case n >= lo && n <= hi:
	case hi == math.MaxInt && n >= lo:
		v.errorf(path, "%d is out of range: at most %d on this platform", n, hi)
	case hi == math.MaxInt:
		v.errorf(path, "%d is out of range: must be at least %d", n, lo)
	default:
		v.errorf(path, "%d is out of range %d..%d", n, lo, hi)
	}
}

func (v *validator) positive(path string, d duration) {
	if d <= 0 {
		v.errorf(path, "%s is out of range: must be greater than 0", d)
	}
}

// addr checks a listen address: host:port, the host optional, the port a
// number (0 picks a free port) or a service name.
func (v *validator) addr(path, a string) {
	if a == "" {
		v.errorf(path, "must be set, as host:port or :port")
		return
	}
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		if _, nerr := strconv.Atoi(a); nerr == nil {
			v.errorf(path, "%q is not host:port; did you mean \":%s\"?", a, a)
		} else {
			v.errorf(path, "%q is not host:port: %v", a, unwrapAddrErr(err))
		}
		return
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		v.errorf(path, "%q: invalid port %q", a, port)
	}
}

func unwrapAddrErr(err error) error {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return errors.New(ae.Err)
	}
	return err
}

// parseLevel parses a log level name.
func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q is not one of debug, info, warn, error", s)
}

// checkFormat checks a log format name.
func checkFormat(s string) error {
	if s == "text" || s == "json" {
		return nil
	}
	return fmt.Errorf("%q is not one of text, json", s)
}
