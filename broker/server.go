package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/weirmq/weir/broker/subtree"
	"github.com/weirmq/weir/retain"
	"github.com/weirmq/weir/store"
)

// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown or
// Close.
var ErrServerClosed = errors.New("broker: server closed")

// Server is an MQTT broker. Create it with New; it is safe for concurrent
// use.
type Server struct {
	opts      Options
	log       *slog.Logger
	store     store.Store
	ownsStore bool
	subs      *subtree.Tree[*session, subscription]
	retained  *retain.Index
	stats     Stats

	msgID atomic.Uint64 // last message id handed out
	// storedBytes is the size of the queue entries of persistent sessions
	// in the store; with the retained messages it is what MaxStoreBytes
	// bounds.
	storedBytes atomic.Int64
	// storeErrLogged is when a failed store commit was last logged (unix
	// nanoseconds); see logStoreError.
	storeErrLogged atomic.Int64

	mu         sync.Mutex
	sessions   map[string]*session
	connecting map[string]chan struct{} // client ids being attached; closed when done
	clients    map[*client]struct{}
	listeners  map[net.Listener]struct{}
	https      []*http.Server
	closing    bool
	conns      sync.WaitGroup // connection goroutines
	commits    pendingCounter // store commits not yet done
	done       chan struct{}  // closed when shutting down

	storeClose    sync.Once
	storeCloseErr error

	// parker holds parked idle connections (park_linux.go).
	parker parker

	// perIP counts open connections by source address, for
	// MaxConnectionsPerIP (limits.go); under mu.
	perIP map[string]int
	// loginFails rate-limits failed logins by source address.
	loginFails failLimiter
	// internal holds the options of internal sessions by client id
	// (internal.go), under mu.
	internal map[string]*InternalOptions

	// epoch is when the server was created; monoTime counts from it.
	epoch time.Time

	// testHookPacket, when set (by tests, before Serve), is called by
	// each connection's reader with every packet after CONNECT.
	testHookPacket func(pkt []byte)
}

// New returns a Server configured by opts (nil means all defaults). It
// loads the sessions and retained messages of opts.Store.
func New(opts *Options) (*Server, error) {
	if opts == nil {
		opts = &Options{}
	}
	o := opts.withDefaults()
	s := &Server{
		opts:       o,
		log:        o.Logger,
		store:      o.Store,
		subs:       subtree.New[*session, subscription](),
		retained:   retain.New(),
		sessions:   make(map[string]*session),
		connecting: make(map[string]chan struct{}),
		clients:    make(map[*client]struct{}),
		listeners:  make(map[net.Listener]struct{}),
		done:       make(chan struct{}),
		perIP:      make(map[string]int),
		loginFails: failLimiter{max: o.MaxAuthFailures, window: o.AuthFailureWindow},
		epoch:      time.Now(),
	}
	if s.store == nil {
		s.store = store.NewMemory()
		s.ownsStore = true
	}
	s.msgID.Store(s.store.MaxMessageID())
	if err := s.retained.Load(s.store); err != nil {
		return nil, fmt.Errorf("broker: loading retained messages: %w", err)
	}
	if err := s.loadSessions(); err != nil {
		return nil, fmt.Errorf("broker: loading sessions: %w", err)
	}
	s.expireRetained(time.Now())
	go s.janitor()
	return s, nil
}

// janitorInterval is how often expired retained messages are removed.
const janitorInterval = 30 * time.Second

// janitor removes expired retained messages from the index and the store
// until the server closes (expired messages are never delivered in any
// case; this gives their memory and disk back).
func (s *Server) janitor() {
	t := time.NewTicker(janitorInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			s.expireRetained(now)
		}
	}
}

func (s *Server) expireRetained(now time.Time) {
	var b store.Batch
	for _, m := range s.retained.Expire(now) {
		// A new retained message may have replaced it since; keep that.
		if s.retained.Get(m.Topic) == nil {
			b.DeleteRetained(m.Topic)
		}
	}
	s.commit(&b, nil)
}

