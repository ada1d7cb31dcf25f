package armtest

// The ARM release binaries, executed under qemu-user as real broker
// processes with a Badger store, driven by the mosquitto command-line
// clients.
//
// Environment:
//
//	WEIR_ARM_TEST=1  run (`make test-arm` sets it); otherwise the test skips.
//	WEIR_ARM_BIN=DIR directory holding weir-linux-arm64 and
//	                 weir-linux-armv7 (`make test-arm` builds them there);
//	                 unset: the test builds them.
//	WEIR_LONG=1      also fill a store with 100,000 queued messages and
//	                 measure the start-up with it (about a minute a target).
//	WEIR_NATIVE=1    also run weir-linux-amd64 natively, as a reference.

import (
	"bufio"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/weirmq/weir/internal/brokertest"
)

// target is a release binary and the emulator that runs it.
type target struct {
	name    string // dist/weir-linux-<name>
	goarch  string
	goarm   string
	qemu    string
	cpu     string // the emulated CPU: the oldest board the binary is for
	machine elf.Machine
	arch    string // what -version prints as GOOS/GOARCH
}

var targets = []target{
	// Pi 3, Pi Zero 2 W (and later) with a 64-bit OS.
	{name: "arm64", goarch: "arm64", qemu: "qemu-aarch64", cpu: "cortex-a53", machine: elf.EM_AARCH64, arch: "linux/arm64"},
	// Pi 2 (and later) with a 32-bit OS.
	{name: "armv7", goarch: "arm", goarm: "7", qemu: "qemu-arm", cpu: "cortex-a7", machine: elf.EM_ARM, arch: "linux/arm"},
	// Pi Zero / Zero W, Pi 1.
	{name: "armv6", goarch: "arm", goarm: "6", qemu: "qemu-arm", cpu: "arm1176", machine: elf.EM_ARM, arch: "linux/arm"},
}

// native is the amd64 binary run without emulation, a reference for the
// figures (WEIR_NATIVE=1 with WEIR_ARM_BIN=dist after `make dist`).
var native = target{name: "amd64", goarch: "amd64", machine: elf.EM_X86_64, arch: "linux/amd64"}

const (
	startTimeout  = 90 * time.Second // qemu is slow; a loaded CI machine more so
	stopTimeout   = 30 * time.Second // weir's own shutdown timeout is 10 s
	clientTimeout = 60 * time.Second
	idleWait      = 2 * time.Second // before reading the idle RSS
	fillMessages  = 100_000
)

// figures are what one target measured; printed at the end.
type figures struct {
	target                string
	binBytes              int64
	startEmpty, startWarm time.Duration // exec to accepting TCP connections
	openEmpty             string        // Badger open time the broker logged
	rssDefaultKB          int64         // VmRSS of the qemu process, idle
	rssSmallKB            int64         // the same with profile: small
	start100k             time.Duration
	open100k              string
	rss100kKB             int64
	fill100k              time.Duration
}

func TestEmulated(t *testing.T) {
	if os.Getenv("WEIR_ARM_TEST") != "1" {
		t.Skip("WEIR_ARM_TEST=1 is not set: `make test-arm` (part of `make test`) runs the ARM binaries under qemu-user")
	}
	for _, tool := range []string{"mosquitto_pub", "mosquitto_sub", "stdbuf"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install the Debian packages mosquitto-clients and coreutils (`make deps` does)", tool)
		}
	}
	long := os.Getenv("WEIR_LONG") == "1"
	all := targets
	if os.Getenv("WEIR_NATIVE") == "1" && runtime.GOARCH == "amd64" {
		all = append(all[:len(all):len(all)], native)
	}
	binDir := os.Getenv("WEIR_ARM_BIN")
	if binDir == "" {
		binDir = buildTargets(t, all)
	}

	var figs []*figures
	for _, tg := range all {
		f := &figures{target: tg.name}
		figs = append(figs, f)
		t.Run(tg.name, func(t *testing.T) {
			bin := filepath.Join(binDir, "weir-linux-"+tg.name)
			prog := []string{bin}
			if tg.qemu != "" {
				prog = []string{emulator(t, tg), "-cpu", tg.cpu, bin}
			}
			f.binBytes = checkBinary(t, tg, prog)
			functional(t, prog, f)
			idleSmall(t, prog, f)
			storeFlush(t, tg, prog)
			if long {
				store100k(t, prog, f)
			}
		})
	}
	if !long {
		t.Log("WEIR_LONG=1 is not set: the 100,000-message start-up measurement did not run")
	}
	report(t, figs)
}

