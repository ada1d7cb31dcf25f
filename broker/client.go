package broker

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/weirmq/weir/mqtt"
)

// client is one network connection. Its reader goroutine runs serve and
// writes what it produces when its input runs dry (flush.go); a writer
// goroutine is started only for output that cannot be written at once and
// exits when the buffer is empty, so an idle connection has one goroutine
// — or, on Linux, none once it is parked (park_linux.go).
type client struct {
	srv       *Server
	conn      net.Conn
	raw       syscall.RawConn // for non-blocking writes; nil if not a socket
	transport string
	log       slog.Logger // connHandler (connlog.go)
	rd        *mqtt.Reader

	// Set while handling CONNECT, then read-only.
	version     mqtt.Version
	id          string
	sess        *session
	keepAlive   time.Duration // read deadline; 0 none
	outWindow   int           // outbound inflight limit
	maxOutSize  int           // client's Maximum Packet Size, 0 none
	aliasMax    uint16        // topic aliases we may use towards the client
	problemInfo bool          // Request Problem Information (MQTT 5.0)

	// internal is set before serve for DialInternal connections (internal.go).
	internal *InternalOptions
	ordered  atomic.Int32 // commits whose callback delivers, pending (commitThenDeliver)
	idle     bool         // DialInternalIdle: the session sends no messages on it

	// Parking (park_linux.go). parkable is the reader's; the rest is
	// under srv.parker.mu.
	parkable  bool     // the connection may be parked while idle
	parked    bool     // in the epoll set, no reader goroutine
	netClosed bool     // closeNet has run
	parkFD    int32    // its descriptor, while parked
	kaDue     monoTime // while parked: when the keep-alive has passed; 0 never

	// Reader-goroutine state.
	inAliases   map[uint16]string
	pubs        *publishing  // allocated at the first PUBLISH
	inflightIn  atomic.Int32 // QoS 1/2 PUBLISH not yet acknowledged by us
	held        []*client    // connections whose writes this reader holds back
	heldPackets int          // packets handled since they were last written
	armed       monoTime     // when the read deadline was last set; 0 never

	// Writer state, under wmu.
	wmu        sync.Mutex
	wbuf       []byte
	spare      []byte
	writing    bool
	closing    bool // no more output; close once the buffer is written
	closed     bool
	finished   bool          // serve has finished cleaning up
	done       chan struct{} // made by doneChan, closed once finished
	overSince  monoTime      // when the buffer went over its limit; 0 not over
	outAliases map[string]uint16
	holds      int     // readers holding this connection's writer back
	heldBy     *client // the last of them, while it holds

	// Set once the connection is ending.
	disconnect   atomic.Bool // DISCONNECT received: no will unless willOnClose
	willOnClose  atomic.Bool // DISCONNECT with a code other than 0x00 (5.0)
	takenOver    atomic.Bool
	shuttingDown atomic.Bool
}

func newClient(s *Server, conn net.Conn, transport string) *client {
	c := &client{
		srv:       s,
		conn:      conn,
		raw:       rawConnOf(conn),
		transport: transport,
	}
	c.initLog()
	var src io.Reader = conn
	if c.raw != nil {
		src = &sockReader{Conn: conn, raw: c.raw}
		c.parkable = canPark
	}
	c.rd = mqtt.NewReader(src, s.opts.MaxPacketSize)
	return c
}

// errClose ends a connection; for MQTT 5.0 clients, code is sent in a
// DISCONNECT first (when it is an error code).
type errClose struct {
	code mqtt.ReasonCode
	msg  string
}

func (e *errClose) Error() string { return fmt.Sprintf("%v: %s", e.code, e.msg) }

func closeWith(code mqtt.ReasonCode, format string, args ...any) error {
	return &errClose{code: code, msg: fmt.Sprintf(format, args...)}
}

