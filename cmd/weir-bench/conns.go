package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weirmq/weir/mqtt"
)

// runConns opens c.conns idle connections, holds them, samples the broker,
// then pings each one.
func runConns(ctx context.Context, c *config, res *Result, m *meter) {
	res.Conns = c.conns
	m.start()
	clients := make([]*client, c.conns)
	var accepted atomic.Int64
	var errMu sync.Mutex
	var firstErr error
	var failures int
	forEach(ctx, c.conns, func(i int) {
		cl, _, err := dial(ctx, dialOpts{addr: c.addr, id: c.id("c", i), clean: true, v: c.v, keepAlive: 600,
			bufSize: 64, timeout: dialTimeout})
		if err != nil {
			errMu.Lock()
			failures++
			if firstErr == nil {
				firstErr = err
			}
			errMu.Unlock()
			return
		}
		clients[i] = cl
		accepted.Add(1)
	})
	res.Accepted = int(accepted.Load())
	if failures > 0 {
		scenarioErr(ctx, res, fmt.Errorf("%d of %d connections failed; first: %w", failures, c.conns, firstErr))
	}
	sleepCtx(ctx, c.hold)
	m.end(res.Accepted)

	var alive atomic.Int64
	forEach(ctx, c.conns, func(i int) {
		cl := clients[i]
		if cl == nil {
			return
		}
		cl.conn.SetDeadline(time.Now().Add(5 * time.Second))
		err := cl.send(&mqtt.Pingreq{})
		if err == nil {
			err = cl.flush()
		}
		if err == nil {
			err = cl.expect(&mqtt.Pingresp{})
		}
		if err == nil {
			alive.Add(1)
		}
	})
	res.Alive = int(alive.Load())
	forEach(context.Background(), c.conns, func(i int) {
		if clients[i] != nil {
			clients[i].disconnect()
		}
	})
}

// forEach calls f(0..n-1), dialParallelism at a time, until ctx is done.
func forEach(ctx context.Context, n int, f func(i int)) {
	var wg sync.WaitGroup
	var next atomic.Int64
	for range min(n, dialParallelism) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		})
	}
	wg.Wait()
}
