package broker

import (
	"errors"
	"syscall"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/weirmq/weir/broker/subtree"
	"github.com/weirmq/weir/mqtt"
	"github.com/weirmq/weir/store"
)

// delivery is one session's copy of a routed message.
type delivery struct {
	s       *session
	qos     byte
	retain  bool
	subIDs  []int
	seq     uint64
	persist bool
	msgSize int // counted in the store budget when persist
	group   *subtree.Group[*session, subscription]
}

// router matches a message against the subscription tree and merges
// overlapping subscriptions of a session into one delivery with the
// highest QoS and every subscription identifier [MQTT-3.3.4-2]
// [MQTT-3.3.4-3]. One router belongs to one reader goroutine and is
// reused, so routing does not allocate for the common cases.
type router struct {
	srv         *Server
	msg         *store.Message
	list        []delivery
	index       map[*session]int
	visit       func(*session, subscription)
	visitShared func(*subtree.Group[*session, subscription])
	isOnline    func(*session, subscription) bool
	anyone      func(*session, subscription) bool
	refused     bool // the last route hit a queue or store budget
	stored      bool // the last route stored the message for a session
}

func (r *router) init(s *Server) {
	r.srv = s
	r.index = make(map[*session]int)
	r.visit = r.addSub
	r.visitShared = r.addShared
	r.isOnline = func(ss *session, _ subscription) bool { return ss.connected.Load() && r.readable(ss) }
	r.anyone = func(ss *session, _ subscription) bool { return r.readable(ss) }
}

func (r *router) addSub(ss *session, sub subscription) {
	m := r.msg
	if sub.opts.NoLocal && ss.id == m.Origin {
		return // [MQTT-3.8.3-3]
	}
	if !r.readable(ss) {
		return
	}
	qos := min(m.QoS, sub.opts.QoS)                  // [MQTT-3.8.4-8]
	retain := m.Retain && sub.opts.RetainAsPublished // [MQTT-3.3.1-12] [MQTT-3.3.1-13]
	if i, ok := r.index[ss]; ok {
		d := &r.list[i]
		d.qos = max(d.qos, qos)
		d.retain = d.retain || retain
		if sub.id != 0 {
			d.subIDs = append(d.subIDs, sub.id)
		}
		return
	}
	d := delivery{s: ss, qos: qos, retain: retain}
	if sub.id != 0 {
		d.subIDs = []int{sub.id}
	}
	r.index[ss] = len(r.list)
	r.list = append(r.list, d)
}

// addShared picks one member of a shared subscription group, preferring
// connected ones, in round-robin order.
func (r *router) addShared(g *subtree.Group[*session, subscription]) {
	ss, sub, ok := g.NextPreferring(r.isOnline, r.anyone)
	if !ok {
		return
	}
	m := r.msg
	d := delivery{s: ss, qos: min(m.QoS, sub.opts.QoS), retain: m.Retain && sub.opts.RetainAsPublished, group: g}
	if sub.id != 0 {
		d.subIDs = []int{sub.id}
	}
	r.list = append(r.list, d)
}

// route finds the sessions m goes to, reserves their queue places, and
// adds to b the store writes that must be durable before the publisher is
// acknowledged. The returned slice is reused by the next call.
func (r *router) route(m *store.Message, b *store.Batch) []delivery {
	r.msg = m
	r.list = r.list[:0]
	clear(r.index)
	r.srv.subs.Match(m.Topic, r.visit, r.visitShared)
	r.msg = nil
	stored := false
	size := m.Size()
	var now time.Time // for internal sessions' entries (QueueEntry.Queued)
	r.refused, r.stored = false, false
	for i := range r.list {
		d := &r.list[i]
		d.s.mu.Lock()
		if o := d.s.outbox; o != nil && !d.s.admitLocked(o, m, size) {
			// Over an internal session's budget: dropped by its policy,
			// the publisher is not refused (internal.go).
			d.s.mu.Unlock()
			d.s = nil
			continue
		}
		seq, persist, res := d.s.reserveLocked(d.qos, size)
		persistent, outbox := d.s.persistent(), d.s.outbox
		if res == reserved && persist && outbox != nil {
			// Counted against the budget until delivered, so that
			// publishers routing at once do not all fit in one place.
			d.s.admitting += size
		}
		d.s.mu.Unlock()
		if res != reserved {
			// A QoS 1/2 message a persistent session has no room for is
			// refused as a whole, so that the publisher knows and nobody
			// gets it twice when it is sent again.
			if d.qos > 0 && persistent && (res == queueFull || res == storeFull) {
				r.refused = true
			} else if res == storeFull {
				// QoS 0 for an outbox: there is no publisher to refuse.
				r.srv.drop(dropStoreFull, d.s.id)
				if outbox.OnStoreFull != nil {
					outbox.OnStoreFull(m.Topic)
				}
			}
			d.s = nil
			continue
		}
		internal := outbox != nil
		d.seq, d.persist, d.msgSize = seq, persist, size
		if persist {
			if !stored {
				b.PutMessage(m)
				stored, r.stored = true, true
			}
			e := store.QueueEntry{Seq: seq, MsgID: m.ID, QoS: d.qos, Retain: d.retain, SubIDs: d.subIDs, Size: size,
				Group: sharedFilter(d.group)}
			if internal {
				if now.IsZero() {
					now = time.Now()
				}
				e.Queued = now
			}
			b.Enqueue(d.s.id, e)
		}
	}
	return r.list
}

