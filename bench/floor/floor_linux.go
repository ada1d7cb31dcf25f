package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// syscalls is how the relay enters the kernel: read, write and epoll_pwait
// (the only calls made per message).
type syscalls struct {
	read  func(fd int, b []byte) (int, syscall.Errno)
	write func(fd int, b []byte) (int, syscall.Errno)
	wait  func(epfd int, ev []syscall.EpollEvent, msec int) (int, syscall.Errno)
}

var rawCalls = syscalls{
	read: func(fd int, b []byte) (int, syscall.Errno) {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		return int(n), e
	},
	write: func(fd int, b []byte) (int, syscall.Errno) {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		return int(n), e
	},
	wait: func(epfd int, ev []syscall.EpollEvent, msec int) (int, syscall.Errno) {
		n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&ev[0])), uintptr(len(ev)), uintptr(msec), 0, 0)
		return int(n), e
	},
}

var runtimeCalls = syscalls{
	read: func(fd int, b []byte) (int, syscall.Errno) {
		n, _, e := syscall.Syscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		return int(n), e
	},
	write: func(fd int, b []byte) (int, syscall.Errno) {
		n, _, e := syscall.Syscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		return int(n), e
	},
	wait: func(epfd int, ev []syscall.EpollEvent, msec int) (int, syscall.Errno) {
		n, _, e := syscall.Syscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&ev[0])), uintptr(len(ev)), uintptr(msec), 0, 0)
		return int(n), e
	},
}

const (
	inSize    = 64 << 10 // read buffer per connection; larger packets are refused
	maxOut    = 64 << 20 // output a connection may have pending before it is dropped
	maxEvents = 64
)

type conn struct {
	fd      int
	in      []byte
	r, w    int
	out     []byte
	sub     bool
	dirty   bool // output added this round
	pollOut bool // registered for EPOLLOUT: the socket did not take all output
}

// counts are reported on stderr whenever the last connection closes.
type counts struct {
	msgs, reads, writes, waits int64
	cpu0                       time.Duration
}

type relay struct {
	sc    syscalls
	epfd  int
	lfd   int
	conns map[int]*conn
	subs  []*conn
	dirty []*conn
	n     counts
	stop  atomic.Bool // serve returns within a second once it is set
}

func run(addr *net.TCPAddr, timeout time.Duration, sc syscalls) error {
	rl, err := newRelay(addr, sc)
	if err != nil {
		return err
	}
	defer rl.close()
	fmt.Fprintf(os.Stderr, "floor: listening on %v (pid %d)\n", rl.addr(), os.Getpid())
	return rl.serve(time.Now().Add(timeout))
}

// newRelay listens on addr (port 0: any free port).
func newRelay(addr *net.TCPAddr, sc syscalls) (*relay, error) {
	rl := &relay{sc: sc, conns: map[int]*conn{}, lfd: -1, epfd: -1}
	var err error
	if rl.lfd, err = listen(addr); err != nil {
		return nil, err
	}
	if rl.epfd, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); err != nil {
		rl.close()
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if err := rl.ctl(syscall.EPOLL_CTL_ADD, rl.lfd, syscall.EPOLLIN); err != nil {
		rl.close()
		return nil, err
	}
	return rl, nil
}

// addr is the address the relay listens on.
func (rl *relay) addr() *net.TCPAddr {
	sa, err := syscall.Getsockname(rl.lfd)
	if sa4, ok := sa.(*syscall.SockaddrInet4); ok && err == nil {
		return &net.TCPAddr{IP: net.IP(sa4.Addr[:]), Port: sa4.Port}
	}
	return nil
}

// close closes the listener, the epoll set and every connection.
func (rl *relay) close() {
	for fd := range rl.conns {
		syscall.Close(fd)
	}
	clear(rl.conns)
	if rl.epfd >= 0 {
		syscall.Close(rl.epfd)
	}
	if rl.lfd >= 0 {
		syscall.Close(rl.lfd)
	}
}

