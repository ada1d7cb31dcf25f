package broker

import (
	"syscall"
	"unsafe"
)

// sysRead and sysWrite are read(2) and write(2) on a non-blocking socket,
// made without telling the Go runtime that the thread may block (they
// never do). syscall.Read and Write do tell it: they wake the runtime's
// monitor thread (sysmon) when it sleeps, which it does whenever the
// broker goes idle, so a paced load that goes idle between messages paid
// for a sysmon wake-up, its context switches and its polling, on the
// broker's core for every burst (docs/benchmarks.md, "Paced CPU and
// latency: the floor"). The price: the runtime cannot hand this thread's P
// to another goroutine during the call, which matters only for a long
// write; the kernel copies at most a socket buffer's worth (a few MiB at
// most, usually under 64 KiB here: flush.go gives held buffers past
// maxHeldBytes to a writer goroutine, which uses conn.Write).
func sysRead(fd int, b []byte) (int, error) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(p), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

func sysWrite(fd int, b []byte) (int, error) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(p), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}