// deliverAll hands m to every routed session.
func deliverAll(ds []delivery, m *store.Message) {
	for i := range ds {
		if ds[i].s != nil {
			ds[i].s.deliver(&ds[i], m)
		}
	}
}

// publishing is what a reader needs to handle PUBLISH packets, reused from
// one to the next. Subscribers and idle connections never publish, so a
// connection allocates it at its first PUBLISH.
type publishing struct {
	pub    mqtt.Publish
	batch  store.Batch // reused for publishes that write nothing
	router router
	rate   tokenBucket // Options.PublishRate (limits.go)
}

func (c *client) publishing() *publishing {
	if c.pubs == nil {
		c.pubs = &publishing{}
		c.pubs.router.init(c.srv)
	}
	return c.pubs
}

// handlePublish handles an inbound PUBLISH. QoS 1 and 2 are acknowledged
// from the store's commit callback, after the message and the queue entries
// of every persistent subscriber are durable.
func (c *client) handlePublish(pkt []byte) error {
	s := c.srv
	ps := c.publishing()
	if rate := s.opts.PublishRate; rate > 0 {
		c.releaseHolds() // the wait may be long: what this reader holds goes out first
		ps.rate.wait(rate, s.opts.PublishBurst, time.Now())
	}
	p := &ps.pub
	if err := p.Decode(pkt, c.version); err != nil {
		return err
	}
	if c.version == mqtt.V5 && len(p.Props.SubscriptionIDs) > 0 {
		// The codec accepts the property in PUBLISH because the server
		// sends it; a client must not [MQTT-3.3.4-6].
		return closeWith(mqtt.ProtocolError, "PUBLISH from a client with a subscription identifier [MQTT-3.3.4-6]")
	}
	topic := p.Topic
	var aliased string
	if c.version == mqtt.V5 && p.Props.Present.Has(mqtt.PropTopicAlias) {
		a := p.Props.TopicAlias
		if int(a) > s.opts.TopicAliasMaximum {
			return closeWith(mqtt.TopicAliasInvalid, "topic alias %d above maximum %d [MQTT-3.3.2-9]", a, s.opts.TopicAliasMaximum)
		}
		if len(topic) > 0 {
			if c.inAliases == nil {
				c.inAliases = make(map[uint16]string)
			}
			c.inAliases[a] = string(topic)
		} else {
			t, ok := c.inAliases[a]
			if !ok {
				return closeWith(mqtt.ProtocolError, "unknown topic alias %d", a)
			}
			aliased = t
		}
	}
	if !s.topicWithinLimits(bytesString(topic)) || aliased != "" && !s.topicWithinLimits(aliased) {
		return closeWith(mqtt.TopicNameInvalid, "topic over max_topic_length or max_topic_levels")
	}
	if p.QoS > 0 {
		if n := c.inflightIn.Add(1); c.version == mqtt.V5 && n > int32(s.opts.ReceiveMaximum) {
			return closeWith(mqtt.ReceiveMaximumExceeded, "more than %d unacknowledged QoS 1/2 publishes", s.opts.ReceiveMaximum)
		}
	}
	s.stats.messagesReceived.Add(1)
	pid := p.PacketID
	if p.QoS == 2 && c.sess.addInbound(pid) {
		// A re-sent QoS 2 PUBLISH whose PUBREC we sent: acknowledge again,
		// deliver nothing [MQTT-4.3.3-10] (3.1.1: [MQTT-4.3.3-2]).
		c.inflightIn.Add(-1)
		c.send(&mqtt.Pubrec{PacketID: pid})
		return nil
	}
	if s.opts.Access != nil && !c.publishAllowed(topic, aliased) {
		// MQTT 5.0 says so in PUBACK/PUBREC; 3.1.1 cannot, so the message
		// is acknowledged and dropped, as Mosquitto does (§4.9 of 3.1.1
		// lets the server refuse silently).
		s.drop(dropNotAuthorized, c.id)
		if c.version == mqtt.V5 {
			c.ackPublish(p.QoS, pid, mqtt.NotAuthorized, true)
		} else {
			c.ackPublish(p.QoS, pid, mqtt.Success, false)
		}
		return nil
	}
	if c.version == mqtt.V5 && p.Props.PayloadFormat == 1 && !utf8.Valid(p.Payload) {
		// [MQTT-3.3.2-4]: the receiver may check the format indicator.
		c.ackPublish(p.QoS, pid, mqtt.PayloadFormatInvalid, true)
		return nil
	}
	m := c.newMessage(p, aliased)

	// The batch is reused while it stays empty (QoS 0 without retain, the
	// common case); one that goes to the store is handed over as a copy,
	// since the store owns it until its commit is done.
	b := &ps.batch
	b.Ops = b.Ops[:0]
	ds := ps.router.route(m, b)
	retainOK := !m.Retain || s.retainRoom(m)
	if p.QoS > 0 && (ps.router.refused || m.Retain && len(m.Payload) > 0 && !s.storeRoom(m.Size()) ||
		!retainOK && c.version == mqtt.V5) {
		return c.refuse(ds, p.QoS, pid)
	}
	if m.Retain {
		if retainOK {
			c.setRetained(m, b)
		} else {
			s.drop(dropRetainLimit, c.id)
		}
	}
	matched := mqtt.Success
	if len(ds) == 0 {
		matched = mqtt.NoMatchingSubscribers
	}
	// While a message of this client waits for its commit before it is
	// delivered, the next ones wait behind it (commitThenDeliver).
	behind := c.ordered.Load() > 0
	switch p.QoS {
	case 0:
		if !ps.router.stored && !behind {
			if !b.Empty() { // a retained message: no delivery waits for it
				s.commit(&store.Batch{Ops: append([]store.Op(nil), b.Ops...)}, nil)
			}
			c.deliverHeld(ds, m)
			return nil
		}
		// Queued for an internal session (an outbox, which stores QoS 0):
		// delivered once stored, as QoS 1/2 are, so that a refill never
		// looks for an entry that is not in the store yet.
		ds = append([]delivery(nil), ds...)
		c.commitThenDeliver(b, func(err error) {
			if err != nil {
				abandon(ds) // lost for the outbox; the others still get it
				for i := range ds {
					if ds[i].persist {
						ds[i].s = nil
					}
				}
			}
			deliverAll(ds, m)
		})
		return nil
	case 2:
		// The packet id is stored with the message so that a re-sent
		// PUBLISH after a restart is recognised (exactly once). A session
		// that ends with its connection cannot be resumed after a restart.
		if c.sess.markStoredIfPersistent() {
			b.PutInbound(c.id, pid)
		}
	}
	if b.Empty() && !behind {
		// Nothing to make durable: deliver and acknowledge now, as the
		// commit callback would.
		c.deliverHeld(ds, m)
		c.ackPublish(p.QoS, pid, matched, false)
		return nil
	}
	ds = append([]delivery(nil), ds...)
	qos := p.QoS
	c.commitThenDeliver(b, func(err error) {
		if err != nil {
			abandon(ds)
			if qos == 2 {
				c.sess.removeInbound(pid)
			}
			code := mqtt.UnspecifiedError
			if errors.Is(err, syscall.ENOSPC) {
				code = mqtt.QuotaExceeded // the disk is full: a quota, as for max_store_bytes
			}
			c.ackPublish(qos, pid, code, true)
			return
		}
		deliverAll(ds, m)
		c.ackPublish(qos, pid, matched, false)
	})
	return nil
}

