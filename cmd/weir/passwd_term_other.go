//go:build !linux

package main

import "io"

// noEcho is a no-op where Weir does not know the terminal ioctls: the
// password is echoed; use -b or a pipe instead.
func noEcho(io.Reader) func() { return func() {} }
