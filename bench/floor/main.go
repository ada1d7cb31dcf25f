// Command floor is a measurement tool, not a broker: the least work any
// MQTT broker must do to relay a paced stream of QoS 1 messages from one
// publisher to one subscriber, for comparing brokers' CPU per message and
// latency against (docs/benchmarks.md, "Paced CPU and latency: the floor").
//
// It is one thread with one epoll set (level-triggered, so a read that
// returned less than its buffer is never followed by a read that would
// return EAGAIN). For each batch of input it does exactly: one read per
// readable socket, then one write per socket with output (the publisher's
// PUBACKs, the subscriber's PUBLISHes). A QoS 1 PUBLISH is acknowledged
// and forwarded byte for byte, with the publisher's packet identifier, to
// every subscriber, whatever the topic; the subscriber's PUBACKs are read
// and dropped. No sessions, no topic matching, no inflight window, no
// queue, no allocation after start: anything a real broker does costs
// more than this. It speaks MQTT 3.1.1 (CONNECT, SUBSCRIBE, PUBLISH,
// PUBACK, PINGREQ, DISCONNECT) as far as weir-bench's pub/sub scenarios
// need, listens on a loopback address only, and exits by itself after
// -timeout.
//
//	floor -addr 127.0.0.1:1884 [-timeout 15m] [-syscalls raw|runtime]
//	floor -wakeup 10s [-period 200us]
//
// -syscalls raw (the default) makes every system call with
// syscall.RawSyscall, so the Go runtime never sees them (no P hand-off,
// no sysmon wake-ups: the cost of the system calls alone). -syscalls
// runtime makes them the way the standard library does (syscall.Syscall:
// the runtime is told the thread may block), which adds the scheduler's
// bookkeeping around each call and shows what that part costs.
//
// -wakeup D relays nothing: for D it sleeps -period at a time (one thread,
// clock_nanosleep) and prints how late each wake-up was (p50, p99, p99.9,
// max): the scheduling delay this machine adds to any process on the CPU
// it is pinned to, the part of a latency tail no broker can remove.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:1884", "loopback address to listen on")
	timeout := flag.Duration("timeout", 15*time.Minute, "exit after this long, whatever happens")
	mode := flag.String("syscalls", "raw", "raw | runtime: how system calls are made")
	wakeup := flag.Duration("wakeup", 0, "measure wake-up delays for this long instead of relaying")
	period := flag.Duration("period", 200*time.Microsecond, "sleep per wake-up with -wakeup")
	flag.Parse()

	if *wakeup > 0 {
		if err := probeWakeups(min(*wakeup, *timeout), *period); err != nil {
			fmt.Fprintf(os.Stderr, "floor: %v\n", err)
			os.Exit(1)
		}
		return
	}

	ap, err := net.ResolveTCPAddr("tcp4", *addr)
	if err != nil || ap.IP == nil || !ap.IP.IsLoopback() {
		fmt.Fprintf(os.Stderr, "floor: -addr must be an IPv4 loopback address with a port (got %q)\n", *addr)
		os.Exit(2)
	}
	var sc syscalls
	switch *mode {
	case "raw":
		sc = rawCalls
	case "runtime":
		sc = runtimeCalls
	default:
		fmt.Fprintf(os.Stderr, "floor: -syscalls must be raw or runtime\n")
		os.Exit(2)
	}
	if err := run(ap, *timeout, sc); err != nil {
		fmt.Fprintf(os.Stderr, "floor: %v\n", err)
		os.Exit(1)
	}
}
