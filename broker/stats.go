package broker

import (
	"sync/atomic"
	"time"
)

// dropReason says why a message was not delivered to a subscriber.
type dropReason int

const (
	dropQueueFull      dropReason = iota // session queue at its message or byte limit
	dropSlowClient                       // QoS 0 and the outbound buffer was full
	dropExpired                          // message expiry passed before delivery
	dropTooLarge                         // above the client's Maximum Packet Size
	dropNoSharedMember                   // shared subscription group had no other member
	dropQoS0ForRoom                      // queued QoS 0 message dropped to make room for QoS 1/2
	dropQuota                            // PUBLISH refused: a queue or store budget is spent
	dropNotAuthorized                    // PUBLISH the access control refused
	dropRetainLimit                      // retained message over MaxRetainedMessages/Bytes
	dropOutbox                           // dropped by an internal session's budget policy (internal.go)
	dropStoreFull                        // QoS 0 for an internal session, and the store budget is spent
	numDropReasons
)

var dropNames = [numDropReasons]string{"queue_full", "slow_client", "expired", "too_large", "no_shared_member",
	"qos0_for_room", "quota_exceeded", "not_authorized", "retain_limit", "outbox_full", "store_full"}

func (r dropReason) String() string { return dropNames[r] }

// Stats are the server's counters.
type Stats struct {
	connectionsTotal atomic.Int64
	refused          atomic.Int64
	badPackets       atomic.Int64
	panics           atomic.Int64
	slowConsumers    atomic.Int64
	messagesReceived atomic.Int64
	messagesOut      atomic.Int64
	messagesSent     atomic.Int64
	willsPublished   atomic.Int64
	sessionsExpired  atomic.Int64
	storeErrors      atomic.Int64
	authFailures     atomic.Int64
	perIPRefused     atomic.Int64
	perIPLogged      atomic.Int64 // unix nanoseconds of the last log line
	dropped          [numDropReasons]atomic.Int64
	droppedLogged    [numDropReasons]atomic.Int64 // unix nanoseconds of the last log line
}

// dropLogInterval is the least time between two log lines about drops of
// one reason.
const dropLogInterval = 10 * time.Second

// drop counts a message dropped for reason r and logs it, at most once
// per dropLogInterval and reason, with the count so far.
func (s *Server) drop(r dropReason, client string) {
	s.stats.dropped[r].Add(1)
	now := time.Now().UnixNano()
	last := s.stats.droppedLogged[r].Load()
	if now-last < int64(dropLogInterval) || !s.stats.droppedLogged[r].CompareAndSwap(last, now) {
		return
	}
	s.log.Warn("messages dropped", "reason", r.String(), "total", s.stats.dropped[r].Load(), "client", client,
		"stored_bytes", s.storedBytes.Load(), "max_store_bytes", s.opts.MaxStoreBytes)
}

// StatsSnapshot is a copy of the server's counters at one moment.
type StatsSnapshot struct {
	Connections      int              // connections open now
	Parked           int              // of those, idle ones without a reader goroutine (park_linux.go)
	ConnectionsTotal int64            // connections accepted since start
	Refused          int64            // CONNECTs refused
	BadPackets       int64            // connections closed for malformed or forbidden packets
	Panics           int64            // connection handlers recovered from a panic
	SlowConsumers    int64            // clients disconnected for not reading
	Sessions         int              // sessions held now, online and offline
	MessagesReceived int64            // PUBLISH packets received
	MessagesOut      int64            // PUBLISH packets written to clients
	MessagesAcked    int64            // QoS 1/2 deliveries completed
	WillsPublished   int64            // will messages published
	SessionsExpired  int64            // sessions removed by expiry
	StoreErrors      int64            // failed store commits
	AuthFailures     int64            // failed logins (bad credentials, not authorised)
	Retained         int              // retained messages held
	Dropped          map[string]int64 // messages not delivered, by reason
}

func (s *Stats) snapshot(srv *Server) StatsSnapshot {
	srv.mu.Lock()
	conns, sessions := len(srv.clients), len(srv.sessions)
	srv.mu.Unlock()
	snap := StatsSnapshot{
		Connections:      conns,
		Parked:           srv.parkedCount(),
		ConnectionsTotal: s.connectionsTotal.Load(),
		Refused:          s.refused.Load(),
		BadPackets:       s.badPackets.Load(),
		Panics:           s.panics.Load(),
		SlowConsumers:    s.slowConsumers.Load(),
		Sessions:         sessions,
		MessagesReceived: s.messagesReceived.Load(),
		MessagesOut:      s.messagesOut.Load(),
		MessagesAcked:    s.messagesSent.Load(),
		WillsPublished:   s.willsPublished.Load(),
		SessionsExpired:  s.sessionsExpired.Load(),
		StoreErrors:      s.storeErrors.Load(),
		AuthFailures:     s.authFailures.Load(),
		Retained:         srv.retained.Len(),
		Dropped:          make(map[string]int64, numDropReasons),
	}
	for i := range s.dropped {
		snap.Dropped[dropReason(i).String()] = s.dropped[i].Load()
	}
	return snap
}
