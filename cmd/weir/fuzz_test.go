package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/weirmq/weir/internal/brokertest"
)

// FuzzParseConfig feeds arbitrary YAML to the configuration decoder: it
// must never panic; every problem it reports must be a *configError (with
// the line and key where it has them) or a YAML syntax error of the same
// type; and a configuration it accepts must turn into broker and bridge
// options without panicking. Seeds: the example configuration, the test
// configurations and testdata/fuzz/FuzzParseConfig.
func FuzzParseConfig(f *testing.F) {
	for _, p := range []string{"../../deploy/weir.example.yaml", "../../testdata/configs/crash.yaml"} {
		data, err := os.ReadFile(filepath.FromSlash(p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("listeners:\n  tcp: \":1\"\nlimits:\n  max_inflight: 0\nbridges:\n  - name: a\n    address: tcp://127.0.0.1:1\n    out: [{filter: \"a/#\", policy: keep-last-per-topic}]\n"))
	f.Add([]byte("durability: sync\nmax_store_bytes: 1GiB\nqueue_memory_window: -1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parseConfig(data)
		if err != nil {
			var ce *configError
			for _, e := range unjoin(err) {
				if !errors.As(e, &ce) {
					t.Fatalf("problem of type %T, want *configError: %v", e, e)
				}
			}
			return
		}
		cfg.options(brokertest.Discard())
		cfg.bridgeConfigs()
	})
}

// unjoin returns the errors of an errors.Join, or err itself.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
