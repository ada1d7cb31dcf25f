package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/mqtt"
)

// handshakeTimeout bounds dialling, CONNECT and SUBSCRIBE exchanges.
const handshakeTimeout = 30 * time.Second

// relay is one connection of the bridge: the upstream link and the local
// link, with what the two reader goroutines share.
type relay struct {
	b        *Bridge
	up, loc  *link
	retainOK bool // the upstream supports retained messages
	upKept   bool // the upstream kept the bridge's session (CONNACK Session Present)
	upMax    int  // upstream Maximum Packet Size, 0 none
	keep     time.Duration

	// Read by the local reader only: QoS 2 packet ids of out messages
	// that were dropped (acknowledged locally, never sent upstream).
	localOnly map[uint16]bool
	// Read by the upstream reader only: the same for in messages.
	upOnly map[uint16]bool

	mu      sync.Mutex
	ruleOf  map[uint16]int // out rule of each message in flight upstream
	msgIDPr string         // prefix of message id values
}

// connection makes one connection attempt and relays until either side
// fails or ctx ends.
func (b *Bridge) connection(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts := b.srv.Options()
	dctx, dcancel := context.WithTimeout(ctx, handshakeTimeout)
	defer dcancel()
	conn, err := b.dial(dctx, ctx)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	v := b.cfg.Version
	r := &relay{b: b, retainOK: true, keep: b.cfg.KeepAlive, localOnly: map[uint16]bool{},
		upOnly: map[uint16]bool{}, ruleOf: map[uint16]int{}}
	r.msgIDPr = b.cfg.ClientID
	if r.msgIDPr == "" {
		r.msgIDPr = b.cfg.Name
	}
	r.msgIDPr += "/"
	// Messages from upstream are forwarded to the local broker, which
	// takes packets up to its own limit.
	r.up = newLink(conn, v, opts.MaxPacketSize, handshakeTimeout)

	conn.SetDeadline(time.Now().Add(handshakeTimeout))
	cp := &mqtt.Connect{ProtocolLevel: v, CleanStart: b.cfg.CleanStart, ClientID: b.cfg.ClientID,
		KeepAlive: uint16(b.cfg.KeepAlive / time.Second)}
	if b.cfg.Username != "" {
		cp.HasUsername, cp.Username = true, b.cfg.Username
	}
	if b.cfg.Password != "" {
		cp.HasPassword, cp.Password = true, []byte(b.cfg.Password)
	}
	if v == mqtt.V5 {
		cp.Props.SessionExpiry = uint32(b.cfg.SessionExpiry / time.Second)
		cp.Props.ReceiveMaximum = opts.ReceiveMaximum
		cp.Props.MaximumPacketSize = uint32(opts.MaxPacketSize)
	}
	if err := r.up.send(cp); err != nil {
		return fmt.Errorf("upstream CONNECT: %w", err)
	}
	pkt, err := r.up.read()
	if err != nil {
		return fmt.Errorf("upstream CONNACK: %w", err)
	}
	ack, ok := pkt.(*mqtt.Connack)
	if !ok {
		return fmt.Errorf("upstream sent %v instead of CONNACK", pkt.Type())
	}
	if ack.ReasonCode != 0 {
		return fmt.Errorf("upstream refused the connection: %v", ack.ReasonCode)
	}
	r.upKept = ack.SessionPresent
	window, maxQoS := b.cfg.Window, byte(2)
	if v == mqtt.V5 {
		pr := &ack.Props
		if pr.Has(mqtt.PropReceiveMaximum) {
			window = min(window, int(pr.ReceiveMaximum))
		}
		if pr.Has(mqtt.PropMaximumQoS) {
			maxQoS = pr.MaximumQoS
		}
		r.upMax = int(pr.MaximumPacketSize)
		r.retainOK = !pr.Has(mqtt.PropRetainAvailable) || pr.RetainAvailable != 0
		if pr.Has(mqtt.PropServerKeepAlive) {
			r.keep = time.Duration(pr.ServerKeepAlive) * time.Second // [MQTT-3.2.2-21]
		}
	}

	// The upstream subscriptions go first, before any out message can
	// take a packet id upstream.
	if len(b.cfg.In) > 0 {
		sub := &mqtt.Subscribe{PacketID: 1}
		for _, rule := range b.cfg.In {
			// No Local: what the bridge publishes upstream does not come
			// back [MQTT-3.8.3-3] (MQTT 5.0 only; 3.1.1 relies on prefixes).
			sub.Subscriptions = append(sub.Subscriptions, mqtt.Subscription{Filter: rule.Filter,
				QoS: min(rule.QoS, maxQoS), NoLocal: v == mqtt.V5})
		}
		if err := r.up.send(sub); err != nil {
			return fmt.Errorf("upstream SUBSCRIBE: %w", err)
		}
	}

	lc, err := b.srv.DialInternal(b.localID)
	if err != nil {
		return fmt.Errorf("local connection: %w", err)
	}
	defer lc.Close()
	r.loc = newLink(lc, mqtt.V5, 0, 0)
	lcp := &mqtt.Connect{ProtocolLevel: mqtt.V5}
	lcp.Props.SessionExpiry = 0xFFFFFFFF
	lcp.Props.Set(mqtt.PropSessionExpiry)
	lcp.Props.ReceiveMaximum = uint16(window)
	lcp.Props.MaximumPacketSize = uint32(r.upMax)
	if !r.upKept {
		// Upstream lost what it had acknowledged: the local session puts
		// QoS 2 messages past PUBREC back to sent, durably, and re-sends
		// them whole (released.go).
		lcp.Props.User = []mqtt.UserProperty{{Key: broker.PeerSessionLostProperty, Value: "1"}}
		lcp.Props.Set(mqtt.PropUserProperty)
	}
	if err := r.loc.send(lcp); err != nil {
		return fmt.Errorf("local CONNECT: %w", err)
	}
	if pkt, err = r.loc.read(); err != nil {
		return fmt.Errorf("local CONNACK: %w", err)
	}
	if lack, ok := pkt.(*mqtt.Connack); !ok || lack.ReasonCode != 0 {
		return fmt.Errorf("local broker refused the bridge session: %v", pkt)
	}
	// One SUBSCRIBE per out rule. No Local keeps what the bridge brings
	// in from upstream from going back out; Retain As Published keeps the
	// retain flag; Retain Handling 1 sends the retained messages once,
	// when the subscription is new [MQTT-3.3.1-10].
	for i, rule := range b.cfg.Out {
		sub := &mqtt.Subscribe{PacketID: uint16(i + 1), Subscriptions: []mqtt.Subscription{{Filter: rule.Filter,
			QoS: min(rule.QoS, maxQoS), NoLocal: true, RetainAsPublished: true, RetainHandling: 1}}}
		if err := r.loc.send(sub); err != nil {
			return fmt.Errorf("local SUBSCRIBE: %w", err)
		}
	}
	// Until the SUBACKs are in, the local packet ids of SUBSCRIBE are in
	// use: hold what the broker sends meanwhile (re-sent messages).
	var held []mqtt.Packet
	for acks := 0; acks < len(b.cfg.Out); {
		if pkt, err = r.loc.read(); err != nil {
			return fmt.Errorf("local SUBACK: %w", err)
		}
		switch p := pkt.(type) {
		case *mqtt.Suback:
			acks++
			for _, rc := range p.ReasonCodes {
				if rc.IsError() {
					b.log.Error("local subscription refused", "filter", b.cfg.Out[p.PacketID-1].Filter, "code", rc)
				}
			}
		case *mqtt.Publish:
			held = append(held, p.Clone())
		case *mqtt.Pubrel:
			held = append(held, &mqtt.Pubrel{PacketID: p.PacketID})
		}
	}

	conn.SetDeadline(time.Time{})
	r.up.timeout = max(r.keep, 10*time.Second)
	b.setConnected(true, nil)
	errc := make(chan error, 3)
	go func() {
		for _, p := range held {
			if err := r.fromLocal(p); err != nil {
				errc <- err
				return
			}
		}
		if err := r.flush(); err != nil {
			errc <- err
			return
		}
		errc <- r.localLoop()
	}()
	go func() { errc <- r.upLoop() }()
	go func() { errc <- r.ping(ctx) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		r.up.send(&mqtt.Disconnect{})
		r.loc.send(&mqtt.Disconnect{})
		err = ctx.Err()
	}
	cancel()
	conn.Close()
	lc.Close()
	<-errc
	<-errc
	return err
}

