package badgerstore

import (
	"reflect"
	"sort"
	"testing"
)

// valueKinds are the stored value encodings, in the order FuzzDecodeValue
// numbers them.
var valueKinds = []string{"message", "entry", "session", "maxid"}

// FuzzDecodeValue feeds arbitrary bytes to the decoders of stored values
// (what a damaged disk hands back) and to the key parsers. None may panic;
// an error must be ErrCorrupt-shaped (decoders report, never guess); a
// value that decodes must encode again to bytes that decode to the same
// value, so that a value read back and rewritten (entry updates, session
// saves) is not changed by the round trip. Seeds: the values of
// testValues and testdata/fuzz/FuzzDecodeValue.
func FuzzDecodeValue(f *testing.F) {
	vals := testValues()
	for i, k := range valueKinds {
		f.Add(byte(i), vals[k])
	}
	f.Fuzz(func(t *testing.T, kind byte, v []byte) {
		// Keys are read back from the store too.
		parseMessageKey(v)
		if c, rest, ok := parseClientKey(v); ok && len(c)+len(rest) > len(v) {
			t.Fatalf("parseClientKey(%x) returned more bytes than it was given", v)
		}
		_ = formatKey(v)

		switch valueKinds[int(kind)%len(valueKinds)] {
		case "message":
			m, err := decodeMessage(v)
			if err != nil {
				return
			}
			again, err := encodeMessage(m)
			if err != nil {
				t.Fatalf("decoded message %+v does not encode: %v", m, err)
			}
			m2, err := decodeMessage(again)
			if err != nil || !reflect.DeepEqual(m, m2) {
				t.Fatalf("message round trip: %+v -> %+v (%v)", m, m2, err)
			}
		case "entry":
			e, err := decodeEntry(v)
			if err != nil {
				return
			}
			again, err := encodeEntry(&e)
			if err != nil {
				t.Fatalf("decoded entry %+v does not encode: %v", e, err)
			}
			e2, err := decodeEntry(again)
			if err != nil || !reflect.DeepEqual(e, e2) {
				t.Fatalf("entry round trip: %+v -> %+v (%v)", e, e2, err)
			}
			if id, err := entryMsgID(v); err != nil || id != e.MsgID {
				t.Fatalf("entryMsgID = %d, %v; decodeEntry says %d", id, err, e.MsgID)
			}
		case "session":
			s, err := decodeSession("c", v)
			if err != nil {
				return
			}
			again, err := encodeSession(s)
			if err != nil {
				t.Fatalf("decoded session %+v does not encode: %v", s, err)
			}
			s2, err := decodeSession("c", again)
			if err != nil {
				t.Fatalf("session round trip: %v", err)
			}
			sort.SliceStable(s.Subscriptions, func(i, j int) bool { return s.Subscriptions[i].Filter < s.Subscriptions[j].Filter })
			sort.SliceStable(s2.Subscriptions, func(i, j int) bool { return s2.Subscriptions[i].Filter < s2.Subscriptions[j].Filter })
			if !reflect.DeepEqual(s, s2) {
				t.Fatalf("session round trip: %+v -> %+v", s, s2)
			}
		case "maxid":
			id, err := decodeMaxID(v)
			if err != nil {
				return
			}
			if id2, err := decodeMaxID(encodeMaxID(id)); err != nil || id2 != id {
				t.Fatalf("max id round trip: %d -> %d (%v)", id, id2, err)
			}
		}
	})
}
