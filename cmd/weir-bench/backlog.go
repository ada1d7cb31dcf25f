package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// backlogFilter is what the backlog's persistent session subscribes to;
// its messages are published on backlogTopic.
const (
	backlogFilter = "bench/backlog/#"
	backlogTopic  = "bench/backlog/0"
)

// runBacklog fills an offline persistent session with c.msgs QoS 1
// messages and/or drains it (c.phase).
func runBacklog(ctx context.Context, c *config, res *Result, m *meter) {
	res.Phase = c.phase
	session := dialOpts{addr: c.addr, id: c.clientID, clean: false, v: c.v, keepAlive: 300, bufSize: 64 << 10,
		timeout: dialTimeout, expiry: 0xFFFFFFFF}
	if c.phase == "fill" || c.phase == "both" {
		if !backlogFill(ctx, c, res, m, session) {
			return
		}
	}
	if c.phase == "drain" || c.phase == "both" {
		backlogDrain(ctx, c, res, m, session)
	}
}

func backlogFill(ctx context.Context, c *config, res *Result, m *meter, session dialOpts) bool {
	// Start from an empty session: a clean connect ends any old one.
	clean := session
	clean.clean, clean.expiry = true, 0
	cl, _, err := dial(ctx, clean)
	if err != nil {
		scenarioErr(ctx, res, err)
		return false
	}
	cl.disconnect()
	cl, _, err = dial(ctx, session)
	if err != nil {
		scenarioErr(ctx, res, err)
		return false
	}
	if err := cl.subscribe(backlogFilter, 1, dialTimeout); err != nil {
		cl.close()
		scenarioErr(ctx, res, err)
		return false
	}
	cl.disconnect()

	pc, _, err := dial(ctx, dialOpts{addr: c.addr, id: c.id("p", 0), clean: true, v: c.v, keepAlive: 300,
		bufSize: 64 << 10, timeout: dialTimeout})
	if err != nil {
		scenarioErr(ctx, res, err)
		return false
	}
	p := &publisher{c: pc, topic: []byte(backlogTopic), msgs: c.msgs, qos: 1, size: c.size,
		inflight: c.inflight, batch: c.batch, rate: c.rate}
	if c.phase == "fill" {
		m.start()
	}
	clk := clock{time.Now()}
	p.run(ctx, clk)
	if c.phase == "fill" {
		m.end(0)
	}
	pc.disconnect()
	res.Sent, res.Acked, res.Refused = p.sent, p.acked, p.refused
	res.PubSeconds = round(float64(p.finished)/1e9, 4)
	if p.finished > 0 {
		res.PubRate = round(float64(p.acked)/(float64(p.finished)/1e9), 0)
	}
	if p.err != nil {
		scenarioErr(ctx, res, fmt.Errorf("publisher: %w", p.err))
		return false
	}
	return true
}

func backlogDrain(ctx context.Context, c *config, res *Result, m *meter, session dialOpts) {
	m.start()
	clk := clock{time.Now()}
	cl, present, err := dial(ctx, session)
	if err != nil {
		scenarioErr(ctx, res, err)
		return
	}
	if !present {
		res.addErr(errNoSession)
	}
	s := &subscriber{c: cl, t: newTracker(1, c.msgs, false), expected: int64(c.msgs)}
	var progress atomic.Int64
	done := make(chan struct{})
	go func() {
		s.receive(clk, &progress)
		close(done)
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	lastProgress, lastChange := int64(-1), time.Now()
	for s.unique.Load() < s.expected && !s.dead.Load() && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		if n := progress.Load(); n != lastProgress {
			lastProgress, lastChange = n, time.Now()
		} else if time.Since(lastChange) > c.idle {
			break
		}
	}
	tick.Stop()
	m.end(0)
	s.stop()
	<-done
	cl.close()
	if s.err != nil && s.unique.Load() < s.expected {
		scenarioErr(ctx, res, fmt.Errorf("drain: %w", s.err))
	}
	t := s.t
	res.Expected, res.Delivered, res.Dups, res.Reordered, res.Foreign = s.expected, t.unique, t.dups, t.reordered, t.foreign
	res.Lost = res.Expected - res.Delivered
	last := s.last.Load()
	res.Seconds = round(float64(last)/1e9, 4)
	if last > 0 {
		res.DeliveredRate = round(float64(t.unique)/(float64(last)/1e9), 0)
	}
	// End the session so the broker is left as it was found.
	clean := session
	clean.clean, clean.expiry = true, 0
	if cl, _, err := dial(ctx, clean); err == nil {
		cl.disconnect()
	}
}
