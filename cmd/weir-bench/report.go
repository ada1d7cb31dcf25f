package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
)

// The -report mode turns the result lines of a comparison (bench/compare.sh)
// into markdown: per case and broker the median of the repetitions with
// their range, the Weir/Mosquitto ratio of the medians, and each target of
// issue 6 marked met or not.

// Broker variants as compare.sh labels them.
const (
	mosquitto        = "mosquitto"
	mosquittoPersist = "mosquitto-persist"
	weirNone         = "weir-none"
	weirProcess      = "weir-process"
)

// metric picks the number a case is judged by from a result.
type metric struct {
	name   string
	unit   string
	higher bool // higher is better
	get    func(r *Result) (float64, bool)
}

var (
	mRate = metric{"delivered msg/s", "msg/s", true, func(r *Result) (float64, bool) { return r.DeliveredRate, r.DeliveredRate > 0 }}
	mCPU  = metric{"broker CPU", "s", false, func(r *Result) (float64, bool) {
		if r.Broker == nil {
			return 0, false
		}
		return r.Broker.CPUSec, true
	}}
	mCPUPerMsg = metric{"broker CPU per delivered message", "µs", false, func(r *Result) (float64, bool) {
		if r.Broker == nil || r.Delivered == 0 {
			return 0, false
		}
		return r.Broker.CPUSec * 1e6 / float64(r.Delivered), true
	}}
	mP999 = metric{"p99.9 latency", "µs", false, func(r *Result) (float64, bool) {
		if r.Latency == nil {
			return 0, false
		}
		return r.Latency.P999us, true
	}}
	mRSSConn = metric{"broker RSS per connection", "B", false, func(r *Result) (float64, bool) {
		if r.Broker == nil || r.Accepted == 0 {
			return 0, false
		}
		return r.Broker.RSSPerConnB, true
	}}
	mRSSIdle = metric{"idle broker RSS", "KiB", false, func(r *Result) (float64, bool) {
		if r.Broker == nil {
			return 0, false
		}
		return float64(r.Broker.RSSAfterKiB), true
	}}
)

// target is one line of issue 6's table.
type target struct {
	text    string
	variant string // the Weir variant it is about
	check   func(ratio, weir float64, weirRuns []*Result) bool
}

type caseDef struct {
	name    string
	what    string
	metric  metric
	targets []target
}

func ratioAtLeast(x float64) func(float64, float64, []*Result) bool {
	return func(r, _ float64, _ []*Result) bool { return r >= x }
}

func ratioAtMost(x float64) func(float64, float64, []*Result) bool {
	return func(r, _ float64, _ []*Result) bool { return r > 0 && r <= x }
}

// cases are the comparison's cases in the order they are reported; the
// names are the -case values compare.sh gives.
var cases = []caseDef{
	{"fanin-q0", "fan-in QoS 0, 100 publishers × 10,000 × 64 B", mRate, []target{
		{"≥ 1.2 × Mosquitto msg/s, 0 loss", weirNone, func(r, _ float64, runs []*Result) bool {
			for _, x := range runs {
				if x.Lost != 0 {
					return false
				}
			}
			return r >= 1.2
		}}}},
	{"fanin-q1", "fan-in QoS 1, 100 publishers × 1,000 × 64 B", mRate, []target{
		{"durability none: ≥ 1.2 × Mosquitto", weirNone, ratioAtLeast(1.2)},
		{"durability process: ≥ 1.0 × Mosquitto", weirProcess, ratioAtLeast(1.0)}}},
	{"fanin-q2", "fan-in QoS 2, 100 publishers × 500 × 64 B", mRate, nil},
	// Judged per delivered message: a broker that cannot keep up with the
	// pace does less work in the same 10 s, and its CPU seconds alone
	// would flatter it.
	{"paced-q1", "QoS 1 paced at 20,000 msg/s for 10 s, 1 publisher, 1 subscriber", mCPUPerMsg, []target{
		{"broker CPU ≤ 0.8 × Mosquitto's (durability none)", weirNone, ratioAtMost(0.8)},
		{"broker CPU ≤ 0.8 × Mosquitto's (durability process)", weirProcess, ratioAtMost(0.8)}}},
	{"fanout-q0", "fan-out QoS 0, 1 publisher → 1,000 subscribers", mRate, []target{
		{"≥ 1.2 × Mosquitto", weirNone, ratioAtLeast(1.2)}}},
	{"fanout-q1", "fan-out QoS 1, 1 publisher → 1,000 subscribers", mRate, []target{
		{"≥ 1.2 × Mosquitto", weirNone, ratioAtLeast(1.2)}}},
	{"latency-q1", "latency QoS 1 at 5,000 msg/s", mP999, []target{
		{"p99.9 ≤ 1 ms and ≤ Mosquitto's", weirNone, func(r, w float64, _ []*Result) bool { return w <= 1000 && r > 0 && r <= 1 }}}},
	{"conns", "10,000 idle connections", mRSSConn, []target{
		{"≤ 4 KiB broker RSS per connection", weirNone, func(_, w float64, _ []*Result) bool { return w <= 4096 }}}},
	{"idle", "idle broker (Weir: Badger open), RSS 2 s after start", mRSSIdle, []target{
		{"RSS ≤ 12 MiB with Badger open", weirProcess, func(_, w float64, _ []*Result) bool { return w <= 12*1024 }}}},
	{"backlog", "backlog of 50,000 QoS 1 messages for an offline session, broker restarted, drained", mRate, nil},
}

