package brokertest

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Process is a weir binary running as a child process of a test: its
// output captured in a Log, its exit observed, with waiting for its TCP
// port, signals and memory figures. It is the one process runner of the
// tests: Child (the crash tests), cmd/weir's TestBinary and
// internal/armtest's emulated ARM binaries build on it.
//
// Process is safe for concurrent use.
type Process struct {
	cmd   *exec.Cmd
	log   *Log
	start time.Time
	done  chan struct{}    // closed once the process has exited
	state *os.ProcessState // set before done is closed
}

// ProcessOptions configure StartProcess. The zero value runs the program
// in the test's working directory with the test's environment.
type ProcessOptions struct {
	// Dir is the working directory; "" means the test's.
	Dir string
	// Env is added to the test's environment (later entries win).
	Env []string
	// Log receives the process's stdout and stderr; nil means a new Log.
	// Child passes one Log to all its runs.
	Log *Log
}

// StartProcess starts argv[0] with the arguments argv[1:]. The process is
// killed, if it still runs, when the test ends. It returns an error only
// if the program could not be started.
func StartProcess(t testing.TB, opts ProcessOptions, argv ...string) (*Process, error) {
	t.Helper()
	if len(argv) == 0 {
		return nil, errors.New("StartProcess: no program")
	}
	p := &Process{log: opts.Log, done: make(chan struct{})}
	if p.log == nil {
		p.log = &Log{}
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Dir = opts.Dir
	if len(opts.Env) > 0 {
		p.cmd.Env = append(os.Environ(), opts.Env...)
	}
	out, err := p.log.output()
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.cmd.Wait() // the exit status is in ProcessState
		p.state = p.cmd.ProcessState
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.Exited() {
			if err := p.Kill(10 * time.Second); err != nil {
				t.Error(err)
			}
		}
	})
	return p, nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Started is when the process was started.
func (p *Process) Started() time.Time { return p.start }

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// State is the exit state once the process has exited, else nil.
func (p *Process) State() *os.ProcessState {
	if !p.Exited() {
		return nil
	}
	return p.state
}

// ExitCode is the exit status once the process has exited; -1 while it
// runs or if a signal ended it.
func (p *Process) ExitCode() int {
	if st := p.State(); st != nil {
		return st.ExitCode()
	}
	return -1
}

// Log is where the process's output goes.
func (p *Process) Log() *Log { return p.log }

// Logs returns everything in the process's Log.
func (p *Process) Logs() string { return p.log.String() }

// ExitError is WaitAccept's error (and Child.TryStart's) when the process
// exited before its port accepted connections.
type ExitError struct {
	State *os.ProcessState
}

func (e *ExitError) Error() string {
	return "weir exited before accepting connections: " + e.State.String()
}

// ExitCode is the process's exit status, or -1 if a signal ended it.
func (e *ExitError) ExitCode() int { return e.State.ExitCode() }

// WaitAccept waits until addr accepts TCP connections and returns how long
// that took from the start of the process (so it includes opening the
// store and restoring sessions). It returns an *ExitError if the process
// exits first, another error if timeout passes first; the process is left
// running then.
func (p *Process) WaitAccept(addr string, timeout time.Duration) (time.Duration, error) {
	deadline := p.start.Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			took := time.Since(p.start)
			conn.Close()
			if p.Exited() { // what answered was not this process
				return 0, &ExitError{State: p.state}
			}
			return took, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("weir did not accept connections on %s within %v", addr, timeout)
		}
		select {
		case <-p.done:
			return 0, &ExitError{State: p.state}
		case <-time.After(2 * time.Millisecond): // poll interval
		}
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %v to pid %d: %w", sig, p.Pid(), err)
	}
	return nil
}

// Wait waits up to timeout for the process to exit and returns its exit
// status (-1 if a signal ended it); ok is false if it still runs.
func (p *Process) Wait(timeout time.Duration) (code int, ok bool) {
	select {
	case <-p.done:
		return p.ExitCode(), true
	case <-time.After(timeout):
		return 0, false
	}
}

// Kill sends SIGKILL (no deferred function, no flush runs in the process)
// and waits up to timeout for it to exit.
func (p *Process) Kill(timeout time.Duration) error {
	p.cmd.Process.Kill()
	if _, ok := p.Wait(timeout); !ok {
		return fmt.Errorf("weir (pid %d) still running %v after SIGKILL", p.Pid(), timeout)
	}
	return nil
}