// serve runs the connection up to and including CONNECT, and reports
// whether it goes on; then servePackets runs the rest on a new goroutine.
// Handling CONNECT (authentication, session takeover, logging) grows a
// goroutine's stack to 4–8 KiB, and a goroutine keeps its stack while it
// waits for input: the new one starts at 2 KiB, which is most of what an
// idle connection costs.
func (c *client) serve() (goesOn bool) {
	added := false
	defer func() {
		if !goesOn {
			c.finish(recover(), added)
		}
	}()
	if !c.srv.addClient(c) {
		return false
	}
	added = true

	c.conn.SetReadDeadline(time.Now().Add(c.srv.opts.ConnectTimeout))
	pkt, err := c.rd.ReadPacket()
	if err != nil {
		c.logReadError("before CONNECT", err)
		return false
	}
	if mqtt.PeekType(pkt) != mqtt.CONNECT {
		// [MQTT-3.1.0-1]: the first packet must be CONNECT.
		c.srv.stats.badPackets.Add(1)
		c.log.Info("connection closed: first packet is not CONNECT", "type", mqtt.PeekType(pkt))
		return false
	}
	return c.handleConnect(pkt)
}

// servePackets reads and handles packets after CONNECT until the
// connection ends (internal connections, which are never parked).
func (c *client) servePackets() { c.readPackets(nil) }

// readPackets reads and handles packets after CONNECT until the
// connection ends, or until it is parked (park_linux.go); it reports
// whether it was. A connection whose keep-alive passed while it was
// parked comes back with endErr set, and just ends.
func (c *client) readPackets(endErr error) (parked bool) {
	defer c.finishPackets(&parked)
	c.armed = 0
	if c.keepAlive == 0 && !c.parkable {
		c.conn.SetReadDeadline(time.Time{})
	}
	for endErr == nil {
		err := c.readLoop()
		if err != errPark {
			endErr = err
			break
		}
		if c.srv.park(c) {
			return true
		}
		c.parkable = false // being closed, or no epoll set: read on
		c.armed = 0
	}
	c.ended(endErr)
	return false
}

// resume runs the reader of a connection taken out of the epoll set:
// input arrived, it is being closed, or (expired) its keep-alive passed.
func (c *client) resume(expired bool) {
	var endErr error
	if expired {
		endErr = os.ErrDeadlineExceeded
	}
	if !c.readPackets(endErr) {
		c.srv.connEnded(c)
	}
}

// errPark ends a read loop that has waited parkAfter for input.
var errPark = errors.New("idle: park the connection")

// ended logs why the read loop ended and detaches the session (out of
// line: it is not on the waiting path).
//
//go:noinline
func (c *client) ended(err error) {
	reason := c.endWith(err)
	c.sess.detach(c)
	c.log.Info("client disconnected", "reason", reason)
}

// finishPackets is deferred by readPackets (and calls recover itself):
// it finishes the connection unless it was parked.
func (c *client) finishPackets(parked *bool) {
	r := recover()
	if r == nil && *parked {
		return
	}
	c.finish(r, true)
}

// finish ends the connection: after a panic r (non-nil) it closes it at
// once, else once buffered output is written.
func (c *client) finish(r any, added bool) {
	defer c.markDone()
	if r != nil {
		c.srv.stats.panics.Add(1)
		c.log.Error("panic in connection handler; closing the connection", "client", c.id,
			"panic", r, "stack", string(debug.Stack()))
		c.closeConn()
		if c.sess != nil {
			c.sess.detach(c)
		}
	}
	if !added {
		return
	}
	c.closeAfterFlush()
	c.srv.removeClient(c)
}

// doneChan returns a channel that is closed once the connection has
// finished cleaning up (a takeover waits for it). It is made on demand: a
// channel is 96 bytes, and most connections are never waited for.
func (c *client) doneChan() <-chan struct{} {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.finished {
			close(c.done)
		}
	}
	return c.done
}

func (c *client) markDone() {
	c.wmu.Lock()
	c.finished = true
	if c.done != nil {
		close(c.done)
	}
	c.wmu.Unlock()
}

func (c *client) logReadError(when string, err error) {
	var re *mqtt.ReasonError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.log.Info("connection closed: timeout " + when)
	case errors.As(err, &re):
		c.srv.stats.badPackets.Add(1)
		c.log.Info("connection closed: bad packet "+when, "err", err)
	default:
		c.log.Debug("connection read error "+when, "err", err)
	}
}

