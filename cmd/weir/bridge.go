package main

import (
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/weirmq/weir/bridge"
	"github.com/weirmq/weir/mqtt"
	"gopkg.in/yaml.v3"
)

// bridgeConfig is one entry of the bridges: list (package bridge; README
// "Bridge"). Missing keys take the defaults of defaultBridge.
type bridgeConfig struct {
	Name              string          `yaml:"name"`
	Address           string          `yaml:"address"`
	Version           string          `yaml:"version"`
	ClientID          string          `yaml:"client_id"`
	Username          string          `yaml:"username"`
	Password          string          `yaml:"password"`
	TLS               bridgeTLSConfig `yaml:"tls"`
	KeepAlive         duration        `yaml:"keep_alive"`
	CleanStart        bool            `yaml:"clean_start"`
	SessionExpiry     duration        `yaml:"session_expiry"`
	Window            int64           `yaml:"window"`
	MaxOutboxBytes    size            `yaml:"max_outbox_bytes"`
	MessageIDProperty string          `yaml:"message_id_property"`
	MinBackoff        duration        `yaml:"min_backoff"`
	MaxBackoff        duration        `yaml:"max_backoff"`
	StatusInterval    duration        `yaml:"status_interval"`
	Backfill          string          `yaml:"backfill"`
	BackfillRate      float64         `yaml:"backfill_rate"`
	Out               []bridgeOutRule `yaml:"out"`
	In                []bridgeInRule  `yaml:"in"`
}

