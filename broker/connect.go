package broker

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"github.com/weirmq/weir/broker/subtree"
	"time"
	"unicode/utf8"

	"github.com/weirmq/weir/mqtt"
	"github.com/weirmq/weir/store"
)

// takeoverWait bounds how long a new connection waits for the connection
// it takes over to finish.
const takeoverWait = 5 * time.Second

// handleConnect handles the CONNECT packet: negotiation, session
// creation or takeover, CONNACK, then redelivery of what the session holds.
// It returns false when the connection must end.
func (c *client) handleConnect(pkt []byte) bool {
	s := c.srv
	var p mqtt.Connect
	if err := p.Decode(pkt, 0); err != nil {
		var re *mqtt.ReasonError
		switch {
		case errors.As(err, &re) && re.Code == mqtt.UnsupportedProtocolVersion:
			// [MQTT-3.1.2-2]: answer in a form the client can read.
			if p.ProtocolLevel > mqtt.V5 {
				c.writeRaw(&mqtt.Connack{ReasonCode: mqtt.UnsupportedProtocolVersion}, mqtt.V5)
			} else {
				c.writeRaw(&mqtt.Connack{ReasonCode: mqtt.ReasonCode(mqtt.ConnRefusedProtocolVersion)}, mqtt.V311)
			}
		case errors.As(err, &re) && p.ProtocolLevel == mqtt.V5:
			// §4.13: a v5 CONNECT error is reported in CONNACK.
			c.writeRaw(&mqtt.Connack{ReasonCode: re.Code}, mqtt.V5)
		}
		c.log.Info("connection refused: bad CONNECT", "err", err)
		s.stats.badPackets.Add(1)
		return false
	}
	c.version = p.ProtocolLevel
	v := c.version

	refuse := func(code mqtt.ReasonCode, why string) bool {
		if v == mqtt.V5 {
			c.writeRaw(&mqtt.Connack{ReasonCode: code}, v)
		} else {
			c.writeRaw(&mqtt.Connack{ReasonCode: mqtt.ReasonCode(mqtt.V3ConnackCode(code))}, v)
		}
		c.log.Info("connection refused", "client", p.ClientID, "reason", why)
		s.stats.refused.Add(1)
		return false
	}
	if max := s.opts.MaxConnections; max > 0 && s.clientCount() > max {
		return refuse(mqtt.ServerBusy, "too many connections")
	}
	id := p.ClientID
	if c.internal != nil {
		id = c.internal.ID // internal.go: an id no network client can send
	}
	assigned := false
	if id == "" {
		if v == mqtt.V31 || v == mqtt.V311 && !p.CleanStart {
			// [MQTT-3.1.3-8]: a zero-length id needs a clean session
			// (3.1 has no zero-length ids at all).
			return refuse(mqtt.ClientIdentifierNotValid, "empty client id without clean session")
		}
		id = newClientID()
		assigned = true
	} else if v == mqtt.V31 && utf8.RuneCountInString(id) > 23 {
		// MQTT 3.1 §3.1: a client id of more than 23 characters is
		// answered with return code 2, Identifier Rejected (3.1.1 and 5.0
		// let the server accept longer ones [MQTT-3.1.3-5]).
		return refuse(mqtt.ClientIdentifierNotValid, "3.1 client id longer than 23 characters")
	}
	c.id = id // logged from now on (connlog.go)
	who, authData, code, why := c.authenticate(&p, id)
	if code != mqtt.Success {
		return refuse(code, why)
	}
	if p.Will != nil && !s.canPublish(who, p.Will.Topic) {
		return refuse(mqtt.NotAuthorized, "will topic not allowed")
	}

	var serverKeepAlive bool
	ka := p.KeepAlive
	if max := s.opts.MaxKeepAlive; max > 0 && v == mqtt.V5 && (ka == 0 || ka > max) {
		ka, serverKeepAlive = max, true
	}
	if ka > 0 {
		c.keepAlive = time.Duration(ka) * 1500 * time.Millisecond // [MQTT-3.1.2-24]
	}

	c.outWindow = s.opts.MaxInflight
	var expiry uint32
	if v == mqtt.V5 {
		if p.Props.Present.Has(mqtt.PropReceiveMaximum) {
			c.outWindow = min(c.outWindow, int(p.Props.ReceiveMaximum))
			if c.internal != nil {
				// An internal session's window is its own (internal.go),
				// not capped by MaxInflight.
				c.outWindow = int(p.Props.ReceiveMaximum)
			}
		}
		c.maxOutSize = int(p.Props.MaximumPacketSize)
		c.aliasMax = p.Props.TopicAliasMaximum
		c.problemInfo = !p.Props.Present.Has(mqtt.PropRequestProblemInfo) || p.Props.RequestProblemInfo == 1
		expiry = p.Props.SessionExpiry
	} else if !p.CleanStart {
		expiry = 0xFFFFFFFF // a 3.1.1 persistent session has no expiry
	}
	askedExpiry := expiry
	if m := s.opts.MaxSessionExpiry; m > 0 && expiry > m && c.internal == nil {
		expiry = m
	}

	var will *store.Will
	if w := p.Will; w != nil {
		// The decoded payload and correlation data point into the read
		// buffer, which the next packets overwrite: the will keeps copies.
		wm := &store.Message{ID: s.nextMessageID(), Topic: w.Topic, Payload: bytes.Clone(w.Payload), QoS: w.QoS,
			Retain: w.Retain, Origin: id}
		if v == mqtt.V5 {
			wp := &w.Props
			if wp.PayloadFormat != 0 || wp.ContentType != "" || wp.ResponseTopic != "" ||
				wp.CorrelationData != nil || len(wp.User) > 0 {
				wm.Props = &mqtt.Properties{PayloadFormat: wp.PayloadFormat, ContentType: wp.ContentType,
					ResponseTopic: wp.ResponseTopic, CorrelationData: bytes.Clone(wp.CorrelationData), User: wp.User}
			}
			// The message expiry counts from when the will is published.
			will = &store.Will{Message: wm, Delay: wp.WillDelay, MessageExpiry: wp.MessageExpiry}
		} else {
			will = &store.Will{Message: wm}
		}
		if wm.Props != nil && wm.Props.PayloadFormat == 1 && !utf8.Valid(wm.Payload) {
			return refuse(mqtt.PayloadFormatInvalid, "will payload is not UTF-8")
		}
	}

	present, discarded, ok := s.attach(c, id, p.CleanStart, expiry, will, who)
	if !ok {
		return refuse(mqtt.ServerUnavailable, "server shutting down")
	}

	ack := &mqtt.Connack{SessionPresent: present}
	if v == mqtt.V5 {
		pr := &ack.Props
		if assigned {
			pr.AssignedClientID = id
		}
		if serverKeepAlive {
			pr.ServerKeepAlive = ka
			pr.Set(mqtt.PropServerKeepAlive)
		}
		if expiry != askedExpiry {
			pr.SessionExpiry = expiry
			pr.Set(mqtt.PropSessionExpiry)
		}
		pr.ReceiveMaximum = s.opts.ReceiveMaximum
		pr.TopicAliasMaximum = uint16(s.opts.TopicAliasMaximum)
		pr.MaximumPacketSize = uint32(s.opts.MaxPacketSize)
		if p.Props.AuthMethod != "" {
			pr.AuthMethod, pr.AuthData = p.Props.AuthMethod, authData // §4.12
		}
		if p.Props.RequestResponseInfo == 1 && s.opts.ResponseInformation != "" {
			pr.ResponseInfo = s.opts.ResponseInformation + id
		}
	}
	ss := c.sess
	var b store.Batch
	ss.mu.Lock()
	ss.putSessionLocked(&b)
	if discarded && b.Empty() {
		// CONNACK tells the client that its previous session is gone
		// [MQTT-3.1.2-6] (5.0: [MQTT-3.1.2-4]); attach committed its
		// deletion without waiting, and a session that ends with the
		// connection writes nothing, so the deletion goes again with
		// CONNACK: a kill after CONNACK must not bring it back.
		b.DeleteSession(id)
	}
	if o := c.internal; o != nil && o.ResendReleased && hasUserProperty(p.Props.User, PeerSessionLostProperty) {
		ss.peerLostLocked(&b) // internal.go
	}
	ss.mu.Unlock()
	// CONNACK is the first packet the server sends [MQTT-3.2.0-1]; the
	// session's messages follow it.
	connected := make(chan struct{})
	s.commit(&b, func(error) {
		ss.mu.Lock()
		if ss.c == c {
			c.send(ack)
			ss.resumeLocked()
		}
		ss.mu.Unlock()
		close(connected)
	})
	<-connected
	c.log.Info("client connected", "version", v.String(), "clean", p.CleanStart, "keepalive", ka,
		"session_present", present)
	return true
}

