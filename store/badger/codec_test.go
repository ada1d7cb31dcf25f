package badgerstore

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/weirmq/weir/mqtt"
	"github.com/weirmq/weir/store"
)

// fillEveryField sets every field of *p (a struct) to a non-zero value,
// by reflection, so that a field added to mqtt.Properties later is covered
// without anyone remembering to.
func fillEveryField(t *testing.T, v reflect.Value) {
	t.Helper()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		name := v.Type().Field(i).Name
		switch f.Kind() {
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			f.SetUint(uint64(i + 1))
		case reflect.String:
			f.SetString(name + " ü/+#")
		case reflect.Slice:
			switch f.Type().Elem().Kind() {
			case reflect.Uint8:
				f.SetBytes([]byte{0, byte(i), 0xff})
			case reflect.Int:
				f.Set(reflect.ValueOf([]int{1, 268435455, i}))
			case reflect.Struct:
				s := reflect.MakeSlice(f.Type(), 2, 2)
				fillEveryField(t, s.Index(0))
				fillEveryField(t, s.Index(1))
				f.Set(s)
			default:
				t.Fatalf("field %s: slice of %s: teach fillEveryField and the codec about it", name, f.Type().Elem())
			}
		default:
			t.Fatalf("field %s of kind %s: teach fillEveryField and the codec about it", name, f.Kind())
		}
	}
}

func TestPropertiesRoundTripEveryField(t *testing.T) {
	if n := reflect.TypeOf(mqtt.Properties{}).NumField(); n != propFields+1 {
		t.Fatalf("mqtt.Properties has %d fields, the codec knows %d + Present: extend encoder.props and decoder.props", n, propFields)
	}
	var p mqtt.Properties
	fillEveryField(t, reflect.ValueOf(&p).Elem())
	m := &store.Message{ID: 7, Topic: "t", Payload: []byte("x"), QoS: 1, Props: &p}
	v, err := encodeMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeMessage(v)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Props, &p) {
		t.Errorf("properties after a round trip:\n got %+v\nwant %+v", got.Props, &p)
	}
	// Zero properties (present but empty) stay non-nil and zero.
	m.Props = &mqtt.Properties{}
	v, _ = encodeMessage(m)
	if got, err := decodeMessage(v); err != nil || got.Props == nil || !reflect.DeepEqual(*got.Props, mqtt.Properties{}) {
		t.Errorf("empty properties: got %+v, %v", got.Props, err)
	}
}

func testValues() map[string][]byte {
	expiry := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	msg := &store.Message{ID: 1 << 40, Topic: "a/b", Payload: bytes.Repeat([]byte{0xab}, 70), QoS: 2, Retain: true,
		Props:  &mqtt.Properties{ContentType: "text/plain", User: []mqtt.UserProperty{{Key: "k", Value: "v"}}},
		Expiry: expiry, Origin: "pub"}
	m, _ := encodeMessage(msg)
	e, _ := encodeEntry(&store.QueueEntry{MsgID: 1 << 40, QoS: 2, Retain: true, SubIDs: []int{1, 268435455}, PacketID: 65535, State: store.EntryReleased})
	s, _ := encodeSession(&store.SessionRecord{ClientID: "c", Version: mqtt.V5, ExpirySeconds: 60, DisconnectedAt: expiry,
		Subscriptions: []store.Subscription{{Filter: "$share/g/x", Options: mqtt.Subscription{Filter: "x", QoS: 1, NoLocal: true, RetainHandling: 2}, ID: 9}},
		Will:          &store.Will{Message: msg, Delay: 5, MessageExpiry: 7}})
	return map[string][]byte{"message": m, "entry": e, "session": s, "maxid": encodeMaxID(99)}
}

func decodeAny(kind string, v []byte) error {
	var err error
	switch kind {
	case "message":
		_, err = decodeMessage(v)
	case "entry":
		_, err = decodeEntry(v)
	case "session":
		_, err = decodeSession("c", v)
	case "maxid":
		_, err = decodeMaxID(v)
	}
	return err
}

// TestDecodeRejectsDamage: every truncation, a trailing byte, an unknown
// version and every single-byte change that still decodes are caught or
// at least never panic; truncations and versions must be errors.
func TestDecodeRejectsDamage(t *testing.T) {
	for kind, v := range testValues() {
		if err := decodeAny(kind, v); err != nil {
			t.Fatalf("%s: intact value: %v", kind, err)
		}
		for n := 0; n < len(v); n++ {
			if err := decodeAny(kind, v[:n]); err == nil {
				t.Errorf("%s truncated to %d of %d bytes: no error", kind, n, len(v))
			}
		}
		if err := decodeAny(kind, append(append([]byte(nil), v...), 0)); err == nil {
			t.Errorf("%s with a trailing byte: no error", kind)
		}
		bad := append([]byte(nil), v...)
		bad[0] = 0x7f
		if err := decodeAny(kind, bad); err == nil || !strings.Contains(err.Error(), "version") {
			t.Errorf("%s with version 0x7f: %v, want a version error", kind, err)
		}
		for i := range v { // must not panic
			for _, x := range []byte{0x00, 0x01, 0x80, 0xff} {
				bad := append([]byte(nil), v...)
				bad[i] = x
				_ = decodeAny(kind, bad)
			}
		}
	}
}

