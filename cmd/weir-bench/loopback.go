package main

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// loopbackAddr checks that addr (host:port) names a loopback address and
// returns it with the host as an IP literal, so that the dial cannot go
// anywhere else. The host must be an address in 127.0.0.0/8, ::1, or the
// name "localhost" (taken as 127.0.0.1, without asking a resolver).
func loopbackAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("-addr %q: %w", addr, err)
	}
	if port == "" {
		return "", fmt.Errorf("-addr %q: no port", addr)
	}
	if strings.EqualFold(host, "localhost") {
		host = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "", fmt.Errorf("-addr %q: host must be a loopback IP address or localhost", addr)
	}
	ip = ip.Unmap()
	if !ip.IsLoopback() || ip.Zone() != "" {
		return "", fmt.Errorf("-addr %q: refusing a non-loopback address; weir-bench only loads brokers on this machine (127.0.0.0/8, ::1)", addr)
	}
	return net.JoinHostPort(ip.String(), port), nil
}
