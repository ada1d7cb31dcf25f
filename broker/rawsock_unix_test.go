//go:build unix

package broker

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (a, b *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return s.(*net.TCPConn), c.(*net.TCPConn)
}

// The raw read and write under tryWrite and ReadLazy report a drained
// socket as EAGAIN (ReadLazy then waits in the poller, and wakes for data
// written later), and an orderly close as EOF.
func TestSockReaderWaitsForLaterData(t *testing.T) {
	a, b := tcpPair(t)
	raw, err := a.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd uintptr
	raw.Control(func(f uintptr) { fd = f })
	buf := make([]byte, 64)
	if n, err := sysRead(int(fd), buf); !errors.Is(err, syscall.EAGAIN) || n >= 0 {
		t.Fatalf("read of a drained socket: %d, %v; want -1, EAGAIN", n, err)
	}

	sr := &sockReader{Conn: a, raw: raw}
	drops := 0
	get := func() []byte { return buf }
	drop := func() { drops++ }
	time.AfterFunc(50*time.Millisecond, func() { b.Write([]byte("late")) })
	a.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := sr.ReadLazy(get, drop)
	if err != nil || string(buf[:n]) != "late" {
		t.Fatalf("ReadLazy = %d %q, %v; want 4 \"late\"", n, buf[:max(n, 0)], err)
	}
	if drops == 0 {
		t.Error("ReadLazy did not give its buffer back while it waited")
	}

	b.Close()
	if n, err := sr.ReadLazy(get, drop); n != 0 || err != io.EOF {
		t.Fatalf("ReadLazy after the peer closed = %d, %v; want 0, EOF", n, err)
	}
}

// tryWrite writes what the socket takes without waiting: a full socket
// yields a short count and no error, a reset one an error.
func TestTryWriteNeverWaits(t *testing.T) {
	a, b := tcpPair(t)
	raw, err := a.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	c := &client{raw: raw}
	chunk := make([]byte, 1<<20)
	total := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 256 { // at most 256 MiB, far above any socket buffer
			n, err := c.tryWrite(chunk)
			if err != nil {
				t.Errorf("tryWrite: %v", err)
				return
			}
			total += n
			if n < len(chunk) {
				return
			}
		}
		t.Error("the socket never filled up")
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("tryWrite blocked on a full socket")
	}
	if total == 0 {
		t.Fatal("tryWrite wrote nothing to an empty socket")
	}

	b.SetLinger(0)
	b.Close() // RST
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := c.tryWrite(chunk[:1]); err != nil {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("tryWrite to a reset connection never failed")
}
