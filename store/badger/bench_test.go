//go:build unix

package badgerstore

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/weirmq/weir/store"
)

// sensorBatch is what the broker commits for one 64-byte QoS 1 sensor
// reading queued for one persistent subscriber.
func sensorBatch(client string, id uint64) *store.Batch {
	b := new(store.Batch)
	b.PutMessage(&store.Message{ID: id, Topic: "sensors/" + client + "/temp", Payload: bytes.Repeat([]byte{'x'}, 64), QoS: 1})
	b.Enqueue(client, store.QueueEntry{Seq: id, MsgID: id, QoS: 1})
	return b
}

// BenchmarkCommit: committers that each wait for done before the next
// commit (a publisher waiting for PUBACK), one or 64 of them. msgs/s is
// acknowledged messages per second; batches/txn shows the group commit.
func BenchmarkCommit(b *testing.B) {
	for _, d := range []Durability{Process, Sync} {
		for _, goroutines := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/goroutines=%d", d, goroutines), func(b *testing.B) {
				s := openTest(b, Options{Durability: d})
				var next atomic.Uint64
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for g := range goroutines {
					wg.Add(1)
					go func() {
						defer wg.Done()
						client := fmt.Sprintf("c%d", g)
						for {
							id := next.Add(1)
							if id > uint64(b.N) {
								return
							}
							if err := commit(b, s, sensorBatch(client, id)); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				st := s.Stats()
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
				b.ReportMetric(float64(st.Batches)/float64(max(st.Txns, 1)), "batches/txn")
			})
		}
	}
}

// dirSize is the bytes the files in dir take on disk (sparse files count
// what is allocated).
func dirSize(t testing.TB, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		} else {
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// writeBytes returns write_bytes of /proc/self/io: bytes this process
// caused to be written to storage (page-cache pages it dirtied, counted
// when dirtied, also through mmap).
func writeBytes(t testing.TB) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("no write_bytes in /proc/self/io")
	return 0
}

// TestWriteAmplification measures the bytes written to disk per stored
// 64-byte message: each message is put and queued for one subscriber (one
// batch, from 64 concurrent publishers), and later dequeued (one batch per
// PUBACK), then the store is closed (which flushes the memtable). Set
// WEIR_WAMP_MSGS to change the number of messages (default 20000; the
// report used 100000):
//
//	WEIR_WAMP_MSGS=100000 go test ./store/badger -run WriteAmplification -v
func TestWriteAmplification(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("measurement: not with -short or -race")
	}
	n := 20000
	if v := os.Getenv("WEIR_WAMP_MSGS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	const goroutines = 64
	for _, d := range []Durability{Process, Sync} {
		t.Run(d.String(), func(t *testing.T) {
			dir := t.TempDir()
			run := func(phase func(g int, client string)) (written int64, took time.Duration) {
				w0, t0 := writeBytes(t), time.Now()
				var wg sync.WaitGroup
				for g := range goroutines {
					wg.Add(1)
					go func() {
						defer wg.Done()
						phase(g, fmt.Sprintf("c%d", g))
					}()
				}
				wg.Wait()
				return writeBytes(t) - w0, time.Since(t0)
			}
			w0 := writeBytes(t)
			s, err := Open(Options{Dir: dir, Durability: d, Logger: testLogger(t), GCInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			openW := writeBytes(t) - w0
			// Message ids g+1, g+1+64, … for publisher g.
			putW, putT := run(func(g int, client string) {
				for id := uint64(g + 1); id <= uint64(n); id += goroutines {
					if err := commit(t, s, sensorBatch(client, id)); err != nil {
						t.Error(err)
						return
					}
				}
			})
			diskAfterPuts := dirSize(t, dir)
			ackW, ackT := run(func(g int, client string) {
				for id := uint64(g + 1); id <= uint64(n); id += goroutines {
					b := new(store.Batch)
					b.Dequeue(client, id)
					if err := commit(t, s, b); err != nil {
						t.Error(err)
						return
					}
				}
			})
			if got := s.MessageCount(); got != 0 {
				t.Errorf("MessageCount = %d after dequeuing all", got)
			}
			st := s.Stats()
			w1 := writeBytes(t)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			closeW := writeBytes(t) - w1
			total := openW + putW + ackW + closeW
			t.Logf("%s, %d messages of 64 bytes, %d publishers: %.0f bytes written per message "+
				"(put+enqueue %.0f, dequeue %.0f, open %d B, close %d B); "+
				"put %.0f msgs/s, dequeue %.0f msgs/s; %.1f batches per transaction; %d bytes of files after the puts",
				d, n, goroutines, float64(total)/float64(n),
				float64(putW)/float64(n), float64(ackW)/float64(n), openW, closeW,
				float64(n)/putT.Seconds(), float64(n)/ackT.Seconds(),
				float64(st.Batches)/float64(max(st.Txns, 1)), diskAfterPuts)
		})
	}
}