// emulator returns the path of tg's qemu, failing the test if there is
// none: without it the ARM binary cannot run, and passing anyway would
// claim what was not checked.
func emulator(t *testing.T, tg target) string {
	t.Helper()
	p, err := exec.LookPath(tg.qemu)
	if err != nil {
		t.Fatalf("%s not found, so the %s binary cannot be executed; this test fails rather than pass without running it. "+
			"Install the Debian package qemu-user (`make deps`, run by `make test`, does).", tg.qemu, tg.name)
	}
	return p
}

// checkBinary checks that the binary of prog (qemu, its flags, the binary)
// is a static ELF executable for tg's machine and that, run by qemu, it
// reports tg's architecture; it returns the binary's size.
func checkBinary(t *testing.T, tg target, prog []string) int64 {
	t.Helper()
	bin := prog[len(prog)-1]
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatalf("%v (make test-arm builds it)", err)
	}
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	defer ef.Close()
	if ef.Machine != tg.machine {
		t.Fatalf("%s is a %v binary, want %v", bin, ef.Machine, tg.machine)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has an interpreter (dynamically linked); release binaries are static (CGO_ENABLED=0)", bin)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmdline := strings.Join(append(prog[:len(prog):len(prog)], "-version"), " ")
	out, err := exec.CommandContext(ctx, prog[0], append(prog[1:len(prog):len(prog)], "-version")...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmdline, err, out)
	}
	if !strings.Contains(string(out), " "+tg.arch+")") {
		t.Fatalf("%s printed %q; want the architecture %s", cmdline, out, tg.arch)
	}
	t.Logf("%s: %s", cmdline, strings.TrimSpace(string(out)))
	return st.Size()
}

// functional runs the broker with a Badger store: QoS 1 and QoS 2 round
// trips, a retained message and a QoS 1 message queued for an offline
// persistent session, then a graceful restart after which both are still
// there.
func functional(t *testing.T, prog []string, f *figures) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "")
	b := startBroker(t, prog, cfg)
	f.startEmpty, f.openEmpty = b.started, b.storeOpened(t)
	time.Sleep(idleWait)
	f.rssDefaultKB = b.rssKB(t)
	t.Logf("empty store: accepting connections %v after exec (store open took %s); idle VmRSS of %s: %d KiB",
		f.startEmpty.Round(time.Millisecond), f.openEmpty, filepath.Base(prog[0]), f.rssDefaultKB)

	const offline = "weir-armtest-offline"
	// A persistent session that then goes away, so its messages queue.
	b.sub(t, "-c", "-i", offline, "-q", "1", "-t", "armtest/queued", "-E")

	b.roundTrip(t, 1, "armtest/qos1", "qos1-payload")
	b.roundTrip(t, 2, "armtest/qos2", "qos2-payload")
	b.pub(t, "-q", "1", "-r", "-t", "armtest/retained", "-m", "retained-payload")
	if got, want := b.sub(t, "-q", "1", "-t", "armtest/retained", "-C", "1"), "MSG 1 1 armtest/retained retained-payload"; got != want {
		t.Fatalf("retained message before restart: got %q, want %q", got, want)
	}
	b.pub(t, "-q", "1", "-t", "armtest/queued", "-m", "queued-payload")

	down := b.stop(t)
	t.Logf("SIGTERM: exited 0 after %v", down.Round(time.Millisecond))

	b = startBroker(t, prog, cfg)
	f.startWarm = b.started
	t.Logf("restart: accepting connections %v after exec (%s)", b.started.Round(time.Millisecond), b.phases())
	if got, want := b.sub(t, "-q", "1", "-t", "armtest/retained", "-C", "1"), "MSG 1 1 armtest/retained retained-payload"; got != want {
		t.Errorf("retained message after restart: got %q, want %q", got, want)
	}
	if got, want := b.sub(t, "-c", "-i", offline, "-q", "1", "-t", "armtest/queued", "-C", "1"), "MSG 1 0 armtest/queued queued-payload"; got != want {
		t.Errorf("queued QoS 1 message after restart: got %q, want %q", got, want)
	}
	b.roundTrip(t, 2, "armtest/qos2", "qos2-after-restart")
	b.stop(t)
}

