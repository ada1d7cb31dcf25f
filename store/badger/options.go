package badgerstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Durability says when Commit reports a batch as done.
type Durability int

const (
	// Process: done is called once the batch is in Badger's memory-mapped
	// log files, so it survives the process being killed; a power loss
	// loses what was not yet synced (at most about ProcessSyncInterval).
	Process Durability = iota
	// Sync: done is called once the batch is also synced to the device,
	// with one sync per group commit, so it survives power loss.
	Sync
)

func (d Durability) String() string {
	switch d {
	case Process:
		return "process"
	case Sync:
		return "sync"
	}
	return fmt.Sprintf("Durability(%d)", int(d))
}

// Defaults for a 512 MiB device with an SD card (DESIGN.md §4).
const (
	DefaultMemTableSize        = 8 << 20
	DefaultValueLogFileSize    = 32 << 20
	DefaultBlockCacheSize      = 8 << 20
	DefaultIndexCacheSize      = 4 << 20
	DefaultGCInterval          = 5 * time.Minute
	DefaultProcessSyncInterval = time.Second
	DefaultMappedMemoryLimit   = 16 << 20

	// valueThreshold keeps values up to 1 KiB (small sensor payloads,
	// queue entries, sessions) in the LSM tree; larger ones go to the
	// value log.
	valueThreshold = 1 << 10
	// baseTableSize is the size of every SSTable (see badgerOptions).
	baseTableSize = 1 << 20
	// gcRounds bounds one value-log GC run: RunValueLogGC is called until
	// it has nothing to rewrite, at most this many times.
	gcRounds = 8
	// gcDiscardRatio is the fraction of a value-log file that must be
	// garbage for GC to rewrite it.
	gcDiscardRatio = 0.5
)

// Options configure Open. The zero value of every field but Dir selects
// its default.
type Options struct {
	// Dir is the directory the store keeps its files in; it is created
	// if missing. Required.
	Dir string
	// Durability is when Commit reports done; default Process.
	Durability Durability
	// Logger receives the store's logs and Badger's warnings and errors
	// (Badger's info messages at debug level). Nil: slog.Default().
	Logger *slog.Logger

	// MemTableSize is the size of one Badger memtable and of its
	// write-ahead log; default 8 MiB. One Badger transaction holds at
	// most 15% of it (about 1.2 MiB or 13,000 writes at the default).
	MemTableSize int64
	// ValueLogFileSize is the size at which a value-log file is rotated;
	// default 32 MiB.
	ValueLogFileSize int64
	// BlockCacheSize and IndexCacheSize bound Badger's caches; defaults
	// 8 MiB and 4 MiB, negative disables the cache (IndexCacheSize < 0
	// keeps all table indexes in memory, Badger's own default).
	BlockCacheSize, IndexCacheSize int64

	// GCInterval is how often value-log garbage collection runs (and it
	// also runs once in Close); default 5 minutes, negative disables the
	// periodic runs.
	GCInterval time.Duration
	// MaxBatchDelay is how long the writer may wait, after taking the
	// batches queued so far, for more to join the same group commit.
	// Default 0: take what is queued now and write at once (under load,
	// batches queue up while the previous group is written, so groups
	// form anyway).
	MaxBatchDelay time.Duration
	// ProcessSyncInterval is how often, in Process mode, the log files
	// are synced in the background so that a power loss loses at most
	// about this much acknowledged data (DESIGN.md §4: "up to the last
	// second"); default 1 second, negative disables it (then the kernel
	// writes back on its own schedule, typically within 30 seconds).
	// Unused in Sync mode.
	ProcessSyncInterval time.Duration
	// DiskReserve is the free space, in bytes, the store leaves on the
	// file system holding Dir: a batch that stores a message is refused
	// (its done gets an error wrapping ErrDiskFull and syscall.ENOSPC)
	// when writing it would leave less; other batches (small: acks,
	// session state) may still use 4 MiB of it, at most half of it.
	// Badger writes through memory-mapped sparse files, and a write into
	// one on a full file system kills the process with SIGBUS instead of
	// failing (see diskspace.go). Default 4×MemTableSize + 2×ValueLogFileSize + 8 MiB
	// (104 MiB with the default sizes); negative disables the check.
	DiskReserve int64
	// MappedMemoryLimit bounds the pages of the store's memory-mapped
	// files that stay in the process's resident set (Linux; see
	// trim_linux.go): over it, they are dropped from the process's page
	// tables (they stay in the kernel's page cache). Default 16 MiB;
	// negative disables it.
	MappedMemoryLimit int64

	hooks *testHooks // tests in this package only
}

