package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weirmq/weir/mqtt"
)

const (
	dialTimeout     = 10 * time.Second
	dialParallelism = 64
)

// clock is the run's time base: nanoseconds since the run started, from
// the monotonic clock. Payload timestamps and receive times use it.
type clock struct{ base time.Time }

func (c clock) now() int64 { return int64(time.Since(c.base)) }

// subscriber receives and checks messages on one connection. Only its own
// goroutine touches t until that goroutine has returned.
type subscriber struct {
	c        *client
	t        *tracker
	expected int64
	unique   atomic.Int64
	last     atomic.Int64 // clock time of the latest new delivery
	dead     atomic.Bool  // receive has returned
	stopping atomic.Bool  // stop was called: receive disconnects and returns
	err      error
}

// stop makes receive send DISCONNECT and return once it has handled what
// it already read; the connection is then closed. Safe to call from any
// goroutine: only receive writes to the connection.
func (s *subscriber) stop() {
	s.stopping.Store(true)
	s.c.conn.SetReadDeadline(time.Now())
	s.c.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
}

// receive reads until the connection fails or is closed, acknowledging
// QoS 1 and 2 deliveries; acknowledgements are flushed before each read
// from the socket, so they go out in batches.
func (s *subscriber) receive(clk clock, progress *atomic.Int64) {
	var (
		pub mqtt.Publish
		rel mqtt.Pubrel
		v   = s.c.v
	)
	defer s.dead.Store(true)
	s.c.flushOnRead = true
	for {
		pkt, err := s.c.rd.ReadPacket()
		if err != nil {
			if s.stopping.Load() {
				s.c.disconnect()
				return
			}
			s.err = err
			return
		}
		switch mqtt.PeekType(pkt) {
		case mqtt.PUBLISH:
			if err := pub.Decode(pkt, v); err != nil {
				s.err = err
				return
			}
			now := clk.now()
			if s.t.record(pub.Payload, now) {
				s.unique.Add(1)
				s.last.Store(now)
				progress.Add(1)
			}
			switch pub.QoS {
			case 1:
				err = s.c.send(&mqtt.Puback{PacketID: pub.PacketID})
			case 2:
				err = s.c.send(&mqtt.Pubrec{PacketID: pub.PacketID})
			}
		case mqtt.PUBREL:
			if err = rel.Decode(pkt, v); err == nil {
				err = s.c.send(&mqtt.Pubcomp{PacketID: rel.PacketID})
			}
		case mqtt.PINGRESP:
		default:
			err = fmt.Errorf("subscriber got an unexpected %v", mqtt.PeekType(pkt))
		}
		if err != nil {
			s.err = err
			return
		}
	}
}

// publisher sends msgs messages on one connection and, for QoS 1 and 2,
// completes their acknowledgements with at most inflight outstanding.
type publisher struct {
	id       uint32
	c        *client
	topic    []byte
	msgs     int
	qos      byte
	size     int
	inflight int
	batch    int
	rate     float64 // this publisher's msg/s; 0 unpaced

	sent, acked, refused int64
	finished             int64 // clock time when the last publish was written (QoS 0) or completed
	err                  error
}

type ack struct {
	t  mqtt.PacketType
	id uint16
	rc mqtt.ReasonCode
}

func (p *publisher) run(ctx context.Context, clk clock) {
	start := clk.now()
	if p.qos == 0 {
		p.err = p.runQoS0(ctx, clk, start)
	} else {
		p.err = p.runAcked(ctx, clk, start)
	}
	p.finished = clk.now()
}

// due is how many messages a paced publisher should have sent by now.
func (p *publisher) due(now, start int64) int64 {
	if p.rate <= 0 {
		return int64(p.msgs)
	}
	return min(int64(p.msgs), 1+int64(float64(now-start)*p.rate/1e9))
}

// nextDue is the clock time at which due reaches p.sent+1.
func (p *publisher) nextDue(start int64) int64 {
	return start + int64(float64(p.sent)*1e9/p.rate)
}

func (p *publisher) write(pub *mqtt.Publish, payload *[]byte, clk clock, id uint16) error {
	*payload = encodePayload((*payload)[:0], p.size, p.id, uint64(p.sent), clk.now())
	pub.Payload, pub.PacketID = *payload, id
	p.sent++
	return p.c.send(pub)
}

func (p *publisher) runQoS0(ctx context.Context, clk clock, start int64) error {
	pub := &mqtt.Publish{Topic: p.topic}
	payload := make([]byte, 0, p.size)
	for p.sent < int64(p.msgs) {
		n := min(int64(p.batch), p.due(clk.now(), start)-p.sent)
		if n <= 0 {
			if err := sleepCtx(ctx, time.Duration(p.nextDue(start)-clk.now())); err != nil {
				return err
			}
			continue
		}
		for range n {
			if err := p.write(pub, &payload, clk, 0); err != nil {
				return err
			}
		}
		if err := p.c.flush(); err != nil {
			return err
		}
	}
	return nil
}

