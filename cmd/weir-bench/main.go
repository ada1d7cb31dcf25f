// Command weir-bench is a load generator for MQTT brokers on this machine.
//
// It speaks MQTT itself with Weir's mqtt codec over raw TCP connections
// (buffered writes, one flush per batch), so that the loader is not the
// bottleneck a general-purpose client library would be. Every run is
// bounded in count and time (-timeout is a hard limit), connects only to
// loopback addresses, and prints one JSON line on stdout and a table on
// stderr.
//
// Scenarios (-scenario):
//
//	fanin    -pubs N publishers × -msgs M messages of -size S bytes, each
//	         publisher on its own topic, one subscriber on a wildcard.
//	         QoS -qos 0/1/2, optionally paced at -rate msg/s in total.
//	         Reports delivered msg/s, loss, duplicates, reordering.
//	fanout   1 publisher, -subs N subscribers on one topic, -msgs M.
//	latency  1 publisher paced at -rate msg/s for -duration, 1 subscriber;
//	         p50/p99/p99.9/max from send to receive (timestamps travel in
//	         the payload).
//	conns    -conns N idle connections, held for -hold, then each pinged;
//	         reports accepted, alive and (with -pid) broker RSS per
//	         connection.
//	backlog  -phase fill: a persistent session (client id -client-id) is
//	         subscribed, goes offline, and -msgs M QoS 1 messages are
//	         published for it. -phase drain: the session reconnects and
//	         receives them; reports the drain rate. Restarting the broker
//	         between the phases is the caller's job (bench/compare.sh does
//	         it); -phase both runs fill then drain without a restart.
//
// With -pid the broker's VmRSS, VmHWM and utime+stime are read from /proc
// before and after the measured phase.
//
// Exit status: 0 when the run completed, 1 when it timed out or failed, 2
// on bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/weirmq/weir/mqtt"
)

// Limits that keep every run bounded whatever the flags say.
const (
	maxPubs       = 10_000
	maxSubs       = 10_000
	maxConns      = 100_000
	maxDeliveries = 20_000_000 // expected deliveries per run
	maxRate       = 5_000_000
	maxDuration   = 10 * time.Minute
	maxTimeout    = 30 * time.Minute
)

