package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/mqtt"
)

// Local is the broker a bridge serves, through an internal session
// (broker.Server implements it; see broker/internal.go). Everything the
// bridge does locally is MQTT on a DialInternal connection.
type Local interface {
	RegisterInternal(broker.InternalOptions) error
	DialInternal(id string) (net.Conn, error)
	DialInternalIdle(id string) (net.Conn, error)
	InternalStatus(id string) broker.InternalStatus
	RemoveUnregisteredInternal(prefix string) map[string]broker.InternalStatus
	RemoveRetained(filter string) int
	Options() broker.Options
}

// Bridge forwards messages between a local broker (Local) and one upstream
// broker. Create it with New before the server serves its listeners, then
// Run it.
type Bridge struct {
	cfg     Config
	srv     Local
	log     *slog.Logger
	localID string
	stats   stats

	// QoS 2 out messages past PUBREC that were published again to an
	// upstream session that had lost them (relay.released), until the
	// new session's PUBREC: a connection that ends meanwhile must not
	// send them as PUBREL to that session, which may never have got them.
	// Kept across connections of this process.
}

// LocalID returns the client id of the internal session of bridge name.
func LocalID(name string) string { return broker.InternalPrefix + "bridge/" + name }

// New validates cfg and registers the bridge's internal session (its
// outbox) with srv, so that messages for its out rules are queued from now
// on, also while it is not connected.
func New(srv Local, cfg Config, log *slog.Logger) (*Bridge, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		es := make([]error, len(errs))
		for i, e := range errs {
			es[i] = e
		}
		return nil, fmt.Errorf("bridge %q: %w", cfg.Name, errors.Join(es...))
	}
	if log == nil {
		log = slog.Default()
	}
	b := &Bridge{cfg: cfg.withDefaults(), srv: srv, log: log.With("bridge", cfg.Name), localID: LocalID(cfg.Name)}
	b.stats.init(b.cfg)
	err := srv.RegisterInternal(broker.InternalOptions{
		ID:                b.localID,
		MaxBytes:          b.cfg.MaxOutboxBytes,
		Policy:            b.policyOf,
		OnDrop:            b.onDrop,
		OnStoreFull:       b.onStoreFull,
		MessageIDProperty: b.msgIDProperty(),
		ResendReleased:    true,
		LiveFirst:         b.cfg.Backfill == LiveFirst,
		BacklogRate:       b.cfg.BackfillRate,
	})
	if err != nil {
		return nil, err
	}
	if err := srv.RegisterInternal(broker.InternalOptions{ID: statusID(cfg.Name)}); err != nil {
		return nil, err
	}
	if err := b.prime(); err != nil {
		return nil, fmt.Errorf("bridge %q: creating its outbox: %w", cfg.Name, err)
	}
	return b, nil
}

// msgIDProperty is the user property the local broker adds to each
// message for the bridge: the configured name, for MQTT 5.0 upstreams.
func (b *Bridge) msgIDProperty() string {
	if b.cfg.Version != mqtt.V5 {
		return ""
	}
	return b.cfg.MessageIDProperty
}

// outRule returns the index of the first out rule matching topic, or -1.
func (b *Bridge) outRule(topic string) int {
	for i := range b.cfg.Out {
		if mqtt.MatchTopic(b.cfg.Out[i].Filter, topic) {
			return i
		}
	}
	return -1
}

func (b *Bridge) inRule(topic string) int {
	for i := range b.cfg.In {
		if mqtt.MatchTopic(b.cfg.In[i].Filter, topic) {
			return i
		}
	}
	return -1
}

func (b *Bridge) policyOf(topic string) broker.OverflowPolicy {
	r := b.outRule(topic)
	if r < 0 {
		return broker.DropNew
	}
	switch b.cfg.Out[r].Policy {
	case DropOldest:
		return broker.DropOldest
	case KeepLastPerTopic:
		return broker.KeepLastPerTopic
	}
	return broker.DropNew
}

func (b *Bridge) onDrop(topic string, p broker.OverflowPolicy) {
	b.stats.drop(b.outRule(topic), "outbox_full")
}

