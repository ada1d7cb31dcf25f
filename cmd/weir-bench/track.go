package main

import (
	"math"
	"slices"
)

// tracker checks the messages one subscriber receives against what the
// publishers sent: pubs publishers, each numbering its messages 0..msgs-1.
// It counts unique deliveries, duplicates, messages that arrive after a
// later one of the same publisher (reordered) and payloads it cannot place
// (foreign). It also keeps every send→receive latency. Not safe for
// concurrent use: each subscriber has its own.
type tracker struct {
	msgs      uint64
	seen      [][]uint64 // per publisher, one bit per sequence number
	maxSeq    []int64    // per publisher, highest sequence number seen, -1 none
	unique    int64
	dups      int64
	reordered int64
	foreign   int64
	lat       []int64 // nanoseconds
	keepLat   bool
}

func newTracker(pubs, msgs int, keepLatency bool) *tracker {
	t := &tracker{msgs: uint64(msgs), seen: make([][]uint64, pubs), maxSeq: make([]int64, pubs), keepLat: keepLatency}
	for i := range t.seen {
		t.seen[i] = make([]uint64, (msgs+63)/64)
		t.maxSeq[i] = -1
	}
	return t
}

// record accounts one received payload; now is the receive time on the
// run's clock. It reports whether the payload was a new message.
func (t *tracker) record(payload []byte, now int64) bool {
	pub, seq, sent, err := decodePayload(payload)
	if err != nil || int(pub) >= len(t.seen) || seq >= t.msgs {
		t.foreign++
		return false
	}
	w, bit := seq/64, uint64(1)<<(seq%64)
	if t.seen[pub][w]&bit != 0 {
		t.dups++
		return false
	}
	t.seen[pub][w] |= bit
	t.unique++
	if int64(seq) < t.maxSeq[pub] {
		t.reordered++
	} else {
		t.maxSeq[pub] = int64(seq)
	}
	if t.keepLat {
		t.lat = append(t.lat, now-sent)
	}
	return true
}

// percentile returns the q-quantile (0 < q <= 1) of sorted by the
// nearest-rank method: the smallest value with at least q of the samples
// at or below it. 0 for no samples.
func percentile(sorted []int64, q float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Latency is a summary of send→receive times in microseconds.
type Latency struct {
	Samples int     `json:"samples"`
	P50us   float64 `json:"p50_us"`
	P99us   float64 `json:"p99_us"`
	P999us  float64 `json:"p999_us"`
	MaxUs   float64 `json:"max_us"`
	MeanUs  float64 `json:"mean_us"`
}

// summarize sorts samples (nanoseconds) in place and summarizes them.
func summarize(samples []int64) *Latency {
	if len(samples) == 0 {
		return nil
	}
	slices.Sort(samples)
	var sum float64
	for _, s := range samples {
		sum += float64(s)
	}
	us := func(ns int64) float64 { return math.Round(float64(ns)/10) / 100 }
	return &Latency{
		Samples: len(samples),
		P50us:   us(percentile(samples, 0.50)),
		P99us:   us(percentile(samples, 0.99)),
		P999us:  us(percentile(samples, 0.999)),
		MaxUs:   us(samples[len(samples)-1]),
		MeanUs:  math.Round(sum/float64(len(samples))/10) / 100,
	}
}
