//go:build unix

package brokertest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// Child runs the real weir binary as a child process (a Process per start),
// for tests that must
// kill it (SIGKILL: no deferred function, no Close, no flush runs), stop it
// gracefully (SIGTERM), damage its data directory and start it again.
//
// The binary is built once per test binary (BuildWeir). Each start writes
// a configuration file with the TCP listener on 127.0.0.1 at the child's
// port (chosen by listening on :0 and closing; kept across restarts so that
// clients reconnect to the same address), the WebSocket listener disabled,
// and the options' data directory, durability and log level. The child's
// stderr (its logs) and stdout are captured: Logs returns them, and they
// are printed when the test fails.
//
// A Child is safe for concurrent use: clients in other goroutines may call
// Addr while the test kills and restarts it.
type Child struct {
	t    testing.TB
	bin  string
	opts ChildOptions

	// DataDir is the child's data directory, the same for every start.
	DataDir string
	// ConfigPath is the configuration file written for the last start.
	ConfigPath string

	logs   Log // of all runs
	cfgDir string

	mu   sync.Mutex
	addr string   // 127.0.0.1:port
	proc *Process // of the last start
	runs int
}

// ChildOptions configure a Child. The zero value runs the defaults of the
// weir binary with durability process in a new temporary directory.
type ChildOptions struct {
	// DataDir is the data directory; "" means a new t.TempDir().
	DataDir string
	// Durability is none, process or sync; "" means process.
	Durability string
	// LogLevel is debug, info, warn or error; "" means info.
	LogLevel string
	// BaseConfig is a YAML configuration file (for instance under
	// testdata/configs/) to start from; the harness then sets listeners,
	// data_dir, durability and log.level over it.
	BaseConfig string
	// Config holds top-level keys set over BaseConfig's (not listeners,
	// data_dir, durability or log), for example {"profile": "small"}.
	Config map[string]any
	// Limits are set under limits: over BaseConfig's, for example
	// {"max_queued_messages": 1000000}.
	Limits map[string]any
	// StartTimeout bounds how long Start waits for the port to accept
	// connections; 0 means 30 seconds.
	StartTimeout time.Duration
	// Env is added to the child's environment (GOMEMLIMIT=…,
	// GODEBUG=gctrace=1, …).
	Env []string
}

// NewChild prepares a weir child process; call Start to run it. The child
// is killed, if it still runs, when the test ends. With -short, or without
// the go command to build weir, the test is skipped.
func NewChild(t testing.TB, opts ChildOptions) *Child {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the weir binary in a child process (skipped with -short)")
	}
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	if opts.Durability == "" {
		opts.Durability = "process"
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "info"
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 30 * time.Second
	}
	c := &Child{t: t, bin: BuildWeir(t), opts: opts, DataDir: opts.DataDir, cfgDir: t.TempDir()}
	c.addr = StableAddr(t)
	t.Cleanup(func() {
		if c.Running() {
			c.kill()
		}
		if t.Failed() {
			t.Logf("weir child logs (last 256 KiB):\n%s", c.logs.Tail(256<<10))
		}
	})
	return c
}

// StartChild is NewChild followed by Start.
func StartChild(t testing.TB, opts ChildOptions) *Child {
	t.Helper()
	c := NewChild(t, opts)
	c.Start()
	return c
}

var weirBuild struct {
	once sync.Once
	path string
	err  error
}

// BuildWeir builds cmd/weir once per test binary (not with -race: the
// tests that run it measure it, and its races are found by the in-process
// tests) and returns the path of the executable. It is put next to the
// test binary when that runs from go test's work directory (removed by go
// test), else in a new temporary directory that is left behind.
func BuildWeir(t testing.TB) string {
	t.Helper()
	weirBuild.once.Do(func() { weirBuild.path, weirBuild.err = buildWeir() })
	if errors.Is(weirBuild.err, exec.ErrNotFound) {
		t.Skipf("cannot build weir: %v", weirBuild.err)
	}
	if weirBuild.err != nil {
		t.Fatalf("building weir: %v", weirBuild.err)
	}
	return weirBuild.path
}

