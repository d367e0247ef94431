package logchunk

import (
	"encoding/binary"
	"hash/crc32"
	"slices"
)

// FilterBlockBytes is the size of one block of a chunk's token filter: a
// filter is a whole number of them, and a key's bits all fall in one.
const FilterBlockBytes = filterBlockBytes

// SplitFilter returns the token filter of the chunk in b and a copy of the
// chunk without it (filter length 0, so that the chunk alone answers "may
// contain" for every needle). A log block keeps the filters of its chunks
// in a file of their own (logblock's filters file), laid out so that a
// needle search reads one block of each filter; the chunks file then holds
// the chunks without them. The chunk is checked as Open checks it.
func SplitFilter(b []byte) (filter, rest []byte, err error) {
	c, err := Open(b)
	if err != nil {
		return nil, nil, err
	}
	if len(c.filter) == 0 {
		return nil, b, nil
	}
	rest = make([]byte, 0, len(b)-len(c.filter))
	rest = append(rest, b[:headerSize]...)
	binary.LittleEndian.PutUint32(rest[offFilterLen:], 0)
	binary.LittleEndian.PutUint32(rest[offFilterCRC:], 0) // the CRC of no bytes
	binary.LittleEndian.PutUint32(rest[offHeaderCRC:], crc32.Checksum(rest[:offHeaderCRC], castagnoli))
	rest = append(rest, b[headerSize+len(c.filter):]...)
	return c.filter, rest, nil
}

// NeedleKeys returns the distinct keys a filter must hold for a line to
// contain needle (the keys of its window minimizers; see FORMAT.md), in the
// order they first occur: none for a needle shorter than MinFilterNeedle.
func NeedleKeys(needle string) []uint64 {
	var keys []uint64
	windowKeys(needle, func(k uint64) bool {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
		return true
	})
	return keys
}

// FilterBlockOf returns the number of the block that holds key in a
// filter of n blocks.
func FilterBlockOf(key uint64, n int) int { return filterBlock(key, n) / filterBlockBytes }

// BlockHas reports whether the filter block at the start of b (at least
// FilterBlockBytes long) has every bit of key: false means no line of the
// filter's chunk has the key's minimizer.
func BlockHas(b []byte, key uint64) bool { return blockHas(b, key) }