type bridgeTLSConfig struct {
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

type bridgeOutRule struct {
	Filter      string `yaml:"filter"`
	StripPrefix string `yaml:"strip_prefix"`
	AddPrefix   string `yaml:"add_prefix"`
	QoS         int64  `yaml:"qos"`
	Retain      bool   `yaml:"retain"`
	Policy      string `yaml:"policy"`
}

type bridgeInRule struct {
	Filter      string `yaml:"filter"`
	StripPrefix string `yaml:"strip_prefix"`
	AddPrefix   string `yaml:"add_prefix"`
	QoS         int64  `yaml:"qos"`
}

func defaultBridge() bridgeConfig {
	return bridgeConfig{
		Version:           "5",
		KeepAlive:         duration(bridge.DefaultKeepAlive),
		SessionExpiry:     duration(time.Hour),
		Window:            bridge.DefaultWindow,
		MaxOutboxBytes:    64 << 20,
		MessageIDProperty: "weir-message-id",
		MinBackoff:        duration(bridge.DefaultMinBackoff),
		MaxBackoff:        duration(bridge.DefaultMaxBackoff),
		StatusInterval:    duration(bridge.DefaultStatusInterval),
		Backfill:          string(bridge.InOrder),
	}
}

// UnmarshalYAML decodes a bridge over its defaults. Node.Decode does not
// check for unknown keys; validateBridges does.
func (b *bridgeConfig) UnmarshalYAML(n *yaml.Node) error {
	*b = defaultBridge()
	type plain bridgeConfig
	return n.Decode((*plain)(b))
}

// UnmarshalYAML decodes an out rule over its defaults.
func (r *bridgeOutRule) UnmarshalYAML(n *yaml.Node) error {
	*r = bridgeOutRule{QoS: 1, Retain: true, Policy: string(bridge.DropOldest)}
	type plain bridgeOutRule
	return n.Decode((*plain)(r))
}

// UnmarshalYAML decodes an in rule over its defaults.
func (r *bridgeInRule) UnmarshalYAML(n *yaml.Node) error {
	*r = bridgeInRule{QoS: 1}
	type plain bridgeInRule
	return n.Decode((*plain)(r))
}

// bridgeKeyPath matches the key path of a bridge setting.
var bridgeKeyPath = regexp.MustCompile(`^bridges\[\d+\]\.(?:(out|in)\[\d+\]\.|(tls)\.)?([^.\[]+)$`)

// validateBridges checks the bridges: list; with idx, also for unknown keys.
func (c *config) validateBridges(v *validator) {
	if v.idx != nil {
		known := map[string]reflect.Type{"": reflect.TypeFor[bridgeConfig](), "out": reflect.TypeFor[bridgeOutRule](),
			"in": reflect.TypeFor[bridgeInRule](), "tls": reflect.TypeFor[bridgeTLSConfig]()}
		for _, e := range v.idx.entries {
			if !strings.HasPrefix(e.path, "bridges[") {
				continue
			}
			m := bridgeKeyPath.FindStringSubmatch(e.path)
			if m == nil {
				continue // a parent key: bridges[0].out[1]
			}
			if _, ok := fieldByKey(known[m[1]+m[2]], m[3]); !ok {
				v.errorf(e.path, "unknown key")
			}
		}
	}
	names := map[string]bool{}
	for i, b := range c.Bridges {
		p := fmt.Sprintf("bridges[%d]", i)
		if names[b.Name] {
			v.errorf(p+".name", "%q is the name of another bridge", b.Name)
		}
		names[b.Name] = true
		v.intRange(p+".window", b.Window, 1, math.MaxUint16)
		v.positive(p+".status_interval", b.StatusInterval)
		// TLS files are read at every connection (so renewals apply);
		// checking them here catches a wrong path before the first one.
		for key, f := range map[string]string{"ca_file": b.TLS.CAFile, "cert_file": b.TLS.CertFile,
			"key_file": b.TLS.KeyFile} {
			if f == "" {
				continue
			}
			if _, err := os.ReadFile(f); err != nil {
				v.errorf(p+".tls."+key, "%v", err)
			}
		}
		for j, r := range b.Out {
			v.intRange(fmt.Sprintf("%s.out[%d].qos", p, j), r.QoS, 0, 2)
		}
		for j, r := range b.In {
			v.intRange(fmt.Sprintf("%s.in[%d].qos", p, j), r.QoS, 0, 2)
		}
		bc, err := b.bridgeConfig()
		if err != nil {
			v.errorf(p+".version", "%v", err)
		}
		for _, fe := range bc.Validate() {
			if fe.Field == "version" || fe.Field == "window" || strings.HasSuffix(fe.Field, ".qos") {
				continue // reported above with the configured value
			}
			v.errorf(p+"."+fe.Field, "%s", fe.Msg)
		}
	}
}

// bridgeConfig converts one entry into package bridge's form.
func (b *bridgeConfig) bridgeConfig() (bridge.Config, error) {
	c := bridge.Config{
		Name: b.Name, Address: b.Address, ClientID: b.ClientID, Username: b.Username, Password: b.Password,
		TLS: bridge.TLSConfig{CAFile: b.TLS.CAFile, CertFile: b.TLS.CertFile, KeyFile: b.TLS.KeyFile,
			ServerName: b.TLS.ServerName},
		KeepAlive: time.Duration(b.KeepAlive), CleanStart: b.CleanStart, SessionExpiry: time.Duration(b.SessionExpiry),
		Window: int(b.Window), MaxOutboxBytes: int64(b.MaxOutboxBytes), MessageIDProperty: b.MessageIDProperty,
		MinBackoff: time.Duration(b.MinBackoff), MaxBackoff: time.Duration(b.MaxBackoff),
		StatusInterval: time.Duration(b.StatusInterval), Backfill: bridge.Backfill(b.Backfill),
		BackfillRate: b.BackfillRate,
	}
	for _, r := range b.Out {
		c.Out = append(c.Out, bridge.OutRule{Filter: r.Filter, StripPrefix: r.StripPrefix, AddPrefix: r.AddPrefix,
			QoS: byte(min(max(r.QoS, 0), 2)), Retain: r.Retain, Policy: bridge.Policy(r.Policy)})
	}
	for _, r := range b.In {
		c.In = append(c.In, bridge.InRule{Filter: r.Filter, StripPrefix: r.StripPrefix, AddPrefix: r.AddPrefix,
			QoS: byte(min(max(r.QoS, 0), 2))})
	}
	switch b.Version {
	case "5", "5.0":
		c.Version = mqtt.V5
	case "3.1.1":
		c.Version = mqtt.V311
	default:
		return c, fmt.Errorf("%q is not 3.1.1 or 5", b.Version)
	}
	return c, nil
}

// bridgeConfigs returns the bridges of a valid configuration.
func (c *config) bridgeConfigs() []bridge.Config {
	var out []bridge.Config
	for i := range c.Bridges {
		bc, _ := c.Bridges[i].bridgeConfig()
		out = append(out, bc)
	}
	return out
}