// onStoreFull counts a QoS 0 message the outbox could not take because
// the store budget is spent (QoS 1/2 ones are refused to the publisher).
func (b *Bridge) onStoreFull(topic string) {
	b.stats.drop(b.outRule(topic), "store_full")
}

// Run connects to the upstream broker and relays until ctx ends,
// reconnecting with exponential backoff and jitter after every failure.
// Meanwhile it logs the status and publishes it under SysPrefix when it
// changes, at most every Config.StatusInterval.
func (b *Bridge) Run(ctx context.Context) {
	done := make(chan struct{})
	go func() { defer close(done); b.statusLoop(ctx, b.cfg.StatusInterval) }()
	defer func() { <-done }()
	backoff := b.cfg.MinBackoff
	for ctx.Err() == nil {
		start := time.Now()
		err := b.connection(ctx)
		b.setConnected(false, err)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > b.cfg.MaxBackoff {
			backoff = b.cfg.MinBackoff // it was up a while: start over
		}
		// Full jitter over the upper half: spread reconnecting gateways.
		wait := backoff/2 + rand.N(backoff/2+1)
		b.log.Debug("reconnecting", "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(2*backoff, b.cfg.MaxBackoff)
	}
}

func (b *Bridge) setConnected(up bool, err error) {
	if b.stats.setConnected(up) {
		if up {
			b.log.Info("bridge connected", "address", b.cfg.Address)
		} else {
			b.log.Warn("bridge disconnected", "address", b.cfg.Address, "err", err)
		}
		b.logStatus()
	}
}

func (b *Bridge) logStatus() {
	st := b.Status()
	b.log.Info("bridge status", "connected", st.Connected, "outbox_messages", st.OutboxMessages,
		"outbox_bytes", st.OutboxBytes, "oldest_age", st.OldestAge, "forwarded", st.Forwarded,
		"received", st.Received, "dropped", st.DroppedTotal())
}

// statusLoop logs the status when it changed, and publishes it, at most
// every interval.
func (b *Bridge) statusLoop(ctx context.Context, every time.Duration) {
	var last Status
	sys := &sysPublisher{b: b}
	defer sys.close()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := b.Status()
		sys.publish(st)
		if st.Forwarded != last.Forwarded || st.DroppedTotal() != last.DroppedTotal() ||
			st.OutboxMessages != last.OutboxMessages || st.Received != last.Received {
			b.logStatus()
		}
		last = st
	}
}

// Bridges runs several bridges; see Start.
type Bridges struct {
	list   []*Bridge
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start creates and runs a bridge for each cfg (New, then Run in its own
// goroutine). Stop ends them.
func Start(srv Local, cfgs []Config, log *slog.Logger) (*Bridges, error) {
	bs := &Bridges{}
	for _, c := range cfgs {
		b, err := New(srv, c, log)
		if err != nil {
			return nil, err
		}
		bs.list = append(bs.list, b)
	}
	removeStale(srv, log)
	ctx, cancel := context.WithCancel(context.Background())
	bs.cancel = cancel
	for _, b := range bs.list {
		bs.wg.Add(1)
		go func() { defer bs.wg.Done(); b.Run(ctx) }()
	}
	return bs, nil
}

// removeStale deletes the outboxes (and status sessions) of bridges that
// are no longer configured — nothing would ever send what they hold, and
// their subscriptions would keep filling them — and their retained status
// topics. Each is logged with what it held.
func removeStale(srv Local, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	for id, st := range srv.RemoveUnregisteredInternal(broker.InternalPrefix + "bridge") {
		name, _ := strings.CutPrefix(id, LocalID(""))
		if name == id {
			continue // a status session: it holds nothing worth a line
		}
		status := srv.RemoveRetained(SysPrefix + name + "/#")
		log.Warn("bridge removed from the configuration: its outbox is deleted", "bridge", name,
			"messages_not_forwarded", st.Queued+st.Inflight, "bytes", st.QueuedBytes, "status_topics_removed", status)
	}
}

// List returns the bridges.
func (bs *Bridges) List() []*Bridge { return bs.list }

// Stop disconnects every bridge and waits for them. What is in flight is
// re-sent on the next start.
func (bs *Bridges) Stop() {
	if bs == nil || bs.cancel == nil {
		return
	}
	bs.cancel()
	bs.wg.Wait()
}