// writeRaw writes a packet before a session exists (refusals).
func (c *client) writeRaw(p mqtt.Packet, v mqtt.Version) {
	b, err := p.AppendTo(nil, v)
	if err != nil {
		return
	}
	c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	c.conn.Write(b)
}

func newClientID() string {
	var b [12]byte
	rand.Read(b[:])
	return "weir-" + hex.EncodeToString(b[:])
}

// attach binds connection c to the session of id, taking the session over
// from an existing connection [MQTT-3.1.4-3], starting a new one when
// clean is set or none exists [MQTT-3.1.2-4]. It reports whether a
// session was present [MQTT-3.2.2-2], and whether clean discarded one
// that the store holds (its deletion is committed, not yet durable).
func (s *Server) attach(c *client, id string, clean bool, expiry uint32, will *store.Will, who *ClientInfo) (present, discarded, ok bool) {
	// One connect at a time per client id keeps takeover simple: the old
	// connection is fully detached before the new one attaches.
	defer s.lockClientID(id)()

	s.mu.Lock()
	ss := s.sessions[id]
	s.mu.Unlock()
	if ss != nil {
		ss.mu.Lock()
		old := ss.c
		ss.mu.Unlock()
		if old != nil {
			old.takenOver.Store(true)
			old.kick(mqtt.SessionTakenOver)
			select {
			case <-old.doneChan():
			case <-time.After(takeoverWait):
				c.log.Warn("previous connection did not end in time", "client", id)
			}
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false, false, false
	}
	ss = s.sessions[id]
	var endWill *store.Will
	if ss != nil && (clean || ss.expiredBy(time.Now())) {
		// Also a session whose expiry timer has not run yet (a restart
		// restores it with a timer due at once) is not resumed
		// [MQTT-3.1.2-23].
		ss.mu.Lock()
		discarded = ss.stored
		ss.mu.Unlock()
		if !clean {
			s.stats.sessionsExpired.Add(1)
		}
		endWill = s.endSessionLocked(ss)
		ss = nil
	}
	if ss == nil {
		ss = newSession(s, id)
		s.sessions[id] = ss
	} else {
		present = true
	}
	ss.mu.Lock()
	if ss.willTimer != nil && present {
		// A new connection before the will delay elapsed: the pending
		// will is not published [MQTT-3.1.3-9].
		ss.willTimer.Stop()
		ss.willTimer = nil
	}
	if ss.expiryTimer != nil {
		ss.expiryTimer.Stop()
		ss.expiryTimer = nil
	}
	ss.c = c
	ss.who.Store(who)
	ss.ready = false
	ss.version = c.version
	ss.expiry = expiry
	ss.will = will
	ss.mu.Unlock()
	c.sess = ss
	if endWill != nil {
		go s.publishWill(endWill)
	}
	return present, discarded, true
}

// expiredBy reports whether ss is offline and its Session Expiry Interval
// has passed at now.
func (ss *session) expiredBy(now time.Time) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.c == nil && ss.expiry != 0xFFFFFFFF && !ss.lastSeen.IsZero() &&
		!now.Before(ss.lastSeen.Add(time.Duration(ss.expiry)*time.Second))
}

