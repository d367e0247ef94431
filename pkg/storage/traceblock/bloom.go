package traceblock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/bits"
)

// The bloom file (FORMAT.md, "bloom") answers "may this block hold trace
// ID x?" without opening data.parquet: a lookup by ID reads it (and keeps
// it) and opens only the blocks it does not rule out.
//
//	magic "CTB1" | k (1 byte) | words (uint32) | words × uint64 | CRC32C of all before
//
// Bits are set by double hashing: bit i of a key with hash h is
// (h1 + i·h2) mod (64·words), h1 and h2 the halves of h, for i < k.

const bloomMagic = "CTB1"

// Bloom sizing: bitsPerTrace bits a trace and bloomK bits a key give about
// 1 % false positives.
const (
	bitsPerTrace = 10
	bloomK       = 7
)

// maxBloomWords bounds a bloom file read from the bucket (64 MiB).
const maxBloomWords = 8 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Bloom is a trace-ID filter. Safe for concurrent reads.
type Bloom struct {
	k     int
	words []uint64
}

// traceHash mixes a trace ID's 16 bytes into 64 bits (random IDs are
// already uniform; IDs with zero halves, as 64-bit Zipkin and Jaeger IDs
// padded to 128, are mixed by the finalizer).
func traceHash(id [16]byte) uint64 {
	h := binary.LittleEndian.Uint64(id[:8]) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(id[8:]), 31)
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

func newBloom(hashes []uint64) *Bloom {
	n := max(1, (len(hashes)*bitsPerTrace+63)/64)
	b := &Bloom{k: bloomK, words: make([]uint64, n)}
	for _, h := range hashes {
		b.add(h)
	}
	return b
}

func (b *Bloom) positions(h uint64, fn func(word int, bit uint64) bool) bool {
	m := uint64(len(b.words)) * 64
	h1, h2 := h&0xffffffff, h>>32|1
	for i := range uint64(b.k) {
		p := (h1 + i*h2) % m
		if !fn(int(p/64), 1<<(p%64)) {
			return false
		}
	}
	return true
}

func (b *Bloom) add(h uint64) {
	b.positions(h, func(w int, bit uint64) bool { b.words[w] |= bit; return true })
}

// MayHold reports whether the block may hold trace id: false is certain.
func (b *Bloom) MayHold(id [16]byte) bool {
	return b.positions(traceHash(id), func(w int, bit uint64) bool { return b.words[w]&bit != 0 })
}

func (b *Bloom) marshal() []byte {
	out := make([]byte, 0, 9+8*len(b.words)+4)
	out = append(out, bloomMagic...)
	out = append(out, byte(b.k))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(b.words)))
	for _, w := range b.words {
		out = binary.LittleEndian.AppendUint64(out, w)
	}
	return binary.LittleEndian.AppendUint32(out, crc32.Checksum(out, castagnoli))
}

var errBadBloom = errors.New("malformed bloom file")

// parseBloom reads a bloom file.
func parseBloom(b []byte) (*Bloom, error) {
	if len(b) < 13 || string(b[:4]) != bloomMagic {
		return nil, errBadBloom
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", errBadBloom)
	}
	k, n := int(b[4]), binary.LittleEndian.Uint32(b[5:9])
	if k < 1 || k > 32 || n == 0 || n > maxBloomWords || len(body) != 9+8*int(n) {
		return nil, errBadBloom
	}
	bl := &Bloom{k: k, words: make([]uint64, n)}
	for i := range bl.words {
		bl.words[i] = binary.LittleEndian.Uint64(body[9+8*i:])
	}
	return bl, nil
}
