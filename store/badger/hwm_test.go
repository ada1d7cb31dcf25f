package badgerstore

import (
	"os"
	"path/filepath"
	"testing"
)

// TestHighWaterMarkDetectsLoss: when Badger recovers fewer messages than
// the high-water mark says were committed, Open counts the lost ids and
// continues message ids above the mark; an intact store reports nothing.
func TestHighWaterMarkDetectsLoss(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir})
	for id := uint64(1); id <= 5; id++ {
		mustCommit(t, s, publish("c", id))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, Options{Dir: dir})
	if st := s.Stats(); st.LostMessageIDs != 0 || s.MaxMessageID() != 5 {
		t.Fatalf("intact store: %d ids lost, max id %d; want 0 and 5", st.LostMessageIDs, s.MaxMessageID())
	}
	// Pretend messages up to 9 were committed (what a damaged .mem log
	// would look like to Open).
	if err := s.hwm.note(9); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, Options{Dir: dir})
	if st := s.Stats(); st.LostMessageIDs != 4 || s.MaxMessageID() != 9 {
		t.Fatalf("after a loss: %d ids lost, max id %d; want 4 and 9", st.LostMessageIDs, s.MaxMessageID())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A damaged mark is a warning, not an error, and is rewritten.
	if err := os.WriteFile(filepath.Join(dir, hwmFile), []byte("garbage garbage !"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, Options{Dir: dir})
	if st := s.Stats(); st.LostMessageIDs != 0 || s.MaxMessageID() != 9 {
		t.Fatalf("damaged mark: %d ids lost, max id %d; want 0 and 9", st.LostMessageIDs, s.MaxMessageID())
	}
	if _, recorded, found, err := openHWM(dir); !found || recorded != 9 || err != nil {
		t.Errorf("mark after reopening: %d found %v (%v), want 9 rewritten", recorded, found, err)
	}
}
