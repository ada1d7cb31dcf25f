package main

// The memory profile (config key "profile") and the Go memory limit
// (config key "memory_limit"): what makes Weir fit a 256 MiB–1 GiB board.

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	badgerstore "github.com/weirmq/weir/store/badger"
	"gopkg.in/yaml.v3"
)

// Profile names.
const (
	profileAuto    = "auto"
	profileDefault = "default"
	profileSmall   = "small"
)

// smallMemory is the memory below which profile auto selects small: the
// smaller of the machine's RAM and the cgroup's memory limit (systemd's
// MemoryMax, docker --memory). A "1 GB" board reports less than 1 GiB.
const smallMemory = 1 << 30

// smallLimits are the defaults of the limits the small profile changes:
// those that bound memory. (Queues of persistent sessions live in the
// store beyond queue_memory_window, so their lengths cost disk, not RAM,
// and are left alone.) Keys set in the configuration file keep the file's
// value.
var smallLimits = []struct {
	path string
	set  func(*limitsConfig)
}{
	{"limits.max_connections", func(l *limitsConfig) { l.MaxConnections = 1000 }},
	{"limits.queue_memory_window", func(l *limitsConfig) { l.QueueMemoryWindow = 100 }},
	{"limits.outbound_buffer_bytes", func(l *limitsConfig) { l.OutboundBufferBytes = 256 << 10 }},
}

// smallStore is the Badger sizing of the small profile: about 14 MiB of
// memtables and caches instead of about 36 MiB (badgerstore's defaults).
func smallStore(o *badgerstore.Options) {
	o.MemTableSize = maxMemTable32
	o.ValueLogFileSize = 16 << 20
	o.BlockCacheSize = 1 << 20
	o.IndexCacheSize = 1 << 20
	o.MappedMemoryLimit = 8 << 20
}

// smallGCPercent is the garbage collector's target (GOGC) in the small
// profile unless the GOGC environment variable sets one: the heap may
// grow to 1.5× what is live instead of 2×. Most of the live heap under a
// long queue is Badger's memtables and table builders, so this is what
// keeps a restart and drain of a million queued messages near 64 MiB, for
// some more garbage-collection work.
const smallGCPercent = 50

// maxMemTable32 is the largest memtable that is safe on 32-bit platforms.
//
// Badger builds each SSTable in a ristretto z.Allocator whose first buffer
// is twice Badger's BaseTableSize (2 MiB): 4 MiB. When a table outgrows
// it, the allocator moves to a second buffer by storing
// uint64((bufIdx+1)<<32), which is 0 where int has 32 bits
// (ristretto/v2 z/allocator.go, up to v2.4.2 at least), so it starts over
// at the beginning of the first buffer and overwrites the table's first
// blocks: the table fails its checksum when Badger opens it, the memtable
// flush retries forever and shutdown hangs (internal/armtest's
// storeFlush). A memtable flushed from 4 MiB makes a table of about
// 3.3 MB, which fits; compactions size their allocator for the tables
// they build. (A rare L0-to-L0 compaction still starts with a small
// allocator: only the ristretto fix removes that case.)
const maxMemTable32 = 4 << 20

// storeSizing sets the Badger sizes for profile on a platform whose int
// has intSize bits.
func storeSizing(o *badgerstore.Options, profile string, intSize int) {
	if profile == profileSmall {
		smallStore(o)
	}
	if intSize == 32 && (o.MemTableSize == 0 || o.MemTableSize > maxMemTable32) {
		o.MemTableSize = maxMemTable32
	}
}

// memoryInfo is what the machine offers the process.
type memoryInfo struct {
	Total  int64 // MemTotal of /proc/meminfo; 0 if unknown
	Cgroup int64 // memory limit of the process's cgroup; 0 if none or unknown
}

// available returns the smaller of Total and Cgroup, 0 if neither is known.
func (m memoryInfo) available() int64 {
	switch {
	case m.Total == 0:
		return m.Cgroup
	case m.Cgroup == 0:
		return m.Total
	}
	return min(m.Total, m.Cgroup)
}

// resolveProfile returns the profile c selects on a machine with mem: auto
// becomes small below smallMemory and default otherwise (also when the
// memory is unknown).
func (c *config) resolveProfile(mem memoryInfo) string {
	if c.Profile != profileAuto {
		return c.Profile
	}
	if a := mem.available(); a > 0 && a < smallMemory {
		return profileSmall
	}
	return profileDefault
}

// applyProfile sets the small profile's limits in c for the keys that the
// configuration file does not set (set reports whether it does).
func (c *config) applyProfile(profile string, set func(path string) bool) {
	if profile != profileSmall {
		return
	}
	for _, s := range smallLimits {
		if !set(s.path) {
			s.set(&c.Limits)
		}
	}
}

