//go:build !unix

package broker

import "errors"

const canWriteRaw = false

func (c *client) tryWrite([]byte) (int, error) { return 0, errors.ErrUnsupported }
