package main

import (
	"os"
	"testing"
)

func TestParseStatus(t *testing.T) {
	in := "Name:\tweir\nVmPeak:\t  9000 kB\nVmHWM:\t    5120 kB\nVmRSS:\t    4096 kB\nThreads:\t5\n"
	rss, hwm, err := parseStatus([]byte(in))
	if err != nil || rss != 4096 || hwm != 5120 {
		t.Fatalf("got %d %d %v", rss, hwm, err)
	}
	if _, _, err := parseStatus([]byte("Name:\tkworker\n")); err == nil {
		t.Fatal("no error without VmRSS")
	}
}

func TestParseStatCPU(t *testing.T) {
	// A command name with a space and a parenthesis.
	in := "1234 (we ir) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 1000 0 0\n"
	cpu, err := parseStatCPU([]byte(in))
	if err != nil || cpu != 3.0 {
		t.Fatalf("got %v %v, want 3 s", cpu, err)
	}
	if _, err := parseStatCPU([]byte("1234 (x) S 1 2")); err == nil {
		t.Fatal("no error for a short line")
	}
}

func TestReadProcSelf(t *testing.T) {
	s, err := readProc(os.Getpid())
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if s.RSSKiB <= 0 || s.HWMKiB < s.RSSKiB {
		t.Fatalf("implausible sample %+v", s)
	}
}