// MemStatus returns the memory figures of /proc/<pid>/status of the
// running process (VmHWM, VmRSS, RssAnon, RssFile, …), in bytes. Under
// qemu-user they are the emulator's: the program, qemu and its translated
// code.
func (p *Process) MemStatus() (map[string]int64, error) {
	if p.Exited() {
		return nil, errors.New("weir is not running")
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || !strings.HasPrefix(name, "Vm") && !strings.HasPrefix(name, "Rss") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", name, rest, err)
		}
		st[name] = kb * 1024
	}
	return st, sc.Err()
}

// StableAddr returns 127.0.0.1:port with a port that is free and below
// the kernel's ephemeral port range, for a child that is killed and
// restarted on the same address: while it is down, no outgoing
// connection or ":0" listener of the tests running alongside can take
// that port (FreeAddr's ports can be: a restarted child then found its
// port in use, and a test dialling the old address reached something
// else). It falls back to FreeAddr.
func StableAddr(t testing.TB) string {
	t.Helper()
	low := 32768 // Linux's default ip_local_port_range starts here
	if data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(data)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	if low > 12000 {
		for range 50 {
			port := 10000 + rand.IntN(low-11000) // 10000 .. low-1000
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
			if err != nil {
				continue
			}
			addr := l.Addr().String()
			l.Close()
			return addr
		}
	}
	return FreeAddr(t)
}

// FreeAddr returns 127.0.0.1:port with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// Log collects the output of child processes, possibly of several runs
// one after the other. It is safe for concurrent use.
//
// It is a file (unlinked, in the temporary directory) that the children
// write to directly, not through a pipe and a copying goroutine: what a
// child wrote before it accepted connections is in the Log once
// WaitAccept returns, so a test can look for a start-up line at once.
type Log struct {
	mu      sync.Mutex
	f       *os.File
	err     error // creating the file failed
	runFrom int64 // offset where the last run starts
}

// file returns the Log's file, created at first use. Called with l.mu held.
func (l *Log) file() (*os.File, error) {
	if l.f != nil || l.err != nil {
		return l.f, l.err
	}
	tmp, err := os.CreateTemp("", "weir-test-log-")
	if err != nil {
		l.err = err
		return nil, err
	}
	// Appending, so that the test's lines and the child's do not overwrite
	// each other; unlinked, so that nothing is left behind.
	l.f, l.err = os.OpenFile(tmp.Name(), os.O_RDWR|os.O_APPEND, 0)
	tmp.Close()
	os.Remove(tmp.Name())
	return l.f, l.err
}

// output is what a child's stdout and stderr are set to.
func (l *Log) output() (*os.File, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.file()
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := l.file()
	if err != nil {
		return 0, err
	}
	return f.Write(p)
}

// Printf adds a line of the test's own (a header, a marker) to the log.
func (l *Log) Printf(format string, args ...any) {
	fmt.Fprintf(l, format, args...)
}

// readLocked returns the bytes of the log from offset from on.
func (l *Log) readLocked(from int64) []byte {
	f, err := l.file()
	if err != nil {
		return []byte(fmt.Sprintf("(no log: %v)", err))
	}
	st, err := f.Stat()
	if err != nil || st.Size() <= from {
		return nil
	}
	b := make([]byte, st.Size()-from)
	n, _ := f.ReadAt(b, from)
	return b[:n]
}

// StartRun marks the start of a new run, which LastRun returns, with the
// line "=== title".
func (l *Log) StartRun(title string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := l.file()
	if err != nil {
		return
	}
	st, err := f.Stat()
	if err != nil {
		return
	}
	if size := st.Size(); size > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, size-1); err == nil && last[0] != '\n' {
			f.Write([]byte("\n")) // a line cut short by SIGKILL
		}
	}
	if st, err = f.Stat(); err == nil {
		l.runFrom = st.Size()
	}
	fmt.Fprintf(f, "=== %s\n", title)
}

// String returns everything logged.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.readLocked(0))
}

// LastRun returns what was logged since the last StartRun (everything if
// there was none).
func (l *Log) LastRun() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.readLocked(l.runFrom))
}

// Tail returns the last n bytes logged, marked with a leading "…" if that
// is not all.
func (l *Log) Tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.readLocked(0)
	if len(b) > n {
		return "…" + string(b[len(b)-n:])
	}
	return string(b)
}