// prime makes sure the bridge's local session exists with the
// subscriptions of the current out rules, so that the outbox fills even if
// the upstream broker has never been reached: it connects locally, on a
// connection the broker sends no messages on (what the outbox holds stays
// for the first real connection), subscribes and disconnects.
func (b *Bridge) prime() error {
	lc, err := b.srv.DialInternalIdle(b.localID)
	if err != nil {
		return err
	}
	defer lc.Close()
	lc.SetDeadline(time.Now().Add(handshakeTimeout))
	loc := newLink(lc, mqtt.V5, 0, handshakeTimeout)
	cp := &mqtt.Connect{ProtocolLevel: mqtt.V5}
	cp.Props.SessionExpiry = 0xFFFFFFFF
	cp.Props.ReceiveMaximum = 1
	if err := loc.send(cp); err != nil {
		return err
	}
	pkt, err := loc.read()
	if err != nil {
		return err
	}
	if ack, ok := pkt.(*mqtt.Connack); !ok || ack.ReasonCode != 0 {
		return fmt.Errorf("local broker refused the bridge session: %v", pkt)
	}
	for i, rule := range b.cfg.Out {
		sub := &mqtt.Subscribe{PacketID: uint16(i + 1), Subscriptions: []mqtt.Subscription{{Filter: rule.Filter,
			QoS: rule.QoS, NoLocal: true, RetainAsPublished: true, RetainHandling: 1}}}
		if err := loc.send(sub); err != nil {
			return err
		}
	}
	for acks := 0; acks < len(b.cfg.Out); {
		if pkt, err = loc.read(); err != nil {
			return err
		}
		if _, ok := pkt.(*mqtt.Suback); ok {
			acks++
		}
	}
	return loc.send(&mqtt.Disconnect{})
}