// lockClientID serialises the connects of one client id, so that a
// takeover completes before the next one starts; connects of other ids go
// on meanwhile. It returns the unlock function.
func (s *Server) lockClientID(id string) func() {
	for {
		s.mu.Lock()
		busy, ok := s.connecting[id]
		if !ok {
			done := make(chan struct{})
			s.connecting[id] = done
			s.mu.Unlock()
			return func() {
				s.mu.Lock()
				delete(s.connecting, id)
				s.mu.Unlock()
				close(done)
			}
		}
		s.mu.Unlock()
		<-busy
	}
}

// endSessionLocked removes ss (s.mu held): its subscriptions, its stored
// state, and returns its pending will, which the caller publishes because
// the session ended [MQTT-3.1.3-9].
func (s *Server) endSessionLocked(ss *session) *store.Will {
	ss.mu.Lock()
	ss.ended = true
	will := ss.pendingWill() // before stopTimersLocked, which it looks at
	ss.stopTimersLocked()
	subs := ss.subs
	ss.subs = nil
	stored := ss.stored
	ss.releaseStoredLocked(int(ss.storedBytes))
	ss.mu.Unlock()
	for f := range subs {
		s.subs.Unsubscribe(f, ss)
	}
	if s.sessions[ss.id] == ss {
		delete(s.sessions, ss.id)
	}
	if stored {
		var b store.Batch
		b.DeleteSession(ss.id)
		s.commit(&b, nil)
	}
	return will
}

