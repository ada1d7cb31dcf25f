package broker

import (
	"log/slog"
	"time"

	"github.com/weirmq/weir/store"
)

// Options configures a Server. The zero value is usable: every zero field
// takes the default documented on it.
type Options struct {
	// Addr is the TCP address ListenAndServe listens on. Default ":1883".
	Addr string
	// WSAddr is the address ListenAndServe serves MQTT over WebSocket on;
	// "-" disables it. Default ":8080".
	WSAddr string
	// WSPath is the HTTP path of the WebSocket endpoint. Default "/mqtt".
	WSPath string

	// Store persists sessions, queues and retained messages. Default: a
	// new in-memory store, closed by Shutdown. A store passed in here is
	// not closed by the server.
	Store store.Store
	// Logger receives the server's logs. Default: slog.Default().
	Logger *slog.Logger

	// MaxConnections limits concurrent client connections; further
	// clients are refused with CONNACK "server unavailable" / "server
	// busy". Default 10000; negative means no limit.
	MaxConnections int
	// MaxPacketSize is the largest packet accepted from a client, in bytes
	// including the fixed header; larger ones close the connection
	// (DISCONNECT 0x95 in MQTT 5.0). Default 1 MiB.
	MaxPacketSize int
	// ConnectTimeout closes connections that send no CONNECT in time.
	// Default 10s.
	ConnectTimeout time.Duration
	// MaxKeepAlive caps the keep-alive a client may ask for, in seconds;
	// MQTT 5.0 clients are told the capped value (Server Keep Alive), and
	// a 3.1.1 client asking for more, or for none, keeps its own value.
	// Default 0: no cap.
	MaxKeepAlive uint16

	// ReceiveMaximum is how many QoS 1/2 PUBLISH packets an MQTT 5.0
	// client may have unacknowledged towards the server. Default 1024.
	ReceiveMaximum uint16
	// MaxInflight is the outbound window of unacknowledged QoS 1/2
	// messages per client for 3.1/3.1.1 (MQTT 5.0 clients set their own
	// Receive Maximum, capped by this). Default 32.
	MaxInflight int
	// MaxQueuedMessages bounds each session's queue of messages waiting
	// for the inflight window or for the client to come back. Default 1000.
	MaxQueuedMessages int
	// MaxQueuedBytes bounds the same queue in bytes. Default 16 MiB.
	MaxQueuedBytes int
	// MaxStoreBytes bounds what persistent sessions' queues and retained
	// messages hold in the store, in bytes (message sizes, not disk
	// usage). A QoS 1/2 PUBLISH that does not fit is refused: MQTT 5.0
	// publishers get PUBACK/PUBREC 0x97 Quota exceeded; 3.1/3.1.1
	// publishers, which cannot be told, are disconnected without an
	// acknowledgement so that they keep the message and retry. Default 0:
	// no limit.
	MaxStoreBytes int64
	// QueueMemoryWindow is how many queued messages of a persistent session
	// are held in memory; the rest stay in the store and are read back as
	// the queue drains. Default 1000.
	QueueMemoryWindow int
	// OutboundBufferBytes bounds the bytes encoded for a connection and not
	// yet written to the socket. Over it, QoS 0 messages to that client are
	// dropped (and counted). Default 1 MiB.
	OutboundBufferBytes int
	// SlowConsumerTimeout disconnects a client whose outbound buffer stays
	// over OutboundBufferBytes this long. Default 30s.
	SlowConsumerTimeout time.Duration
	// TopicAliasMaximum is the number of topic aliases an MQTT 5.0 client
	// may use towards the server. Default 64; negative disables aliases.
	TopicAliasMaximum int
	// MaxSessionExpiry caps the session expiry interval clients ask for,
	// in seconds. Default 0: no cap (0xFFFFFFFF means never).
	MaxSessionExpiry uint32
	// ResponseInformation, when set, is returned (with the client id
	// appended) to MQTT 5.0 clients that ask for response information.
	ResponseInformation string
}

func (o *Options) withDefaults() Options {
	v := *o
	if v.Addr == "" {
		v.Addr = ":1883"
	}
	if v.WSAddr == "" {
		v.WSAddr = ":8080"
	}
	if v.WSPath == "" {
		v.WSPath = "/mqtt"
	}
	if v.Logger == nil {
		v.Logger = slog.Default()
	}
	if v.MaxConnections == 0 {
		v.MaxConnections = 10000
	}
	if v.MaxPacketSize <= 0 {
		v.MaxPacketSize = 1 << 20
	}
	if v.ConnectTimeout <= 0 {
		v.ConnectTimeout = 10 * time.Second
	}
	if v.ReceiveMaximum == 0 {
		v.ReceiveMaximum = 1024
	}
	if v.MaxInflight <= 0 {
		v.MaxInflight = 32
	}
	if v.MaxInflight > 65535 {
		v.MaxInflight = 65535
	}
	if v.MaxQueuedMessages <= 0 {
		v.MaxQueuedMessages = 1000
	}
	if v.MaxQueuedBytes <= 0 {
		v.MaxQueuedBytes = 16 << 20
	}
	if v.QueueMemoryWindow <= 0 {
		v.QueueMemoryWindow = 1000
	}
	if v.OutboundBufferBytes <= 0 {
		v.OutboundBufferBytes = 1 << 20
	}
	if v.SlowConsumerTimeout <= 0 {
		v.SlowConsumerTimeout = 30 * time.Second
	}
	if v.TopicAliasMaximum == 0 {
		v.TopicAliasMaximum = 64
	}
	if v.TopicAliasMaximum < 0 {
		v.TopicAliasMaximum = 0
	}
	if v.TopicAliasMaximum > 65535 {
		v.TopicAliasMaximum = 65535
	}
	return v
}