// ping sends PINGREQ every keep-alive interval; the upstream reader's
// deadline notices a missing answer.
func (r *relay) ping(ctx context.Context) error {
	if r.keep <= 0 {
		<-ctx.Done()
		return ctx.Err()
	}
	t := time.NewTicker(r.keep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if err := r.up.send(&mqtt.Pingreq{}); err != nil {
				return fmt.Errorf("upstream: %w", err)
			}
		}
	}
}

func (r *relay) localLoop() error {
	for {
		p, err := r.loc.read()
		if err != nil {
			return fmt.Errorf("local: %w", err)
		}
		if err := r.fromLocal(p); err != nil {
			return err
		}
		if r.loc.rd.Buffered() == 0 {
			if err := r.flush(); err != nil {
				return err
			}
		}
	}
}

// flush writes what the handling of packets queued on both links; each
// reader calls it before it may block reading.
func (r *relay) flush() error {
	if err := r.up.flush(); err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	if err := r.loc.flush(); err != nil {
		return fmt.Errorf("local: %w", err)
	}
	return nil
}

func (r *relay) upLoop() error {
	for {
		if r.keep > 0 {
			// [MQTT-3.1.2-24] as the client sees it: PINGRESP must come.
			r.up.conn.SetReadDeadline(time.Now().Add(r.keep * 3 / 2))
		}
		p, err := r.up.read()
		if isTooLarge(err) {
			err = r.dropTooLarge()
		} else if err == nil {
			err = r.fromUp(p)
		} else {
			err = fmt.Errorf("upstream: %w", err)
		}
		if err != nil {
			return err
		}
		if r.up.rd.Buffered() == 0 {
			if err := r.flush(); err != nil {
				return err
			}
		}
	}
}

var errUpstreamGone = errors.New("upstream sent DISCONNECT")