// readLoop reads and handles packets until the connection ends, or until
// it is time to park it (errPark), and returns the error that ended it.
// An idle connection that cannot be parked (TLS, WebSocket, not Linux)
// spends its life waiting in here, so the frames on this path are kept
// small (under 1 KiB in all): the runtime starts new goroutines with the
// average stack it saw, and shrinks a stack only when less than a quarter
// of it is in use.
func (c *client) readLoop() error {
	defer c.releaseHolds()
	for {
		if c.srv.commits.behind() {
			// Back-pressure while the store catches up (server.go
			// pendingCounter); what this reader holds goes out first.
			c.releaseHolds()
			if c.srv.commits.waitRoom() {
				c.armed = 0 // the deadline may have passed meanwhile
			}
		}
		if c.keepAlive > 0 || c.parkable {
			c.armReadDeadline()
		}
		if c.heldPackets >= maxHeldPackets || len(c.held) > 0 && !c.rd.Ready() {
			c.releaseHolds() // before waiting for input
		}
		pkt, err := c.rd.ReadPacket()
		if err != nil && c.atParkTime(err) {
			if c.rd.Buffered() == 0 {
				return errPark
			}
			if c.waitRestOfPacket() {
				pkt, err = c.rd.ReadPacket()
			}
		}
		if err == nil {
			err = c.handleHeld(pkt)
		}
		if err != nil {
			return err
		}
	}
}

// armReadDeadline re-arms the read deadline: the keep-alive's, or the
// time to park if that comes first. That costs a timer update; under a
// stream of packets it is done at most every keepAlive/16, with that much
// added so that the keep-alive deadline never falls before 1.5 ×
// keep-alive after the last packet [MQTT-3.1.2-24], and at most every
// parkAfter/2, so that a connection is parked after at least parkAfter/2
// without input.
//
//go:noinline
func (c *client) armReadDeadline() {
	window, every, _ := c.readWindow()
	if now := c.srv.mono(); c.armed == 0 || now.sub(c.armed) >= every {
		c.conn.SetReadDeadline(time.Now().Add(window))
		c.armed = now
	}
}

// readWindow returns how long after arming the read deadline falls, how
// often it is re-armed, and whether it is the time to park.
func (c *client) readWindow() (window, every time.Duration, park bool) {
	if c.keepAlive > 0 {
		window, every = c.keepAlive+c.keepAlive/16, c.keepAlive/16
	}
	if c.parkable && (window == 0 || parkAfter < window) {
		window, park = parkAfter, true
		if every == 0 || parkAfter/2 < every {
			every = parkAfter / 2
		}
	}
	return window, every, park
}

// atParkTime reports whether the read error err is the deadline of the
// time to park (readWindow), not the keep-alive's.
//
//go:noinline
func (c *client) atParkTime(err error) bool {
	if !c.parkable || !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	_, _, park := c.readWindow()
	return park
}

// waitRestOfPacket handles the time to park passing while part of a packet
// is buffered (a slow link trickling a large PUBLISH): the connection
// cannot be parked, and must not end before its keep-alive has passed
// without a whole packet [MQTT-3.1.2-24] (with no keep-alive, ever). It
// sets the read deadline to the keep-alive's, counted from when it was
// last armed, and reports whether the caller is to read on.
//
//go:noinline
func (c *client) waitRestOfPacket() bool {
	if c.keepAlive == 0 {
		c.conn.SetReadDeadline(time.Time{})
		return true
	}
	left := c.keepAlive + c.keepAlive/16 - c.srv.mono().sub(c.armed)
	if left <= 0 {
		return false
	}
	c.conn.SetReadDeadline(time.Now().Add(left))
	return true
}

// handleHeld handles a packet with the connection held (flush.go).
//
//go:noinline
func (c *client) handleHeld(pkt []byte) error {
	if h := c.srv.testHookPacket; h != nil {
		h(pkt)
	}
	c.hold(c)
	c.heldPackets++
	return c.handle(pkt)
}

