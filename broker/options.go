package broker

import (
	"log/slog"
	"math"
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

	// TLS, when set, makes ListenAndServe also serve MQTT over TLS on
	// TLSAddr and, if WSSAddr is set, MQTT over secure WebSocket there.
	TLS *TLSConfig
	// TLSAddr is the MQTT over TLS address; "-" disables it. Default
	// ":8883". Used only with TLS.
	TLSAddr string
	// WSSAddr is the secure WebSocket address (e.g. ":8443"). Default ""
	// (disabled). Used only with TLS.
	WSSAddr string
	// UseIdentityAsUsername takes the username of a client that presents a
	// verified certificate from the certificate's common name; the
	// certificate is its authentication (no password is checked). A client
	// on a TLS connection without a verified certificate is refused
	// (CONNACK 0x87 / 0x05). Plain-TCP connections are not affected.
	UseIdentityAsUsername bool

	// Access authenticates clients and authorises what they publish, read
	// and subscribe to. Default nil: every client is accepted and may do
	// everything. See FileAccess for Mosquitto-style files.
	Access AccessControl
	// Authenticators are the MQTT 5.0 enhanced authentication methods
	// offered, by method name (§4.12). Default none: a CONNECT with an
	// Authentication Method is refused with 0x8C.
	Authenticators map[string]Authenticator
	// MaxAuthFailures is how many failed logins one source address may
	// have in AuthFailureWindow; further CONNECTs from it are refused
	// without checking credentials until the window has passed. Default
	// 10; negative means no limit.
	MaxAuthFailures int
	// AuthFailureWindow is the period MaxAuthFailures counts over.
	// Default 1 minute.
	AuthFailureWindow time.Duration

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
	// MaxConnectionsPerIP limits concurrent connections from one source
	// address; further ones are refused like MaxConnections. Default 0: no
	// limit (gateways often see many devices behind one NAT address).
	MaxConnectionsPerIP int
	// MaxTopicLength is the longest topic name or filter accepted, in
	// bytes. A longer PUBLISH topic closes the connection (MQTT 5.0:
	// DISCONNECT 0x90); a longer filter is refused in SUBACK (0x8F, 3.1.1:
	// 0x80). Default 4096; negative means the protocol's 65535.
	MaxTopicLength int
	// MaxTopicLevels is the most levels ("/"-separated) a topic name or
	// filter may have, treated like MaxTopicLength. Default 128; negative
	// means no limit.
	MaxTopicLevels int
	// MaxSubscriptionsPerClient bounds the subscriptions of one session;
	// more are refused in SUBACK (0x97 Quota exceeded, 3.1.1: 0x80).
	// Default 1000; negative means no limit.
	MaxSubscriptionsPerClient int
	// PublishRate is how many PUBLISH packets per second one connection
	// may send on average, with bursts of PublishBurst. A faster client is
	// slowed down by not reading from it (TCP back-pressure); nothing is
	// dropped. Default 0: no limit.
	PublishRate float64
	// PublishBurst is the token bucket size of PublishRate. Default:
	// PublishRate rounded up, at least 1.
	PublishBurst int
	// MaxRetainedMessages bounds the number of retained messages held.
	// A new retained topic over it is not retained (the message is still
	// delivered; MQTT 5.0 QoS 1/2 publishers get 0x97 Quota exceeded and
	// the message is not delivered) and counted as dropped
	// "retain_limit". Default 0: no limit.
	MaxRetainedMessages int
	// MaxRetainedBytes bounds the bytes (topic, payload, properties) of
	// the retained messages, treated like MaxRetainedMessages. Default 0:
	// no limit.
	MaxRetainedBytes int64
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
	if v.TLSAddr == "" {
		v.TLSAddr = ":8883"
	}
	if v.MaxAuthFailures == 0 {
		v.MaxAuthFailures = 10
	}
	if v.AuthFailureWindow <= 0 {
		v.AuthFailureWindow = time.Minute
	}
	if v.MaxTopicLength == 0 {
		v.MaxTopicLength = 4096
	}
	if v.MaxTopicLength < 0 || v.MaxTopicLength > 65535 {
		v.MaxTopicLength = 65535
	}
	if v.MaxTopicLevels == 0 {
		v.MaxTopicLevels = 128
	}
	if v.MaxSubscriptionsPerClient == 0 {
		v.MaxSubscriptionsPerClient = 1000
	}
	if v.PublishRate > 0 && v.PublishBurst <= 0 {
		v.PublishBurst = max(1, int(math.Ceil(v.PublishRate)))
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
