//go:build linux

package main

import (
	"bytes"
	"os"
	"time"

	"github.com/weirmq/weir/internal/procmaps"
)

// Starting up runs code that never runs again (package initialisation,
// configuration, opening the store), and the kernel maps the executable's
// pages around each page touched (fault-around and read-ahead): an idle
// broker shows most of its 12 MB binary as resident. A while after
// start-up, releaseStartPages drops the executable's read-only mappings
// (code and read-only data) from the process's page tables; what keeps
// running maps its pages again on first use, from the page cache. Only
// mappings that are not writable are touched: their pages are unmodified
// copies of the file, so nothing is lost (MADV_DONTNEED on a writable
// private mapping would discard data). The executable is never unmapped,
// so no range found can be reused for other memory meanwhile.
const startPagesDelay = time.Second

func releaseStartPagesLater() {
	time.AfterFunc(startPagesDelay, func() { releaseStartPages() })
}

// releaseStartPages returns the bytes of mappings it released.
func releaseStartPages() int64 {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0
	}
	var total int64
	procmaps.Walk(func(m procmaps.Mapping) {
		if string(m.Path) == exe && bytes.IndexByte(m.Perms, 'w') < 0 && procmaps.DropResident(m) {
			total += int64(m.End - m.Start)
		}
	})
	return total
}