// commitThenDeliver commits a copy of b (the store owns it until done)
// and then calls deliver, which hands a message to its subscribers. The
// store calls done in the order of the commits of one goroutine, so while
// such a commit is pending (c.ordered), the reader sends every later
// message through the store too, with an empty batch if it has nothing to
// write: one that needs no commit — say, a message an outbox's budget
// dropped right after one it stored — would otherwise reach subscribers
// of the same topic before the earlier one [MQTT-4.6.0-5] [MQTT-4.6.0-6].
func (c *client) commitThenDeliver(b *store.Batch, deliver func(error)) {
	c.ordered.Add(1)
	done := func(err error) {
		deliver(err)
		c.ordered.Add(-1)
	}
	own := &store.Batch{Ops: append([]store.Op(nil), b.Ops...)}
	if own.Empty() {
		c.srv.store.Commit(own, done) // Server.commit calls done at once
		return
	}
	c.srv.commit(own, done)
}

// refuse answers a QoS 1/2 PUBLISH that a budget has no room for: the
// reservations made for it are undone, an MQTT 5.0 client gets 0x97
// Quota exceeded, a 3.1/3.1.1 client is disconnected without an
// acknowledgement (it keeps the message and sends it again later).
func (c *client) refuse(ds []delivery, qos byte, pid uint16) error {
	for i := range ds {
		if d := &ds[i]; d.s != nil && d.persist {
			d.s.mu.Lock()
			d.s.settleDeliveryLocked(d)
			d.s.releaseStoredLocked(d.msgSize)
			d.s.mu.Unlock()
		}
	}
	c.srv.drop(dropQuota, c.id)
	if c.version != mqtt.V5 {
		c.inflightIn.Add(-1)
		if qos == 2 {
			c.sess.removeInbound(pid)
		}
		return closeWith(mqtt.QuotaExceeded, "queue or store budget spent")
	}
	c.ackPublish(qos, pid, mqtt.QuotaExceeded, true)
	return nil
}

