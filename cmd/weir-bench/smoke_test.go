package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weirmq/weir/internal/brokertest"
)

// TestScenariosSmoke runs every scenario briefly against an in-process
// broker and checks that it delivered everything it should.
func TestScenariosSmoke(t *testing.T) {
	b := brokertest.Start(t, nil)
	pid := []string{"-pid", "0"}
	if _, err := readProc(os.Getpid()); err == nil {
		pid = []string{"-pid", strconv.Itoa(os.Getpid())}
	}
	for _, tc := range []struct {
		name  string
		args  []string
		check func(t *testing.T, r *Result)
	}{
		{"fanin qos0", []string{"-scenario", "fanin", "-pubs", "4", "-msgs", "200"}, delivered(800)},
		{"fanin qos1", []string{"-scenario", "fanin", "-pubs", "3", "-msgs", "100", "-qos", "1", "-inflight", "8"}, delivered(300)},
		{"fanin qos2 v5", []string{"-scenario", "fanin", "-pubs", "2", "-msgs", "50", "-qos", "2", "-v", "5"}, delivered(100)},
		{"fanin paced", []string{"-scenario", "fanin", "-pubs", "2", "-msgs", "20", "-qos", "1", "-rate", "400"}, func(t *testing.T, r *Result) {
			delivered(40)(t, r)
			if r.PubSeconds < 0.05 {
				t.Errorf("40 messages paced at 400 msg/s published in %v s", r.PubSeconds)
			}
		}},
		{"fanout qos1", []string{"-scenario", "fanout", "-subs", "5", "-msgs", "50", "-qos", "1"}, delivered(250)},
		{"latency", []string{"-scenario", "latency", "-rate", "500", "-duration", "200ms", "-qos", "1"}, func(t *testing.T, r *Result) {
			delivered(100)(t, r)
			if r.Latency == nil || r.Latency.Samples != 100 || r.Latency.P50us <= 0 || r.Latency.MaxUs < r.Latency.P999us {
				t.Errorf("latency %+v", r.Latency)
			}
		}},
		{"conns", []string{"-scenario", "conns", "-conns", "20", "-hold", "50ms"}, func(t *testing.T, r *Result) {
			if r.Accepted != 20 || r.Alive != 20 {
				t.Errorf("accepted %d alive %d, want 20 and 20", r.Accepted, r.Alive)
			}
		}},
		{"backlog", []string{"-scenario", "backlog", "-msgs", "300", "-client-id", "smoke-backlog"}, func(t *testing.T, r *Result) {
			delivered(300)(t, r)
			if r.Acked != 300 {
				t.Errorf("acked %d of 300", r.Acked)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-addr", b.Addr, "-timeout", "30s", "-idle", "2s"}, pid...)
			cfg, err := parseFlags(append(args, tc.args...), os.Stderr)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
			defer cancel()
			start := time.Now()
			r := execute(ctx, cfg)
			var sb strings.Builder
			r.writeTable(&sb)
			t.Logf("%v:\n%s", time.Since(start), sb.String())
			if r.TimedOut || len(r.Errors) > 0 {
				t.Fatalf("timed out %v, errors %v", r.TimedOut, r.Errors)
			}
			if pid[1] != "0" && r.Broker == nil {
				t.Errorf("no broker usage with -pid")
			}
			tc.check(t, r)
		})
	}
}

func delivered(n int64) func(*testing.T, *Result) {
	return func(t *testing.T, r *Result) {
		t.Helper()
		if r.Delivered != n || r.Lost != 0 || r.Dups != 0 || r.Reordered != 0 || r.Foreign != 0 {
			t.Errorf("delivered %d of %d (lost %d dups %d reordered %d foreign %d), want %d",
				r.Delivered, r.Expected, r.Lost, r.Dups, r.Reordered, r.Foreign, n)
		}
		if r.DeliveredRate <= 0 {
			t.Errorf("delivered rate %v", r.DeliveredRate)
		}
	}
}

func TestBoundsRefused(t *testing.T) {
	for _, args := range [][]string{
		{"-scenario", "fanin", "-pubs", "10001"},
		{"-scenario", "fanout", "-subs", "10000", "-msgs", "100000"},
		{"-scenario", "fanin", "-timeout", "1h"},
		{"-scenario", "latency", "-duration", "1h"},
		{"-scenario", "fanin", "-size", "10"},
		{"-scenario", "nope"},
		{},
	} {
		if _, err := parseFlags(args, os.Stderr); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
}
