package broker_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirmq/weir/broker"
	"github.com/weirmq/weir/internal/brokertest"
	"github.com/weirmq/weir/mqtt"
	badgerstore "github.com/weirmq/weir/store/badger"
)

// TestDiskFull fills the file system under a Badger store through the
// broker and checks what clients see while it is full and after space is
// freed:
//
//   - Writes stop being accepted when the free space falls below the
//     store's DiskReserve (badgerstore: Badger itself would kill the
//     process with SIGBUS writing into a sparse memory-mapped log on a
//     truly full disk). The failed commit reaches handlePublish's callback
//     with an error wrapping ENOSPC.
//   - A QoS 1 PUBLISH that must be stored (here: for an offline persistent
//     session) is then answered PUBACK 0x97 Quota exceeded (MQTT 5.0);
//     a 3.1.1 publisher, which cannot be told, is disconnected without a
//     PUBACK, so it keeps the message and re-sends it later. The message
//     is delivered to nobody.
//   - What needs no store write keeps flowing: QoS 0, and QoS 1 to online
//     clean sessions only.
//   - The broker logs "store commit failed: disk full" (rate-limited), the
//     store logs "disk almost full".
//   - Once space is freed (a filler file deleted, as an operator would),
//     QoS 1 publishes succeed again without a restart.
//   - After Shutdown, closing and reopening the store, every message
//     acknowledged with success is delivered, none of the refused ones.
func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	mountTmpfs(t, dir, "48m")
	// An operator frees space by deleting something: this file.
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("WEIR_TEST_LOG") != "" {
			t.Logf("logs:\n%s", logs.tail(8000))
		}
	})
	// Small Badger files so that the disk fills in a second or two; the
	// store's reserve is then 4×1 + 2×4 + 8 = 20 MiB.
	so := badgerstore.Options{Dir: filepath.Join(dir, "db"), Durability: badgerstore.Process,
		MemTableSize: 1 << 20, ValueLogFileSize: 4 << 20, Logger: logger}
	st, err := badgerstore.Open(so)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // after the broker's Shutdown (cleanups run last first)
	opts := &broker.Options{Store: st, Logger: logger,
		MaxQueuedMessages: 1 << 20, MaxQueuedBytes: 1 << 30, QueueMemoryWindow: 100}
	b := brokertest.Start(t, opts)

	offlineSubscriber(t, b, "keeper", "fill/#")
	live := b.DialRaw(t)
	live.Connect(t, &mqtt.Connect{ProtocolLevel: mqtt.V5, CleanStart: true, ClientID: "live"})
	live.Send(t, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "live/#", QoS: 1}}})
	live.Expect(t, mqtt.SUBACK)
	pub := b.DialRaw(t)
	pub.Connect(t, &mqtt.Connect{ProtocolLevel: mqtt.V5, CleanStart: true, ClientID: "pub"})

	rng := rand.New(rand.NewPCG(1, 2))
	acked := make(map[uint64]bool)   // PUBACK success: must survive
	refused := make(map[uint64]bool) // refused: must not be delivered
	var seq uint64
	var pid uint16
	publish := func(c *brokertest.Raw) mqtt.ReasonCode {
		t.Helper()
		seq++
		pid = pid%65535 + 1
		payload := make([]byte, 4<<10+rng.IntN(12<<10+1))
		binary.BigEndian.PutUint64(payload, seq)
		c.Send(t, &mqtt.Publish{QoS: 1, PacketID: pid, Topic: []byte("fill/x"), Payload: payload})
		ack := c.Expect(t, mqtt.PUBACK).(*mqtt.Puback)
		if ack.PacketID != pid {
			t.Fatalf("PUBACK for packet id %d, want %d", ack.PacketID, pid)
		}
		if ack.ReasonCode == mqtt.Success {
			acked[seq] = true
		} else {
			refused[seq] = true
		}
		return ack.ReasonCode
	}

	// Fill the disk.
	for {
		if seq == 20000 {
			t.Fatalf("disk not full after %d messages (%d acknowledged)", seq, len(acked))
		}
		rc := publish(pub)
		if rc == mqtt.Success {
			continue
		}
		if rc != mqtt.QuotaExceeded {
			t.Fatalf("message %d: PUBACK reason %v, want success or, with the disk full, 0x97 quota exceeded", seq, rc)
		}
		break
	}
	if len(acked) < 500 {
		t.Fatalf("only %d messages stored before the disk was full", len(acked))
	}
	t.Logf("disk full after %d messages acknowledged", len(acked))

	// (b) While it is full, QoS 1 that needs the store is refused...
	for range 5 {
		if rc := publish(pub); rc != mqtt.QuotaExceeded {
			t.Fatalf("message %d with the disk full: PUBACK %v, want 0x97 quota exceeded", seq, rc)
		}
	}
	// ... and a 3.1.1 publisher is disconnected without a PUBACK.
	old := brokertest.NewRaw(b.DialTCP(t), mqtt.V311)
	old.Connect(t, &mqtt.Connect{ProtocolLevel: mqtt.V311, CleanStart: true, ClientID: "old"})
	seq++
	refused[seq] = true
	payload := make([]byte, 8<<10)
	binary.BigEndian.PutUint64(payload, seq)
	old.Send(t, &mqtt.Publish{QoS: 1, PacketID: 1, Topic: []byte("fill/x"), Payload: payload})
	old.ExpectClosed(t)

	// (c) QoS 0, and QoS 1 that no persistent session needs, still flow.
	pub.Send(t, &mqtt.Publish{Topic: []byte("live/x"), Payload: []byte("qos0")})
	if p := live.Expect(t, mqtt.PUBLISH).(*mqtt.Publish); string(p.Payload) != "qos0" {
		t.Fatalf("live subscriber got %q, want qos0", p.Payload)
	}
	pub.Send(t, &mqtt.Publish{QoS: 1, PacketID: 1, Topic: []byte("live/x"), Payload: []byte("qos1")})
	if ack := pub.Expect(t, mqtt.PUBACK).(*mqtt.Puback); ack.ReasonCode != mqtt.Success {
		t.Fatalf("QoS 1 to an online clean session with the disk full: %v, want success (nothing to store)", ack.ReasonCode)
	}
	p := live.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
	if string(p.Payload) != "qos1" {
		t.Fatalf("live subscriber got %q, want qos1", p.Payload)
	}
	live.Send(t, &mqtt.Puback{PacketID: p.PacketID})

	// (d) The logs say why.
	out := logs.String()
	for _, want := range []string{"store commit failed: disk full", "no space left on device", "disk almost full"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if n := strings.Count(out, "store commit failed"); n != 1 {
		t.Errorf("%d store failure log lines for %d failed commits, want 1 (rate-limited)", n, len(refused)-1)
	}
	if s := b.Server.Stats(); s.StoreErrors < int64(len(refused)-1) {
		t.Errorf("Stats.StoreErrors %d, want at least %d", s.StoreErrors, len(refused)-1)
	}
	if n := st.Stats().DiskFull; n == 0 {
		t.Error("store Stats.DiskFull is 0")
	}

	// (e) Freeing space makes QoS 1 work again, without a restart. The
	// first attempt may still meet a full disk if Badger's background
	// work took the space meanwhile, so it is retried briefly.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	brokertest.Eventually(t, brokertest.WaitTimeout, func() error {
		if rc := publish(pub); rc != mqtt.Success {
			return fmt.Errorf("after freeing 8 MiB: PUBACK %v", rc)
		}
		return nil
	})
	for range 20 {
		if rc := publish(pub); rc != mqtt.Success {
			t.Fatalf("message %d after freeing 8 MiB: PUBACK %v", seq, rc)
		}
	}

	// (f) Every acknowledged message survives a restart on the same store.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Server.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("closing the store: %v", err)
	}
	st2, err := badgerstore.Open(so)
	if err != nil {
		t.Fatalf("reopening the store: %v", err)
	}
	t.Cleanup(func() { st2.Close() })
	opts.Store = st2
	b2 := brokertest.Start(t, opts)
	keeper := b2.DialRaw(t)
	if ack := keeper.Connect(t, &mqtt.Connect{ProtocolLevel: mqtt.V5, ClientID: "keeper",
		Props: mqtt.Properties{SessionExpiry: 3600}}); !ack.SessionPresent {
		t.Fatal("keeper's session not present after the restart")
	}
	got := make(map[uint64]bool, len(acked))
	for len(got) < len(acked) {
		p := keeper.Expect(t, mqtt.PUBLISH).(*mqtt.Publish)
		id := binary.BigEndian.Uint64(p.Payload)
		switch {
		case refused[id]:
			t.Fatalf("refused message %d was delivered", id)
		case !acked[id]:
			t.Fatalf("unknown message %d", id)
		case got[id]:
			t.Fatalf("message %d delivered twice", id)
		}
		got[id] = true
		keeper.Send(t, &mqtt.Puback{PacketID: p.PacketID})
	}
	// Nothing else is queued: a probe published now arrives next.
	probe := make([]byte, 8)
	keeper.Send(t, &mqtt.Publish{QoS: 1, PacketID: 1, Topic: []byte("fill/probe"), Payload: probe})
	for {
		pk, err := keeper.Read(brokertest.WaitTimeout)
		if err != nil {
			t.Fatalf("waiting for the probe: %v", err)
		}
		if p, ok := pk.(*mqtt.Publish); ok {
			if string(p.Topic) != "fill/probe" {
				t.Fatalf("extra message %d after the acknowledged ones", binary.BigEndian.Uint64(p.Payload))
			}
			break
		}
	}
}

// mountTmpfs mounts a tmpfs of size (mount's syntax, "48m") on dir for the
// test, skipping the test when mounting is not permitted.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := strings.ToLower(string(out))
		var ee *exec.Error
		if os.Geteuid() != 0 || errors.As(err, &ee) || strings.Contains(msg, "permission denied") ||
			strings.Contains(msg, "not permitted") || strings.Contains(msg, "superuser") {
			t.Skipf("filling a disk needs a small tmpfs, and mounting one needs root (CAP_SYS_ADMIN) and the mount command: %v: %s",
				err, bytes.TrimSpace(out))
		}
		t.Fatalf("mount tmpfs on %s: %v: %s", dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
			exec.Command("umount", "-l", dir).Run()
		}
	})
}

// syncBuffer is a log destination safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tail returns the last n bytes logged.
func (s *syncBuffer) tail(n int) string {
	out := s.String()
	return out[max(0, len(out)-n):]
}
