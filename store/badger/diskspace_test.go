package badgerstore

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/weirmq/weir/store"
)

// TestDiskReserve: with less free space than Options.DiskReserve, batches
// that store a message fail with ErrDiskFull (wrapping ENOSPC) and small
// batches still pass until the smaller floor; the store keeps working and
// writes resume once space is free again, without reopening it.
func TestDiskReserve(t *testing.T) {
	var free atomic.Int64
	free.Store(1 << 30)
	var logs logBuffer
	s := openTest(t, Options{MemTableSize: 1 << 20, ValueLogFileSize: 4 << 20, Logger: logs.logger(),
		hooks: &testHooks{freeSpace: func() (int64, error) { return free.Load(), nil }}})
	reserve := s.opt.DiskReserve
	if want := int64(4<<20 + 8<<20 + 8<<20); reserve != want {
		t.Fatalf("default reserve %d, want %d", reserve, want)
	}
	if err := commit(t, s, publish("c", 1)); err != nil {
		t.Fatal(err)
	}

	free.Store(reserve + 100) // less than the reserve plus one message
	err := commit(t, s, publish("c", 2))
	if !errors.Is(err, ErrDiskFull) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("message batch with the reserve reached: %v, want ErrDiskFull wrapping ENOSPC", err)
	}
	if !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("error %q does not say the disk is full", err)
	}
	var ack store.Batch
	ack.Dequeue("c", 1)
	if err := commit(t, s, &ack); err != nil {
		t.Fatalf("a batch storing no message must still pass within the reserve: %v", err)
	}
	free.Store(reserve - smallWriteRoom - 1)
	var sess store.Batch
	sess.PutSession(&store.SessionRecord{ClientID: "c", ExpirySeconds: 60})
	if err := commit(t, s, &sess); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("small batch below the floor: %v, want ErrDiskFull", err)
	}
	if n := s.Stats().DiskFull; n != 2 {
		t.Fatalf("Stats.DiskFull %d, want 2", n)
	}

	free.Store(1 << 30)
	if err := commit(t, s, publish("c", 3)); err != nil {
		t.Fatalf("after space was freed: %v", err)
	}
	var seqs []uint64
	if err := s.Queue("c", 0, func(e store.QueueEntry, _ *store.Message) bool {
		seqs = append(seqs, e.Seq)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 1 || seqs[0] != 3 {
		t.Fatalf("queue %v, want [3] (1 acknowledged, 2 refused)", seqs)
	}
	out := logs.String()
	for _, want := range []string{"disk almost full", "writing messages resumed"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// TestDiskReserveUnknown: when free space cannot be measured the store
// writes as Badger alone would, and says so once.
func TestDiskReserveUnknown(t *testing.T) {
	var logs logBuffer
	s := openTest(t, Options{Logger: logs.logger(),
		hooks: &testHooks{freeSpace: func() (int64, error) { return 0, errNoStatfs }}})
	for id := uint64(1); id <= 3; id++ {
		if err := commit(t, s, publish("c", id)); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), "cannot measure free disk space"); n != 1 {
		t.Fatalf("warning logged %d times, want once:\n%s", n, logs.String())
	}
}

// TestDiskFullTmpfs fills a real (tmpfs) file system. Without the reserve
// Badger's writer dies with SIGBUS writing into a sparse memory-mapped
// value log; with it, commits fail with ErrDiskFull, and succeed again once
// a file is deleted. Everything acknowledged is there after reopening.
func TestDiskFullTmpfs(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root or CAP_SYS_ADMIN): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
			exec.Command("umount", "-l", dir).Run()
		}
	})
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	o := Options{Dir: filepath.Join(dir, "db"), MemTableSize: 1 << 20, ValueLogFileSize: 4 << 20, Logger: testLogger(t)}
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	payload := make([]byte, 8<<10)
	var acked []uint64
	id := uint64(1)
	for ; ; id++ {
		if id > 10000 {
			t.Fatal("40 MiB file system not full after 10000 messages of 8 KiB")
		}
		var b store.Batch
		b.PutMessage(&store.Message{ID: id, Topic: "t", Payload: payload, QoS: 1})
		b.Enqueue("c", store.QueueEntry{Seq: id, MsgID: id, QoS: 1})
		err := commit(t, s, &b)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			t.Fatalf("message %d: %v", id, err)
		}
		acked = append(acked, id)
	}
	if len(acked) < 500 {
		t.Fatalf("only %d messages stored before the disk was full", len(acked))
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		id++
		var b store.Batch
		b.PutMessage(&store.Message{ID: id, Topic: "t", Payload: payload, QoS: 1})
		b.Enqueue("c", store.QueueEntry{Seq: id, MsgID: id, QoS: 1})
		if err := commit(t, s, &b); err != nil {
			t.Fatalf("message %d after freeing 8 MiB: %v", id, err)
		}
		acked = append(acked, id)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	s, err = Open(o)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	i := 0
	err = s.Queue("c", 0, func(e store.QueueEntry, m *store.Message) bool {
		if i >= len(acked) || e.Seq != acked[i] || m.ID != acked[i] {
			t.Errorf("entry %d: seq %d msg %d, want %d", i, e.Seq, m.ID, acked[min(i, len(acked)-1)])
			return false
		}
		i++
		return true
	})
	if err != nil || i != len(acked) {
		t.Fatalf("reopened queue: %d of %d acknowledged messages, err %v", i, len(acked), err)
	}
}
