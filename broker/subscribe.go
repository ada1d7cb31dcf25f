package broker

import (
	"time"

	"github.com/weirmq/weir/mqtt"
	"github.com/weirmq/weir/store"
)

// handleSubscribe adds the subscriptions, answers SUBACK once the session
// is durable, then sends the matching retained messages.
func (c *client) handleSubscribe(p *mqtt.Subscribe) error {
	s := c.srv
	ss := c.sess
	subID := 0
	if len(p.Props.SubscriptionIDs) > 0 {
		subID = p.Props.SubscriptionIDs[0]
	}
	codes := make([]mqtt.ReasonCode, len(p.Subscriptions))
	type retainReq struct {
		filter string
		sub    subscription
	}
	var retained []retainReq
	var added []subscription
	for i, req := range p.Subscriptions {
		if err := mqtt.ValidateTopicFilter(req.Filter); err != nil {
			codes[i] = mqtt.TopicFilterInvalid // 0x80 for 3.1.1, mapped by the codec
			continue
		}
		_, plain, shared, _ := mqtt.ParseShared(req.Filter)
		if shared && req.NoLocal {
			return closeWith(mqtt.ProtocolError, "no local on a shared subscription [MQTT-3.8.3-4]")
		}
		if !shared {
			plain = req.Filter
		}
		if code := c.subscribeAllowed(req.Filter, plain); code != mqtt.Success {
			codes[i] = code // 0x80 for 3.1.1, mapped by the codec
			continue
		}
		opts := req
		if c.version != mqtt.V5 {
			opts.NoLocal, opts.RetainAsPublished, opts.RetainHandling = false, false, 0
		}
		sub := subscription{filter: req.Filter, opts: opts, id: subID}
		ss.mu.Lock()
		_, existed := ss.subs[req.Filter]
		ss.addSubLocked(req.Filter, sub)
		ss.mu.Unlock()
		added = append(added, sub)
		codes[i] = mqtt.ReasonCode(opts.QoS)
		// Retain handling (§3.3.1.3); shared subscriptions get no retained
		// messages (§4.8.2).
		if !shared && (opts.RetainHandling == 0 || opts.RetainHandling == 1 && !existed) {
			retained = append(retained, retainReq{filter: plain, sub: sub})
		}
	}
	var b store.Batch
	ss.mu.Lock()
	ss.putSessionLocked(&b)
	ss.mu.Unlock()
	pid := p.PacketID
	// The subscriptions take effect once they are durable. Under the
	// session lock, a message routed to one of them meanwhile waits until
	// SUBACK and the retained messages are queued, so a live message never
	// overtakes an older retained one.
	s.commit(&b, func(error) {
		ss.mu.Lock()
		defer ss.mu.Unlock()
		if ss.ended {
			return
		}
		for _, sub := range added {
			s.subs.Subscribe(sub.filter, ss, sub) // [MQTT-3.8.4-3] replaces
		}
		c.send(&mqtt.Suback{PacketID: pid, ReasonCodes: codes})
		now := time.Now()
		// Retained messages for a persistent session are stored in its
		// queue like routed ones (the message by its id, next to its
		// retained copy), so that one in flight at a crash is sent again
		// after the restart, a QoS 2 one with its stored packet id
		// [MQTT-4.4.0-1]. The batch is committed before any of them is
		// delivered (the pump stores a QoS 2 packet id in a later batch),
		// under ss.mu, so routed messages queued after SUBACK are
		// committed after them too.
		type retainedDelivery struct {
			d delivery
			m *store.Message
		}
		var (
			rb  store.Batch
			rds []retainedDelivery
		)
		for _, r := range retained {
			s.retained.Match(r.filter, now, func(m *store.Message) bool {
				if r.sub.opts.NoLocal && m.Origin == ss.id || !s.canRead(ss, m.Topic) {
					return true
				}
				d := delivery{s: ss, qos: min(m.QoS, r.sub.opts.QoS), retain: true}
				if r.sub.id != 0 {
					d.subIDs = []int{r.sub.id}
				}
				size := m.Size()
				seq, persist, res := ss.reserveLocked(d.qos, size)
				if res != reserved {
					return true
				}
				d.seq = seq
				switch {
				case persist && ss.outbox == nil && !ss.spilling && ss.queueLen()+len(rds)+1 < s.opts.QueueMemoryWindow:
					rb.PutMessage(m)
					rb.Enqueue(ss.id, store.QueueEntry{Seq: seq, MsgID: m.ID, QoS: d.qos, Retain: true,
						SubIDs: d.subIDs, Size: size})
					d.persist, d.msgSize = true, size
				case persist:
					// Kept in memory only: the queue is partly on disk (a
					// stored entry would have to be told apart from the
					// backlog when it is read back), or it is a bridge's
					// outbox. Undo what the reservation counted for a
					// stored delivery, or the backlog would never be read
					// back past seq (settled) and the store budget would
					// keep its bytes.
					ss.settleLocked(seq)
					ss.releaseStoredLocked(size)
				}
				rds = append(rds, retainedDelivery{d: d, m: m})
				return true
			})
		}
		s.commit(&rb, nil)
		for i := range rds {
			ss.deliverLocked(&rds[i].d, rds[i].m)
		}
	})
	return nil
}

// handleUnsubscribe removes subscriptions and answers UNSUBACK with a code
// per filter [MQTT-3.10.4-5].
func (c *client) handleUnsubscribe(p *mqtt.Unsubscribe) {
	s := c.srv
	ss := c.sess
	codes := make([]mqtt.ReasonCode, len(p.Filters))
	for i, f := range p.Filters {
		ss.mu.Lock()
		_, ok := ss.subs[f]
		delete(ss.subs, f)
		ss.mu.Unlock()
		if ok {
			s.subs.Unsubscribe(f, ss)
			codes[i] = mqtt.Success
		} else if mqtt.ValidateTopicFilter(f) != nil {
			codes[i] = mqtt.TopicFilterInvalid
		} else {
			codes[i] = mqtt.NoSubscriptionExisted
		}
	}
	var b store.Batch
	ss.mu.Lock()
	ss.putSessionLocked(&b)
	ss.mu.Unlock()
	pid := p.PacketID
	s.commit(&b, func(error) { c.send(&mqtt.Unsuback{PacketID: pid, ReasonCodes: codes}) })
}

func (ss *session) isPersistent() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.persistent()
}

// putSessionLocked adds the session record to b if the session is
// persistent, or was and the store still holds it: a session resumed with
// a Session Expiry Interval of 0 ends with its connection
// [MQTT-3.1.2-23], also when a crash ends it, so its record says 0 and
// the restart expires it.
func (ss *session) putSessionLocked(b *store.Batch) {
	if ss.persistent() || ss.stored {
		b.PutSession(ss.recordLocked())
	}
}

// markStoredIfPersistent reports whether the session is persistent and,
// if so, notes that the store now holds state of it.
func (ss *session) markStoredIfPersistent() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.stored = ss.stored || ss.persistent()
	return ss.persistent()
}
