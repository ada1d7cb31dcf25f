//go:build !unix

package broker

import (
	"errors"
	"net"
	"syscall"
)

const canUseRaw = false

func (c *client) tryWrite([]byte) (int, error) { return 0, errors.ErrUnsupported }

type sockReader struct {
	net.Conn
	raw syscall.RawConn
}