// baseline is the Mosquitto variant a Weir variant is compared with.
func baseline(caseName string) string {
	if caseName == "backlog" {
		return mosquittoPersist
	}
	return mosquitto
}

func readResults(path string) ([]*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []*Result
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || !strings.HasPrefix(line, "{") {
			continue
		}
		r := new(Result)
		if err := json.Unmarshal([]byte(line), r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// stats of one metric over repetitions.
type stats struct {
	n                int
	med, lo, hi      float64
	lost, dups, errs int64
	loaderUtil       float64 // highest
	timedOut         bool
}

func summarizeRuns(runs []*Result, m metric) stats {
	var s stats
	var xs []float64
	for _, r := range runs {
		if v, ok := m.get(r); ok {
			xs = append(xs, v)
		}
		s.lost = max(s.lost, r.Lost)
		s.dups = max(s.dups, r.Dups)
		s.errs += int64(len(r.Errors))
		s.loaderUtil = max(s.loaderUtil, r.LoaderCPUUtil)
		s.timedOut = s.timedOut || r.TimedOut
	}
	s.n = len(xs)
	if len(xs) == 0 {
		return s
	}
	slices.Sort(xs)
	s.lo, s.hi = xs[0], xs[len(xs)-1]
	if len(xs)%2 == 1 {
		s.med = xs[len(xs)/2]
	} else {
		s.med = (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
	}
	return s
}

func fmtNum(x float64) string {
	switch a := math.Abs(x); {
	case a >= 100:
		return fmt.Sprintf("%.0f", x)
	case a >= 10:
		return fmt.Sprintf("%.1f", x)
	default:
		return fmt.Sprintf("%.2f", x)
	}
}

func (s stats) cell() string {
	if s.n == 0 {
		return "—"
	}
	c := fmtNum(s.med)
	if s.n > 1 {
		c += fmt.Sprintf(" (%s–%s)", fmtNum(s.lo), fmtNum(s.hi))
	}
	var notes []string
	if s.lost > 0 {
		notes = append(notes, fmt.Sprintf("lost ≤ %d", s.lost))
	}
	if s.dups > 0 {
		notes = append(notes, fmt.Sprintf("dups ≤ %d", s.dups))
	}
	if s.timedOut {
		notes = append(notes, "timed out")
	}
	if s.errs > 0 {
		notes = append(notes, fmt.Sprintf("%d errors", s.errs))
	}
	if len(notes) > 0 {
		c += " " + strings.Join(notes, ", ")
	}
	return c
}

func ratio(w, m stats) float64 {
	if w.n == 0 || m.n == 0 || m.med == 0 {
		return 0
	}
	return w.med / m.med
}

func ratioCell(r float64) string {
	if r == 0 {
		return "—"
	}
	return fmt.Sprintf("**%.2f**", r)
}

// writeReport prints the comparison of the results in path as markdown.
func writeReport(path string, w io.Writer) error {
	all, err := readResults(path)
	if err != nil {
		return err
	}
	by := map[string]map[string][]*Result{}
	reps := 0
	for _, r := range all {
		if by[r.Case] == nil {
			by[r.Case] = map[string][]*Result{}
		}
		by[r.Case][r.Label] = append(by[r.Case][r.Label], r)
		reps = max(reps, len(by[r.Case][r.Label]))
	}
	fmt.Fprintf(w, "Median of up to %d repetitions, (min–max) after it. Ratios are Weir ÷ Mosquitto of the medians: above 1 is better for msg/s, below 1 is better for CPU, latency and memory.\n\n", reps)
	fmt.Fprintf(w, "| case | metric | Mosquitto | Weir, durability none | ratio | Weir, durability process | ratio |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|\n")
	type verdict struct {
		text, measured string
		met            bool
		known          bool
	}
	var verdicts []verdict
	for _, cd := range cases {
		runs := by[cd.name]
		if runs == nil {
			continue
		}
		base := summarizeRuns(runs[baseline(cd.name)], cd.metric)
		wn := summarizeRuns(runs[weirNone], cd.metric)
		wp := summarizeRuns(runs[weirProcess], cd.metric)
		baseName := ""
		if baseline(cd.name) != mosquitto {
			baseName = " (persistence on)"
		}
		fmt.Fprintf(w, "| %s: %s | %s (%s) | %s%s | %s | %s | %s | %s |\n", cd.name, cd.what, cd.metric.name, cd.metric.unit,
			base.cell(), baseName, wn.cell(), ratioCell(ratio(wn, base)), wp.cell(), ratioCell(ratio(wp, base)))
		for _, t := range cd.targets {
			ws := wn
			if t.variant == weirProcess {
				ws = wp
			}
			v := verdict{text: cd.name + ": " + t.text}
			if ws.n > 0 {
				r := ratio(ws, base)
				v.known = true
				v.met = t.check(r, ws.med, runs[t.variant])
				v.measured = fmt.Sprintf("Weir %s %s", fmtNum(ws.med), cd.metric.unit)
				if r > 0 {
					v.measured += fmt.Sprintf(", ratio %.2f", r)
				}
				if ws.lost > 0 {
					v.measured += fmt.Sprintf(", lost up to %d", ws.lost)
				}
			}
			verdicts = append(verdicts, v)
		}
	}
	fmt.Fprintf(w, "\nSecondary numbers (medians): loss, broker CPU (seconds, and per delivered message: work done, so less disturbed than msg/s when other processes take the CPU), peak RSS, loader CPU (cores; near 1.0 means the loader, not the broker, may be the limit).\n\n")
	fmt.Fprintf(w, "| case | broker | msg/s | lost (max) | broker CPU s | broker CPU µs/msg | broker peak RSS MiB | p50 / p99 / p99.9 µs | loader cores (max) |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|\n")
	for _, cd := range cases {
		runs := by[cd.name]
		for _, v := range []string{mosquitto, mosquittoPersist, weirNone, weirProcess} {
			rs := runs[v]
			if len(rs) == 0 {
				continue
			}
			rate := summarizeRuns(rs, mRate)
			cpu := summarizeRuns(rs, mCPU)
			perMsg := summarizeRuns(rs, mCPUPerMsg)
			hwm := summarizeRuns(rs, metric{get: func(r *Result) (float64, bool) {
				if r.Broker == nil {
					return 0, false
				}
				return float64(r.Broker.HWMKiB) / 1024, true
			}})
			lat := func(f func(*Latency) float64) string {
				s := summarizeRuns(rs, metric{get: func(r *Result) (float64, bool) {
					if r.Latency == nil {
						return 0, false
					}
					return f(r.Latency), true
				}})
				if s.n == 0 {
					return "—"
				}
				return fmtNum(s.med)
			}
			lats := "—"
			if cd.name != "conns" && cd.name != "idle" {
				lats = lat(func(l *Latency) float64 { return l.P50us }) + " / " + lat(func(l *Latency) float64 { return l.P99us }) + " / " + lat(func(l *Latency) float64 { return l.P999us })
			}
			rateCell := "—"
			if rate.n > 0 {
				rateCell = fmtNum(rate.med)
			}
			cpuCell, hwmCell, perMsgCell := "—", "—", "—"
			if cpu.n > 0 {
				cpuCell = fmtNum(cpu.med)
				hwmCell = fmtNum(hwm.med)
			}
			if perMsg.n > 0 {
				perMsgCell = fmtNum(perMsg.med)
			}
			fmt.Fprintf(w, "| %s | %s | %s | %d | %s | %s | %s | %s | %.2f |\n", cd.name, v, rateCell, rate.lost, cpuCell, perMsgCell, hwmCell, lats, rate.loaderUtil)
		}
	}
	fmt.Fprintf(w, "\nTargets of issue 6:\n\n| target | measured | met |\n|---|---|---|\n")
	for _, v := range verdicts {
		met := "not measured"
		if v.known {
			met = "no"
			if v.met {
				met = "yes"
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", v.text, v.measured, met)
	}
	return nil
}
