//go:build !linux

package badgerstore

import "sync"

// startTrimmer is Linux-only (trim_linux.go): elsewhere the resident pages
// of the store's mappings are left to the kernel.
func startTrimmer(string, int64, *counters, <-chan struct{}, *sync.WaitGroup) {}
