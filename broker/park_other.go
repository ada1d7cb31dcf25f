//go:build !linux

package broker

import "time"

// Connections are parked on Linux only (park_linux.go); elsewhere every
// connection keeps its reader goroutine.
const canPark = false

const parkAfter = 2 * time.Second

type parker struct{}

func (s *Server) park(c *client) bool { return false }

func (c *client) closeNet() { c.conn.Close() }

func (s *Server) stopParking() {}

func (s *Server) parkedCount() int { return 0 }