// monoTime is a time on the server's monotonic clock: nanoseconds since
// Server.epoch, plus one so that 0 can mean "never". Per-connection times
// are kept this way because a time.Time is 24 bytes, a monoTime 8.
type monoTime int64

// mono returns the time now as a monoTime.
func (s *Server) mono() monoTime { return monoTime(time.Since(s.epoch)) + 1 }

// sub returns t - u.
func (t monoTime) sub(u monoTime) time.Duration { return time.Duration(t - u) }

// Options returns the options in effect, defaults filled in.
func (s *Server) Options() Options { return s.opts }

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() StatsSnapshot { return s.stats.snapshot(s) }

// ListenAndServe listens on Options.Addr (TCP) and, unless disabled,
// Options.WSAddr (WebSocket) and, with Options.TLS, Options.TLSAddr (MQTT
// over TLS) and Options.WSSAddr (secure WebSocket), and serves until
// Shutdown or Close; it then returns ErrServerClosed.
func (s *Server) ListenAndServe() error {
	l, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return err
	}
	errc := make(chan error, 4)
	if s.opts.WSAddr != "-" {
		wl, err := net.Listen("tcp", s.opts.WSAddr)
		if err != nil {
			l.Close()
			return err
		}
		s.log.Info("listening", "transport", "websocket", "addr", wl.Addr().String(), "path", s.opts.WSPath)
		go func() { errc <- s.ServeWebSocket(wl) }()
	}
	s.log.Info("listening", "transport", "tcp", "addr", l.Addr().String())
	go func() { errc <- s.Serve(l) }()
	if err := s.listenTLS(errc); err != nil {
		s.Close()
		return err
	}
	err = <-errc
	if !errors.Is(err, ErrServerClosed) {
		s.Close()
	}
	return err
}

// Serve accepts MQTT connections on l until Shutdown or Close, and then
// returns ErrServerClosed. It closes l when it returns.
func (s *Server) Serve(l net.Listener) error {
	if !s.trackListener(l, true) {
		l.Close()
		return ErrServerClosed
	}
	defer s.trackListener(l, false)
	var delay time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Back off as net/http does: out of file descriptors
				// must not turn into a busy loop.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("accept error; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		transport := "tcp"
		if _, ok := conn.(*tls.Conn); ok {
			transport = "tls"
		}
		s.serveConn(conn, transport)
	}
}

// serveConn starts the goroutine of one connection.
func (s *Server) serveConn(conn net.Conn, transport string) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		conn.Close()
		return
	}
	host, ok := s.addPerIPLocked(conn)
	if !ok {
		s.mu.Unlock()
		s.refusePerIP(conn, host)
		return
	}
	s.conns.Add(1)
	s.mu.Unlock()
	go newClient(s, conn, transport).run()
}

// run serves a connection: CONNECT on this goroutine, then the packets
// after it on a fresh one, because handling CONNECT grew this one's stack
// (client.go servePackets). The goroutines capture nothing but c, and
// the per-address count is found again from the address at the end (not
// kept in every connection).
//
// A connection that has sent nothing more by the time CONNECT is handled
// is parked at once (park_linux.go): most clients send their first
// SUBSCRIBE or PUBLISH within a round trip, but one that does not may stay
// idle for long, and its reader's stack would otherwise be allocated for
// nothing (the runtime does not give freed stacks back to the system
// while the heap is that size).
func (c *client) run() {
	if !c.serve() {
		c.srv.connEnded(c)
		return
	}
	if c.parkable && c.rd.Buffered() == 0 && c.srv.park(c) {
		return
	}
	go c.resume(false)
}

// connEnded undoes what serveConn counted for c.
func (s *Server) connEnded(c *client) {
	s.removePerIP(remoteHost(c.conn))
	s.conns.Done()
}

func (s *Server) trackListener(l net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closing {
			return false
		}
		s.listeners[l] = struct{}{}
	} else {
		delete(s.listeners, l)
	}
	return true
}

