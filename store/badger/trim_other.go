//go:build !linux

package badgerstore

import "sync"

// trimmer is Linux-only (trim_linux.go): elsewhere the resident pages of
// the store's mappings are left to the kernel.
type trimmer struct{}

func startTrimmer(string, int64, *counters, <-chan struct{}, *sync.WaitGroup) *trimmer { return nil }

func (t *trimmer) check() {}
