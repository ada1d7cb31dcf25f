package badgerstore

import (
	"testing"

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
