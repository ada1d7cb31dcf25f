package main

import (
	"testing"
)

func TestPercentileNearestRank(t *testing.T) {
	hundred := make([]int64, 100)
	for i := range hundred {
		hundred[i] = int64(i + 1) // 1..100
	}
	thousand := make([]int64, 1000)
	for i := range thousand {
		thousand[i] = int64(i + 1)
	}
	for _, tc := range []struct {
		name string
		in   []int64
		q    float64
		want int64
	}{
		{"empty", nil, 0.5, 0},
		{"one sample", []int64{42}, 0.999, 42},
		{"median of 100", hundred, 0.5, 50},
		{"p99 of 100", hundred, 0.99, 99},
		{"p99.9 of 100 is the max", hundred, 0.999, 100},
		{"p100", hundred, 1, 100},
		{"p99.9 of 1000", thousand, 0.999, 999},
		{"tiny q gives the min", thousand, 0.0001, 1},
		{"two samples median", []int64{10, 20}, 0.5, 10},
	} {
		if got := percentile(tc.in, tc.q); got != tc.want {
			t.Errorf("%s: percentile(q=%v) = %d, want %d", tc.name, tc.q, got, tc.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	if summarize(nil) != nil {
		t.Fatal("summary of no samples")
	}
	s := []int64{5000, 1000, 3000, 2000, 4000} // ns, unsorted
	l := summarize(s)
	if l.Samples != 5 || l.P50us != 3 || l.MaxUs != 5 || l.P999us != 5 || l.MeanUs != 3 {
		t.Fatalf("got %+v", l)
	}
}

func TestTracker(t *testing.T) {
	tr := newTracker(2, 100, true)
	msg := func(pub uint32, seq uint64) []byte { return encodePayload(nil, 64, pub, seq, 10) }
	for _, m := range []struct {
		p   []byte
		new bool
	}{
		{msg(0, 0), true},
		{msg(0, 2), true},
		{msg(0, 1), true},  // reordered
		{msg(0, 2), false}, // duplicate
		{msg(1, 99), true},
		{msg(1, 100), false}, // out of range
		{msg(2, 0), false},   // unknown publisher
		{[]byte("short"), false},
	} {
		if got := tr.record(m.p, 25); got != m.new {
			t.Fatalf("record(%x) = %v, want %v", m.p[:min(len(m.p), 12)], got, m.new)
		}
	}
	if tr.unique != 4 || tr.dups != 1 || tr.reordered != 1 || tr.foreign != 3 {
		t.Fatalf("unique %d dups %d reordered %d foreign %d", tr.unique, tr.dups, tr.reordered, tr.foreign)
	}
	if len(tr.lat) != 4 || tr.lat[0] != 15 {
		t.Fatalf("latencies %v, want four of 15", tr.lat)
	}
}
