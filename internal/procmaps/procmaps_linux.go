//go:build linux

// Package procmaps lists the process's memory mappings (/proc/self/maps)
// and drops the resident pages of file mappings. It is Linux-only; the
// callers decide which mappings are safe to drop.
package procmaps

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// Mapping is one line of /proc/self/maps.
type Mapping struct {
	Start, End uintptr
	Perms      []byte // "r-xp" and so on
	Path       []byte // "" for anonymous mappings
}

// Walk calls fn for each mapping. The slices of a Mapping are valid only
// during the call.
func Walk(fn func(m Mapping)) error {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<10)
	for sc.Scan() {
		// start-end perms offset dev inode   path
		fields := bytes.Fields(sc.Bytes())
		if len(fields) < 5 {
			continue
		}
		dash := bytes.IndexByte(fields[0], '-')
		if dash < 0 {
			continue
		}
		start, err1 := strconv.ParseUint(string(fields[0][:dash]), 16, 64)
		end, err2 := strconv.ParseUint(string(fields[0][dash+1:]), 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		m := Mapping{Start: uintptr(start), End: uintptr(end), Perms: fields[1]}
		if len(fields) >= 6 {
			// The path is the rest of the line (it may contain spaces,
			// and " (deleted)" may follow it).
			line := sc.Bytes()
			m.Path = line[bytes.Index(line, fields[5]):]
		}
		fn(m)
	}
	return sc.Err()
}

// DropResident drops the pages of m from the process's page tables
// (madvise MADV_DONTNEED) and reports whether it could. Only for file
// mappings whose pages are shared with the file, or private and never
// written: for any other memory it destroys the data.
func DropResident(m Mapping) bool {
	_, _, errno := syscall.Syscall(syscall.SYS_MADVISE, m.Start, m.End-m.Start, syscall.MADV_DONTNEED)
	return errno == 0
}
