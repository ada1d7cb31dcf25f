/*
 * SPDX-FileCopyrightText: © 2017-2025 Istari Digital, Inc.
 * SPDX-License-Identifier: Apache-2.0
 */

package y

import "errors"

// Weir patch: compression is left out of this copy of Badger (Weir
// stores tables uncompressed), so github.com/klauspost/compress is not
// linked; a table that says it is compressed is an error.

// ErrCompressionLeftOut is returned for any compressed block.
var ErrCompressionLeftOut = errors.New("badger: compression is not built in (Weir patch)")

// ZSTDDecompress fails: see ErrCompressionLeftOut.
func ZSTDDecompress(dst, src []byte) ([]byte, error) { return nil, ErrCompressionLeftOut }

// ZSTDCompress fails: see ErrCompressionLeftOut.
func ZSTDCompress(dst, src []byte, compressionLevel int) ([]byte, error) {
	return nil, ErrCompressionLeftOut
}

// ZSTDCompressBound returns the worst case size needed for a destination buffer.
// Klauspost ZSTD library does not provide any API for Compression Bound. This
// calculation is based on the DataDog ZSTD library.
// See https://pkg.go.dev/github.com/DataDog/zstd#CompressBound
func ZSTDCompressBound(srcSize int) int {
	lowLimit := 128 << 10 // 128 kB
	var margin int
	if srcSize < lowLimit {
		margin = (lowLimit - srcSize) >> 11
	}
	return srcSize + (srcSize >> 8) + margin
}
