/*
 * SPDX-FileCopyrightText: © Hypermode Inc. <hello@hypermode.com>
 * SPDX-License-Identifier: Apache-2.0
 */

package z

import (
	"os"
	"sync"
)

// MapLock is held for reading around every munmap and mremap this package
// does. A program that drops the pages of these mappings from its page
// tables (madvise MADV_DONTNEED over the ranges it finds in
// /proc/self/maps) holds it for writing meanwhile, so that no range it
// found can be unmapped — and its addresses reused for other memory —
// before it is done. (Weir patch, see PATCHED.md.)
var MapLock sync.RWMutex

// Mmap uses the mmap system call to memory-map a file. If writable is true,
// memory protection of the pages is set so that they may be written to as well.
func Mmap(fd *os.File, writable bool, size int64) ([]byte, error) {
	return mmap(fd, writable, size)
}

// Munmap unmaps a previously mapped slice.
func Munmap(b []byte) error {
	MapLock.RLock() // Weir patch, see MapLock
	defer MapLock.RUnlock()
	return munmap(b)
}

// Madvise uses the madvise system call to give advise about the use of memory
// when using a slice that is memory-mapped to a file. Set the readahead flag to
// false if page references are expected in random order.
func Madvise(b []byte, readahead bool) error {
	return madvise(b, readahead)
}

// Msync would call sync on the mmapped data.
func Msync(b []byte) error {
	return msync(b)
}
