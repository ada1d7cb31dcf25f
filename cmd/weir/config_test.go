package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/internal/brokertest"
	"gopkg.in/yaml.v3"
)

const examplePath = "../../deploy/weir.example.yaml"

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// problems returns the individual errors joined in err.
func problems(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// TestExampleConfig keeps deploy/weir.example.yaml and the code in step:
// the file is valid, sets every key, documents every key, and its values
// are the defaults.
func TestExampleConfig(t *testing.T) {
	cfg, err := loadConfig(examplePath)
	if err != nil {
		t.Fatalf("example config is invalid:\n%v", err)
	}
	if want := defaultConfig(); !reflect.DeepEqual(cfg, want) {
		t.Errorf("example config differs from defaultConfig():\n got  %+v\n want %+v", cfg, want)
	}

	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	idx := newKeyIndex(&root)
	inFile := map[string]keyEntry{}
	for _, e := range idx.entries {
		inFile[e.path] = e
		if strings.TrimSpace(e.key.HeadComment+e.key.LineComment) == "" {
			t.Errorf("line %d: key %s has no comment", e.key.Line, e.path)
		}
	}
	for _, path := range allKeyPaths(reflect.TypeFor[config](), "") {
		if _, ok := inFile[path]; !ok {
			t.Errorf("key %s is missing from %s", path, examplePath)
		}
	}
}

// allKeyPaths lists the key paths of the YAML mappings and values of t.
func allKeyPaths(t reflect.Type, prefix string) []string {
	var paths []string
	for _, k := range yamlKeys(t) {
		f, _ := fieldByKey(t, k)
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		paths = append(paths, path)
		if f.Type.Kind() == reflect.Struct {
			paths = append(paths, allKeyPaths(f.Type, path)...)
		}
	}
	return paths
}

// TestDefaultsMatchBroker checks that the defaults of the config are the
// defaults broker.Options documents, so running without a config file and
// with the example file are the same as an embedded broker.Options{}.
func TestDefaultsMatchBroker(t *testing.T) {
	srv, err := broker.New(&broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	want := srv.Options()
	cfg := defaultConfig()
	got := cfg.options(discard)
	want.Logger = discard
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config defaults as options:\n got  %+v\n want %+v", got, want)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"", "\n", "# only a comment\n", "---\n"} {
		cfg, err := parseConfig([]byte(in))
		if err != nil {
			t.Errorf("%q: %v", in, err)
		}
		if !reflect.DeepEqual(cfg, defaultConfig()) {
			t.Errorf("%q: not the defaults: %+v", in, cfg)
		}
	}
}

func TestParseFull(t *testing.T) {
	dir := t.TempDir()
	ca := brokertest.NewCA(t, "ca")
	cert, key := ca.WriteCert(t, dir, "server", "server", true)
	caFile := ca.WriteCA(t, dir, "ca.crt")
	pwFile := filepath.Join(dir, "passwd")
	aclFile := filepath.Join(dir, "acl")
	brokertest.WriteFileAtomic(t, pwFile, nil)
	brokertest.WriteFileAtomic(t, aclFile, []byte("topic read #\n"))
	in := fmt.Sprintf(`
listeners:
  tcp: "127.0.0.1:1884"
  websocket: "-"
  websocket_path: /ws
  tls:
    mqtt: ":8884"
    websocket: ":8443"
    cert_file: %q
    key_file: %q
    ca_file: %q
    require_certificate: true
    min_version: "1.3"
    use_identity_as_username: true
auth:
  allow_anonymous: false
  password_file: %q
  acl_file: %q
  anonymous_listeners: [tcp]
`, cert, key, caFile, pwFile, aclFile) + `
limits:
  max_connections: -1
  max_packet_size: 512KiB
  connect_timeout: 1m30s
  max_keepalive: 600
  receive_maximum: 100
  max_inflight: 65535
  max_queued_messages: 50
  max_queued_bytes: 2MB
  queue_memory_window: 20
  outbound_buffer_bytes: 65536
  slow_consumer_timeout: 500ms
  topic_alias_maximum: 0
  max_session_expiry: 4294967295
  max_connections_per_ip: 20
  max_topic_length: 256
  max_topic_levels: 8
  max_subscriptions_per_client: -1
  publish_rate: 2.5
  publish_burst: 10
  max_retained_messages: 5000
  max_retained_bytes: 8MiB
  max_auth_failures: 3
  auth_failure_window: 5m
response_information: "resp/"
log:
  level: debug
  format: json
durability: none
data_dir: /var/lib/weir
profile: small
memory_limit: 200MiB
`
	cfg, err := parseConfig([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		Listeners: listenersConfig{TCP: "127.0.0.1:1884", WebSocket: "-", WebSocketPath: "/ws",
			TLS: tlsConfig{MQTT: ":8884", WebSocket: ":8443", CertFile: cert, KeyFile: key, CAFile: caFile,
				RequireCertificate: true, MinVersion: "1.3", UseIdentityAsUsername: true}},
		Auth: authConfig{AllowAnonymous: "false", PasswordFile: pwFile, ACLFile: aclFile, AnonymousListeners: []string{"tcp"}},
		Limits: limitsConfig{
			MaxConnections:      -1,
			MaxPacketSize:       512 << 10,
			ConnectTimeout:      duration(90 * time.Second),
			MaxKeepAlive:        600,
			ReceiveMaximum:      100,
			MaxInflight:         65535,
			MaxQueuedMessages:   50,
			MaxQueuedBytes:      2000000,
			QueueMemoryWindow:   20,
			OutboundBufferBytes: 65536,
			SlowConsumerTimeout: duration(500 * time.Millisecond),
			TopicAliasMaximum:   0,
			MaxSessionExpiry:    4294967295,

			MaxConnectionsPerIP:       20,
			MaxTopicLength:            256,
			MaxTopicLevels:            8,
			MaxSubscriptionsPerClient: -1,
			PublishRate:               2.5,
			PublishBurst:              10,
			MaxRetainedMessages:       5000,
			MaxRetainedBytes:          8 << 20,
			MaxAuthFailures:           3,
			AuthFailureWindow:         duration(5 * time.Minute),
		},
		ResponseInformation: "resp/",
		Log:                 logConfig{Level: "debug", Format: "json"},
		Durability:          "none",
		DataDir:             "/var/lib/weir",
		Profile:             "small",
		MemoryLimit:         200 << 20,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("got  %+v\nwant %+v", cfg, want)
	}
	o := cfg.options(discard)
	wantOpts := broker.Options{
		Addr: "127.0.0.1:1884", WSAddr: "-", WSPath: "/ws", Logger: discard,
		MaxConnections: -1, MaxPacketSize: 512 << 10, ConnectTimeout: 90 * time.Second,
		MaxKeepAlive: 600, ReceiveMaximum: 100, MaxInflight: 65535,
		MaxQueuedMessages: 50, MaxQueuedBytes: 2000000, QueueMemoryWindow: 20, OutboundBufferBytes: 65536,
		SlowConsumerTimeout: 500 * time.Millisecond, TopicAliasMaximum: -1,
		MaxSessionExpiry: 4294967295, ResponseInformation: "resp/",
		TLSAddr: ":8884", WSSAddr: ":8443", UseIdentityAsUsername: true,
		MaxConnectionsPerIP: 20, MaxTopicLength: 256, MaxTopicLevels: 8, MaxSubscriptionsPerClient: -1,
		PublishRate: 2.5, PublishBurst: 10, MaxRetainedMessages: 5000, MaxRetainedBytes: 8 << 20,
		MaxAuthFailures: 3, AuthFailureWindow: 5 * time.Minute,
	}
	if !reflect.DeepEqual(o, wantOpts) {
		t.Errorf("options:\n got  %+v\n want %+v", o, wantOpts)
	}
}

// TestPartialKeepsDefaults checks that keys left out, or without a value,
// keep their defaults.
func TestPartialKeepsDefaults(t *testing.T) {
	cfg, err := parseConfig([]byte("limits:\n  receive_maximum: 10\n  max_packet_size:\n  max_inflight: ~\nlisteners:\n  websocket: \"\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := defaultConfig()
	want.Limits.ReceiveMaximum = 10
	want.Listeners.WebSocket = ""
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}
	if o := cfg.options(discard); o.WSAddr != "-" {
		t.Errorf("websocket \"\" gives WSAddr %q, want \"-\"", o.WSAddr)
	}
}

// TestInvalid has one bad value per case; the error must be the only one
// and name the line and key.
func TestInvalid(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"tcp empty", "listeners:\n  tcp: \"\"\n", `line 2: listeners.tcp: must be set`},
		{"tcp port only", "listeners:\n  tcp: 1883\n", `line 2: listeners.tcp: "1883" is not host:port; did you mean ":1883"?`},
		{"tcp no port", "listeners:\n  tcp: localhost\n", `line 2: listeners.tcp: "localhost" is not host:port: missing port in address`},
		{"tcp bad port", "listeners:\n  tcp: \":70000\"\n", `line 2: listeners.tcp: ":70000": invalid port "70000"`},
		{"websocket bad", "listeners:\n  websocket: \"::8080\"\n", `line 2: listeners.websocket: "::8080" is not host:port`},
		{"websocket same as tcp", "listeners:\n  tcp: \":1883\"\n  websocket: \":1883\"\n", `line 3: listeners.websocket: ":1883" is also listeners.tcp`},
		{"websocket path relative", "listeners:\n  websocket_path: mqtt\n", `line 2: listeners.websocket_path: "mqtt" must start with "/"`},
		{"websocket path pattern", "listeners:\n  websocket_path: \"/{x}\"\n", `line 2: listeners.websocket_path: "/{x}" must not contain`},
		{"max_connections 0", "limits:\n  max_connections: 0\n", `line 2: limits.max_connections: 0 is out of range: use 1..`},
		{"max_connections -2", "limits:\n  max_connections: -2\n", `limits.max_connections: -2 is out of range`},
		{"max_packet_size small", "limits:\n  max_packet_size: 15\n", `line 2: limits.max_packet_size: 15 is out of range 16..268435460`},
		{"max_packet_size large", "limits:\n  max_packet_size: 1GiB\n", `limits.max_packet_size: 1073741824 is out of range 16..268435460`},
		{"max_packet_size unit", "limits:\n  max_packet_size: 1XB\n", `line 2: limits.max_packet_size: invalid size "1XB": unknown unit "XB"`},
		{"max_packet_size negative", "limits:\n  max_packet_size: -5\n", `line 2: limits.max_packet_size: invalid size "-5": must not be negative`},
		{"max_packet_size list", "limits:\n  max_packet_size: [1]\n", `line 2: limits.max_packet_size: want a size`},
		{"connect_timeout 0", "limits:\n  connect_timeout: 0s\n", `line 2: limits.connect_timeout: 0s is out of range: must be greater than 0`},
		{"connect_timeout negative", "limits:\n  connect_timeout: -1s\n", `limits.connect_timeout: -1s is out of range`},
		{"connect_timeout no unit", "limits:\n  connect_timeout: 10\n", `line 2: limits.connect_timeout: invalid duration "10": missing unit; write e.g. "10s"`},
		{"connect_timeout junk", "limits:\n  connect_timeout: soon\n", `line 2: limits.connect_timeout: invalid duration "soon"`},
		{"max_keepalive", "limits:\n  max_keepalive: 65536\n", `line 2: limits.max_keepalive: 65536 is out of range 0..65535`},
		{"max_keepalive negative", "limits:\n  max_keepalive: -1\n", `limits.max_keepalive: -1 is out of range 0..65535`},
		{"receive_maximum 0", "limits:\n  receive_maximum: 0\n", `line 2: limits.receive_maximum: 0 is out of range 1..65535`},
		{"receive_maximum large", "limits:\n  receive_maximum: 65536\n", `limits.receive_maximum: 65536 is out of range 1..65535`},
		{"receive_maximum text", "limits:\n  receive_maximum: lots\n", `line 2: limits.receive_maximum: want an integer, got "lots"`},
		{"max_inflight 0", "limits:\n  max_inflight: 0\n", `line 2: limits.max_inflight: 0 is out of range 1..65535`},
		{"max_inflight large", "limits:\n  max_inflight: 100000\n", `limits.max_inflight: 100000 is out of range 1..65535`},
		{"max_queued_messages 0", "limits:\n  max_queued_messages: 0\n", `line 2: limits.max_queued_messages: 0 is out of range: must be at least 1`},
		{"max_queued_bytes 0", "limits:\n  max_queued_bytes: 0MiB\n", `line 2: limits.max_queued_bytes: 0 is out of range: must be at least 1`},
		{"outbound_buffer_bytes 0", "limits:\n  outbound_buffer_bytes: 0\n", `line 2: limits.outbound_buffer_bytes: 0 is out of range: must be at least 1`},
		{"slow_consumer_timeout 0", "limits:\n  slow_consumer_timeout: 0ms\n", `line 2: limits.slow_consumer_timeout: 0s is out of range: must be greater than 0`},
		{"topic_alias_maximum", "limits:\n  topic_alias_maximum: 65536\n", `limits.topic_alias_maximum: 65536 is out of range 0..65535`},
		{"max_session_expiry", "limits:\n  max_session_expiry: 4294967296\n", `limits.max_session_expiry: 4294967296 is out of range 0..4294967295`},
		{"response_information NUL", "response_information: \"a\\0b\"\n", `line 1: response_information: must be valid UTF-8 without U+0000`},
		{"anonymous_listeners", "auth:\n  anonymous_listeners: [tcp, ftp]\n", `line 2: auth.anonymous_listeners: "ftp" is not one of tcp, websocket, tls, wss`},
		{"tls min_version", "listeners:\n  tls:\n    min_version: \"1.1\"\n", `line 3: listeners.tls.min_version: "1.1" is not one of 1.2, 1.3`},
		{"tls key without cert", "listeners:\n  tls:\n    key_file: k.pem\n", `listeners.tls.cert_file: must be set for the other listeners.tls keys`},
		{"tls cert without key", "listeners:\n  tls:\n    cert_file: c.pem\n", `listeners.tls.key_file: must be set with cert_file`},
		{"tls missing files", "listeners:\n  tls:\n    cert_file: /nonexistent/c.pem\n    key_file: /nonexistent/k.pem\n", `line 3: listeners.tls.cert_file: tls: loading /nonexistent/c.pem`},
		{"tls require without ca", "listeners:\n  tls:\n    cert_file: c.pem\n    key_file: k.pem\n    require_certificate: true\n", `listeners.tls.require_certificate: needs ca_file`},
		{"tls identity without require", "listeners:\n  tls:\n    cert_file: c.pem\n    key_file: k.pem\n    ca_file: ca.pem\n    use_identity_as_username: true\n", `listeners.tls.use_identity_as_username: needs require_certificate: true`},
		{"allow_anonymous", "auth:\n  allow_anonymous: maybe\n", `line 2: auth.allow_anonymous: "maybe" is not one of auto, true, false`},
		{"password file missing", "auth:\n  password_file: /nonexistent/passwd\n", `line 1: auth: password file: open /nonexistent/passwd`},
		{"max_topic_length", "limits:\n  max_topic_length: 70000\n", `limits.max_topic_length: 70000 is out of range 1..65535`},
		{"max_subscriptions_per_client 0", "limits:\n  max_subscriptions_per_client: 0\n", `limits.max_subscriptions_per_client: 0 is out of range`},
		{"publish_rate negative", "limits:\n  publish_rate: -1\n", `limits.publish_rate: -1 is out of range`},
		{"max_auth_failures 0", "limits:\n  max_auth_failures: 0\n", `limits.max_auth_failures: 0 is out of range`},
		{"log level", "log:\n  level: verbose\n", `line 2: log.level: "verbose" is not one of debug, info, warn, error`},
		{"log format", "log:\n  format: xml\n", `line 2: log.format: "xml" is not one of text, json`},
		{"durability without data_dir", "durability: sync\ndata_dir: \"\"\n", `line 2: data_dir: must be set for durability "sync"`},
		{"queue_memory_window 0", "limits:\n  queue_memory_window: 0\n", `line 2: limits.queue_memory_window: 0 is out of range: must be at least 1`},
		{"durability other", "durability: maybe\n", `line 1: durability: "maybe" is not one of none, process, sync`},
		{"limits not a mapping", "limits: 5\n", `line 1: limits: want a mapping, got "5"`},
		{"listeners a list", "listeners:\n  - tcp\n", `line 2: listeners: want a mapping, got a list`},
		{"tcp a mapping", "listeners:\n  tcp:\n    port: 1\n", `line 3: listeners.tcp: want a string, got a mapping`},
		{"top level not a mapping", "hello\n", `line 1: want a mapping, got "hello"`},
		{"unknown top-level key", "listeners:\n  tcp: \":1883\"\nlisteners_extra: 1\n", `line 3: listeners_extra: unknown key`},
		{"unknown nested key", "limits:\n  max_connections: 5\n  recieve_maximum: 5\n", `line 3: limits.recieve_maximum: unknown key (did you mean "receive_maximum"?)`},
		{"unknown key dashes", "log:\n  Level: info\n", `line 2: log.Level: unknown key (did you mean "level"?)`},
		{"unknown key no suggestion", "log:\n  colour: true\n", `line 2: log.colour: unknown key`},
		{"duplicate key", "log:\n  level: info\n  level: debug\n", `line 3: log.level: duplicate key, first set at line 2`},
		{"two documents", "log:\n  level: info\n---\nlog:\n  level: debug\n", `line 3: only one YAML document is allowed`},
		{"syntax", "limits:\n  max_connections: 5\n bad: [\n", `line 2: did not find expected key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig([]byte(tt.in))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			errs := problems(err)
			if len(errs) != 1 {
				t.Errorf("%d errors, want 1:\n%v", len(errs), err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n  %v\nwant it to contain:\n  %s", err, tt.want)
			}
			var ce *configError
			if !errors.As(errs[0], &ce) {
				t.Errorf("error %T is not a *configError", errs[0])
			}
		})
	}
}

// TestAllErrorsAtOnce checks that decode errors (unknown keys, wrong
// types) do not hide validation errors, and that all come in file order.
func TestAllErrorsAtOnce(t *testing.T) {
	in := `listeners:
  tcp: "1883"
  websocket_path: mqtt
limits:
  max_conections: 10
  receive_maximum: 0
  max_inflight: many
  max_packet_size: 2TB
  connect_timeout: 5
log:
  level: loud
durability: maybe
`
	_, err := parseConfig([]byte(in))
	want := []string{
		`line 2: listeners.tcp: "1883" is not host:port; did you mean ":1883"?`,
		`line 3: listeners.websocket_path: "mqtt" must start with "/"`,
		`line 5: limits.max_conections: unknown key (did you mean "max_connections"?)`,
		`line 6: limits.receive_maximum: 0 is out of range 1..65535`,
		`line 7: limits.max_inflight: want an integer, got "many"`,
		`line 8: limits.max_packet_size: invalid size "2TB": unknown unit "TB"`,
		`line 9: limits.connect_timeout: invalid duration "5": missing unit`,
		`line 11: log.level: "loud" is not one of debug, info, warn, error`,
		`line 12: durability: "maybe" is not one of none, process, sync`,
	}
	errs := problems(err)
	if len(errs) != len(want) {
		t.Errorf("%d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i := range min(len(errs), len(want)) {
		if !strings.HasPrefix(errs[i].Error(), want[i]) {
			t.Errorf("error %d:\n  %v\nwant prefix:\n  %s", i, errs[i], want[i])
		}
	}
}

// TestFlowStyle checks that errors in a one-line mapping still find
// their key.
func TestFlowStyle(t *testing.T) {
	_, err := parseConfig([]byte("limits: {receive_maximum: 5, max_inflight: nine, max_queued_bytes: 1XB}\n"))
	for _, want := range []string{
		`line 1: limits.max_inflight: want an integer, got "nine"`,
		`line 1: limits.max_queued_bytes: invalid size "1XB"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error:\n%v\nwant it to contain %s", err, want)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{"0", 0, ""},
		{"16", 16, ""},
		{"1048576", 1 << 20, ""},
		{"16B", 16, ""},
		{"1kB", 1000, ""},
		{"1KB", 1000, ""},
		{"1MB", 1000000, ""},
		{"2GB", 2000000000, ""},
		{"512KiB", 512 << 10, ""},
		{"16MiB", 16 << 20, ""},
		{"16mib", 16 << 20, ""},
		{"1GiB", 1 << 30, ""},
		{"16 MiB", 16 << 20, ""},
		{" 8 ", 8, ""},
		{"", 0, "want a whole number"},
		{"MiB", 0, "want a whole number"},
		{"-1", 0, "must not be negative"},
		{"1.5MiB", 0, "want a whole number; use a smaller unit"},
		{"1TB", 0, `unknown unit "TB"`},
		{"1 M", 0, `unknown unit "M"`},
		{"1MiBs", 0, "unknown unit"},
		{"0x10", 0, "unknown unit"},
		{"9223372036854775807", 9223372036854775807, ""},
		{"9223372036854775808", 0, "too large"},
		{"9999999999GiB", 0, "too large"},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("parseSize(%q): %v", tt.in, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("parseSize(%q) error %v, want %q", tt.in, err, tt.err)
		case got != tt.want:
			t.Errorf("parseSize(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestSizeYAML(t *testing.T) {
	for in, want := range map[string]int64{
		"v: 1024":      1024,
		"v: \"1024\"":  1024,
		"v: 1MiB":      1 << 20,
		"v: '512KiB'":  512 << 10,
		"v: \"16 MB\"": 16000000,
	} {
		var v struct{ V size }
		if err := yaml.Unmarshal([]byte(in), &v); err != nil {
			t.Errorf("%s: %v", in, err)
		} else if int64(v.V) != want {
			t.Errorf("%s: got %d, want %d", in, v.V, want)
		}
	}
	for n, want := range map[int64]string{0: "0", 1000: "1000", 1024: "1KiB", 1 << 20: "1MiB", 16 << 20: "16MiB", 3 << 30: "3GiB", 1536: "1536"} {
		if got := size(n).String(); got != want {
			t.Errorf("size(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"10s", 10 * time.Second, ""},
		{"1m30s", 90 * time.Second, ""},
		{"500ms", 500 * time.Millisecond, ""},
		{"2h", 2 * time.Hour, ""},
		{"0", 0, ""},
		{" 1s ", time.Second, ""},
		{"10", 0, `missing unit; write e.g. "10s"`},
		{"1.5", 0, "missing unit"},
		{"ten seconds", 0, "want a number with a unit"},
		{"", 0, "want a number with a unit"},
		{"5d", 0, "want a number with a unit"},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("parseDuration(%q): %v", tt.in, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("parseDuration(%q) error %v, want %q", tt.in, err, tt.err)
		case got != tt.want:
			t.Errorf("parseDuration(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "abc", 0}, {"abc", "", 3}, {"kitten", "sitting", 3},
		{"max-connections", "max_connections", 1}, {"recieve_maximum", "receive_maximum", 2},
	} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestTLSListenerAddressReused needs certificate files that load, so that
// the address is the only problem.
func TestTLSListenerAddressReused(t *testing.T) {
	dir := t.TempDir()
	cert, key := brokertest.NewCA(t, "ca").WriteCert(t, dir, "s", "s", true)
	in := fmt.Sprintf("listeners:\n  tcp: \":1883\"\n  websocket: \":8080\"\n  tls:\n    mqtt: \":8080\"\n"+
		"    websocket: \":1883\"\n    cert_file: %q\n    key_file: %q\n", cert, key)
	_, err := parseConfig([]byte(in))
	for _, want := range []string{
		`line 5: listeners.tls.mqtt: ":8080" is also listeners.websocket; use another port`,
		`line 6: listeners.tls.websocket: ":1883" is also listeners.tcp; use another port`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not contain %q", err, want)
		}
	}
}
