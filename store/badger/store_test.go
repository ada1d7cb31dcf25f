package badgerstore

import (
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/weirmq/weir/store"
	"github.com/weirmq/weir/store/storetest"
)

func TestConformance(t *testing.T) {
	for _, d := range []Durability{Process, Sync} {
		t.Run(d.String(), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, dir string) store.Store {
				s, err := Open(Options{Dir: dir, Durability: d, Logger: testLogger(t)})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}, storetest.Options{Persistent: true})
		})
	}
}

var _ storetest.MessageCounter = (*Store)(nil)

// TestQueueEntriesV1Size: for an entry written before entries recorded
// their message's size, QueueEntries reads the message for the size.
func TestQueueEntriesV1Size(t *testing.T) {
	s := openTest(t, Options{})
	m := msg(1)
	mustCommit(t, s, publish("c", 1))
	key, _ := queueKey("c", 1)
	// version 1: MsgID 1, QoS 1, state queued, no packet id, no SubIDs
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(key, []byte{valueV1, 1, 1, 0, 0, 0}) }); err != nil {
		t.Fatal(err)
	}
	var got []store.QueueEntry
	if err := s.QueueEntries("c", 0, func(e store.QueueEntry) bool { got = append(got, e); return true }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Seq != 1 || got[0].MsgID != 1 || got[0].Size != m.Size() {
		t.Errorf("QueueEntries: %+v, want Seq 1, MsgID 1, Size %d", got, m.Size())
	}
}