// endWith turns the error that ended the read loop into a DISCONNECT for
// MQTT 5.0 clients where the spec asks for one, and a log reason.
func (c *client) endWith(err error) string {
	var ec *errClose
	var re *mqtt.ReasonError
	switch {
	case errors.Is(err, errNormalDisconnect):
		return "client sent DISCONNECT"
	case c.takenOver.Load():
		return "session taken over"
	case c.shuttingDown.Load():
		return "server shutting down"
	case errors.As(err, &ec):
		c.srv.stats.badPackets.Add(1) // every errClose is a protocol violation
		c.sendDisconnect(ec.code, ec.msg)
		return ec.Error()
	case errors.As(err, &re):
		c.srv.stats.badPackets.Add(1)
		c.sendDisconnect(re.Code, re.Msg)
		return re.Error()
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.sendDisconnect(mqtt.KeepAliveTimeout, "")
		return "keep alive timeout"
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return "connection closed by client"
	default:
		return err.Error()
	}
}

var errNormalDisconnect = errors.New("client disconnected")

// handle dispatches one packet after CONNECT. Each packet type is decoded
// in a function of its own: decoded packets with their properties are
// large, and one frame holding all of them (2.3 KiB) would grow the stack
// of every connection past its initial 2 KiB for good.
func (c *client) handle(pkt []byte) error {
	switch t := mqtt.PeekType(pkt); t {
	case mqtt.PUBLISH:
		return c.handlePublish(pkt)
	case mqtt.PUBACK:
		return c.handlePuback(pkt)
	case mqtt.PUBREC:
		return c.handlePubrec(pkt)
	case mqtt.PUBREL:
		return c.handlePubrelPacket(pkt)
	case mqtt.PUBCOMP:
		return c.handlePubcomp(pkt)
	case mqtt.SUBSCRIBE:
		return c.handleSubscribePacket(pkt)
	case mqtt.UNSUBSCRIBE:
		return c.handleUnsubscribePacket(pkt)
	case mqtt.PINGREQ:
		return c.handlePingreq(pkt)
	case mqtt.DISCONNECT:
		return c.handleDisconnectPacket(pkt)
	case mqtt.AUTH:
		return c.handleAuth(pkt)
	case mqtt.CONNECT:
		return closeWith(mqtt.ProtocolError, "second CONNECT [MQTT-3.1.0-2]")
	default:
		if t == 0 {
			return &mqtt.ReasonError{Code: mqtt.MalformedPacket, Msg: "reserved packet type 0"}
		}
		return closeWith(mqtt.ProtocolError, "%v is not sent by clients", t)
	}
}

//go:noinline
func (c *client) handlePuback(pkt []byte) error {
	var p mqtt.Puback
	if err := p.Decode(pkt, c.version); err != nil {
		return err
	}
	c.sess.onPuback(c, p.PacketID)
	return nil
}

//go:noinline
func (c *client) handlePubrec(pkt []byte) error {
	var p mqtt.Pubrec
	if err := p.Decode(pkt, c.version); err != nil {
		return err
	}
	c.sess.onPubrec(c, p.PacketID, p.ReasonCode)
	return nil
}

//go:noinline
func (c *client) handlePubrelPacket(pkt []byte) error {
	var p mqtt.Pubrel
	if err := p.Decode(pkt, c.version); err != nil {
		return err
	}
	c.handlePubrel(p.PacketID)
	return nil
}

//go:noinline
func (c *client) handlePubcomp(pkt []byte) error {
	var p mqtt.Pubcomp
	if err := p.Decode(pkt, c.version); err != nil {
		return err
	}
	c.sess.onPubcomp(c, p.PacketID)
	return nil
}

//go:noinline
func (c *client) handleSubscribePacket(pkt []byte) error {
	var p mqtt.Subscribe
	if err := p.Decode(pkt, c.version); err != nil {
		return err
	}
	return c.handleSubscribe(&p)
}

//go:noinline
func (c *client) handleUnsubscribePacket(pkt []byte) error {
	var p mqtt.Unsubscribe
	if err := p.Decode(pkt, c.version); err != nil {
		return err
	}
	c.handleUnsubscribe(&p)
	return nil
}

