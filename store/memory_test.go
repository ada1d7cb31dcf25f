package store_test

import (
	"testing"

	"github.com/weirmq/weir/store"
	"github.com/weirmq/weir/store/storetest"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T, string) store.Store {
		return store.NewMemory()
	}, storetest.Options{})
}

// The memory store is what storetest.MessageCounter was made for: make sure
// it keeps implementing it, or the suite silently checks less.
var _ storetest.MessageCounter = (*store.Memory)(nil)
