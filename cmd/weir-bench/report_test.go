package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	var lines []string
	add := func(r *Result) {
		var sb strings.Builder
		if err := r.writeJSON(&sb); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, sb.String())
	}
	for _, rate := range []float64{100, 300, 200} {
		add(&Result{Case: "fanin-q0", Label: mosquitto, DeliveredRate: rate})
		add(&Result{Case: "fanin-q0", Label: weirNone, DeliveredRate: rate * 2})
	}
	add(&Result{Case: "idle", Label: weirProcess, Broker: &BrokerUsage{RSSAfterKiB: 20 * 1024}})
	path := filepath.Join(t.TempDir(), "r.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")+"not json, skipped\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := writeReport(path, &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"| 200 (100–300) | 400 (200–600) | **2.00** |",
		"| fanin-q0: ≥ 1.2 × Mosquitto msg/s, 0 loss | Weir 400 msg/s, ratio 2.00 | yes |",
		"| idle: RSS ≤ 12 MiB with Badger open | Weir 20480 KiB | no |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}
