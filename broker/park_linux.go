package broker

import (
	"sync"
	"syscall"
	"time"
)

// Parking idle connections (Linux).
//
// DESIGN §3 gives every connection one reader goroutine. A goroutine
// waiting for input keeps its stack (2 KiB at the least) and its
// descriptor (about 0.5 KiB), which with 10,000 idle connections is most
// of what the broker's memory holds: more than the connection's own state.
// So a plain TCP connection whose reader has waited parkAfter for input
// (or that has sent nothing more by the time CONNECT is handled) is
// parked: its reader goroutine ends, and one epoll set per server watches
// the socket (a second registration of the same descriptor, next to the
// Go runtime's own). When input arrives, or the peer closes, a fresh
// reader goroutine takes the connection back where it left off (the
// mqtt.Reader holds nothing while parked). Everything else works on a
// parked connection as on any other: writes (deliveries, DISCONNECT) do
// not involve the reader; whatever closes it (takeover, shutdown, a slow
// consumer, write errors) goes through closeNet, which takes it out of the
// epoll set first and lets a reader goroutine run the end of the
// connection; the keep-alive is checked by the epoll goroutine once a
// second (parkSweep) instead of a read deadline, so a parked client that
// stays silent is disconnected up to parkSweep after 1.5 × its keep-alive
// [MQTT-3.1.2-24] (plus the keepAlive/16 a reader's deadline already
// allows). TLS and WebSocket connections (no raw socket) and other
// platforms keep their goroutine.

const canPark = true

// parkAfter is how long a reader waits for input before its connection is
// parked. A connection that wakes more often pays for it (two epoll_ctl
// calls and a goroutine start per wake), so not much shorter.
const parkAfter = 2 * time.Second

// parkSweep is how often the keep-alive of parked connections is checked.
const parkSweep = time.Second

// parker watches the sockets of parked connections.
type parker struct {
	once  sync.Once
	mu    sync.Mutex
	open  bool // epfd is an epoll set and loop runs
	epfd  int
	conns map[int32]*client // by descriptor, while parked
	stop  bool              // the server has closed
}

// start creates the epoll set and its goroutine at the first park.
func (p *parker) start(s *Server) {
	p.once.Do(func() {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			s.log.Warn("cannot create an epoll set: idle connections keep their goroutine", "err", err)
			return
		}
		p.mu.Lock()
		p.open, p.epfd = true, fd
		p.conns = make(map[int32]*client)
		p.mu.Unlock()
		go p.loop(s)
	})
}

// park hands c's socket to the epoll set; c's reader goroutine must end
// if it returns true. It returns false for a connection being closed.
func (s *Server) park(c *client) bool {
	p := &s.parker
	p.start(s)
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.netClosed || p.stop || !p.open {
		return false
	}
	var fd int32
	var cerr error
	// Control holds the descriptor open meanwhile; closeNet, which is the
	// only way it is closed, cannot run before this returns (p.mu).
	err := c.raw.Control(func(f uintptr) {
		fd = int32(f)
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: fd}
		cerr = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(f), &ev)
	})
	if err != nil || cerr != nil {
		return false
	}
	c.parked, c.parkFD = true, fd
	c.rd.Release() // a parked connection holds no read buffer
	c.kaDue = 0
	if c.keepAlive > 0 {
		// The deadline the reader would have had (armReadDeadline).
		armed := c.armed
		if armed == 0 {
			armed = s.mono()
		}
		c.kaDue = armed + monoTime(c.keepAlive+c.keepAlive/16)
	}
	p.conns[fd] = c
	return true
}

// unparkLocked takes c out of the epoll set (p.mu held); the caller
// starts its reader.
func (p *parker) unparkLocked(c *client) {
	syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(c.parkFD), nil)
	delete(p.conns, c.parkFD)
	c.parked = false
}

// closeNet closes c's socket. Every close of a client's connection goes
// through here: a parked connection first leaves the epoll set (before its
// descriptor number can be reused) and gets a reader again, which finds
// the connection closed and ends it as usual.
func (c *client) closeNet() {
	p := &c.srv.parker
	p.mu.Lock()
	c.netClosed = true
	wake := c.parked
	if wake {
		p.unparkLocked(c)
	}
	p.mu.Unlock()
	c.conn.Close()
	if wake {
		go c.resume(false)
	}
}

// loop waits for input on parked connections and starts their readers,
// and disconnects those whose keep-alive has passed.
func (p *parker) loop(s *Server) {
	events := make([]syscall.EpollEvent, 64)
	lastSweep := s.mono()
	for {
		n, err := syscall.EpollWait(p.epfd, events, int(parkSweep/time.Millisecond))
		if err != nil && err != syscall.EINTR {
			s.log.Error("epoll_wait failed: parked connections are woken at their keep-alive only", "err", err)
			time.Sleep(parkSweep)
		}
		p.mu.Lock()
		if p.stop && len(p.conns) == 0 {
			syscall.Close(p.epfd)
			p.open = false
			p.mu.Unlock()
			return
		}
		for _, ev := range events[:max(n, 0)] {
			if c := p.conns[ev.Fd]; c != nil {
				p.unparkLocked(c)
				go c.resume(false)
			}
		}
		if now := s.mono(); now.sub(lastSweep) >= parkSweep || p.stop {
			lastSweep = now
			for _, c := range p.conns {
				if p.stop || c.kaDue != 0 && now >= c.kaDue {
					p.unparkLocked(c)
					go c.resume(!p.stop)
				}
			}
		}
		p.mu.Unlock()
	}
}

// stopParking ends the epoll goroutine once no connection is parked (any
// left are woken, and find their connections closed).
func (s *Server) stopParking() {
	p := &s.parker
	p.mu.Lock()
	p.stop = true
	p.mu.Unlock()
}

// parkedCount returns how many connections are parked now.
func (s *Server) parkedCount() int {
	p := &s.parker
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}
