package main

import "testing"

func TestLoopbackAddr(t *testing.T) {
	ok := map[string]string{
		"127.0.0.1:1883":       "127.0.0.1:1883",
		"127.8.9.10:1":         "127.8.9.10:1",
		"localhost:1883":       "127.0.0.1:1883",
		"LOCALHOST:1883":       "127.0.0.1:1883",
		"[::1]:1883":           "[::1]:1883",
		"[::ffff:127.0.0.1]:5": "127.0.0.1:5",
	}
	for in, want := range ok {
		got, err := loopbackAddr(in)
		if err != nil || got != want {
			t.Errorf("loopbackAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"10.0.0.1:1883", "192.168.1.1:1883", "172.16.0.1:1883", "8.8.8.8:1883",
		"0.0.0.0:1883", "[::]:1883", ":1883", "example.com:1883", "localhost.example.com:1883",
		"127.0.0.1", "127.0.0.1:", "[fe80::1%lo]:1883", "[::ffff:10.0.0.1]:1883",
	} {
		if got, err := loopbackAddr(in); err == nil {
			t.Errorf("loopbackAddr(%q) = %q, want an error", in, got)
		}
	}
}

func TestFlagsRefuseNonLoopback(t *testing.T) {
	var out []byte
	w := writerFunc(func(p []byte) (int, error) { out = append(out, p...); return len(p), nil })
	if code := run([]string{"-scenario", "fanin", "-addr", "10.1.2.3:1883"}, w, w); code != 2 {
		t.Fatalf("exit %d for a non-loopback -addr, want 2; output %s", code, out)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