// idleSmall measures the idle RSS with profile: small.
func idleSmall(t *testing.T, prog []string, f *figures) {
	dir := t.TempDir()
	b := startBroker(t, prog, writeConfig(t, dir, "profile: small\n"))
	if !strings.Contains(b.Logs(), "profile=small") {
		t.Errorf("profile: small was not applied; logs:\n%s", b.Logs())
	}
	time.Sleep(idleWait)
	f.rssSmallKB = b.rssKB(t)
	t.Logf("profile small, empty store: idle VmRSS of %s: %d KiB", filepath.Base(prog[0]), f.rssSmallKB)
	b.stop(t)
}

// storeFlush writes more than one Badger memtable of queued messages (the
// memtable is 8 MiB on 64-bit platforms; cmd/weir caps it at 4 MiB on
// 32-bit ones, where larger tables are corrupted: see maxMemTable32 in
// cmd/weir/profile.go), so that Badger writes SSTables, and checks that
// the broker shuts down and that the messages survive a restart, read
// back from those tables.
func storeFlush(t *testing.T, tg target, prog []string) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "limits:\n  max_queued_messages: 100000\n  max_queued_bytes: 1GiB\n")
	b := startBroker(t, prog, cfg)
	const offline = "weir-armtest-flush"
	n := 20000 // 10 MiB of 512-byte messages: more than an 8 MiB memtable
	if tg.goarch == "arm" {
		n = 10000 // 5 MiB: more than the 4 MiB memtable of 32-bit builds
	}
	b.sub(t, "-c", "-i", offline, "-q", "1", "-t", "armtest/flush", "-E")
	start := time.Now()
	fill(t, b, "armtest/flush", n, 512)
	filled := time.Since(start)
	if ok, broken := b.stopOrBroken(t); !ok {
		t.Fatalf("the store failed after a memtable flush: %s", broken)
	}
	ssts, _ := filepath.Glob(filepath.Join(dir, "data", "*.sst"))
	if len(ssts) == 0 {
		t.Fatalf("no SSTable in %s after writing %d messages: the test no longer makes Badger flush a memtable", dir, n)
	}
	b = startBroker(t, prog, cfg)
	if m := regexp.MustCompile(`queue_entries=(\d+)`).FindStringSubmatch(b.Logs()); m == nil || m[1] != strconv.Itoa(n) {
		t.Errorf("store reopened with queue entries %v, want %d", m, n)
	}
	if got, want := b.sub(t, "-c", "-i", offline, "-q", "1", "-t", "armtest/flush", "-C", "1"), "MSG 1 0 armtest/flush fill-000000-"; !strings.HasPrefix(got, want) {
		t.Errorf("first queued message after the restart: got %.60q, want prefix %q", got, want)
	}
	if ok, broken := b.stopOrBroken(t); !ok {
		t.Fatalf("the store failed after a restart that read its tables: %s", broken)
	}
	t.Logf("%d QoS 1 messages of 512 B queued in %v; %d SSTables; all survived a restart",
		n, filled.Round(time.Millisecond), len(ssts))
}

// brokenStore matches the logs of Badger failing to write or read an
// SSTable.
var brokenStore = regexp.MustCompile(`.*(error flushing memtable|checksum validation failed|slice bounds out of range|failed to verify checksum).*`)