func buildWeir() (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	dir := ""
	if exe, err := os.Executable(); err == nil {
		d := filepath.Dir(exe)
		if strings.HasPrefix(filepath.Base(filepath.Dir(d)), "go-build") {
			dir = d
		}
	}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "weir-child-"); err != nil {
			return "", err
		}
	}
	bin := filepath.Join(dir, "weir-child")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/weirmq/weir/cmd/weir")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// Addr is the host:port of the child's TCP listener.
func (c *Child) Addr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addr
}

// Process is the process of the last start, nil before the first.
func (c *Child) Process() *Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proc
}

// Pid is the process id of the last start.
func (c *Child) Pid() int {
	if p := c.Process(); p != nil {
		return p.Pid()
	}
	return 0
}

// Running reports whether the child process of the last start has not
// exited yet.
func (c *Child) Running() bool {
	p := c.Process()
	return p != nil && !p.Exited()
}

// Start starts the child and waits until its port accepts connections; it
// fails the test if the child exits first or the port does not accept
// within StartTimeout. It returns how long that took: from starting the
// process to the port accepting, which includes opening the store and
// loading the sessions.
func (c *Child) Start() time.Duration {
	c.t.Helper()
	d, err := c.TryStart()
	if err != nil {
		c.t.Fatalf("starting weir: %v\nlogs of this run:\n%s", err, c.RunLogs())
	}
	return d
}

// Restart starts the child again, on the same data directory and address,
// after Kill or Term (see Start).
func (c *Child) Restart() time.Duration {
	c.t.Helper()
	if c.Running() {
		c.t.Fatal("Restart: weir is still running; Kill or Term it first")
	}
	return c.Start()
}

// TryStart is Start that returns an error instead of failing the test: an
// *ExitError if the child exited before its port accepted (a refusal to
// start, which tests of damaged data directories expect), another error
// if it did not accept in time (the child is then killed).
func (c *Child) TryStart() (time.Duration, error) {
	c.t.Helper()
	if c.Running() {
		return 0, errors.New("weir is already running")
	}
	// The port is kept across restarts; if another process took it
	// meanwhile, the child fails to listen and a new port is chosen.
	for attempt := 0; ; attempt++ {
		d, err := c.startOnce()
		var ee *ExitError
		if errors.As(err, &ee) && attempt < 3 && strings.Contains(c.RunLogs(), "address already in use") {
			c.mu.Lock()
			c.addr = StableAddr(c.t)
			c.mu.Unlock()
			continue
		}
		return d, err
	}
}

func (c *Child) startOnce() (time.Duration, error) {
	path, err := c.writeConfig()
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.runs++
	run := c.runs
	addr := c.addr
	c.mu.Unlock()
	c.logs.StartRun(fmt.Sprintf("run %d", run))
	p, err := StartProcess(c.t, ProcessOptions{Env: c.opts.Env, Log: &c.logs}, c.bin, "-config", path)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.proc, c.ConfigPath = p, path
	c.mu.Unlock()
	c.logs.Printf("=== pid %d, config %s, listening on %s\n", p.Pid(), path, addr)
	took, err := p.WaitAccept(addr, c.opts.StartTimeout)
	var ee *ExitError
	if err != nil && !errors.As(err, &ee) {
		c.kill()
	}
	return took, err
}

