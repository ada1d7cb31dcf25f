//go:build linux

package badgerstore

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/dgraph-io/ristretto/v2/z"
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

const trimInterval = 20 * time.Millisecond

type trimmer struct {
	prefix []byte // the store directory's absolute path with a trailing slash
	limit  int64
	page   int64
	buf    []byte
	stats  *counters
}

// startTrimmer starts the trimmer for dir unless limit is negative; it
// runs until stop is closed, and wg.Done is called when it has stopped.
func startTrimmer(dir string, limit int64, stats *counters, stop <-chan struct{}, wg *sync.WaitGroup) {
	if limit < 0 {
		return
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
		tick := time.NewTicker(trimInterval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if t.shared() > t.limit {
					t.trim()
				}
			}
		}
	}()
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
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(t.buf[:0], 64<<10)
	for sc.Scan() {
		// start-end perms offset dev inode   path
		line := sc.Bytes()
		i := bytes.IndexByte(line, '/')
		if i < 0 || !bytes.HasPrefix(line[i:], t.prefix) {
			continue
		}
		dash := bytes.IndexByte(line, '-')
		sp := bytes.IndexByte(line, ' ')
		if dash < 0 || sp < dash {
			continue
		}
		start, err1 := strconv.ParseUint(string(line[:dash]), 16, 64)
		end, err2 := strconv.ParseUint(string(line[dash+1:sp]), 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, uintptr(start), uintptr(end-start), syscall.MADV_DONTNEED); errno == 0 {
			t.stats.trims.Add(1)
		}
	}
}
