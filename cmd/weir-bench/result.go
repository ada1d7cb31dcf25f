package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// Result is what one run measured. It is printed as one JSON line.
type Result struct {
	Scenario string  `json:"scenario"`
	Case     string  `json:"case,omitempty"`
	Label    string  `json:"label,omitempty"`
	Addr     string  `json:"addr"`
	Protocol string  `json:"protocol"`
	QoS      int     `json:"qos"`
	Size     int     `json:"size,omitempty"`
	Pubs     int     `json:"pubs,omitempty"`
	Subs     int     `json:"subs,omitempty"`
	Msgs     int     `json:"msgs_per_pub,omitempty"`
	Rate     float64 `json:"target_rate,omitempty"` // total msg/s asked for; 0 unpaced
	Phase    string  `json:"phase,omitempty"`

	Sent      int64 `json:"sent"`              // PUBLISH packets written
	Acked     int64 `json:"acked,omitempty"`   // QoS 1/2 publishes completed (PUBACK / PUBCOMP)
	Refused   int64 `json:"refused,omitempty"` // acknowledged with a failure reason code (5.0)
	Expected  int64 `json:"expected"`          // deliveries a lossless broker makes
	Delivered int64 `json:"delivered"`         // unique deliveries
	Lost      int64 `json:"lost"`              // expected - delivered
	Dups      int64 `json:"dups"`              // deliveries of a message already delivered
	Reordered int64 `json:"reordered"`         // deliveries after a later message of the same publisher
	Foreign   int64 `json:"foreign,omitempty"` // payloads this run did not send

	PubSeconds    float64  `json:"pub_seconds,omitempty"` // start → last publish written (QoS 0) or completed
	Seconds       float64  `json:"seconds"`               // start → last delivery
	PubRate       float64  `json:"pub_msgs_per_s,omitempty"`
	DeliveredRate float64  `json:"delivered_msgs_per_s"`
	Latency       *Latency `json:"latency,omitempty"`

	Conns    int `json:"conns,omitempty"`
	Accepted int `json:"accepted,omitempty"`
	Alive    int `json:"alive,omitempty"`

	Broker *BrokerUsage `json:"broker,omitempty"`

	LoaderCPUSec  float64  `json:"loader_cpu_s"`
	LoaderCPUUtil float64  `json:"loader_cpu_util"` // loader CPU seconds per wall second of the measured phase
	TimedOut      bool     `json:"timed_out,omitempty"`
	Errors        []string `json:"errors,omitempty"`
}

// BrokerUsage is what /proc said about the broker process (-pid) before and
// after the measured phase.
type BrokerUsage struct {
	PID          int     `json:"pid"`
	RSSBeforeKiB int64   `json:"rss_before_kib"`
	RSSAfterKiB  int64   `json:"rss_after_kib"`
	HWMKiB       int64   `json:"hwm_kib"` // peak RSS since the broker started
	CPUSec       float64 `json:"cpu_s"`   // utime+stime spent during the phase
	RSSPerConnB  float64 `json:"rss_per_conn_bytes,omitempty"`
}

const maxErrors = 10

func (r *Result) addErr(err error) {
	if len(r.Errors) < maxErrors {
		r.Errors = append(r.Errors, err.Error())
	} else if len(r.Errors) == maxErrors {
		r.Errors = append(r.Errors, "(more errors left out)")
	}
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

func (r *Result) writeJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// writeTable prints the result for people.
func (r *Result) writeTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	title := r.Scenario
	if r.Label != "" {
		title += " (" + r.Label + ")"
	}
	row("scenario", "%s against %s, MQTT %s", title, r.Addr, r.Protocol)
	switch r.Scenario {
	case "conns":
		row("connections", "%d asked, %d accepted, %d alive after the hold", r.Conns, r.Accepted, r.Alive)
	default:
		shape := fmt.Sprintf("%d publisher(s) × %d msgs of %d B, %d subscriber(s), QoS %d", r.Pubs, r.Msgs, r.Size, r.Subs, r.QoS)
		if r.Rate > 0 {
			shape += fmt.Sprintf(", paced at %.0f msg/s", r.Rate)
		}
		if r.Phase != "" {
			shape += ", phase " + r.Phase
		}
		row("shape", "%s", shape)
		if r.Sent > 0 {
			row("published", "%d in %.3f s (%.0f msg/s)", r.Sent, r.PubSeconds, r.PubRate)
		}
		if r.Acked > 0 || r.Refused > 0 {
			row("acknowledged", "%d (%d refused)", r.Acked, r.Refused)
		}
		if r.Expected > 0 {
			row("delivered", "%d of %d in %.3f s: %.0f msg/s", r.Delivered, r.Expected, r.Seconds, r.DeliveredRate)
			row("lost / dups / reordered", "%d / %d / %d", r.Lost, r.Dups, r.Reordered)
		}
		if r.Foreign > 0 {
			row("foreign payloads", "%d", r.Foreign)
		}
		if l := r.Latency; l != nil {
			row("latency µs", "p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (%d samples)", l.P50us, l.P99us, l.P999us, l.MaxUs, l.Samples)
		}
	}
	if b := r.Broker; b != nil {
		row("broker pid", "%d", b.PID)
		row("broker RSS", "%.1f → %.1f MiB (peak %.1f MiB)", float64(b.RSSBeforeKiB)/1024, float64(b.RSSAfterKiB)/1024, float64(b.HWMKiB)/1024)
		row("broker CPU", "%.2f s", b.CPUSec)
		if b.RSSPerConnB != 0 {
			row("broker RSS / connection", "%.0f B", b.RSSPerConnB)
		}
	}
	row("loader CPU", "%.2f s (%.2f cores)", r.LoaderCPUSec, r.LoaderCPUUtil)
	if r.TimedOut {
		row("TIMED OUT", "%s", "the hard -timeout ended the run; numbers are partial")
	}
	if len(r.Errors) > 0 {
		row("errors", "%s", strings.Join(r.Errors, "; "))
	}
	tw.Flush()
}
