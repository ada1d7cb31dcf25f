package badgerstore

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// Key schema. Every key starts with one prefix byte that says what it is;
// ids follow big-endian so that Badger's byte order is numeric order:
//
//	m <msgid:8>                         message (value: encodeMessage)
//	q <len:2> <client> <seq:8>          queue entry (value: encodeEntry)
//	i <len:2> <client> <packetid:2>     inbound QoS 2 packet id (empty value)
//	s <client>                          session record (value: encodeSession)
//	r <topic>                           retained message (value: encodeMessage)
//	! <name>                            metadata (!schema, !maxmsgid)
//	b ...                               reserved for the bridge outbox
//
// (DESIGN.md writes these as m/<msgid>, q/<session>/<seq>, …; the "/" is
// notation, the stored key has no separator.)
//
// Client ids are arbitrary strings (they may contain '/' or be prefixes of
// one another), so q and i keys carry the id with a 2-byte length in front:
// the prefix of one client's keys, <p><len><client>, is then never a prefix
// of another client's keys, and a prefix scan of one session's queue sees
// only that session. MQTT strings are at most 65535 bytes, which is what
// the length can hold. Session and retained keys hold one id or topic each
// and are only ever scanned as a whole, so they need no length.
const (
	prefixMessage  = 'm'
	prefixQueue    = 'q'
	prefixInbound  = 'i'
	prefixSession  = 's'
	prefixRetained = 'r'
	prefixMeta     = '!'
)

var (
	keySchema   = []byte("!schema")
	keyMaxMsgID = []byte("!maxmsgid")
)

// schemaVersion is stored under keySchema; Open refuses other versions.
const schemaVersion = 1

func messageKey(id uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixMessage
	binary.BigEndian.PutUint64(k[1:], id)
	return k
}

// clientPrefix returns <p><len:2><client>, with room for n more bytes.
func clientPrefix(p byte, client string, n int) ([]byte, error) {
	if len(client) > 0xFFFF {
		return nil, fmt.Errorf("badgerstore: client id of %d bytes is longer than 65535", len(client))
	}
	k := make([]byte, 0, 3+len(client)+n)
	k = append(k, p)
	k = binary.BigEndian.AppendUint16(k, uint16(len(client)))
	return append(k, client...), nil
}

func queueKey(client string, seq uint64) ([]byte, error) {
	k, err := clientPrefix(prefixQueue, client, 8)
	if err != nil {
		return nil, err
	}
	return binary.BigEndian.AppendUint64(k, seq), nil
}

func inboundKey(client string, id uint16) ([]byte, error) {
	k, err := clientPrefix(prefixInbound, client, 2)
	if err != nil {
		return nil, err
	}
	return binary.BigEndian.AppendUint16(k, id), nil
}

func sessionKey(client string) []byte {
	return append([]byte{prefixSession}, client...)
}

func retainedKey(topic string) []byte {
	return append([]byte{prefixRetained}, topic...)
}

// parseMessageKey returns the id of an m key.
func parseMessageKey(k []byte) (uint64, bool) {
	if len(k) != 9 || k[0] != prefixMessage {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[1:]), true
}

// parseClientKey splits a q or i key into client id and the rest.
func parseClientKey(k []byte) (client string, rest []byte, ok bool) {
	if len(k) < 3 {
		return "", nil, false
	}
	n := int(binary.BigEndian.Uint16(k[1:3]))
	if len(k) < 3+n {
		return "", nil, false
	}
	return string(k[3 : 3+n]), k[3+n:], true
}

// formatKey renders a key for error messages and logs: m/42,
// q/"client/1"/7, i/"c"/3, s/"c", r/"a/b", !maxmsgid; anything it cannot
// parse as hex.
func formatKey(k []byte) string {
	if len(k) == 0 {
		return "<empty key>"
	}
	switch k[0] {
	case prefixMessage:
		if id, ok := parseMessageKey(k); ok {
			return "m/" + strconv.FormatUint(id, 10)
		}
	case prefixQueue:
		if c, rest, ok := parseClientKey(k); ok && len(rest) == 8 {
			return "q/" + strconv.Quote(c) + "/" + strconv.FormatUint(binary.BigEndian.Uint64(rest), 10)
		}
	case prefixInbound:
		if c, rest, ok := parseClientKey(k); ok && len(rest) == 2 {
			return "i/" + strconv.Quote(c) + "/" + strconv.FormatUint(uint64(binary.BigEndian.Uint16(rest)), 10)
		}
	case prefixSession:
		return "s/" + strconv.Quote(string(k[1:]))
	case prefixRetained:
		return "r/" + strconv.Quote(string(k[1:]))
	case prefixMeta:
		if s := string(k); !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
			return s
		}
	}
	return fmt.Sprintf("0x%x", k)
}

// nextKey returns the smallest key greater than k (k followed by a zero
// byte): where to seek to continue a scan after k.
func nextKey(k []byte) []byte {
	n := make([]byte, len(k)+1)
	copy(n, k)
	return n
}