//go:noinline
func (c *client) handlePingreq(pkt []byte) error {
	var p mqtt.Pingreq
	if err := p.Decode(pkt, c.version); err != nil {
		return err
	}
	c.send(&mqtt.Pingresp{})
	return nil
}

//go:noinline
func (c *client) handleDisconnectPacket(pkt []byte) error {
	var p mqtt.Disconnect
	if err := p.Decode(pkt, c.version); err != nil {
		return err
	}
	return c.handleDisconnect(&p)
}

//go:noinline
func (c *client) handleAuth(pkt []byte) error {
	var p mqtt.Auth
	if err := p.Decode(pkt, c.version); err != nil {
		return err
	}
	// No authentication method was accepted at CONNECT, so any AUTH
	// is a protocol error [MQTT-4.12.0-2]... re-authentication needs
	// the method of the CONNECT, which Weir does not support.
	return closeWith(mqtt.ProtocolError, "AUTH without an authentication method")
}

func (c *client) handleDisconnect(p *mqtt.Disconnect) error {
	if c.version == mqtt.V5 {
		if p.Props.Present.Has(mqtt.PropSessionExpiry) {
			if err := c.sess.updateExpiryOnDisconnect(c, p.Props.SessionExpiry); err != nil {
				return err
			}
		}
		if p.ReasonCode != mqtt.NormalDisconnection {
			// Only Normal disconnection deletes the will [MQTT-3.1.2-10];
			// after 0x04 or an error code it is published once the
			// connection is closed [MQTT-3.1.2-8] (§3.1.2.5).
			c.willOnClose.Store(true)
		}
	}
	c.disconnect.Store(true)
	return errNormalDisconnect
}

// send encodes p into the outbound buffer and makes sure a writer runs.
// Control packets are never dropped for the buffer limit; a connection
// that cannot take them is cut off as a slow consumer instead.
func (c *client) send(p mqtt.Packet) {
	c.wmu.Lock()
	if c.closed || c.closing {
		c.wmu.Unlock()
		return
	}
	var err error
	n := len(c.wbuf)
	c.wbuf, err = p.AppendTo(c.wbuf, c.version)
	if err != nil {
		c.wbuf = c.wbuf[:n]
		c.wmu.Unlock()
		c.log.Error("cannot encode packet", "client", c.id, "type", p.Type(), "err", err)
		return
	}
	c.startWriterLocked()
	c.wmu.Unlock()
}

// overLimitLocked reports whether the outbound buffer is over its limit,
// and closes the connection if it has been for longer than allowed.
func (c *client) overLimitLocked() bool {
	if len(c.wbuf) < c.srv.opts.OutboundBufferBytes {
		c.overSince = 0
		return false
	}
	now := c.srv.mono()
	if c.overSince == 0 {
		c.overSince = now
	} else if now.sub(c.overSince) > c.srv.opts.SlowConsumerTimeout {
		c.srv.stats.slowConsumers.Add(1)
		c.log.Warn("disconnecting slow consumer", "client", c.id, "buffered", len(c.wbuf))
		c.closed = true
		c.closeNet()
	}
	return true
}

// startWriterLocked starts a writer for what is buffered, unless one runs
// or a reader holds the connection (it writes when it releases it).
func (c *client) startWriterLocked() {
	if !c.writing && len(c.wbuf) > 0 && (c.holds == 0 || len(c.wbuf) >= maxHeldBytes) {
		c.writing = true
		go c.writeLoop(nil)
	}
}

