//go:build linux

package table

import "golang.org/x/sys/unix"

// dropResident drops the pages of a table's shared file mapping from the
// process's page tables (Weir patch). Nothing is lost: the pages stay in
// the page cache, dirty ones are still written back, and the next access
// maps them again.
func dropResident(b []byte) {
	if len(b) > 0 {
		_ = unix.Madvise(b, unix.MADV_DONTNEED)
	}
}