// serve relays until deadline (checked at least once a second).
func (rl *relay) serve(deadline time.Time) error {
	sc := rl.sc
	ev := make([]syscall.EpollEvent, maxEvents)
	for time.Now().Before(deadline) && !rl.stop.Load() {
		n, e := sc.wait(rl.epfd, ev, 1000)
		rl.n.waits++
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return fmt.Errorf("epoll_pwait: %w", e)
		}
		for i := range n {
			fd := int(ev[i].Fd)
			if fd == rl.lfd {
				rl.accept()
				continue
			}
			c := rl.conns[fd]
			if c == nil {
				continue
			}
			if ev[i].Events&syscall.EPOLLOUT != 0 {
				rl.flush(c)
			}
			if ev[i].Events&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 && rl.conns[fd] == c {
				rl.input(c)
			}
		}
		for i, c := range rl.dirty {
			rl.dirty[i] = nil
			c.dirty = false
			if rl.conns[c.fd] == c && !c.pollOut {
				rl.flush(c)
			}
		}
		rl.dirty = rl.dirty[:0]
	}
	return nil
}

func listen(addr *net.TCPAddr) (int, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("socket: %w", err)
	}
	syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	sa := &syscall.SockaddrInet4{Port: addr.Port}
	copy(sa.Addr[:], addr.IP.To4())
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return 0, fmt.Errorf("bind %v: %w", addr, err)
	}
	if err := syscall.Listen(fd, 128); err != nil {
		syscall.Close(fd)
		return 0, fmt.Errorf("listen: %w", err)
	}
	return fd, nil
}

