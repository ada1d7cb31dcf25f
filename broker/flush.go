package broker

import (
	"net"
	"syscall"

	"github.com/weirmq/weir/store"
)

// Output of a reader goroutine is written when its input runs dry, not
// packet by packet, and without a writer goroutine when the socket takes
// it at once.
//
// While a reader handles packets it holds the connections it writes to:
// its own (acknowledgements, messages released by a PUBACK) and those of
// the sessions it delivers to. A held connection starts no writer; the
// encoded packets wait in its buffer. Before the reader would wait for
// input (or after maxHeldPackets packets) it releases what it holds, and
// each release writes the connection's buffer with one
// non-blocking write. Only what the socket does not take at once goes to
// a writer goroutine, which may block (up to the slow-consumer timeout);
// so does a held buffer that has grown past maxHeldBytes.
// Writes from anywhere else (store callbacks, timers, takeovers) start a
// writer as before.

// maxHeldPackets bounds how many packets a reader handles before it writes
// what they produced, when its input does not run dry.
const maxHeldPackets = 64

// maxHeldBytes is the size at which a held buffer gets a writer anyway.
const maxHeldBytes = 64 << 10

// hold defers the writer of t until c releases it. Called from c's reader
// goroutine only; t may be c.
func (c *client) hold(t *client) {
	t.wmu.Lock()
	if t.heldBy == c {
		t.wmu.Unlock()
		return
	}
	t.holds++
	t.heldBy = c
	t.wmu.Unlock()
	c.held = append(c.held, t)
}

// releaseHolds writes what c's reader held back. Called from c's reader
// goroutine only.
func (c *client) releaseHolds() {
	for i, t := range c.held {
		c.held[i] = nil
		t.wmu.Lock()
		t.holds--
		if t.heldBy == c {
			t.heldBy = nil
		}
		// Written even if other readers hold t too: with many
		// publishers to one subscriber, some reader nearly always does.
		t.flushLocked()
	}
	c.held = c.held[:0]
	c.heldPackets = 0
}

// flushLocked writes the buffer of c with a non-blocking write when no
// writer runs, and leaves what the socket does not take (or a connection
// that cannot be written without blocking) to a writer goroutine. Called
// with c.wmu held; returns with it released.
func (c *client) flushLocked() {
	for range 2 {
		if c.raw == nil || c.writing || c.closed || c.closing || len(c.wbuf) == 0 {
			break
		}
		buf := c.wbuf
		c.wbuf = c.spare[:0]
		c.spare = nil
		c.writing = true
		c.wmu.Unlock()

		n, err := c.tryWrite(buf)

		c.wmu.Lock()
		if err != nil {
			c.closed = true
			c.writing = false
			c.wmu.Unlock()
			c.log.Debug("connection write error", "client", c.id, "err", err)
			c.closeNet()
			return
		}
		if n < len(buf) {
			// The socket is full: the rest goes to a writer, which
			// waits for room.
			go c.writeLoop(buf[n:])
			c.wmu.Unlock()
			return
		}
		if cap(buf) <= 16<<10 {
			// Kept for the next swap; this connection may go idle now,
			// so only a moderate buffer.
			c.spare = buf[:0]
		}
		c.writing = false
		if len(c.wbuf) < c.srv.opts.OutboundBufferBytes {
			c.overSince = 0
		}
	}
	if c.closing && !c.writing && !c.closed && len(c.wbuf) == 0 {
		// closeAfterFlush ran during the write above.
		c.closed = true
		c.wmu.Unlock()
		c.closeNet()
		return
	}
	c.startWriterLocked()
	c.wmu.Unlock()
}

// deliverHeld is deliverAll for a reader goroutine: it holds the
// connection of every session it delivers to.
func (c *client) deliverHeld(ds []delivery, m *store.Message) {
	for i := range ds {
		d := &ds[i]
		if d.s == nil {
			continue
		}
		d.s.mu.Lock()
		if t := d.s.c; t != nil {
			c.hold(t)
		}
		d.s.deliverLocked(d, m)
		d.s.mu.Unlock()
	}
}

// rawConnOf returns the raw connection of a socket that tryWrite can write
// without blocking, nil for others (TLS, WebSocket, pipes).
func rawConnOf(conn net.Conn) syscall.RawConn {
	var sc syscall.Conn
	switch conn := conn.(type) {
	case *net.TCPConn:
		sc = conn
	case *net.UnixConn:
		sc = conn
	default:
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil || !canUseRaw {
		return nil
	}
	return raw
}