// keysInFile returns a function reporting whether the YAML file at path
// sets a key path ("limits.max_connections"). An empty path, or a file
// that cannot be read, sets none.
func keysInFile(path string) func(string) bool {
	keys := map[string]bool{}
	if data, err := os.ReadFile(path); path != "" && err == nil {
		var root yaml.Node
		if yaml.Unmarshal(data, &root) == nil {
			for _, e := range newKeyIndex(&root).entries {
				keys[e.path] = true
			}
		}
	}
	return func(p string) bool { return keys[p] }
}

// goMemoryLimit returns the soft memory limit for the Go runtime, or 0 to
// leave it alone, and where it comes from: the memory_limit key if set;
// otherwise the GOMEMLIMIT environment variable (which the runtime has
// already applied); otherwise 80% of the cgroup's limit, so the garbage
// collector works harder before the kernel's OOM killer strikes.
func goMemoryLimit(key int64, env string, mem memoryInfo) (int64, string) {
	switch {
	case key > 0:
		return key, "memory_limit"
	case env != "":
		return 0, "GOMEMLIMIT"
	case mem.Cgroup > 0:
		return mem.Cgroup / 10 * 8 &^ (1<<20 - 1), "80% of the cgroup memory limit"
	}
	return 0, ""
}

// setupMemory resolves and applies the profile and the memory limit for
// cfg (set reports the keys its file sets), logs them, and returns the
// profile.
func setupMemory(cfg *config, set func(string) bool, log *slog.Logger) string {
	mem := readMemoryInfo()
	profile := cfg.resolveProfile(mem)
	cfg.applyProfile(profile, set)
	if profile == profileSmall && os.Getenv("GOGC") == "" {
		debug.SetGCPercent(smallGCPercent)
	}
	limit, from := goMemoryLimit(int64(cfg.MemoryLimit), os.Getenv("GOMEMLIMIT"), mem)
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	attrs := []any{"profile", profile, "machine_memory", size(mem.Total), "cgroup_memory_limit", size(mem.Cgroup)}
	if cur := debug.SetMemoryLimit(-1); cur != math.MaxInt64 {
		attrs = append(attrs, "go_memory_limit", size(cur), "go_memory_limit_from", from)
	}
	log.Info("memory", attrs...)
	return profile
}

// readMemoryInfo reads the machine's memory and the cgroup's limit (v2,
// or v1's memory controller); what it cannot read is 0.
func readMemoryInfo() memoryInfo {
	var m memoryInfo
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.Total = parseMemTotal(data)
	}
	if data, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		m.Cgroup = cgroupLimit(data, func(p string) ([]byte, error) { return os.ReadFile(p) })
	}
	if m.Total > 0 && m.Cgroup >= m.Total {
		m.Cgroup = 0 // not a limit in practice
	}
	return m
}

// parseMemTotal returns MemTotal from /proc/meminfo's content, in bytes.
func parseMemTotal(meminfo []byte) int64 {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return n << 10
				}
			}
		}
	}
	return 0
}

// cgroupLimit returns the memory limit of the cgroup named in
// /proc/self/cgroup's content, reading the cgroup files with read; 0 for
// none. The smallest limit of the cgroup and its ancestors applies.
func cgroupLimit(procCgroup []byte, read func(string) ([]byte, error)) int64 {
	var limit int64
	consider := func(data []byte) {
		s := strings.TrimSpace(string(data))
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 && n < 1<<62 {
			if limit == 0 || n < limit {
				limit = n
			}
		}
	}
	for line := range strings.Lines(string(procCgroup)) {
		// hierarchy-ID:controllers:path
		f := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(f) != 3 {
			continue
		}
		var root, file string
		switch {
		case f[0] == "0" && f[1] == "":
			root, file = "/sys/fs/cgroup", "memory.max"
		case strings.Contains(","+f[1]+",", ",memory,"):
			root, file = "/sys/fs/cgroup/memory", "memory.limit_in_bytes"
		default:
			continue
		}
		for dir := f[2]; ; dir = filepath.Dir(dir) {
			if data, err := read(filepath.Join(root, dir, file)); err == nil {
				consider(data)
			}
			if dir == "/" || dir == "." {
				break
			}
		}
	}
	return limit
}

// checkProfile validates the profile key.
func checkProfile(p string) error {
	switch p {
	case profileAuto, profileDefault, profileSmall:
		return nil
	}
	return fmt.Errorf("%q is not one of auto, default, small", p)
}