// ackPublish sends PUBACK or PUBREC. A failure (code >= 0x80) ends the
// QoS 2 exchange at once; for 3.1.1, which cannot say so, the connection
// is closed instead so the client re-sends later.
func (c *client) ackPublish(qos byte, pid uint16, code mqtt.ReasonCode, failed bool) {
	if qos == 0 {
		return
	}
	if failed && c.version != mqtt.V5 {
		c.inflightIn.Add(-1)
		c.closeConn()
		return
	}
	if c.version != mqtt.V5 {
		code = mqtt.Success
	}
	if qos == 1 {
		c.inflightIn.Add(-1)
		c.send(&mqtt.Puback{PacketID: pid, ReasonCode: code})
		return
	}
	if code.IsError() {
		c.inflightIn.Add(-1)
		c.sess.removeInbound(pid)
	}
	c.send(&mqtt.Pubrec{PacketID: pid, ReasonCode: code})
}

// handlePubrel completes an inbound QoS 2 exchange: the packet id is
// forgotten (durably) and PUBCOMP sent.
func (c *client) handlePubrel(pid uint16) {
	if !c.sess.removeInbound(pid) {
		comp := &mqtt.Pubcomp{PacketID: pid}
		if c.version == mqtt.V5 {
			comp.ReasonCode = mqtt.PacketIdentifierNotFound
		}
		c.send(comp)
		return
	}
	var b store.Batch
	if c.sess.isPersistent() {
		b.DeleteInbound(c.id, pid)
	}
	c.srv.commit(&b, func(error) {
		c.inflightIn.Add(-1)
		c.send(&mqtt.Pubcomp{PacketID: pid})
	})
}