// pendingWill returns the will still owed by an offline session.
func (ss *session) pendingWill() *store.Will {
	if ss.c != nil || ss.will == nil || ss.willTimer == nil {
		return nil
	}
	return ss.will
}

// detach ends the attachment of connection c to its session: the will
// is published or scheduled, a non-persistent session ends, and
// unacknowledged messages of shared subscriptions move to other members.
func (ss *session) detach(c *client) {
	s := ss.srv
	normal := c.disconnect.Load() && !c.willOnClose.Load()
	ss.mu.Lock()
	if ss.c != c {
		// The session was ended or replaced while c was attached.
		ss.mu.Unlock()
		return
	}
	ss.c = nil
	ss.ready = false
	ss.connected.Store(false)
	ss.lastSeen = time.Now()
	will := ss.will
	if normal {
		will = nil // [MQTT-3.1.2-10]: DISCONNECT 0x00 deletes the will
		ss.will = nil
	}
	if c.shuttingDown.Load() {
		will = nil // the server is stopping, not the client
	}
	takenOver := c.takenOver.Load()
	expiry := ss.expiry
	var moved []*outMsg
	if !c.shuttingDown.Load() {
		// At shutdown shared messages stay with their (persisted) session:
		// every other member is being disconnected too.
		moved = ss.takeSharedLocked(expiry == 0)
	}
	var b store.Batch
	ss.putSessionLocked(&b)
	ss.mu.Unlock()
	s.commit(&b, nil)

	if expiry == 0 {
		s.mu.Lock()
		if s.sessions[ss.id] == ss {
			s.endSessionLocked(ss)
		}
		s.mu.Unlock()
		if will != nil {
			s.publishWill(will) // the session ended with the connection
		}
	} else {
		ss.mu.Lock()
		if will != nil {
			// A delayed will waits for its delay or the end of the session
			// (§3.1.3.2.2), also when the connection was taken over: the new
			// connection cancels it if it resumes the session
			// [MQTT-3.1.3-9], and attach publishes it if it starts a new
			// one, which ends this one [MQTT-3.1.2-4].
			delay := min(will.Delay, expiry)
			if delay == 0 {
				ss.will = nil
			} else {
				ss.willTimer = time.AfterFunc(time.Duration(delay)*time.Second, func() { s.willDue(ss) })
				will = nil
			}
		}
		if expiry != 0xFFFFFFFF && !takenOver && !ss.ended {
			ss.expiryTimer = time.AfterFunc(time.Duration(expiry)*time.Second, func() { s.expire(ss) })
		}
		ss.mu.Unlock()
		if will != nil {
			s.publishWill(will)
		}
	}
	for _, om := range moved {
		s.redeliverShared(ss, om)
	}
}

// willDue publishes the will of an offline session whose will delay has
// elapsed.
func (s *Server) willDue(ss *session) {
	ss.mu.Lock()
	will := ss.will
	if ss.c != nil || ss.willTimer == nil {
		ss.mu.Unlock()
		return
	}
	ss.will = nil
	ss.willTimer = nil
	var b store.Batch
	if !ss.ended {
		ss.putSessionLocked(&b)
	}
	ss.mu.Unlock()
	s.commit(&b, nil)
	if will != nil {
		s.publishWill(will)
	}
}

// expire ends an offline session whose expiry interval has passed.
func (s *Server) expire(ss *session) {
	s.mu.Lock()
	ss.mu.Lock()
	stale := ss.c != nil || ss.ended
	ss.mu.Unlock()
	var will *store.Will
	if !stale && s.sessions[ss.id] == ss {
		will = s.endSessionLocked(ss)
		s.stats.sessionsExpired.Add(1)
	}
	s.mu.Unlock()
	if will != nil {
		s.publishWill(will)
	}
}

