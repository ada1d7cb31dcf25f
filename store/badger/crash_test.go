//go:build unix

package badgerstore

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/weirmq/weir/store"
)

// Crash tests run the store in a child process (this test binary again,
// with TestCrashChild selected and the environment saying what to do) and
// kill it with SIGKILL: no deferred function, no Close, no flush runs.

const (
	envCrashDir  = "WEIR_BADGER_CRASH_DIR"
	envCrashMode = "WEIR_BADGER_CRASH_MODE" // process, sync or oversized
)

// crashWindow is how many of the newest entries the stream keeps queued:
// batch k puts message k, queues it as entry k and dequeues entry k-50.
const crashWindow = 50

func streamBatch(k uint64) *store.Batch {
	b := new(store.Batch)
	if k == 1 {
		b.PutSession(&store.SessionRecord{ClientID: "c", ExpirySeconds: 3600})
	}
	b.PutMessage(msg(k))
	b.Enqueue("c", store.QueueEntry{Seq: k, MsgID: k, QoS: 1})
	if k > crashWindow {
		b.Dequeue("c", k-crashWindow)
	}
	b.PutInbound("c", uint16(k))
	if k > 1 {
		b.DeleteInbound("c", uint16(k-1))
	}
	return b
}

func TestCrashChild(t *testing.T) {
	dir := os.Getenv(envCrashDir)
	if dir == "" {
		t.Skip("run in a child process by the crash tests")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	switch mode := os.Getenv(envCrashMode); mode {
	case "process", "sync":
		d := Process
		if mode == "sync" {
			d = Sync
		}
		crashChildStream(t, Options{Dir: dir, Durability: d, Logger: logger})
	case "oversized":
		crashChildOversized(t, Options{Dir: dir, Logger: logger})
	default:
		t.Fatalf("unknown %s %q", envCrashMode, mode)
	}
}

// crashChildStream commits batches from 16 goroutines, each waiting for
// its done before the next (as publishers waiting for PUBACK), and prints
// "acked k" from done; batches are numbered in commit order.
func crashChildStream(t *testing.T, o Options) {
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	next := uint64(1)
	deadline := time.Now().Add(60 * time.Second)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				ch := make(chan error, 1)
				mu.Lock()
				k := next
				next++
				s.Commit(streamBatch(k), func(err error) {
					if err == nil {
						// One write per line: the parent reads every line
						// written before the kill.
						os.Stdout.WriteString("acked " + strconv.FormatUint(k, 10) + "\n")
					}
					ch <- err
				})
				mu.Unlock()
				if err := <-ch; err != nil {
					fmt.Fprintln(os.Stderr, "commit:", err)
					os.Exit(3)
				}
			}
		}()
	}
	wg.Wait()
	t.Fatal("not killed within 60s")
}

// crashChildOversized commits a small batch, then one too big for a
// Badger transaction, and kills itself after the second of the
// transactions it is spread over.
func crashChildOversized(t *testing.T, o Options) {
	commits := 0
	o.hooks = &testHooks{afterCommit: func(split bool) {
		if split {
			if commits++; commits == 2 {
				p, _ := os.FindProcess(os.Getpid())
				p.Kill()
				time.Sleep(time.Minute)
			}
		}
	}}
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, publish("small", 1))
	os.Stdout.WriteString("acked small\n")
	b := new(store.Batch)
	b.PutSession(&store.SessionRecord{ClientID: "big"})
	for i := uint64(100); i < 100+oversizedN; i++ {
		b.PutMessage(msg(i))
	}
	for i := uint64(100); i < 100+oversizedN; i++ {
		b.Enqueue("big", store.QueueEntry{Seq: i, MsgID: i, QoS: 1})
	}
	err = commit(t, s, b)
	t.Fatalf("oversized commit returned (%v) instead of the process being killed", err)
}

const oversizedN = 30000

// runCrashChild runs the child in mode on dir; stop is called for each
// line the child prints and says when to kill it (SIGKILL). It returns the
// lines.
func runCrashChild(t *testing.T, dir, mode string, stop func(line string) bool) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashMode+"="+mode)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	var lines []string
	killed := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		// stop sees every line, also those read after the kill: they
		// were printed before it.
		if stop(sc.Text()) && !killed {
			cmd.Process.Kill() // SIGKILL
			killed = true
		}
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != -1 || !strings.Contains(exit.String(), "killed") {
		t.Fatalf("child: %v, want it killed by SIGKILL; stderr:\n%s", err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Logf("child stderr:\n%s", stderr.String())
	}
	return lines
}

