package mqtt

import "fmt"

// ReasonCode is an MQTT 5.0 reason code (spec §2.4). MQTT 3.1.1 uses a few
// of the same values as CONNACK return codes and SUBACK failure codes; the
// codec maps those where the protocol level requires it.
type ReasonCode byte

// Reason codes, MQTT 5.0 §2.4, Table 2-6.
const (
	Success                             ReasonCode = 0x00 // also Normal Disconnection, Granted QoS 0
	NormalDisconnection                 ReasonCode = 0x00
	GrantedQoS0                         ReasonCode = 0x00
	GrantedQoS1                         ReasonCode = 0x01
	GrantedQoS2                         ReasonCode = 0x02
	DisconnectWithWillMessage           ReasonCode = 0x04
	NoMatchingSubscribers               ReasonCode = 0x10
	NoSubscriptionExisted               ReasonCode = 0x11
	ContinueAuthentication              ReasonCode = 0x18
	ReAuthenticate                      ReasonCode = 0x19
	UnspecifiedError                    ReasonCode = 0x80
	MalformedPacket                     ReasonCode = 0x81
	ProtocolError                       ReasonCode = 0x82
	ImplementationSpecificError         ReasonCode = 0x83
	UnsupportedProtocolVersion          ReasonCode = 0x84
	ClientIdentifierNotValid            ReasonCode = 0x85
	BadUserNameOrPassword               ReasonCode = 0x86
	NotAuthorized                       ReasonCode = 0x87
	ServerUnavailable                   ReasonCode = 0x88
	ServerBusy                          ReasonCode = 0x89
	Banned                              ReasonCode = 0x8A
	ServerShuttingDown                  ReasonCode = 0x8B
	BadAuthenticationMethod             ReasonCode = 0x8C
	KeepAliveTimeout                    ReasonCode = 0x8D
	SessionTakenOver                    ReasonCode = 0x8E
	TopicFilterInvalid                  ReasonCode = 0x8F
	TopicNameInvalid                    ReasonCode = 0x90
	PacketIdentifierInUse               ReasonCode = 0x91
	PacketIdentifierNotFound            ReasonCode = 0x92
	ReceiveMaximumExceeded              ReasonCode = 0x93
	TopicAliasInvalid                   ReasonCode = 0x94
	PacketTooLarge                      ReasonCode = 0x95
	MessageRateTooHigh                  ReasonCode = 0x96
	QuotaExceeded                       ReasonCode = 0x97
	AdministrativeAction                ReasonCode = 0x98
	PayloadFormatInvalid                ReasonCode = 0x99
	RetainNotSupported                  ReasonCode = 0x9A
	QoSNotSupported                     ReasonCode = 0x9B
	UseAnotherServer                    ReasonCode = 0x9C
	ServerMoved                         ReasonCode = 0x9D
	SharedSubscriptionsNotSupported     ReasonCode = 0x9E
	ConnectionRateExceeded              ReasonCode = 0x9F
	MaximumConnectTime                  ReasonCode = 0xA0
	SubscriptionIdentifiersNotSupported ReasonCode = 0xA1
	WildcardSubscriptionsNotSupported   ReasonCode = 0xA2
)

