package badgerstore

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/table"
)

// warnManifestLosses logs, before Badger opens dir, what Badger is about
// to drop on the strength of its MANIFEST, which it does with no more
// than a debug message (that badgerLogger discards):
//
//   - bytes after the MANIFEST's last complete record are truncated;
//   - table files (.sst) the MANIFEST does not list are deleted.
//
// Both are normal after a crash in the middle of a flush or a compaction
// (the data of such a table is still in the write-ahead log or in the
// tables it was to replace), but when the MANIFEST itself was damaged
// they are data loss, which must not go unnoticed (broker/crash_test.go
// TestCorruptDataDir). A MANIFEST that cannot be read at all is left to
// Badger's open, which refuses it.
func warnManifestLosses(dir string, log *slog.Logger) {
	f, err := os.Open(filepath.Join(dir, badger.ManifestFilename))
	if err != nil {
		return // none yet, or Badger reports it
	}
	defer f.Close()
	mf, end, err := badger.ReplayManifestFile(f, 0, badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		return
	}
	if fi, err := f.Stat(); err == nil && fi.Size() > end {
		log.Warn("the store's MANIFEST ends in an incomplete record, which is dropped (a crash while it was written, or damage)",
			"store", "badger", "file", f.Name(), "bytes_dropped", fi.Size()-end)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	var orphans []string
	var size int64
	for _, e := range ents {
		id, ok := table.ParseFileID(e.Name())
		if !ok {
			continue
		}
		if _, listed := mf.Tables[id]; !listed {
			orphans = append(orphans, e.Name())
			if fi, err := e.Info(); err == nil {
				size += fi.Size()
			}
		}
	}
	if len(orphans) > 0 {
		slices.Sort(orphans)
		log.Warn("table files not listed in the store's MANIFEST are deleted: harmless after a crash during a "+
			"flush or compaction, data loss if the MANIFEST was damaged",
			"store", "badger", "dir", dir, "files", strings.Join(orphans, ","), "bytes", size)
	}
}