// TestCrashKill: every batch whose done reported nil is there after the
// process was killed mid-stream, nothing is half-applied, and no message
// is left without a reference.
func TestCrashKill(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	for _, mode := range []string{"process", "sync"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			target := uint64(3000)
			if mode == "sync" {
				target = 500
			}
			var acked uint64
			lines := runCrashChild(t, dir, mode, func(line string) bool {
				if k, ok := strings.CutPrefix(line, "acked "); ok {
					n, err := strconv.ParseUint(k, 10, 64)
					if err != nil || n != acked+1 {
						t.Errorf("child printed %q after acked %d", line, acked)
					}
					acked = n
				}
				return acked >= target
			})
			t.Logf("killed after %d acknowledged batches", len(lines))
			if acked < target {
				t.Fatalf("child acknowledged only %d batches", acked)
			}

			s := openTest(t, Options{Dir: dir})
			if got := s.Stats().OrphansRemoved; got != 0 {
				t.Errorf("Open removed %d orphaned messages: a batch was half-applied", got)
			}
			// Batches after the last acknowledged one may have been
			// committed too (killed before their done ran), but in order
			// and whole: the queue holds exactly the newest crashWindow
			// entries up to the last committed batch u >= acked.
			entries := readQueue(t, s, "c", 0)
			var u uint64
			for _, e := range entries {
				u = max(u, e.Seq)
				if e.MsgID != e.Seq {
					t.Errorf("entry %d refers to message %d", e.Seq, e.MsgID)
				}
			}
			if u < acked {
				t.Fatalf("newest entry is %d, but batch %d was acknowledged", u, acked)
			}
			t.Logf("last acknowledged batch %d, last committed %d", acked, u)
			var want []uint64
			for k := u - min(u, crashWindow) + 1; k <= u; k++ {
				want = append(want, k)
			}
			var got []uint64
			for _, e := range entries {
				got = append(got, e.Seq)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("queue holds entries %v, want %v", got, want)
			}
			// Every entry has its message, and no message is kept without
			// an entry.
			if got := s.MessageCount(); got != len(entries) {
				t.Errorf("MessageCount = %d, want one per queue entry (%d)", got, len(entries))
			}
			var raw int
			_ = s.db.View(func(txn *badger.Txn) error {
				p, _ := clientPrefix(prefixQueue, "c", 0)
				it := txn.NewIterator(badger.IteratorOptions{Prefix: p})
				defer it.Close()
				for it.Rewind(); it.Valid(); it.Next() {
					raw++
				}
				return nil
			})
			if raw != len(entries) {
				t.Errorf("%d queue keys, Queue returned %d: entries without their message", raw, len(entries))
			}
			if got := s.MaxMessageID(); got < acked {
				t.Errorf("MaxMessageID = %d, want at least %d", got, acked)
			}
			var inbound []uint16
			_ = s.Inbound("c", func(id uint16) { inbound = append(inbound, id) })
			if len(inbound) != 1 {
				t.Errorf("inbound ids %v, want exactly one (batch k replaces k-1's)", inbound)
			}
			if _, ok := readSessions(t, s)["c"]; !ok {
				t.Error("session c is missing")
			}
		})
	}
}

// TestCrashInOversizedBatch: a crash between the transactions of an
// oversized batch leaves a prefix of it; Open deletes the messages it put
// whose entries were not written yet, and the rest is consistent.
func TestCrashInOversizedBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	dir := t.TempDir()
	runCrashChild(t, dir, "oversized", func(string) bool { return false })

	var logs logBuffer
	s := openTest(t, Options{Dir: dir, Logger: logs.logger()})
	orphans := s.Stats().OrphansRemoved
	entries := readQueue(t, s, "big", 0)
	t.Logf("after the crash: %d entries of the oversized batch, %d orphaned messages removed", len(entries), orphans)
	if orphans == 0 || orphans > oversizedN {
		t.Errorf("Open removed %d orphaned messages, want some (messages put before the crash, entries not)", orphans)
	}
	if !strings.Contains(logs.String(), fmt.Sprintf("orphaned_messages=%d", orphans)) {
		t.Errorf("log does not report the orphans:\n%s", logs.String())
	}
	if got := len(readQueue(t, s, "small", 0)); got != 1 {
		t.Errorf("the acknowledged small batch: %d entries, want 1", got)
	}
	if got, want := s.MessageCount(), len(entries)+1; got != want {
		t.Errorf("MessageCount = %d, want %d (one per entry)", got, want)
	}
	if got := s.MaxMessageID(); got != 100+oversizedN-1 {
		t.Errorf("MaxMessageID = %d, want %d (written first)", got, 100+oversizedN-1)
	}
	// The store works on: deleting the partial session releases its
	// messages.
	b := new(store.Batch)
	b.DeleteSession("big")
	mustCommit(t, s, b)
	if got := s.MessageCount(); got != 1 {
		t.Errorf("MessageCount = %d after deleting the partial session, want 1", got)
	}
}