// stopOrBroken stops the broker like stop, but reports a store failure
// (ok false, with the log line) instead of failing the test.
func (b *broker) stopOrBroken(t *testing.T) (ok bool, broken string) {
	t.Helper()
	if err := b.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(stopTimeout)
	for {
		if l := brokenStore.FindString(b.Logs()); l != "" {
			if err := b.Kill(stopTimeout); err != nil {
				t.Error(err)
			}
			return false, l
		}
		select {
		case <-b.Done():
			if st := b.State(); !st.Success() {
				return false, fmt.Sprintf("%v after SIGTERM:\n%s", st, b.tail())
			}
			return true, ""
		case <-deadline:
			t.Fatalf("the broker did not exit within %v of SIGTERM:\n%s", stopTimeout, b.tail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// store100k fills a store with fillMessages QoS 1 messages queued for an
// offline persistent session and measures the start-up with it.
func store100k(t *testing.T, prog []string, f *figures) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "limits:\n  max_queued_messages: 200000\n  max_queued_bytes: 1GiB\n")
	b := startBroker(t, prog, cfg)
	const offline = "weir-armtest-fill"
	b.sub(t, "-c", "-i", offline, "-q", "1", "-t", "armtest/fill", "-E")

	// 64-byte payloads published at QoS 1 by one client with a window of
	// unacknowledged messages. (Not mosquitto_pub -l: version 2.0.11
	// drops what it has not sent yet when its input ends.)
	start := time.Now()
	fill(t, b, "armtest/fill", fillMessages, 64)
	f.fill100k = time.Since(start)
	t.Logf("filled %d messages at QoS 1 in %v", fillMessages, f.fill100k.Round(time.Millisecond))
	b.stop(t)

	b = startBroker(t, prog, cfg)
	f.start100k, f.open100k = b.started, b.storeOpened(t)
	if m := regexp.MustCompile(`queue_entries=(\d+)`).FindStringSubmatch(b.Logs()); m == nil {
		t.Errorf("no queue_entries in the store's start-up log:\n%s", b.Logs())
	} else if n, _ := strconv.Atoi(m[1]); n != fillMessages {
		t.Errorf("store opened with %d queue entries, want %d", n, fillMessages)
	}
	time.Sleep(idleWait)
	f.rss100kKB = b.rssKB(t)
	t.Logf("%d-message store: accepting connections %v after exec (%s); idle VmRSS %d KiB",
		fillMessages, f.start100k.Round(time.Millisecond), b.phases(), f.rss100kKB)
	if got, want := b.sub(t, "-c", "-i", offline, "-q", "1", "-t", "armtest/fill", "-C", "1"), "MSG 1 0 armtest/fill fill-000000-"; !strings.HasPrefix(got, want) {
		t.Errorf("first queued message: got %q, want prefix %q", got, want)
	}
	b.stop(t)
}

func report(t *testing.T, all []*figures) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nUnder qemu-user on %s/%s. RSS is the VmRSS of the qemu process (the emulator and its translated code included), idle, 2 s after start.\n",
		runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(&b, "%-6s %12s %12s %12s %10s %12s %12s %12s\n", "target", "binary", "start empty", "restart", "store open", "RSS default", "RSS small", "start 100k")
	for _, f := range all {
		s100k := "-"
		if f.start100k > 0 {
			s100k = fmt.Sprintf("%v (open %s, RSS %d KiB, fill %v)", f.start100k.Round(time.Millisecond), f.open100k, f.rss100kKB, f.fill100k.Round(time.Second))
		}
		fmt.Fprintf(&b, "%-6s %12d %12v %12v %10s %8d KiB %8d KiB %s\n", f.target, f.binBytes,
			f.startEmpty.Round(time.Millisecond), f.startWarm.Round(time.Millisecond), f.openEmpty, f.rssDefaultKB, f.rssSmallKB, s100k)
	}
	t.Log(b.String())
}

// buildTargets builds the targets' binaries as `make dist` does, for a
// run without WEIR_ARM_BIN.
func buildTargets(t *testing.T, targets []target) string {
	dir := t.TempDir()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	tags := brokertest.MakeVar(t, filepath.Join(repoRoot, "Makefile"), "GOTAGS")
	for _, tg := range targets {
		cmd := exec.Command(goBin, "build", "-trimpath", "-tags", tags, "-ldflags", "-s -w", "-o", filepath.Join(dir, "weir-linux-"+tg.name), "./cmd/weir")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+tg.goarch, "GOARM="+tg.goarm)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", tg.name, err, out)
		}
	}
	return dir
}