// writeLoop writes first, then everything buffered with one Write per
// round, swapping between two buffers so that encoders never wait for the
// socket.
func (c *client) writeLoop(first []byte) {
	deadline := false // a write deadline is set
	for {
		c.wmu.Lock()
		if c.closing && len(c.wbuf) == 0 && len(first) == 0 && !c.closed {
			c.closed = true
			c.writing = false
			c.wmu.Unlock()
			c.closeNet()
			return
		}
		if c.closed || len(c.wbuf) == 0 && len(first) == 0 {
			c.writing = false
			// An idle connection keeps no write buffers.
			if cap(c.wbuf) > 4096 {
				c.wbuf = nil
			}
			c.spare = nil
			if deadline && !c.closed && !c.closing {
				// Non-blocking writes (flush.go) check the deadline too:
				// it must not outlive this writer. (Under wmu, so that it
				// cannot clear the deadline of the next writer.)
				c.conn.SetWriteDeadline(time.Time{})
			}
			c.wmu.Unlock()
			return
		}
		buf := first
		if buf == nil {
			buf = c.wbuf
			c.wbuf = c.spare[:0]
			c.spare = nil
		}
		first = nil
		closing := c.closing
		c.wmu.Unlock()

		if !closing {
			c.conn.SetWriteDeadline(time.Now().Add(c.srv.opts.SlowConsumerTimeout))
			deadline = true
		}
		_, err := c.conn.Write(buf)

		c.wmu.Lock()
		if cap(buf) <= 64<<10 && c.spare == nil {
			c.spare = buf[:0]
		}
		if err != nil {
			c.closed = true
			c.writing = false
			c.wmu.Unlock()
			if !closing && errors.Is(err, os.ErrDeadlineExceeded) {
				// The client read nothing for SlowConsumerTimeout.
				c.srv.stats.slowConsumers.Add(1)
				c.log.Warn("disconnecting slow consumer: write timed out", "client", c.id)
			}
			c.closeNet()
			return
		}
		if len(c.wbuf) < c.srv.opts.OutboundBufferBytes {
			c.overSince = 0
		}
		c.wmu.Unlock()
	}
}

// sendDisconnect sends an MQTT 5.0 DISCONNECT with an error code, then
// closes the connection once the buffer is written; 3.1.1 has no server
// DISCONNECT, so the connection is just closed.
func (c *client) sendDisconnect(code mqtt.ReasonCode, reason string) {
	if c.version == mqtt.V5 && c.sess != nil {
		d := &mqtt.Disconnect{ReasonCode: code}
		if c.problemInfo && reason != "" {
			d.Props.ReasonString = reason
			// No Reason String that would take the packet over the
			// client's Maximum Packet Size [MQTT-3.14.2-3].
			if c.maxOutSize > 0 {
				if b, err := d.AppendTo(nil, c.version); err != nil || len(b) > c.maxOutSize {
					d.Props.ReasonString = ""
				}
			}
		}
		c.send(d)
	}
	c.closeAfterFlush()
}

// closeAfterFlush stops further output and closes the connection as soon
// as what is buffered has been written (bounded by a one-second deadline).
func (c *client) closeAfterFlush() {
	c.wmu.Lock()
	c.closing = true
	if c.writing {
		c.conn.SetWriteDeadline(time.Now().Add(time.Second))
		c.wmu.Unlock()
		return // the writer closes the connection when it is done
	}
	if len(c.wbuf) > 0 {
		c.conn.SetWriteDeadline(time.Now().Add(time.Second))
		c.conn.Write(c.wbuf)
		c.wbuf = nil
	}
	c.closed = true
	c.wmu.Unlock()
	c.closeNet()
}

// closeConn closes the connection at once, dropping unwritten output.
func (c *client) closeConn() {
	c.wmu.Lock()
	c.closed = true
	c.wmu.Unlock()
	c.closeNet()
}

// kick ends the connection from another goroutine (session takeover,
// shutdown) with a DISCONNECT for MQTT 5.0 clients.
func (c *client) kick(code mqtt.ReasonCode) {
	c.sendDisconnect(code, "")
}

func (c *client) shutdown() {
	c.shuttingDown.Store(true)
	c.kick(mqtt.ServerShuttingDown)
}

func (s *Server) addClient(c *client) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.clients[c] = struct{}{}
	s.stats.connectionsTotal.Add(1)
	return true
}

func (s *Server) removeClient(c *client) {
	s.mu.Lock()
	delete(s.clients, c)
	s.mu.Unlock()
}

func (s *Server) clientCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}
