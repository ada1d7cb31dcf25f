// Package badgerstore is Weir's durable store.Store, built on Badger
// (github.com/dgraph-io/badger/v4). It is the only package of Weir that
// imports Badger.
//
// # Writes
//
// Commit never writes: it queues the batch and returns. One writer
// goroutine takes every batch queued at that moment (from any number of
// connections), applies them in order in one Badger transaction, makes the
// transaction durable at the configured level, and only then calls the done
// callbacks, in commit order. Many acknowledgements therefore share one
// transaction and, in Sync mode, one sync of the log: the store never syncs
// once per message.
//
// A store.Batch is atomic. When the batches of one round do not fit in one
// Badger transaction the writer splits the round between batches; only a
// single batch that alone exceeds Badger's transaction limit (15% of
// MemTableSize) is spread over several transactions — see applyOversized
// for what a crash in the middle of one leaves behind and how Open repairs
// it.
//
// # Durability
//
// Process (the default): a batch whose done reported nil survives the
// process being killed (kill -9, panic, OOM killer): Badger has copied it
// into its write-ahead log and value log, which are memory-mapped files, so
// the data is in the kernel's page cache when done runs. A background loop
// fsyncs the logs about once a second (Options.ProcessSyncInterval), so a
// power loss loses at most about that much.
//
// Sync: done is called after the transaction was also synced to the
// storage device (one sync per group commit), so acknowledged data
// survives power loss too.
//
// # Disk full
//
// Badger writes through memory-mapped sparse files, and on a full file
// system such a write kills the process with SIGBUS rather than failing.
// The writer therefore keeps Options.DiskReserve free: batches that store
// messages are refused below it with an error wrapping ErrDiskFull
// (syscall.ENOSPC), and writing resumes by itself once space is freed
// (diskspace.go).
//
// # Layout
//
// See keys.go for the key schema and codec.go for the value encodings. A
// message is stored once under m/<id> and shared by the queue entries that
// refer to it; reference counts are not stored but rebuilt by Open from the
// queue entries (see refs.go), which also removes messages no entry refers
// to (left behind by a crash in the middle of an oversized batch).
//
// This package must never be imported by anything but the wiring in
// cmd/ (and tests): the broker talks to the store.Store interface only.
package badgerstore
