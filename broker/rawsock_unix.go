//go:build unix

package broker

import (
	"errors"
	"io"
	"net"
	"syscall"
)

const canUseRaw = true

// tryWrite writes as much of b as the socket takes now, without waiting.
func (c *client) tryWrite(b []byte) (int, error) {
	var n int
	var werr error
	err := c.raw.Write(func(fd uintptr) bool {
		for {
			n, werr = sysWrite(int(fd), b)
			if werr != syscall.EINTR {
				return true // done, whatever the result: never wait
			}
		}
	})
	if err != nil {
		return 0, err
	}
	if errors.Is(werr, syscall.EAGAIN) {
		return 0, nil
	}
	return max(n, 0), werr
}

// sockReader is the source of a TCP (or Unix) connection's mqtt.Reader.
// It is an mqtt.LazySource: a connection waiting for input holds no read
// buffer.
type sockReader struct {
	net.Conn
	raw syscall.RawConn
}

// ReadLazy implements mqtt.LazySource. The runtime's poller calls the
// function once, and again each time the socket becomes readable after
// it reported EAGAIN; deadlines and Close end the wait as they end Read.
func (s *sockReader) ReadLazy(get func() []byte, drop func()) (int, error) {
	var n int
	var rerr error
	err := s.raw.Read(func(fd uintptr) bool {
		for {
			n, rerr = sysRead(int(fd), get())
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			drop()
			return false // wait for input
		}
		return true
	})
	switch {
	case err != nil:
		return 0, err
	case rerr != nil:
		return 0, &net.OpError{Op: "read", Net: s.LocalAddr().Network(), Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: rerr}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
