package broker

// SetTestHookPacket makes every connection of s call f with each packet
// it reads after CONNECT, before handling it. Call it before Serve.
func SetTestHookPacket(s *Server, f func(pkt []byte)) { s.testHookPacket = f }

// ParkAfter is how long an idle connection waits before it is parked.
const ParkAfter = parkAfter