// fromLocal handles a packet from the local broker: an out message, or
// the local side of an exchange of an in message.
func (r *relay) fromLocal(pkt mqtt.Packet) error {
	b := r.b
	switch p := pkt.(type) {
	case *mqtt.Publish:
		return r.forwardOut(p)
	case *mqtt.Pubrel:
		// QoS 2 out, second phase: the local session stored that upstream
		// acknowledged the message (PUBREC) and releases it; the release
		// goes upstream, whose PUBCOMP completes it locally. A message
		// dropped here (ackLocal) ends here.
		if r.localOnly[p.PacketID] {
			delete(r.localOnly, p.PacketID)
			return r.loc.queue(&mqtt.Pubcomp{PacketID: p.PacketID})
		}
		return r.up.queue(&mqtt.Pubrel{PacketID: p.PacketID})
	case *mqtt.Puback:
		if err := r.localRefused(p.ReasonCode); err != nil {
			return err
		}
		if !p.ReasonCode.IsError() {
			b.stats.received.Add(1)
		}
		return r.up.queue(&mqtt.Puback{PacketID: p.PacketID, ReasonCode: p.ReasonCode})
	case *mqtt.Pubrec:
		if err := r.localRefused(p.ReasonCode); err != nil {
			return err
		}
		return r.up.queue(&mqtt.Pubrec{PacketID: p.PacketID, ReasonCode: p.ReasonCode})
	case *mqtt.Pubcomp:
		b.stats.received.Add(1)
		return r.up.queue(&mqtt.Pubcomp{PacketID: p.PacketID, ReasonCode: p.ReasonCode})
	case *mqtt.Disconnect:
		return fmt.Errorf("local broker sent DISCONNECT %v", p.ReasonCode)
	}
	return nil
}

// localRefused handles an error reason code from the local broker for an
// in message (quota exceeded, disk full). A 3.1.1 upstream cannot be told:
// the connection ends without an acknowledgement, so upstream re-sends.
func (r *relay) localRefused(rc mqtt.ReasonCode) error {
	if !rc.IsError() {
		return nil
	}
	if r.b.cfg.Version != mqtt.V5 {
		return fmt.Errorf("local broker refused an in message (%v); reconnecting so that upstream re-sends it", rc)
	}
	r.b.stats.dropIn(-1, "local_rejected")
	return nil
}

// forwardOut sends a message of the bridge's local session upstream with
// the same packet id; its upstream acknowledgement completes it locally.
func (r *relay) forwardOut(p *mqtt.Publish) error {
	b := r.b
	topic := string(p.Topic)
	ri := b.outRule(topic)
	if ri < 0 {
		// A subscription of a rule removed from the configuration.
		b.stats.drop(-1, "no_rule")
		return r.ackLocal(p)
	}
	rule := &b.cfg.Out[ri]
	rt := mapTopic(topic, rule.StripPrefix, rule.AddPrefix)
	if rt == "" {
		b.stats.drop(ri, "bad_topic")
		return r.ackLocal(p)
	}
	if takeReleased(&p.Props) && r.upKept {
		r.mu.Lock()
		r.ruleOf[p.PacketID] = ri
		r.mu.Unlock()
		if err := r.up.queue(&mqtt.Pubrel{PacketID: p.PacketID}); err != nil {
			return fmt.Errorf("upstream: %w", err)
		}
		return nil
	}
	out := mqtt.Publish{Dup: p.Dup, QoS: p.QoS, Retain: p.Retain && rule.Retain && r.retainOK,
		Topic: []byte(rt), PacketID: p.PacketID, Payload: p.Payload}
	if b.cfg.Version == mqtt.V5 {
		out.Props = p.Props
		clearSubIDs(&out.Props)
		if n := len(out.Props.User); n > 0 && b.cfg.MessageIDProperty != "" {
			// The broker appended the message id property last.
			u := append([]mqtt.UserProperty(nil), out.Props.User...)
			u[n-1].Value = r.msgIDPr + u[n-1].Value
			out.Props.User = u
		}
	}
	if r.upMax > 0 {
		if enc, err := out.AppendTo(nil, b.cfg.Version); err != nil || len(enc) > r.upMax {
			b.stats.drop(ri, "too_large")
			return r.ackLocal(p)
		}
	}
	if p.QoS > 0 {
		r.mu.Lock()
		r.ruleOf[p.PacketID] = ri
		r.mu.Unlock()
	}
	if err := r.up.queue(&out); err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	if p.QoS == 0 {
		b.stats.forwarded.Add(1)
	}
	return nil
}

// ackLocal completes locally an out message that is not forwarded.
func (r *relay) ackLocal(p *mqtt.Publish) error {
	switch p.QoS {
	case 1:
		return r.loc.queue(&mqtt.Puback{PacketID: p.PacketID})
	case 2:
		r.localOnly[p.PacketID] = true
		return r.loc.queue(&mqtt.Pubrec{PacketID: p.PacketID})
	}
	return nil
}

