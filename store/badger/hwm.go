package badgerstore

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// The high-water mark: the highest message id committed, kept in a small
// file of its own (hwmFile) and rewritten after every group commit that
// stored a new message.
//
// Badger recovers from a crash by replaying its write-ahead logs (.mem
// files), and it stops at the first entry that does not check out and
// truncates the log there: for a torn tail that is right, but damage in
// the middle of a log (a bad sector, a bit flip on an SD card) silently
// loses every later entry — acknowledged messages gone, and nothing in
// the store says so. The high-water mark says so: Open compares it with
// the highest message id Badger recovered, and if Badger has less, logs
// which message ids were acknowledged and are missing (and continues the
// ids above the mark, so that a lost id is never reused).
//
// The file is written without a sync of its own: it is there to detect a
// loss, not to prevent one, and after a kill -9 it is as current as
// Badger's logs (both are in the page cache). After a power cut in
// Process mode it can be ahead of what Badger's logs kept; the loss it
// then reports is real (acknowledged messages of about the last second,
// which Process mode does not promise to keep).
const hwmFile = "WEIR-HWM"

// hwm layout: magic, version, max message id (8 bytes, big-endian), CRC-32C
// (Castagnoli) of the preceding 13 bytes.
const (
	hwmMagic   = "WHWM"
	hwmVersion = 1
	hwmSize    = 4 + 1 + 8 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type hwm struct {
	f    *os.File
	last uint64
	buf  [hwmSize]byte
}

// openHWM opens (or creates) the mark in dir and returns what it holds:
// recorded is valid if found; a damaged mark is reported as an error with
// found false (it is rewritten at the next commit).
func openHWM(dir string) (h *hwm, recorded uint64, found bool, damaged error) {
	path := filepath.Join(dir, hwmFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, 0, false, err
	}
	h = &hwm{f: f}
	n, err := f.ReadAt(h.buf[:], 0)
	switch {
	case n == 0 && errors.Is(err, io.EOF):
		return h, 0, false, nil // a new mark
	case n < hwmSize:
		return h, 0, false, errors.New(hwmFile + ": truncated")
	}
	b := h.buf[:]
	if string(b[:4]) != hwmMagic || b[4] != hwmVersion ||
		crc32.Checksum(b[:13], castagnoli) != binary.BigEndian.Uint32(b[13:]) {
		return h, 0, false, errors.New(hwmFile + ": checksum or format mismatch")
	}
	recorded = binary.BigEndian.Uint64(b[5:13])
	h.last = recorded
	return h, recorded, true, nil
}

// note records id as committed if it is higher than the mark.
func (h *hwm) note(id uint64) error {
	if h == nil || id <= h.last {
		return nil
	}
	b := h.buf[:0]
	b = append(b, hwmMagic...)
	b = append(b, hwmVersion)
	b = binary.BigEndian.AppendUint64(b, id)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	if _, err := h.f.WriteAt(b, 0); err != nil {
		return err
	}
	h.last = id
	return nil
}

func (h *hwm) close() error {
	if h == nil {
		return nil
	}
	return h.f.Close()
}