func TestCorruptErrorNamesKey(t *testing.T) {
	k, _ := queueKey("client/1", 42)
	err := corrupt(k, errors.New("truncated"))
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("errors.Is(%v, ErrCorrupt) = false", err)
	}
	if want := `q/"client/1"/42`; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the key %s", err, want)
	}
}

func TestFormatKey(t *testing.T) {
	q, _ := queueKey("a/b", 7)
	i, _ := inboundKey("", 65535)
	for _, tc := range []struct {
		key  []byte
		want string
	}{
		{messageKey(42), "m/42"},
		{q, `q/"a/b"/7`},
		{i, `i/""/65535`},
		{sessionKey("c 1"), `s/"c 1"`},
		{retainedKey("$SYS/x"), `r/"$SYS/x"`},
		{keyMaxMsgID, "!maxmsgid"},
		{[]byte{'m', 1}, "0x6d01"},
		{[]byte{'q', 0, 9, 'a'}, "0x71000961"},
	} {
		if got := formatKey(tc.key); got != tc.want {
			t.Errorf("formatKey(%x) = %s, want %s", tc.key, got, tc.want)
		}
	}
}

// TestClientPrefixesDisjoint: the key prefix of one client's queue is
// never a prefix of another client's queue keys.
func TestClientPrefixesDisjoint(t *testing.T) {
	ids := []string{"", "a", "a/", "a/b", "ab", "b", "\x00", "\x00\x01", string(make([]byte, 256)), string(make([]byte, 255))}
	for _, a := range ids {
		pa, _ := clientPrefix(prefixQueue, a, 0)
		for _, b := range ids {
			if a == b {
				continue
			}
			kb, _ := queueKey(b, 0x0102030405060708)
			if bytes.HasPrefix(kb, pa) {
				t.Errorf("queue key of %q has the prefix of %q", b, a)
			}
		}
	}
	if _, err := clientPrefix(prefixQueue, string(make([]byte, 70000)), 0); err == nil {
		t.Error("client id of 70000 bytes accepted")
	}
}

// TestDecodeEntryV1: queue entries written before entries recorded their
// message's size still decode, with Size 0 (unknown); QueueEntries then
// reads the message for it (store_test.go).
func TestDecodeEntryV1(t *testing.T) {
	// version 1, MsgID 300, QoS 1, state Sent|retain, PacketID 7, SubIDs [5]
	v := []byte{1, 0xac, 0x02, 1, 0x81, 7, 1, 10}
	e, err := decodeEntry(v)
	if err != nil {
		t.Fatal(err)
	}
	want := store.QueueEntry{MsgID: 300, QoS: 1, Retain: true, State: store.EntrySent, PacketID: 7, SubIDs: []int{5}}
	if e.MsgID != want.MsgID || e.QoS != want.QoS || e.Retain != want.Retain || e.State != want.State ||
		e.PacketID != want.PacketID || len(e.SubIDs) != 1 || e.SubIDs[0] != 5 || e.Size != 0 {
		t.Errorf("decoded %+v, want %+v", e, want)
	}
	enc, err := encodeEntry(&store.QueueEntry{MsgID: 300, QoS: 1, Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	if e, err := decodeEntry(enc); err != nil || e.Size != 100 || enc[0] != entryV3 {
		t.Errorf("current encoding: version %d, decoded Size %d, %v; want version %d, Size 100", enc[0], e.Size, err, entryV3)
	}
}

// TestDecodeEntryV2: entries written before the queueing time was
// recorded decode with Queued zero; the current encoding keeps it to the
// second.
func TestDecodeEntryV2(t *testing.T) {
	// version 2, MsgID 300, QoS 1, state Queued, PacketID 0, no SubIDs,
	// Size 100, Group ""
	v := []byte{2, 0xac, 0x02, 1, 0, 0, 0, 100, 0}
	e, err := decodeEntry(v)
	if err != nil || e.MsgID != 300 || e.Size != 100 || !e.Queued.IsZero() {
		t.Fatalf("decoded %+v, %v; want MsgID 300, Size 100, no Queued", e, err)
	}
	at := time.Date(2026, 11, 25, 21, 30, 15, 999, time.UTC)
	enc, err := encodeEntry(&store.QueueEntry{MsgID: 300, QoS: 1, Size: 100, Queued: at})
	if err != nil {
		t.Fatal(err)
	}
	if e, err := decodeEntry(enc); err != nil || !e.Queued.Equal(at.Truncate(time.Second)) {
		t.Errorf("Queued %v (%v), want %v", e.Queued, err, at.Truncate(time.Second))
	}
}