// newMessage copies a decoded PUBLISH into a message the broker keeps:
// topic and payload in one allocation, the properties that travel with it
// (not the topic alias or subscription identifiers) and the expiry time.
func (c *client) newMessage(p *mqtt.Publish, aliased string) *store.Message {
	m := &store.Message{
		ID:     c.srv.nextMessageID(),
		QoS:    p.QoS,
		Retain: p.Retain,
		Origin: c.id,
	}
	if aliased != "" {
		m.Topic = aliased
		m.Payload = append([]byte(nil), p.Payload...)
	} else {
		buf := make([]byte, len(p.Topic)+len(p.Payload))
		n := copy(buf, p.Topic)
		copy(buf[n:], p.Payload)
		m.Topic = unsafe.String(unsafe.SliceData(buf), n) // buf is never written again
		m.Payload = buf[n:len(buf):len(buf)]
	}
	if c.version == mqtt.V5 {
		pr := &p.Props
		if pr.MessageExpiry > 0 || pr.Present.Has(mqtt.PropMessageExpiry) {
			m.Expiry = time.Now().Add(time.Duration(pr.MessageExpiry) * time.Second)
		}
		if pr.PayloadFormat != 0 || pr.ContentType != "" || pr.ResponseTopic != "" ||
			pr.CorrelationData != nil || len(pr.User) > 0 {
			m.Props = &mqtt.Properties{
				PayloadFormat:   pr.PayloadFormat,
				ContentType:     pr.ContentType,
				ResponseTopic:   pr.ResponseTopic,
				CorrelationData: append([]byte(nil), pr.CorrelationData...),
				User:            append([]mqtt.UserProperty(nil), pr.User...),
			}
			if pr.CorrelationData == nil {
				m.Props.CorrelationData = nil
			}
		}
	}
	return m
}

// setRetained updates the retained message of m's topic: an empty payload
// removes it [MQTT-3.3.1-10] [MQTT-3.3.1-11].
func (c *client) setRetained(m *store.Message, b *store.Batch) {
	s := c.srv
	if len(m.Payload) == 0 {
		if s.retained.Delete(m.Topic) != nil {
			b.DeleteRetained(m.Topic)
		}
		return
	}
	s.retained.Set(m)
	b.PutRetained(m)
}

// topicBytes views a string as bytes without copying; the codec only
// reads them.
func topicBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// writePublish encodes an outbound PUBLISH for om. It returns false when
// the message is not sent and never will be on this connection: it
// expired, or it exceeds the client's Maximum Packet Size
// [MQTT-3.1.2-25]. A QoS 0 message that does not fit the outbound buffer
// is dropped and counted (returns true: nothing to retry).
func (c *client) writePublish(om *outMsg, dup bool) bool {
	m := om.msg
	p := mqtt.Publish{Dup: dup && om.qos > 0, QoS: om.qos, Retain: om.retain, PacketID: om.pid,
		Topic: topicBytes(m.Topic), Payload: m.Payload}
	if c.version == mqtt.V5 {
		if m.Props != nil {
			p.Props = *m.Props
		}
		p.Props.SubscriptionIDs = om.subIDs
		if o := c.internal; o != nil && o.MessageIDProperty != "" {
			p.Props.User = withMessageID(o, m, p.Props.User)
		}
		if o := c.internal; o != nil && o.ResendReleased && om.state == store.EntryReleased {
			p.Props.User = append(p.Props.User[:len(p.Props.User):len(p.Props.User)],
				mqtt.UserProperty{Key: ReleasedProperty, Value: "1"})
		}
		if !m.Expiry.IsZero() {
			left := time.Until(m.Expiry)
			if left <= 0 {
				c.srv.drop(dropExpired, c.id)
				return false
			}
			// [MQTT-3.3.2-6]: forward the remaining lifetime.
			p.Props.MessageExpiry = uint32((left + time.Second - 1) / time.Second)
		}
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed || c.closing {
		return true // kept in flight; re-sent when the session resumes
	}
	if c.overLimitLocked() && om.qos == 0 {
		c.srv.drop(dropSlowClient, c.id)
		return true
	}
	newAlias := false
	if c.aliasMax > 0 {
		if a, ok := c.outAliases[m.Topic]; ok {
			p.Props.TopicAlias = a
			p.Topic = nil
		} else if len(c.outAliases) < int(c.aliasMax) {
			if c.outAliases == nil {
				c.outAliases = make(map[string]uint16)
			}
			a := uint16(len(c.outAliases) + 1)
			c.outAliases[m.Topic] = a
			p.Props.TopicAlias = a
			newAlias = true
		}
	}
	n := len(c.wbuf)
	var err error
	c.wbuf, err = p.AppendTo(c.wbuf, c.version)
	if err == nil && c.maxOutSize > 0 && len(c.wbuf)-n > c.maxOutSize {
		err = errTooLargeForClient
	}
	if err != nil {
		c.wbuf = c.wbuf[:n]
		if newAlias {
			delete(c.outAliases, m.Topic)
		}
		c.srv.drop(dropTooLarge, c.id)
		return false
	}
	c.srv.stats.messagesOut.Add(1)
	c.startWriterLocked()
	return true
}

var errTooLargeForClient = errors.New("packet above the client's maximum packet size")