type config struct {
	scenario string
	addr     string
	pid      int
	timeout  time.Duration
	v        mqtt.Version
	qos      byte
	size     int
	pubs     int
	subs     int
	msgs     int
	conns    int
	rate     float64
	duration time.Duration
	hold     time.Duration
	inflight int
	batch    int
	idle     time.Duration
	phase    string
	clientID string
	label    string
	runID    string
	cpuprof  string
	caseName string
	report   string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "weir-bench: %v\n", err)
		return 2
	}
	if cfg.report != "" {
		if err := writeReport(cfg.report, stdout); err != nil {
			fmt.Fprintf(stderr, "weir-bench: -report: %v\n", err)
			return 1
		}
		return 0
	}
	if cfg.cpuprof != "" {
		f, err := os.Create(cfg.cpuprof)
		if err != nil {
			fmt.Fprintf(stderr, "weir-bench: %v\n", err)
			return 2
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	res := execute(ctx, cfg)
	res.writeJSON(stdout)
	res.writeTable(stderr)
	if res.TimedOut || len(res.Errors) > 0 {
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("weir-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &config{}
	fs.StringVar(&c.scenario, "scenario", "", "`name`: fanin, fanout, latency, conns or backlog (required)")
	fs.StringVar(&c.addr, "addr", "127.0.0.1:1883", "broker `host:port`; loopback addresses only")
	fs.IntVar(&c.pid, "pid", 0, "broker process `id`: report its RSS and CPU time from /proc")
	fs.DurationVar(&c.timeout, "timeout", 2*time.Minute, "hard limit on the whole run (at most 30m)")
	level := fs.Int("v", 4, "MQTT protocol `level`: 3 (3.1), 4 (3.1.1) or 5 (5.0)")
	qos := fs.Int("qos", 0, "QoS of publishes and subscriptions: 0, 1 or 2 (backlog: always 1)")
	fs.IntVar(&c.size, "size", 64, "payload `bytes` (at least 20: publisher id, sequence number, send time)")
	fs.IntVar(&c.pubs, "pubs", 0, "publishers (fanin; default 100; latency: 1)")
	fs.IntVar(&c.subs, "subs", 0, "subscribers (fanout; default 1000)")
	fs.IntVar(&c.msgs, "msgs", 0, "messages per publisher (default fanin 10000, fanout 1000, backlog 50000; latency: rate × duration)")
	fs.IntVar(&c.conns, "conns", 10000, "idle connections (conns); 0 samples the idle broker only")
	fs.Float64Var(&c.rate, "rate", 0, "total publish rate in msg/s, 0 unpaced (latency: default 5000)")
	fs.DurationVar(&c.duration, "duration", 0, "how long to publish (latency; default 10s)")
	fs.DurationVar(&c.hold, "hold", 2*time.Second, "how long to hold idle connections before pinging them (conns)")
	fs.IntVar(&c.inflight, "inflight", 100, "unacknowledged QoS 1/2 publishes per publisher")
	fs.IntVar(&c.batch, "batch", 64, "publishes written per flush")
	fs.DurationVar(&c.idle, "idle", 3*time.Second, "after publishing, stop waiting when no delivery arrives for this long")
	fs.StringVar(&c.phase, "phase", "both", "backlog `phase`: fill, drain or both")
	fs.StringVar(&c.clientID, "client-id", "weir-bench-backlog", "client id of the backlog's persistent session")
	fs.StringVar(&c.cpuprof, "cpuprofile", "", "write the loader's own CPU profile to `file` (to check the loader is not the bottleneck)")
	fs.StringVar(&c.caseName, "case", "", "`name` of this run's case in a comparison, copied into the result")
	fs.StringVar(&c.report, "report", "", "do not load anything: read result lines from `file` (one JSON object a line, as runs print them) and print a markdown comparison of medians and Weir/Mosquitto ratios")
	fs.StringVar(&c.label, "label", "", "free `text` copied into the result (e.g. the broker's name)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: weir-bench -scenario NAME [flags]\n\n"+
			"Loads an MQTT broker on a loopback address and prints one JSON line (stdout)\n"+
			"and a table (stderr). Scenarios: fanin, fanout, latency, conns, backlog.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.report != "" {
		return c, nil
	}
	addr, err := loopbackAddr(c.addr)
	if err != nil {
		return nil, err
	}
	c.addr = addr
	switch *level {
	case 3, 4, 5:
		c.v = mqtt.Version(*level)
	default:
		return nil, fmt.Errorf("-v %d: want 3, 4 or 5", *level)
	}
	if *qos < 0 || *qos > 2 {
		return nil, fmt.Errorf("-qos %d: want 0, 1 or 2", *qos)
	}
	c.qos = byte(*qos)
	if err := c.defaults(); err != nil {
		return nil, err
	}
	c.runID = fmt.Sprintf("%06x", rand.Uint32()&0xFFFFFF)
	return c, nil
}

// defaults fills in the scenario's defaults and checks the bounds.
func (c *config) defaults() error {
	set := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	switch c.scenario {
	case "fanin":
		set(&c.pubs, 100)
		set(&c.msgs, 10000)
		c.subs = 1
	case "fanout":
		set(&c.subs, 1000)
		set(&c.msgs, 1000)
		c.pubs = 1
	case "latency":
		set(&c.pubs, 1)
		c.subs = 1
		if c.rate == 0 {
			c.rate = 5000
		}
		if c.duration == 0 {
			c.duration = 10 * time.Second
		}
		if c.duration < 0 || c.duration > maxDuration {
			return fmt.Errorf("-duration %v: want 0 < d <= %v", c.duration, maxDuration)
		}
		c.msgs = max(1, int(c.rate*c.duration.Seconds())/c.pubs)
	case "conns":
		if c.conns < 0 || c.conns > maxConns {
			return fmt.Errorf("-conns %d: want 0..%d", c.conns, maxConns)
		}
		if c.hold < 0 || c.hold > maxDuration {
			return fmt.Errorf("-hold %v: want 0..%v", c.hold, maxDuration)
		}
	case "backlog":
		set(&c.msgs, 50000)
		c.pubs, c.subs, c.qos = 1, 1, 1
		if c.phase != "fill" && c.phase != "drain" && c.phase != "both" {
			return fmt.Errorf("-phase %q: want fill, drain or both", c.phase)
		}
		if c.clientID == "" {
			return fmt.Errorf("-client-id must not be empty")
		}
	case "":
		return fmt.Errorf("-scenario is required (fanin, fanout, latency, conns or backlog)")
	default:
		return fmt.Errorf("-scenario %q: want fanin, fanout, latency, conns or backlog", c.scenario)
	}
	switch {
	case c.timeout <= 0 || c.timeout > maxTimeout:
		return fmt.Errorf("-timeout %v: want 0 < t <= %v", c.timeout, maxTimeout)
	case c.pubs < 0 || c.pubs > maxPubs:
		return fmt.Errorf("-pubs %d: want 1..%d", c.pubs, maxPubs)
	case c.subs < 0 || c.subs > maxSubs:
		return fmt.Errorf("-subs %d: want 1..%d", c.subs, maxSubs)
	case c.msgs < 0:
		return fmt.Errorf("-msgs %d: want > 0", c.msgs)
	case int64(c.pubs)*int64(c.msgs)*int64(c.subs) > maxDeliveries:
		return fmt.Errorf("%d publishers × %d messages × %d subscribers is above the bound of %d deliveries per run",
			c.pubs, c.msgs, c.subs, maxDeliveries)
	case c.size < payloadHeader || c.size > 1<<20:
		return fmt.Errorf("-size %d: want %d..%d", c.size, payloadHeader, 1<<20)
	case c.rate < 0 || c.rate > maxRate:
		return fmt.Errorf("-rate %v: want 0..%d", c.rate, maxRate)
	case c.inflight < 1 || c.inflight > 10000:
		return fmt.Errorf("-inflight %d: want 1..10000", c.inflight)
	case c.batch < 1 || c.batch > 10000:
		return fmt.Errorf("-batch %d: want 1..10000", c.batch)
	case c.idle <= 0 || c.idle > maxDuration:
		return fmt.Errorf("-idle %v: want 0 < d <= %v", c.idle, maxDuration)
	}
	return nil
}

// execute runs the configured scenario; it never takes longer than ctx.
func execute(ctx context.Context, c *config) *Result {
	res := &Result{Scenario: c.scenario, Case: c.caseName, Label: c.label, Addr: c.addr, Protocol: c.v.String(), QoS: int(c.qos)}
	if c.scenario != "conns" {
		res.Size, res.Pubs, res.Subs, res.Msgs, res.Rate = c.size, c.pubs, c.subs, c.msgs, c.rate
	}
	m := &meter{pid: c.pid, res: res}
	switch c.scenario {
	case "fanin":
		runPubSub(ctx, c, res, m, func(i int) string { return fmt.Sprintf("bench/%s/p%d", c.runID, i) }, "bench/"+c.runID+"/#")
	case "fanout", "latency":
		t := "bench/" + c.runID + "/" + c.scenario
		runPubSub(ctx, c, res, m, func(int) string { return t }, t)
	case "conns":
		runConns(ctx, c, res, m)
	case "backlog":
		runBacklog(ctx, c, res, m)
	}
	if ctx.Err() != nil {
		res.TimedOut = errors.Is(context.Cause(ctx), context.DeadlineExceeded)
		if !res.TimedOut {
			res.addErr(errors.New("interrupted"))
		}
	}
	return res
}

// meter samples the broker (-pid) and the loader's own CPU around the
// measured phase of a scenario.
type meter struct {
	pid       int
	res       *Result
	before    procSample
	cpu0      time.Duration
	wall0     time.Time
	startedOK bool
}

func (m *meter) start() {
	m.cpu0, m.wall0 = selfCPU(), time.Now()
	if m.pid == 0 {
		return
	}
	s, err := readProc(m.pid)
	if err != nil {
		m.res.addErr(fmt.Errorf("-pid: %w", err))
		return
	}
	m.before, m.startedOK = s, true
}

// end samples again; conns > 0 also computes RSS per connection.
func (m *meter) end(conns int) {
	cpu, wall := selfCPU()-m.cpu0, time.Since(m.wall0)
	m.res.LoaderCPUSec = round(cpu.Seconds(), 3)
	if wall > 0 {
		m.res.LoaderCPUUtil = round(cpu.Seconds()/wall.Seconds(), 2)
	}
	if !m.startedOK {
		return
	}
	s, err := readProc(m.pid)
	if err != nil {
		m.res.addErr(fmt.Errorf("-pid: %w", err))
		return
	}
	b := &BrokerUsage{PID: m.pid, RSSBeforeKiB: m.before.RSSKiB, RSSAfterKiB: s.RSSKiB, HWMKiB: s.HWMKiB,
		CPUSec: round(s.CPUSec-m.before.CPUSec, 2)}
	if conns > 0 {
		b.RSSPerConnB = round(float64(s.RSSKiB-m.before.RSSKiB)*1024/float64(conns), 0)
	}
	m.res.Broker = b
}

// scenarioErr reports err unless the run is ending anyway (timeout,
// interrupt, or a connection closed on purpose).
func scenarioErr(ctx context.Context, res *Result, err error) {
	if err == nil || ctx.Err() != nil || isClosed(err) {
		return
	}
	res.addErr(err)
}

// clientID builds a client id unique to this run.
func (c *config) id(kind string, i int) string {
	return strings.Join([]string{"wb", c.runID, kind, fmt.Sprint(i)}, "-")
}