func (s *Server) isClosing() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Shutdown stops accepting connections, sends DISCONNECT "server shutting
// down" to MQTT 5.0 clients, closes every connection, waits for pending
// store commits and, if the server created its store, closes it. Sessions
// are kept as if every client had disconnected without a DISCONNECT,
// except that wills are not published. If ctx ends first, Shutdown
// returns its error and leaves the rest to Close.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.beginClose() {
		return nil
	}
	s.mu.Lock()
	clients := make([]*client, 0, len(s.clients))
	for c := range s.clients {
		clients = append(clients, c)
	}
	s.mu.Unlock()
	for _, c := range clients {
		c.shutdown()
	}
	finished := make(chan struct{})
	go func() {
		s.conns.Wait()
		s.stopParking()
		s.saveQoS0Queues()
		s.commits.wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-ctx.Done():
		s.closeAll()
		return ctx.Err()
	}
	s.stopTimers()
	return s.closeStore()
}

// saveQoS0Queues stores the QoS 0 messages that persistent sessions hold
// in memory for their offline clients, so that a graceful restart loses
// nothing; while running they are not written, to keep QoS 0 cheap. It
// also stores the packet ids of QoS 1 messages sent and not acknowledged,
// which are not written while running either (one more write per
// delivery), so that after a graceful restart they are re-sent with their
// original packet ids and DUP [MQTT-4.4.0-1]. (After a crash they are
// re-sent as new deliveries: at least once still holds.)
func (s *Server) saveQoS0Queues() {
	s.mu.Lock()
	sessions := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()
	var b store.Batch
	n, pids := 0, 0
	for _, ss := range sessions {
		ss.mu.Lock()
		if ss.persistent() && !ss.ended {
			for _, om := range ss.queue[ss.queueHead:] {
				if om.qos == 0 && !om.persisted {
					om.persisted = true
					b.PutMessage(om.msg)
					b.Enqueue(ss.id, ss.entry(om))
					ss.stored = true
					n++
				}
			}
			for _, om := range ss.inflight {
				if om.qos == 1 && om.persisted && om.state == store.EntrySent {
					b.Enqueue(ss.id, ss.entry(om)) // the entry, now with its packet id
					pids++
				}
			}
		}
		ss.mu.Unlock()
	}
	if n > 0 || pids > 0 {
		s.log.Info("saving queued QoS 0 messages and QoS 1 packet ids of offline sessions",
			"messages", n, "packet_ids", pids)
		s.commit(&b, nil)
	}
}

// Close closes all listeners and connections at once, without DISCONNECT
// packets, and closes the store if the server created it.
func (s *Server) Close() error {
	s.beginClose()
	s.closeAll()
	s.conns.Wait()
	s.stopParking()
	s.commits.wait()
	s.stopTimers()
	return s.closeStore()
}

func (s *Server) beginClose() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.closing = true
	close(s.done)
	for l := range s.listeners {
		l.Close()
	}
	for _, h := range s.https {
		h.Close()
	}
	return true
}

func (s *Server) closeAll() {
	s.mu.Lock()
	for c := range s.clients {
		c.closeNet()
	}
	s.mu.Unlock()
}

func (s *Server) stopTimers() {
	s.mu.Lock()
	for _, ss := range s.sessions {
		ss.stopTimers()
	}
	s.mu.Unlock()
}

func (s *Server) closeStore() error {
	if !s.ownsStore {
		return nil
	}
	s.storeClose.Do(func() { s.storeCloseErr = s.store.Close() })
	return s.storeCloseErr
}

// commit sends b to the store and calls done (if not nil) when it is
// durable. Shutdown waits for every commit started here.
func (s *Server) commit(b *store.Batch, done func(error)) {
	if b.Empty() {
		if done != nil {
			done(nil)
		}
		return
	}
	ops := len(b.Ops)
	s.commits.add(ops)
	// The store keeps a copy: the caller's Batch, usually a local
	// variable, then does not escape to the heap, so the many commits of
	// nothing (deliveries to sessions that store nothing) allocate nothing.
	own := &store.Batch{Ops: b.Ops}
	s.store.Commit(own, func(err error) {
		defer s.commits.done(ops)
		if err != nil {
			s.stats.storeErrors.Add(1)
			s.logStoreError(err)
		}
		if done != nil {
			done(err)
		}
	})
}