var reasonText = map[ReasonCode]string{
	Success:                             "success",
	DisconnectWithWillMessage:           "disconnect with will message",
	GrantedQoS1:                         "granted QoS 1",
	GrantedQoS2:                         "granted QoS 2",
	NoMatchingSubscribers:               "no matching subscribers",
	NoSubscriptionExisted:               "no subscription existed",
	ContinueAuthentication:              "continue authentication",
	ReAuthenticate:                      "re-authenticate",
	UnspecifiedError:                    "unspecified error",
	MalformedPacket:                     "malformed packet",
	ProtocolError:                       "protocol error",
	ImplementationSpecificError:         "implementation specific error",
	UnsupportedProtocolVersion:          "unsupported protocol version",
	ClientIdentifierNotValid:            "client identifier not valid",
	BadUserNameOrPassword:               "bad user name or password",
	NotAuthorized:                       "not authorized",
	ServerUnavailable:                   "server unavailable",
	ServerBusy:                          "server busy",
	Banned:                              "banned",
	ServerShuttingDown:                  "server shutting down",
	BadAuthenticationMethod:             "bad authentication method",
	KeepAliveTimeout:                    "keep alive timeout",
	SessionTakenOver:                    "session taken over",
	TopicFilterInvalid:                  "topic filter invalid",
	TopicNameInvalid:                    "topic name invalid",
	PacketIdentifierInUse:               "packet identifier in use",
	PacketIdentifierNotFound:            "packet identifier not found",
	ReceiveMaximumExceeded:              "receive maximum exceeded",
	TopicAliasInvalid:                   "topic alias invalid",
	PacketTooLarge:                      "packet too large",
	MessageRateTooHigh:                  "message rate too high",
	QuotaExceeded:                       "quota exceeded",
	AdministrativeAction:                "administrative action",
	PayloadFormatInvalid:                "payload format invalid",
	RetainNotSupported:                  "retain not supported",
	QoSNotSupported:                     "QoS not supported",
	UseAnotherServer:                    "use another server",
	ServerMoved:                         "server moved",
	SharedSubscriptionsNotSupported:     "shared subscriptions not supported",
	ConnectionRateExceeded:              "connection rate exceeded",
	MaximumConnectTime:                  "maximum connect time",
	SubscriptionIdentifiersNotSupported: "subscription identifiers not supported",
	WildcardSubscriptionsNotSupported:   "wildcard subscriptions not supported",
}

// String returns the reason code's name as the spec words it, in lower case.
func (c ReasonCode) String() string {
	if s, ok := reasonText[c]; ok {
		return s
	}
	return fmt.Sprintf("reason code 0x%02X", byte(c))
}

// IsError reports whether c signals failure (values of 0x80 and above).
func (c ReasonCode) IsError() bool { return c >= 0x80 }

// ConnackReturnCode is an MQTT 3.1 / 3.1.1 CONNACK return code (§3.2.2.3).
type ConnackReturnCode = byte

// MQTT 3.1.1 CONNACK return codes.
const (
	ConnAccepted                  ConnackReturnCode = 0x00
	ConnRefusedProtocolVersion    ConnackReturnCode = 0x01
	ConnRefusedIdentifierRejected ConnackReturnCode = 0x02
	ConnRefusedServerUnavailable  ConnackReturnCode = 0x03
	ConnRefusedBadUsernamePasswd  ConnackReturnCode = 0x04
	ConnRefusedNotAuthorized      ConnackReturnCode = 0x05
)

// V3ConnackCode maps a v5 reason code to the closest MQTT 3.1.1 CONNACK
// return code, for brokers that decide in v5 terms and answer older clients.
func V3ConnackCode(c ReasonCode) byte {
	switch c {
	case Success:
		return ConnAccepted
	case UnsupportedProtocolVersion:
		return ConnRefusedProtocolVersion
	case ClientIdentifierNotValid:
		return ConnRefusedIdentifierRejected
	case BadUserNameOrPassword, BadAuthenticationMethod:
		return ConnRefusedBadUsernamePasswd
	case NotAuthorized, Banned:
		return ConnRefusedNotAuthorized
	default:
		return ConnRefusedServerUnavailable
	}
}

// ReasonError is an error that carries the reason code to send to the peer.
// Decoding returns it for every rejected input; Code is MalformedPacket for
// bytes that cannot be parsed and ProtocolError for well-formed bytes that
// break a rule of the spec, or a more specific code where the spec names one.
type ReasonError struct {
	Code ReasonCode
	Msg  string
}

func (e *ReasonError) Error() string {
	if e.Msg == "" {
		return e.Code.String()
	}
	return e.Code.String() + ": " + e.Msg
}

// Is makes errors.Is(err, ErrMalformed) and friends match on the code alone.
func (e *ReasonError) Is(target error) bool {
	t, ok := target.(*ReasonError)
	return ok && t.Msg == "" && t.Code == e.Code
}

// Sentinel errors for errors.Is; decoding returns *ReasonError values with
// a message that say what was wrong, and they match these by code.
var (
	ErrMalformed      = &ReasonError{Code: MalformedPacket}
	ErrProtocol       = &ReasonError{Code: ProtocolError}
	ErrPacketTooLarge = &ReasonError{Code: PacketTooLarge}
)

func malformed(msg string) error   { return &ReasonError{Code: MalformedPacket, Msg: msg} }
func protocolErr(msg string) error { return &ReasonError{Code: ProtocolError, Msg: msg} }
