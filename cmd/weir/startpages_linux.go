//go:build linux

package main

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"
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
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0
	}
	defer f.Close()
	var total int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := bytes.Fields(sc.Bytes())
		if len(fields) < 6 || string(fields[5]) != exe || bytes.IndexByte(fields[1], 'w') >= 0 {
			continue
		}
		r := fields[0]
		dash := bytes.IndexByte(r, '-')
		if dash < 0 {
			continue
		}
		start, err1 := strconv.ParseUint(string(r[:dash]), 16, 64)
		end, err2 := strconv.ParseUint(string(r[dash+1:]), 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, uintptr(start), uintptr(end-start), syscall.MADV_DONTNEED); errno == 0 {
			total += int64(end - start)
		}
	}
	return total
}