// logStoreError logs a failed store commit, at most once per
// dropLogInterval (with the count so far): while the disk is full every
// QoS 1/2 PUBLISH fails, and one line each would flood the log (which may
// well live on the same full disk).
func (s *Server) logStoreError(err error) {
	now := time.Now().UnixNano()
	last := s.storeErrLogged.Load()
	if now-last < int64(dropLogInterval) || !s.storeErrLogged.CompareAndSwap(last, now) {
		return
	}
	if errors.Is(err, syscall.ENOSPC) {
		s.log.Error("store commit failed: disk full; QoS 1/2 messages for persistent sessions are refused "+
			"(MQTT 5.0: PUBACK/PUBREC 0x97, 3.1.1: disconnect) until space is freed",
			"err", err, "failures", s.stats.storeErrors.Load())
		return
	}
	s.log.Error("store commit failed", "err", err, "failures", s.stats.storeErrors.Load())
}

// storeRoom reports whether n more bytes fit the store budget.
func (s *Server) storeRoom(n int) bool {
	max := s.opts.MaxStoreBytes
	if max <= 0 {
		return true
	}
	return s.storedBytes.Load()+int64(s.retained.Bytes())+int64(n) <= max
}

// nextMessageID returns a new message id.
func (s *Server) nextMessageID() uint64 { return s.msgID.Add(1) }

// pendingCounter counts store commits in progress, and the writes in
// them. Unlike a WaitGroup it may be incremented while another goroutine
// waits (timers and the janitor can commit while Shutdown is waiting).
//
// The count of writes is what keeps memory bounded when the store falls
// behind: acknowledgements from a subscriber draining a long queue (each
// one a dequeue) and QoS 0 traffic need no store round trip before the
// next packet, so without a bound they pile up as batches waiting for the
// store's writer — hundreds of MiB while a million-message backlog
// drains. Readers call waitRoom before taking the next packet, so a slow
// store slows the clients down (back-pressure by not reading) instead.
type pendingCounter struct {
	mu      sync.Mutex
	cond    *sync.Cond
	n       int          // commits
	ops     atomic.Int64 // writes in them (changed under mu, read without it by behind)
	waiters int          // goroutines in waitRoom
}

// maxPendingOps is how many writes may wait for the store before readers
// stop reading: about 2 MiB of batches, and several group commits' worth
// so the writer never runs dry.
const maxPendingOps = 16384

func (p *pendingCounter) add(ops int) {
	p.mu.Lock()
	p.n++
	p.ops.Add(int64(ops))
	p.mu.Unlock()
}

func (p *pendingCounter) done(ops int) {
	p.mu.Lock()
	p.n--
	left := p.ops.Add(-int64(ops))
	if p.cond != nil && (p.n == 0 || p.waiters > 0 && left <= maxPendingOps/2) {
		p.cond.Broadcast()
	}
	p.mu.Unlock()
}

// wait returns once no commit is in progress.
func (p *pendingCounter) wait() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.initLocked()
	for p.n > 0 {
		p.cond.Wait()
	}
}

// waitRoom returns at once while fewer than maxPendingOps writes are in
// progress, and otherwise once the store has caught up to half of that.
// It reports whether it waited. Callers must hold no lock a store
// callback might take.
func (p *pendingCounter) waitRoom() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ops.Load() <= maxPendingOps {
		return false
	}
	p.initLocked()
	p.waiters++
	for p.ops.Load() > maxPendingOps/2 {
		p.cond.Wait()
	}
	p.waiters--
	return true
}

// behind reports, without locking, whether waitRoom would wait.
func (p *pendingCounter) behind() bool { return p.ops.Load() > maxPendingOps }

func (p *pendingCounter) initLocked() {
	if p.cond == nil {
		p.cond = sync.NewCond(&p.mu)
	}
}