// upAcked records the upstream's answer to out message pid.
func (r *relay) upAcked(pid uint16, rc mqtt.ReasonCode, final bool) {
	r.mu.Lock()
	ri, ok := r.ruleOf[pid]
	if final || rc.IsError() {
		delete(r.ruleOf, pid)
	}
	r.mu.Unlock()
	if !ok {
		ri = -1 // sent by an earlier connection
	}
	switch {
	case rc.IsError():
		r.b.stats.drop(ri, "upstream_rejected")
	case final:
		r.b.stats.forwarded.Add(1)
	}
}

// fromUp handles a packet from upstream: an in message, or the upstream
// side of an exchange of an out message.
func (r *relay) fromUp(pkt mqtt.Packet) error {
	b := r.b
	switch p := pkt.(type) {
	case *mqtt.Publish:
		return r.forwardIn(p)
	case *mqtt.Pubrel:
		if r.upOnly[p.PacketID] {
			delete(r.upOnly, p.PacketID)
			return r.up.queue(&mqtt.Pubcomp{PacketID: p.PacketID})
		}
		return r.loc.queue(&mqtt.Pubrel{PacketID: p.PacketID})
	case *mqtt.Puback:
		r.upAcked(p.PacketID, p.ReasonCode, true)
		return r.loc.queue(&mqtt.Puback{PacketID: p.PacketID, ReasonCode: p.ReasonCode})
	case *mqtt.Pubrec:
		// QoS 2 out: upstream has the message. The local session stores
		// that (released) before it sends the PUBREL that goes upstream,
		// so that after a broken link or a crash the bridge sends PUBREL,
		// not the message again, to an upstream that kept the session:
		// exactly once. For one that did not, see released.go.
		r.upAcked(p.PacketID, p.ReasonCode, false)
		return r.loc.queue(&mqtt.Pubrec{PacketID: p.PacketID, ReasonCode: p.ReasonCode})
	case *mqtt.Pubcomp:
		r.upAcked(p.PacketID, 0, true)
		return r.loc.queue(&mqtt.Pubcomp{PacketID: p.PacketID})
	case *mqtt.Suback:
		for i, rc := range p.ReasonCodes {
			if rc.IsError() && i < len(b.cfg.In) {
				b.log.Error("upstream subscription refused", "filter", b.cfg.In[i].Filter, "code", rc)
			}
		}
	case *mqtt.Disconnect:
		return fmt.Errorf("%w: %v", errUpstreamGone, p.ReasonCode)
	}
	return nil
}

// forwardIn publishes a message from upstream locally with the same
// packet id; the local acknowledgement completes it upstream.
func (r *relay) forwardIn(p *mqtt.Publish) error {
	b := r.b
	topic := string(p.Topic)
	ri := b.inRule(topic)
	lt := ""
	if ri >= 0 {
		rule := &b.cfg.In[ri]
		lt = mapTopic(topic, rule.StripPrefix, rule.AddPrefix)
	}
	if lt == "" {
		b.stats.dropIn(ri, "no_rule")
		switch p.QoS {
		case 1:
			return r.up.queue(&mqtt.Puback{PacketID: p.PacketID})
		case 2:
			r.upOnly[p.PacketID] = true
			return r.up.queue(&mqtt.Pubrec{PacketID: p.PacketID})
		}
		return nil
	}
	out := mqtt.Publish{Dup: p.Dup, QoS: p.QoS, Retain: p.Retain, Topic: []byte(lt), PacketID: p.PacketID,
		Payload: p.Payload}
	if b.cfg.Version == mqtt.V5 {
		out.Props = p.Props
		clearSubIDs(&out.Props)
	}
	if err := r.loc.queue(&out); err != nil {
		return fmt.Errorf("local: %w", err)
	}
	if p.QoS == 0 {
		b.stats.received.Add(1)
	}
	return nil
}

// clearSubIDs removes the Subscription Identifiers of the receiving side
// from a PUBLISH to be sent on (they are only valid server to client).
func clearSubIDs(p *mqtt.Properties) {
	p.SubscriptionIDs = nil
	p.Present &^= mqtt.PropSet(0).Add(mqtt.PropSubscriptionID)
}