func (rl *relay) ctl(op, fd int, events uint32) error {
	if err := syscall.EpollCtl(rl.epfd, op, fd, &syscall.EpollEvent{Events: events, Fd: int32(fd)}); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

func (rl *relay) accept() {
	for {
		fd, _, err := syscall.Accept4(rl.lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN, or nothing worth stopping for
		}
		// Nagle off, as Go (and so Weir) sets it on every TCP connection.
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		if rl.ctl(syscall.EPOLL_CTL_ADD, fd, syscall.EPOLLIN|syscall.EPOLLRDHUP) != nil {
			syscall.Close(fd)
			continue
		}
		if len(rl.conns) == 0 {
			rl.n = counts{cpu0: cpuTime()}
		}
		rl.conns[fd] = &conn{fd: fd, in: make([]byte, inSize), out: make([]byte, 0, 64<<10)}
	}
}

// input makes one read and handles the whole packets it completes.
func (rl *relay) input(c *conn) {
	if c.w == len(c.in) {
		rl.drop(c, "packet larger than the read buffer")
		return
	}
	n, e := rl.sc.read(c.fd, c.in[c.w:])
	rl.n.reads++
	switch {
	case e == syscall.EAGAIN || e == syscall.EINTR:
		return
	case e != 0:
		rl.drop(c, e.Error())
		return
	case n == 0:
		rl.drop(c, "")
		return
	}
	c.w += n
	for {
		avail := c.w - c.r
		if avail < 2 {
			break
		}
		rem, hl, ok := varint(c.in[c.r+1 : c.w])
		if !ok {
			rl.drop(c, "bad remaining length")
			return
		}
		if hl == 0 || avail < 1+hl+rem {
			break
		}
		pkt := c.in[c.r : c.r+1+hl+rem]
		c.r += len(pkt)
		if err := rl.packet(c, pkt, pkt[1+hl:]); err != nil {
			rl.drop(c, err.Error())
			return
		}
	}
	switch {
	case c.r == c.w:
		c.r, c.w = 0, 0
	case c.r > len(c.in)/2:
		c.w = copy(c.in, c.in[c.r:c.w])
		c.r = 0
	}
}

var errDisconnect = errors.New("")

func (rl *relay) packet(c *conn, pkt, body []byte) error {
	switch pkt[0] >> 4 {
	case 1: // CONNECT
		if len(body) < 2 {
			return errors.New("short CONNECT")
		}
		nl := int(body[0])<<8 | int(body[1])
		if len(body) < 3+nl || body[2+nl] != 4 {
			return errors.New("only MQTT 3.1.1 is spoken here")
		}
		rl.send(c, 0x20, 0x02, 0x00, 0x00) // CONNACK: accepted, no session
	case 8: // SUBSCRIBE
		if len(body) < 2 {
			return errors.New("short SUBSCRIBE")
		}
		codes := make([]byte, 0, 4)
		for p := body[2:]; len(p) >= 3; {
			fl := int(p[0])<<8 | int(p[1])
			if len(p) < 3+fl {
				return errors.New("bad SUBSCRIBE")
			}
			codes = append(codes, min(p[2+fl]&3, 1))
			p = p[3+fl:]
		}
		rl.send(c, 0x90, byte(2+len(codes)), body[0], body[1])
		rl.send(c, codes...)
		if !c.sub {
			c.sub = true
			rl.subs = append(rl.subs, c)
		}
	case 3: // PUBLISH
		qos := pkt[0] >> 1 & 3
		if qos > 1 {
			return errors.New("QoS 2 is not relayed")
		}
		if qos == 1 {
			if len(body) < 2 {
				return errors.New("short PUBLISH")
			}
			tl := int(body[0])<<8 | int(body[1])
			if len(body) < 4+tl {
				return errors.New("short PUBLISH")
			}
			rl.send(c, 0x40, 0x02, body[2+tl], body[3+tl]) // PUBACK
		}
		for _, s := range rl.subs {
			rl.send(s, pkt...)
		}
		rl.n.msgs++
	case 4: // PUBACK from a subscriber: nothing to do
	case 12: // PINGREQ
		rl.send(c, 0xD0, 0x00)
	case 14: // DISCONNECT
		return errDisconnect
	default:
		return fmt.Errorf("packet type %d is not handled", pkt[0]>>4)
	}
	return nil
}

func (rl *relay) send(c *conn, b ...byte) {
	c.out = append(c.out, b...)
	if !c.dirty {
		c.dirty = true
		rl.dirty = append(rl.dirty, c)
	}
}

// flush writes c's output with one write; what the socket does not take
// waits for EPOLLOUT.
func (rl *relay) flush(c *conn) {
	if len(c.out) == 0 {
		return
	}
	n, e := rl.sc.write(c.fd, c.out)
	rl.n.writes++
	switch {
	case e == syscall.EAGAIN || e == syscall.EINTR:
		n = 0
	case e != 0:
		rl.drop(c, e.Error())
		return
	}
	c.out = c.out[:copy(c.out, c.out[n:])]
	switch {
	case len(c.out) > maxOut:
		rl.drop(c, "output not taken")
	case len(c.out) > 0 && !c.pollOut:
		c.pollOut = true
		rl.ctl(syscall.EPOLL_CTL_MOD, c.fd, syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLOUT)
	case len(c.out) == 0 && c.pollOut:
		c.pollOut = false
		rl.ctl(syscall.EPOLL_CTL_MOD, c.fd, syscall.EPOLLIN|syscall.EPOLLRDHUP)
	}
}

func (rl *relay) drop(c *conn, why string) {
	if why != "" {
		fmt.Fprintf(os.Stderr, "floor: connection %d closed: %s\n", c.fd, why)
	}
	syscall.Close(c.fd) // also leaves the epoll set
	delete(rl.conns, c.fd)
	for i, s := range rl.subs {
		if s == c {
			rl.subs = append(rl.subs[:i], rl.subs[i+1:]...)
			break
		}
	}
	if len(rl.conns) == 0 && rl.n.msgs > 0 {
		m := float64(rl.n.msgs)
		fmt.Fprintf(os.Stderr, "floor: %d messages relayed; per message: %.2f reads, %.2f writes, %.2f epoll_pwait, %.1f µs CPU\n",
			rl.n.msgs, float64(rl.n.reads)/m, float64(rl.n.writes)/m, float64(rl.n.waits)/m,
			float64(cpuTime()-rl.n.cpu0)/1e3/m)
	}
}

// varint decodes a remaining length: its value and byte count (0 when
// incomplete); ok is false for a malformed one.
func varint(b []byte) (v, n int, ok bool) {
	for i := 0; i < 4; i++ {
		if i == len(b) {
			return 0, 0, true
		}
		v |= int(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1, true
		}
	}
	return 0, 0, false
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