// writeConfig writes a configuration with loopback listeners on free
// ports and a Badger store in dir/data, plus extra YAML.
func writeConfig(t *testing.T, dir, extra string) string {
	t.Helper()
	content := fmt.Sprintf(`listeners:
  tcp: %q
  websocket: %q
durability: process
data_dir: %q
`, brokertest.StableAddr(t), brokertest.StableAddr(t), filepath.Join(dir, "data")) + extra
	path := filepath.Join(dir, "weir.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// broker is a weir process under qemu.
type broker struct {
	*brokertest.Process
	port    string
	started time.Duration // from exec to accepting TCP connections
}

// startBroker runs prog (qemu, its flags, the binary) with the
// configuration cfg and waits until its TCP listener accepts connections.
func startBroker(t *testing.T, prog []string, cfg string) *broker {
	t.Helper()
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`tcp: "127\.0\.0\.1:(\d+)"`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("no tcp listener in %s", cfg)
	}
	p, err := brokertest.StartProcess(t, brokertest.ProcessOptions{}, append(prog[:len(prog):len(prog)], "-config", cfg)...)
	if err != nil {
		t.Fatalf("starting %s: %v", strings.Join(prog, " "), err)
	}
	b := &broker{Process: p, port: string(m[1])}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("broker logs (%s):\n%s", cfg, b.tail())
		}
	})
	addr := net.JoinHostPort("127.0.0.1", b.port)
	b.started, err = p.WaitAccept(addr, startTimeout)
	var ee *brokertest.ExitError
	switch {
	case errors.As(err, &ee):
		t.Fatalf("the broker exited during start-up (%v):\n%s", ee.State, b.Logs())
	case err != nil:
		t.Fatalf("%v:\n%s", err, b.Logs())
	}
	return b
}

// tail returns the last 8 KiB of the broker's output.
func (b *broker) tail() string { return b.Log().Tail(8 << 10) }

// stop sends SIGTERM (qemu passes it to the emulated program) and checks
// that the broker exits with status 0 in time; it returns how long it
// took.
func (b *broker) stop(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	if err := b.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Wait(stopTimeout); !ok {
		t.Fatalf("the broker did not exit within %v of SIGTERM", stopTimeout)
	}
	if st := b.State(); !st.Success() {
		t.Fatalf("the broker exited with %v after SIGTERM:\n%s", st, b.tail())
	}
	return time.Since(start)
}

// storeOpened returns the time the store's start-up log says opening took.
func (b *broker) storeOpened(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`msg="store opened".* took=(\S+)`).FindStringSubmatch(b.Logs())
	if m == nil {
		t.Fatalf("the broker did not log \"store opened\":\n%s", b.Logs())
	}
	return m[1]
}

// phases returns how long the start-up phases took by the broker's log
// timestamps: opening the store (Badger and the scan of the queues), then
// restoring the sessions until the TCP listener is up.
func (b *broker) phases() string {
	// The listener may accept before its log line is written.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(b.Logs(), "msg=listening transport=tcp") {
			break
		}
	}
	logs := b.Logs()
	at := func(re string) (time.Time, bool) {
		m := regexp.MustCompile(`time=(\S+) level=\S+ msg=` + re).FindStringSubmatch(logs)
		if m == nil {
			return time.Time{}, false
		}
		ts, err := time.Parse(time.RFC3339Nano, m[1])
		return ts, err == nil
	}
	start, ok1 := at(`"weir starting"`)
	opened, ok2 := at(`"store opened"`)
	listening, ok3 := at(`listening transport=tcp`)
	if !ok1 || !ok2 || !ok3 {
		return "start-up phases not found in the log"
	}
	return fmt.Sprintf("store open %v, sessions restored and listening %v later",
		opened.Sub(start).Round(time.Millisecond), listening.Sub(opened).Round(time.Millisecond))
}

// rssKB returns the VmRSS of the qemu process running the broker: the
// emulated program's memory plus qemu's own and its translation cache.
func (b *broker) rssKB(t *testing.T) int64 {
	t.Helper()
	st, err := b.MemStatus()
	if err != nil {
		t.Fatal(err)
	}
	rss, ok := st["VmRSS"]
	if !ok {
		t.Fatalf("no VmRSS in /proc/%d/status", b.Pid())
	}
	return rss / 1024
}

// clientArgs are the connection arguments of the mosquitto clients.
func (b *broker) clientArgs(args ...string) []string {
	return append([]string{"-h", "127.0.0.1", "-p", b.port, "-V", "mqttv311"}, args...)
}

