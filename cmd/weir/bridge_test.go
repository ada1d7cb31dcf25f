package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weirmq/weir/bridge"
	"github.com/weirmq/weir/mqtt"
)

// TestBridgeConfig parses a bridge with some keys set: the rest take the
// documented defaults.
func TestBridgeConfig(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseConfig([]byte(strings.Replace(`bridges:
  - name: cloud
    address: tls://mqtt.example.com:8883
    client_id: gw-17
    tls:
      ca_file: CAFILE
    out:
      - filter: "sensors/#"
        add_prefix: "gw-17/"
        policy: keep-last-per-topic
    in:
      - filter: "commands/gw-17/#"
        strip_prefix: "commands/gw-17/"
        add_prefix: "commands/"
        qos: 2
`, "CAFILE", ca, 1)))
	if err != nil {
		t.Fatal(err)
	}
	bs := cfg.bridgeConfigs()
	if len(bs) != 1 {
		t.Fatalf("%d bridges, want 1", len(bs))
	}
	b := bs[0]
	if b.Name != "cloud" || b.Version != mqtt.V5 || b.KeepAlive != 60*time.Second || b.Window != 64 ||
		b.MaxOutboxBytes != 64<<20 || b.MessageIDProperty != "weir-message-id" || b.CleanStart ||
		b.SessionExpiry != time.Hour || b.TLS.CAFile != ca {
		t.Errorf("bridge %+v", b)
	}
	if o := b.Out[0]; o.QoS != 1 || !o.Retain || o.Policy != bridge.KeepLastPerTopic || o.AddPrefix != "gw-17/" {
		t.Errorf("out rule %+v", o)
	}
	if i := b.In[0]; i.QoS != 2 || i.StripPrefix != "commands/gw-17/" {
		t.Errorf("in rule %+v", i)
	}
}

// TestBridgeConfigErrors reports every problem of the bridges at once,
// with its line.
func TestBridgeConfigErrors(t *testing.T) {
	_, err := parseConfig([]byte(`bridges:
  - name: a
    address: http://x:1
    version: "4"
    window: 0
    out:
      - filter: "a/#/b"
        qos: 3
        policy: keep-all
    tls:
      ca_file: /nonexistent/ca.pem
    in:
      - filter: "x"
        add_prefix: "+/"
        colour: red
  - name: a
    address: tcp://x
    version: "3.1.1"
`))
	want := []string{
		`line 3: bridges[0].address: "http://x:1": use tcp://, tls://, ws:// or wss://host:port`,
		`line 4: bridges[0].version: "4" is not 3.1.1 or 5`,
		`line 5: bridges[0].window: 0 is out of range 1..65535`,
		`line 7: bridges[0].out[0].filter: "a/#/b"`,
		`line 8: bridges[0].out[0].qos: 3 is out of range 0..2`,
		`line 9: bridges[0].out[0].policy: "keep-all" is not drop-oldest, drop-new or keep-last-per-topic`,
		`line 11: bridges[0].tls.ca_file: open /nonexistent/ca.pem: no such file or directory`,
		`line 14: bridges[0].in[0].add_prefix: "+/" must not contain wildcards`,
		`line 15: bridges[0].in[0].colour: unknown key`,
		`line 16: bridges[1].name: "a" is the name of another bridge`,
		`line 17: bridges[1].address: "tcp://x" has no port`,
		`bridges[1].client_id: must be set for a 3.1.1 upstream without clean start`,
		`bridges[1].out: a bridge needs at least one out or in rule`,
	}
	errs := problems(err)
	if len(errs) != len(want) {
		t.Errorf("%d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		if i < len(errs) && !strings.Contains(errs[i].Error(), w) {
			t.Errorf("error %d:\n  %v\nwant it to contain:\n  %s", i, errs[i], w)
		}
	}
}
