//go:build linux

package badgerstore

import (
	"testing"

	"github.com/weirmq/weir/store"
)

// TestTrimmerDropsMappedPages: over MappedMemoryLimit, reading the store
// trims its mappings (counted in Stats().Trims), and the data read stays
// intact.
func TestTrimmerDropsMappedPages(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir})
	for id := uint64(1); id <= 2000; id++ {
		mustCommit(t, s, publish("c", id))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, Options{Dir: dir, MappedMemoryLimit: 1}) // any resident page is over
	n := 0
	if err := s.Queue("c", 0, func(e store.QueueEntry, m *store.Message) bool {
		if want := msg(e.MsgID); string(m.Payload) != string(want.Payload) {
			t.Fatalf("entry %d: payload %q, want %q", e.Seq, m.Payload, want.Payload)
		}
		n++
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if n != 2000 {
		t.Fatalf("read %d entries, want 2000", n)
	}
	if s.Stats().Trims == 0 {
		t.Error("no mapping was trimmed")
	}
}