// pub runs mosquitto_pub.
func (b *broker) pub(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "mosquitto_pub", b.clientArgs(append([]string{"-d"}, args...)...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// msgFormat is mosquitto_sub's output for a message: QoS, retain flag,
// topic, payload.
const msgFormat = "MSG %q %r %t %p"

// sub runs mosquitto_sub until it exits (after -C messages or -E) and
// returns its output.
func (b *broker) sub(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	args = append(args, "-W", strconv.Itoa(int(clientTimeout/time.Second)-5), "-F", msgFormat)
	out, err := exec.CommandContext(ctx, "mosquitto_sub", b.clientArgs(args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_sub %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// roundTrip subscribes at qos, publishes at qos once the subscription is
// acknowledged, and checks that the message arrives at qos with the whole
// QoS handshake on both sides.
func (b *broker) roundTrip(t *testing.T, qos int, topic, payload string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	q := strconv.Itoa(qos)
	// stdbuf: mosquitto_sub's output, a pipe here, is otherwise
	// block-buffered, and the SUBACK line is needed before publishing.
	cmd := exec.CommandContext(ctx, "stdbuf", append([]string{"-oL", "mosquitto_sub"},
		b.clientArgs("-d", "-q", q, "-t", topic, "-C", "1", "-F", msgFormat)...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var subOut []string
	wait := func(what string, match func(string) bool) {
		t.Helper()
		for line := range lines {
			subOut = append(subOut, line)
			if match(line) {
				return
			}
		}
		cmd.Wait()
		t.Fatalf("QoS %d: mosquitto_sub ended before %s:\n%s", qos, what, strings.Join(subOut, "\n"))
	}
	wait("SUBACK", func(l string) bool { return strings.Contains(l, "received SUBACK") })

	pubOut := b.pub(t, "-q", q, "-t", topic, "-m", payload)
	want := fmt.Sprintf("MSG %d 0 %s %s", qos, topic, payload)
	wait("the message", func(l string) bool { return strings.HasPrefix(l, "MSG ") })
	if got := subOut[len(subOut)-1]; got != want {
		t.Errorf("QoS %d round trip: got %q, want %q", qos, got, want)
	}
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("mosquitto_sub: %v", err)
	}
	// The handshakes, as the clients' debug output shows them.
	var pubWant, subWant []string
	switch qos {
	case 1:
		pubWant, subWant = []string{"received PUBACK"}, []string{"sending PUBACK"}
	case 2:
		pubWant = []string{"received PUBREC", "sending PUBREL", "received PUBCOMP"}
		subWant = []string{"sending PUBREC", "received PUBREL", "sending PUBCOMP"}
	}
	checkSeq(t, "mosquitto_pub", pubOut, pubWant)
	checkSeq(t, "mosquitto_sub", strings.Join(subOut, "\n"), subWant)
	t.Logf("QoS %d round trip: ok", qos)
}

// fill publishes n QoS 1 messages to topic with paho, at most fillWindow
// unacknowledged, and waits for every PUBACK.
func fill(t *testing.T, b *broker, topic string, n, size int) {
	t.Helper()
	const fillWindow = 256
	opts := paho.NewClientOptions().AddBroker("tcp://127.0.0.1:" + b.port).
		SetClientID("weir-armtest-filler").SetCleanSession(true).
		SetAutoReconnect(false).SetConnectRetry(false).SetWriteTimeout(clientTimeout)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(clientTimeout) || tok.Error() != nil {
		t.Fatalf("filler: connect: %v", tok.Error())
	}
	defer c.Disconnect(250)
	window := make([]paho.Token, 0, fillWindow)
	flush := func(keep int) {
		for len(window) > keep {
			tok := window[0]
			window = window[1:]
			if !tok.WaitTimeout(clientTimeout) {
				t.Fatalf("filler: no PUBACK within %v; broker logs:\n%s", clientTimeout, b.tail())
			}
			if err := tok.Error(); err != nil {
				t.Fatalf("filler: %v; broker logs:\n%s", err, b.tail())
			}
		}
	}
	pad := strings.Repeat("x", max(size-12, 0))
	for i := range n {
		window = append(window, c.Publish(topic, 1, false, fmt.Sprintf("fill-%06d-%s", i, pad)))
		flush(fillWindow - 1)
	}
	flush(0)
}

// checkSeq checks that out contains want's strings in order.
func checkSeq(t *testing.T, who, out string, want []string) {
	t.Helper()
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Errorf("%s: no %q in order %v:\n%s", who, w, want, out)
			return
		}
		rest = rest[i+len(w):]
	}
}