func (p *publisher) runAcked(ctx context.Context, clk clock, start int64) error {
	acks := make(chan ack, p.inflight+16)
	readErr := make(chan error, 1)
	done := make(chan struct{})
	defer close(done)
	go p.readAcks(acks, readErr, done)

	var inUse [1 << 16]bool
	next := uint16(0)
	nextID := func() uint16 {
		for {
			next++
			if next != 0 && !inUse[next] {
				inUse[next] = true
				return next
			}
		}
	}
	pub := &mqtt.Publish{Topic: p.topic, QoS: p.qos}
	payload := make([]byte, 0, p.size)
	outstanding := 0
	var rels []uint16
	handle := func(a ack) {
		switch {
		case a.t == mqtt.PUBREC && a.rc < 0x80:
			rels = append(rels, a.id)
			return
		case a.rc >= 0x80:
			p.refused++
		default:
			p.acked++
		}
		if inUse[a.id] {
			inUse[a.id] = false
			outstanding--
		}
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
	drain:
		for {
			select {
			case a := <-acks:
				handle(a)
			default:
				break drain
			}
		}
		if p.sent == int64(p.msgs) && outstanding == 0 {
			return nil
		}
		n := min(int64(p.batch), int64(p.inflight-outstanding), p.due(clk.now(), start)-p.sent)
		for range max(n, 0) {
			if err := p.write(pub, &payload, clk, nextID()); err != nil {
				return err
			}
			outstanding++
		}
		for _, id := range rels {
			if err := p.c.send(&mqtt.Pubrel{PacketID: id}); err != nil {
				return err
			}
		}
		wrote := n > 0 || len(rels) > 0
		rels = rels[:0]
		if p.c.bw.Buffered() > 0 {
			if err := p.c.flush(); err != nil {
				return err
			}
		}
		if wrote {
			continue
		}
		// Nothing to write: wait for an acknowledgement or, when paced
		// and the window has room, for the next message's time.
		var wake <-chan time.Time
		if p.rate > 0 && outstanding < p.inflight && p.sent < int64(p.msgs) {
			timer.Reset(max(0, time.Duration(p.nextDue(start)-clk.now())))
			wake = timer.C
		}
		select {
		case a := <-acks:
			handle(a)
		case <-wake:
		case err := <-readErr:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// readAcks decodes the acknowledgements a publisher gets until the
// connection fails or done is closed.
func (p *publisher) readAcks(acks chan<- ack, errc chan<- error, done <-chan struct{}) {
	var (
		pa mqtt.Puback
		pr mqtt.Pubrec
		pc mqtt.Pubcomp
	)
	for {
		pkt, err := p.c.rd.ReadPacket()
		if err != nil {
			errc <- err
			return
		}
		var a ack
		switch t := mqtt.PeekType(pkt); t {
		case mqtt.PUBACK:
			err = pa.Decode(pkt, p.c.v)
			a = ack{t, pa.PacketID, pa.ReasonCode}
		case mqtt.PUBREC:
			err = pr.Decode(pkt, p.c.v)
			a = ack{t, pr.PacketID, pr.ReasonCode}
		case mqtt.PUBCOMP:
			err = pc.Decode(pkt, p.c.v)
			a = ack{t, pc.PacketID, pc.ReasonCode}
		default:
			err = fmt.Errorf("publisher got an unexpected %v", t)
		}
		if err != nil {
			errc <- err
			return
		}
		select {
		case acks <- a:
		case <-done:
			return
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// dialAll opens n connections, dialParallelism at a time, and stops at the
// first error.
func dialAll(ctx context.Context, n int, mk func(i int) dialOpts, then func(i int, c *client) error) ([]*client, error) {
	clients := make([]*client, n)
	// The connections live on with the caller's ctx; loop only stops
	// dialing at the first failure.
	loop, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	sem := make(chan struct{}, dialParallelism)
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-loop.Done():
		}
		if loop.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			c, _, err := dial(ctx, mk(i))
			if err == nil && then != nil {
				if err = then(i, c); err != nil {
					c.close()
				}
			}
			if err != nil {
				cancel(err)
				return
			}
			clients[i] = c
		})
	}
	wg.Wait()
	if err := context.Cause(loop); err != nil {
		for _, c := range clients {
			if c != nil {
				c.close()
			}
		}
		return nil, err
	}
	return clients, nil
}

// runPubSub is fanin, fanout and latency: c.pubs publishers on
// topic(i), c.subs subscribers on filter.
func runPubSub(ctx context.Context, c *config, res *Result, m *meter, topic func(i int) string, filter string) {
	bufSize := 64 << 10
	if c.subs > 100 || c.pubs > 100 {
		bufSize = 8 << 10
	}
	subs := make([]*subscriber, c.subs)
	perSub := int64(c.pubs) * int64(c.msgs)
	subClients, err := dialAll(ctx, c.subs, func(i int) dialOpts {
		return dialOpts{addr: c.addr, id: c.id("s", i), clean: true, v: c.v, keepAlive: 300, bufSize: bufSize, timeout: dialTimeout}
	}, func(i int, cl *client) error { return cl.subscribe(filter, c.qos, dialTimeout) })
	if err != nil {
		scenarioErr(ctx, res, fmt.Errorf("subscribers: %w", err))
		return
	}
	for i, cl := range subClients {
		subs[i] = &subscriber{c: cl, t: newTracker(c.pubs, c.msgs, true), expected: perSub}
	}
	pubClients, err := dialAll(ctx, c.pubs, func(i int) dialOpts {
		return dialOpts{addr: c.addr, id: c.id("p", i), clean: true, v: c.v, keepAlive: 300, bufSize: bufSize, timeout: dialTimeout}
	}, nil)
	if err != nil {
		for _, s := range subs {
			s.c.close()
		}
		scenarioErr(ctx, res, fmt.Errorf("publishers: %w", err))
		return
	}
	pubs := make([]*publisher, c.pubs)
	for i, cl := range pubClients {
		pubs[i] = &publisher{id: uint32(i), c: cl, topic: []byte(topic(i)), msgs: c.msgs, qos: c.qos, size: c.size,
			inflight: c.inflight, batch: c.batch, rate: c.rate / float64(c.pubs)}
	}

	var progress atomic.Int64
	var subWG, pubWG sync.WaitGroup
	m.start()
	clk := clock{time.Now()}
	for _, s := range subs {
		subWG.Go(func() { s.receive(clk, &progress) })
	}
	var pubsDone atomic.Int64
	for _, p := range pubs {
		pubWG.Go(func() {
			p.run(ctx, clk)
			pubsDone.Add(1)
			p.c.disconnect()
		})
	}
	// Wait for every delivery, or for the deliveries to stop once the
	// publishers are done, or for the hard timeout.
	allDelivered := func() bool {
		for _, s := range subs {
			if s.unique.Load() < s.expected {
				return false
			}
		}
		return true
	}
	tick := time.NewTicker(10 * time.Millisecond)
	lastProgress, lastChange := int64(-1), time.Now()
	for !allDelivered() {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		if ctx.Err() != nil {
			break
		}
		if n := progress.Load(); n != lastProgress {
			lastProgress, lastChange = n, time.Now()
		} else if pubsDone.Load() == int64(len(pubs)) && time.Since(lastChange) > c.idle {
			break
		}
		if failed(subs) {
			break
		}
	}
	tick.Stop()
	m.end(0)
	// Publishers disconnect themselves when done; give the last
	// acknowledgements a moment, then cut off any that are still waiting.
	pubsFinished := make(chan struct{})
	go func() {
		pubWG.Wait()
		close(pubsFinished)
	}()
	grace := time.NewTimer(2 * time.Second)
	select {
	case <-pubsFinished:
	case <-grace.C:
	case <-ctx.Done():
	}
	grace.Stop()
	for _, p := range pubs {
		p.c.close()
	}
	<-pubsFinished
	for _, s := range subs {
		s.stop()
	}
	subWG.Wait()
	for _, s := range subs {
		s.c.close()
	}

	var lat []int64
	var lastDelivery int64
	for _, s := range subs {
		t := s.t
		res.Delivered += t.unique
		res.Dups += t.dups
		res.Reordered += t.reordered
		res.Foreign += t.foreign
		lat = append(lat, t.lat...)
		lastDelivery = max(lastDelivery, s.last.Load())
		if s.err != nil && s.unique.Load() < s.expected {
			scenarioErr(ctx, res, fmt.Errorf("subscriber: %w", s.err))
		}
	}
	var lastPub int64
	for _, p := range pubs {
		res.Sent += p.sent
		res.Acked += p.acked
		res.Refused += p.refused
		lastPub = max(lastPub, p.finished)
		scenarioErr(ctx, res, p.err)
	}
	res.Expected = perSub * int64(c.subs)
	res.Lost = res.Expected - res.Delivered
	res.PubSeconds = round(float64(lastPub)/1e9, 4)
	res.Seconds = round(float64(lastDelivery)/1e9, 4)
	if lastPub > 0 {
		res.PubRate = round(float64(res.Sent)/(float64(lastPub)/1e9), 0)
	}
	if lastDelivery > 0 {
		res.DeliveredRate = round(float64(res.Delivered)/(float64(lastDelivery)/1e9), 0)
	}
	res.Latency = summarize(lat)
}

// failed reports whether every subscriber connection has failed.
func failed(subs []*subscriber) bool {
	for _, s := range subs {
		if !s.dead.Load() {
			return false
		}
	}
	return len(subs) > 0
}

var errNoSession = errors.New("the broker kept no session (CONNACK session present = 0)")