// writeConfig writes the configuration file for the next start.
func (c *Child) writeConfig() (string, error) {
	cfg := map[string]any{}
	if c.opts.BaseConfig != "" {
		data, err := os.ReadFile(c.opts.BaseConfig)
		if err != nil {
			return "", err
		}
		if err := yaml.Unmarshal(data, &cfg); err != nil {
			return "", fmt.Errorf("%s: %w", c.opts.BaseConfig, err)
		}
		if cfg == nil {
			cfg = map[string]any{}
		}
	}
	for k, v := range c.opts.Config {
		cfg[k] = v
	}
	cfg["listeners"] = map[string]any{"tcp": c.Addr(), "websocket": "-"}
	cfg["data_dir"] = c.DataDir
	cfg["durability"] = c.opts.Durability
	logCfg, _ := cfg["log"].(map[string]any)
	if logCfg == nil {
		logCfg = map[string]any{}
	}
	logCfg["level"] = c.opts.LogLevel
	cfg["log"] = logCfg
	if len(c.opts.Limits) > 0 {
		limits, _ := cfg["limits"].(map[string]any)
		if limits == nil {
			limits = map[string]any{}
		}
		for k, v := range c.opts.Limits {
			limits[k] = v
		}
		cfg["limits"] = limits
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	path := filepath.Join(c.cfgDir, "weir.yaml")
	return path, os.WriteFile(path, data, 0o644)
}

// Kill sends SIGKILL and waits until the child has exited.
func (c *Child) Kill() {
	c.t.Helper()
	if !c.Running() {
		c.t.Fatal("Kill: weir is not running")
	}
	c.kill()
}

func (c *Child) kill() {
	if err := c.Process().Kill(10 * time.Second); err != nil {
		c.t.Error(err)
	}
	c.logs.Printf("=== killed (SIGKILL)\n")
}

// Term sends SIGTERM and waits (at most 20 seconds: the binary's graceful
// shutdown takes at most 10) for the child to exit; it fails the test
// unless the exit status is 0.
func (c *Child) Term() {
	c.t.Helper()
	if code := c.Signal(syscall.SIGTERM, 20*time.Second); code != 0 {
		c.t.Fatalf("weir exited with status %d after SIGTERM, want 0\nlogs of this run:\n%s", code, c.RunLogs())
	}
}

// Signal sends sig and waits up to timeout for the child to exit; it
// returns the exit status (-1 if a signal ended it). It fails the test if
// the child does not exit in time.
func (c *Child) Signal(sig os.Signal, timeout time.Duration) int {
	c.t.Helper()
	if !c.Running() {
		c.t.Fatal("Signal: weir is not running")
	}
	p := c.Process()
	if err := p.Signal(sig); err != nil {
		c.t.Fatal(err)
	}
	code, ok := p.Wait(timeout)
	if !ok {
		c.kill()
		c.t.Fatalf("weir still running %v after %v; killed\nlogs of this run:\n%s", timeout, sig, c.RunLogs())
	}
	return code
}

// Wait waits up to timeout for the child to exit on its own and returns
// its exit status; ok is false if it is still running.
func (c *Child) Wait(timeout time.Duration) (code int, ok bool) {
	p := c.Process()
	if p == nil {
		return 0, false
	}
	return p.Wait(timeout)
}

// ExitCode is the exit status of the last start once it exited (-1 if a
// signal ended it, or if it still runs).
func (c *Child) ExitCode() int {
	if p := c.Process(); p != nil {
		return p.ExitCode()
	}
	return -1
}

// PeakRSS returns the child's peak resident set size in bytes: VmHWM from
// /proc/<pid>/status while it runs, the maximum RSS of its rusage once it
// has exited. Pages of memory-mapped files (Badger maps its logs and
// tables) count as resident too; MemStatus tells them apart.
func (c *Child) PeakRSS() (int64, error) {
	p := c.Process()
	if p == nil {
		return 0, errors.New("weir was never started")
	}
	if state := p.State(); state != nil {
		if ru, ok := state.SysUsage().(*syscall.Rusage); ok {
			return int64(ru.Maxrss) * 1024, nil // KiB on Linux
		}
		return 0, errors.New("no rusage for the exited child")
	}
	st, err := c.MemStatus()
	if err != nil {
		return 0, err
	}
	hwm, ok := st["VmHWM"]
	if !ok {
		return 0, errors.New("no VmHWM in /proc status")
	}
	return hwm, nil
}

// MemStatus returns the memory figures of /proc/<pid>/status of the
// running child (VmHWM, VmRSS, RssAnon, RssFile, …), in bytes.
func (c *Child) MemStatus() (map[string]int64, error) {
	p := c.Process()
	if p == nil {
		return nil, errors.New("weir is not running")
	}
	return p.MemStatus()
}

// Logs returns everything the child wrote, over all its runs, each run
// introduced by a "=== run N" line.
func (c *Child) Logs() string { return c.logs.String() }

// RunLogs returns what the child wrote in its last run only.
func (c *Child) RunLogs() string { return c.logs.LastRun() }
