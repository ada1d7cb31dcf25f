//go:build 386 || arm

package badgerstore

import (
	"fmt"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// TestLargeTables32Bit writes tables larger than 4 MiB on a 32-bit build
// and reads every key back. Unpatched ristretto (z.Allocator) overflows
// `(bufIdx+1)<<32` to 0 on 32-bit and overwrites the table: 18 of 400,000
// keys came back in a larger run. third_party/ristretto carries the fix; `make test-arm`
// runs it as an armv7 build under qemu-arm.
func TestLargeTables32Bit(t *testing.T) {
	dir := t.TempDir()
	db, err := badger.Open(badger.DefaultOptions(dir).WithValueLogFileSize(32 << 20).WithMemTableSize(32 << 20).WithLogger(nil).WithValueThreshold(1 << 10))
	if err != nil {
		t.Fatal(err)
	}
	const keys = 60000 // about 13 MB: one table well past 4 MiB
	val := make([]byte, 200)
	wb := db.NewWriteBatch()
	for i := 0; i < keys; i++ {
		if err := wb.Set([]byte(fmt.Sprintf("k%09d", i)), val); err != nil {
			t.Fatal(err)
		}
	}
	if err := wb.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = badger.Open(badger.DefaultOptions(dir).WithValueLogFileSize(32 << 20).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	err = db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if err != nil || n != keys {
		t.Fatalf("read back %d, err %v", n, err)
	}
}
