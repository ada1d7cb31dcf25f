//go:build linux

package badgerstore

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/dgraph-io/ristretto/v2/z"

	"github.com/weirmq/weir/internal/procmaps"
)

// Badger reads and writes every file of the store through shared memory
// mappings. A page of such a mapping that the process touched stays in
// its resident set (RssFile, and the peak VmHWM) until the kernel
// reclaims it under memory pressure: opening or draining a store of a few
// hundred MiB shows that much RSS although it is page cache that any
// other use of the memory would evict. On a small board that number is
// what an operator (or a monitoring rule) reads as the broker's size, and
// a cgroup memory limit counts it too.
//
// The trimmer keeps it bounded: every trimInterval it reads the resident
// shared pages from /proc/self/statm and, over MappedMemoryLimit, drops
// the pages of the mappings of files in the store's directory from the
// process's page tables (madvise MADV_DONTNEED). For a shared file mapping
// that loses nothing: dirty pages stay dirty in the page cache and are
// written back as before, and the next access maps the page again from
// the page cache (a minor fault), or reads it from the file if the kernel
// evicted it meanwhile. MADV_DONTNEED on any other memory would destroy
// it, so the trimmer holds z.MapLock (our patch to ristretto, through
// which Badger maps and unmaps) while it works: no mapping it found can
// be unmapped and its addresses reused before it is done.

// The trimmer checks every trimInterval while resident mapped memory
// grows, and backs off to trimIdleInterval (doubling) while it does not,
// so that an idle broker is not woken 50 times a second (4 is enough to
// catch a burst of reads early).
const (
	trimInterval     = 20 * time.Millisecond
	trimIdleInterval = 250 * time.Millisecond
)

type trimmer struct {
	prefix []byte // the store directory's absolute path with a trailing slash
	limit  int64
	page   int64
	buf    []byte
	stats  *counters
}

// startTrimmer starts the trimmer for dir unless limit is negative (then
// it returns nil); it runs until stop is closed, and wg.Done is called
// when it has stopped. Long sequential reads also call check as they go:
// they can map pages faster than any polling interval.
func startTrimmer(dir string, limit int64, stats *counters, stop <-chan struct{}, wg *sync.WaitGroup) *trimmer {
	if limit < 0 {
		return nil
	}
	abs, err := filepath.Abs(dir)
	if err == nil {
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			abs = real
		}
	}
	t := &trimmer{prefix: []byte(abs + string(filepath.Separator)), limit: limit,
		page: int64(os.Getpagesize()), stats: stats}
	wg.Add(1)
	go func() {
		defer wg.Done()
		interval := trimInterval
		timer := time.NewTimer(interval)
		defer timer.Stop()
		var last int64
		for {
			select {
			case <-stop:
				return
			case <-timer.C:
			}
			cur := t.shared()
			if cur > t.limit {
				t.trim()
				cur = t.shared()
			}

			if cur > last+int64(t.page)*64 {
				interval = trimInterval // growing: look often
			} else {
				interval = min(2*interval, trimIdleInterval)
			}
			last = cur
			timer.Reset(interval)
		}
	}()
	return t
}

// check trims if the resident mapped memory is over the limit. Nil-safe.
func (t *trimmer) check() {
	if t != nil && t.shared() > t.limit {
		t.trim()
	}
}

// shared returns the process's resident shared memory (file-backed pages
// and shared memory) in bytes, or 0 if it cannot be read.
func (t *trimmer) shared() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 3 {
		return 0
	}
	n, _ := strconv.ParseInt(string(f[2]), 10, 64)
	return n * t.page
}

// trim drops the resident pages of every mapping of a file in the store's
// directory.
func (t *trimmer) trim() {
	z.MapLock.Lock()
	defer z.MapLock.Unlock()
	procmaps.Walk(func(m procmaps.Mapping) {
		if bytes.HasPrefix(m.Path, t.prefix) && procmaps.DropResident(m) {
			t.stats.trims.Add(1)
		}
	})
}