// publishWill routes a will message like a PUBLISH from its client.
func (s *Server) publishWill(w *store.Will) {
	m := *w.Message
	m.ID = s.nextMessageID()
	if w.MessageExpiry > 0 {
		m.Expiry = time.Now().Add(time.Duration(w.MessageExpiry) * time.Second)
	}
	var r router
	r.init(s)
	var b store.Batch
	if m.Retain {
		if len(m.Payload) == 0 {
			if s.retained.Delete(m.Topic) != nil {
				b.DeleteRetained(m.Topic)
			}
		} else {
			s.retained.Set(&m)
			b.PutRetained(&m)
		}
	}
	ds := r.route(&m, &b)
	s.stats.willsPublished.Add(1)
	s.commit(&b, func(error) { deliverAll(ds, &m) })
}

// takeSharedLocked removes and returns the messages that reached this
// session through a shared subscription and are not yet sent, or are QoS 1
// and unacknowledged, so that another member gets them: all of them if the
// session ends (ending), otherwise those whose group has another member
// online. A persistent session keeps the others until its client comes
// back — MQTT 5.0 §4.8.2 lets the server wait for the client, and only
// asks for another member when the session ends.
func (ss *session) takeSharedLocked(ending bool) []*outMsg {
	movable := func(om *outMsg) bool {
		if om.group == nil {
			return false
		}
		if ending {
			return true
		}
		_, _, ok := om.group.Next(func(k *session, _ subscription) bool { return k != ss && k.connected.Load() })
		return ok
	}
	var moved []*outMsg
	for pid, om := range ss.inflight {
		// A QoS 2 message once sent belongs to this client: it is completed
		// when the client comes back and never sent to another member
		// [MQTT-4.8.2-4] [MQTT-4.8.2-5]. QoS 1 may move at once (§4.8.2).
		if om.qos == 1 && movable(om) {
			moved = append(moved, om)
			delete(ss.inflight, pid)
		}
	}
	kept := ss.queue[:0]
	for _, om := range ss.queue[ss.queueHead:] {
		if movable(om) {
			moved = append(moved, om)
			ss.queueBytes -= om.msg.Size()
		} else {
			kept = append(kept, om)
		}
	}
	clear(ss.queue[len(kept):])
	ss.queue = kept
	ss.queueHead = 0
	return moved
}

// redeliverShared gives a shared-subscription message that from could
// not complete to another online member of the same group.
func (s *Server) redeliverShared(from *session, om *outMsg) {
	var b store.Batch
	if om.persisted {
		b.Dequeue(from.id, om.seq)
		from.mu.Lock()
		from.releaseStoredLocked(om.msg.Size())
		from.mu.Unlock()
	}
	g := om.group
	ss, sub, ok := g.Next(func(k *session, _ subscription) bool { return k != from && k.connected.Load() })
	if !ok {
		// Nobody else is online (any more): a member's session queues it.
		ss, sub, ok = g.Next(nil)
	}
	if ok {
		d := delivery{s: ss, qos: min(om.msg.QoS, sub.opts.QoS), retain: om.retain, subIDs: om.subIDs, group: g}
		var reserved bool
		if d.seq, d.persist, reserved = ss.reserve(d.qos, om.msg.Size()); reserved {
			if d.persist {
				b.PutMessage(om.msg)
				b.Enqueue(ss.id, store.QueueEntry{Seq: d.seq, MsgID: om.msg.ID, QoS: d.qos, Retain: d.retain, SubIDs: d.subIDs,
					Size: om.msg.Size(), Group: sharedFilter(g)})
			}
			s.commit(&b, func(error) { ss.deliver(&d, om.msg) })
			return
		}
	}
	s.drop(dropNoSharedMember, "")
	s.commit(&b, nil)
}

// sharedFilter returns the shared subscription filter of group g, as
// queue entries record it ("" for nil).
func sharedFilter(g *subtree.Group[*session, subscription]) string {
	if g == nil {
		return ""
	}
	return "$share/" + g.Name() + "/" + g.Filter()
}

// hasUserProperty reports whether user holds a property named key.
func hasUserProperty(user []mqtt.UserProperty, key string) bool {
	for _, u := range user {
		if u.Key == key {
			return true
		}
	}
	return false
}