func (o *Options) validate() error {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("badgerstore: Options.Dir is empty"))
	}
	if o.Durability != Process && o.Durability != Sync {
		errs = append(errs, fmt.Errorf("badgerstore: unknown Options.Durability %d", o.Durability))
	}
	if o.MemTableSize < 0 {
		errs = append(errs, fmt.Errorf("badgerstore: negative Options.MemTableSize %d", o.MemTableSize))
	}
	if o.ValueLogFileSize < 0 || o.ValueLogFileSize >= 2<<30 {
		errs = append(errs, fmt.Errorf("badgerstore: Options.ValueLogFileSize %d not in [0, 2 GiB)", o.ValueLogFileSize))
	}
	if o.MaxBatchDelay < 0 {
		errs = append(errs, fmt.Errorf("badgerstore: negative Options.MaxBatchDelay %v", o.MaxBatchDelay))
	}
	return errors.Join(errs...)
}

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	if o.ValueLogFileSize == 0 {
		o.ValueLogFileSize = DefaultValueLogFileSize
	}
	if o.BlockCacheSize == 0 {
		o.BlockCacheSize = DefaultBlockCacheSize
	}
	if o.IndexCacheSize == 0 {
		o.IndexCacheSize = DefaultIndexCacheSize
	}
	if o.GCInterval == 0 {
		o.GCInterval = DefaultGCInterval
	}
	if o.ProcessSyncInterval == 0 {
		o.ProcessSyncInterval = DefaultProcessSyncInterval
	}
	if o.MappedMemoryLimit == 0 {
		o.MappedMemoryLimit = DefaultMappedMemoryLimit
	}
	if o.DiskReserve == 0 {
		o.DiskReserve = defaultDiskReserve(o.MemTableSize, o.ValueLogFileSize)
	}
	return o
}

// badgerOptions translates o (with defaults applied) into Badger's.
func (o *Options) badgerOptions() badger.Options {
	bo := badger.DefaultOptions(o.Dir).
		// Sync mode uses Badger's SyncWrites rather than SyncWrites=false
		// plus db.Sync() after each group: db.Sync() syncs only the
		// current memtable's log and the current value-log file, so a
		// group whose writes straddle a memtable or value-log rotation
		// would be acknowledged before the rotated file is durable. With
		// SyncWrites Badger syncs the log (and value log) at the end of
		// each write request, and rotated files before they are left;
		// the writer commits one transaction per group, so this is still
		// one sync per group commit, never one per message.
		WithSyncWrites(o.Durability == Sync).
		// (Not WithLoggingLevel: it replaces the logger with Badger's own.)
		WithLogger(badgerLogger{o.Logger}).
		WithMemTableSize(o.MemTableSize).
		WithNumMemtables(3).
		WithValueLogFileSize(o.ValueLogFileSize).
		WithValueThreshold(valueThreshold).
		WithBlockCacheSize(max(o.BlockCacheSize, 0)).
		WithIndexCacheSize(max(o.IndexCacheSize, 0)).
		WithNumCompactors(2).
		WithCompression(options.None).
		// Damaged data must not be served as data (broker/crash_test.go
		// TestCorruptDataDir): table files are checksummed when opened
		// (Open reads the whole LSM tree anyway, rebuilding reference
		// counts), so a damaged table refuses the open and names the file;
		// values read from the value log are checked too, so a damaged
		// one is an error, not a payload. Block checksums are not checked
		// on every read: Badger's iterators end silently at a bad block.
		WithChecksumVerificationMode(options.OnTableRead).
		WithVerifyValueChecksum(true).
		WithMetricsEnabled(false).
		// One writer goroutine: there is nothing to conflict with, and
		// conflict detection would keep a hash of every written key.
		WithDetectConflicts(false).
		WithNumVersionsToKeep(1)
	// Tables of 1 MiB at every level (Badger's default: 2 MiB, doubling
	// per level): a compaction holds a builder of twice the table size
	// per table it is writing, and with growing tables those builders
	// were most of the process's memory while a long queue drained.
	bo.BaseTableSize = baseTableSize
	bo.TableSizeMultiplier = 1
	return bo
}

// badgerLogger adapts Badger's printf-style logger to slog. Badger logs a
// lot at info level (every compaction, every memtable flush) and more at
// debug level, so info goes to slog's debug level and debug is dropped;
// warnings and errors keep their level.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) log(level slog.Level, format string, args []any) {
	if !b.l.Enabled(context.Background(), level) {
		return
	}
	b.l.Log(context.Background(), level, strings.TrimSpace(fmt.Sprintf(format, args...)), "component", "badger")
}

func (b badgerLogger) Errorf(format string, args ...any)   { b.log(slog.LevelError, format, args) }
func (b badgerLogger) Warningf(format string, args ...any) { b.log(slog.LevelWarn, format, args) }
func (b badgerLogger) Infof(format string, args ...any)    { b.log(slog.LevelDebug, format, args) }
func (b badgerLogger) Debugf(string, ...any)               {}
