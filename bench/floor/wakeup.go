//go:build linux

package main

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"syscall"
	"time"
	"unsafe"
)

// probeWakeups sleeps period at a time for d and prints how late the
// wake-ups were. The sleeps are made with RawSyscall on a locked thread,
// so the Go scheduler adds nothing: what is measured is the kernel's timer
// and the CPU's other tasks.
func probeWakeups(d, period time.Duration) error {
	if period <= 0 || period > time.Second {
		return errors.New("-period must be in (0, 1s]")
	}
	runtime.LockOSThread()
	n := int(d / period)
	late := make([]time.Duration, 0, n)
	ts := syscall.NsecToTimespec(int64(period))
	for range n {
		t := time.Now()
		syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
		late = append(late, time.Since(t)-period)
	}
	slices.Sort(late)
	q := func(p float64) float64 { return float64(late[int(p*float64(len(late)-1))]) / 1e3 }
	fmt.Printf("wake-ups: %d sleeps of %v; late by µs: p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
		len(late), period, q(0.5), q(0.99), q(0.999), q(1))
	return nil
}
