//go:build unix

package broker

import (
	"errors"
	"syscall"
)

const canWriteRaw = true

// tryWrite writes as much of b as the socket takes now, without waiting.
func (c *client) tryWrite(b []byte) (int, error) {
	var n int
	var werr error
	err := c.raw.Write(func(fd uintptr) bool {
		for {
			n, werr = syscall.Write(int(fd), b)
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
