// Package logchunk is the stored format of one log chunk: the entries of one
// log stream over a span of time, compressed by column, with a token filter
// that lets a needle search (LogQL |= "needle") skip a chunk that cannot hold
// the needle without decompressing it. FORMAT.md describes the bytes.
//
// Encode writes a chunk; Open reads its header and filter and checks every
// checksum; Chunk.MayContain asks the filter; Chunk.Iterate decompresses and
// walks the entries. Chunks are immutable once written.
package logchunk

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
)

// SortByTime puts entries in timestamp order, as Encode needs them,
// keeping the order of entries of the same timestamp.
func SortByTime(es []Entry) {
	slices.SortStableFunc(es, func(a, b Entry) int { return cmp.Compare(a.Timestamp, b.Timestamp) })
}

// Entry is one log line of a chunk.
type Entry struct {
	// Timestamp is when the line was logged, Unix nanoseconds.
	Timestamp int64
	// Line is the log line.
	Line string
	// Metadata is the line's structured metadata, may be empty.
	Metadata labels.Labels
}

// Errors of Encode, Open and Iterate, to test with errors.Is.
var (
	// ErrCorrupt is wrapped by every error about bytes that are not a
	// well-formed chunk of a known version: bad magic, checksum, length,
	// or column.
	ErrCorrupt = errors.New("corrupt log chunk")
	// ErrUnsupported is wrapped by the error about a chunk of a version or
	// codec this code does not read (a chunk written by a newer release).
	ErrUnsupported = errors.New("unsupported log chunk")
	// ErrOutOfOrder is wrapped by Encode's error about an entry whose
	// timestamp is before the one of the entry before it.
	ErrOutOfOrder = errors.New("log entries out of timestamp order")
)

// The header: see FORMAT.md. All integers are little-endian.
const (
	magic      = "CNLC"
	version1   = 1
	codecZstd  = 1
	headerSize = 72

	offVersion    = 4
	offCodec      = 5
	offGramLen    = 6
	offGramWindow = 7
	offMinTime    = 8
	offMaxTime    = 16
	offEntries    = 24
	offRawBytes   = 28
	offTsLen      = 32
	offLenLen     = 36
	offFilterLen  = 40
	offFilterCRC  = 44
	offLinesLen   = 48
	offLinesCRC   = 52
	offMetaRawLen = 56
	offMetaLen    = 60
	offMetaCRC    = 64
	offHeaderCRC  = 68
)

// Limits of the format.
const (
	// maxSection is the largest uncompressed section, 1 GiB: chunks are cut
	// at about 1 MiB, so only a corrupt or hostile header asks for more.
	maxSection = 1 << 30
	// maxExpansion is how many times larger than its frame a zstd frame's
	// content can be: each block holds at most 128 KiB and takes at least
	// 4 bytes. A header claiming more is corrupt; checking it before
	// allocating bounds what Iterate allocates by the chunk's size.
	maxExpansion = 128 << 10 / 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Chunk is an opened chunk: its header and filter are read and every
// checksum is verified, its data is not yet decompressed. A Chunk refers to
// the bytes it was opened from, which must not change while it is in use.
// Its methods may be called from several goroutines at once.
type Chunk struct {
	minTime, maxTime int64
	entries          int
	rawBytes         int
	tsLen, lenLen    int
	metaRawLen       int
	filter           []byte
	lines            []byte // zstd frame: timestamps, lengths, lines
	meta             []byte // zstd frame of the metadata column; nil when no entry has metadata
}

// MinTime returns the timestamp of the chunk's first entry, Unix nanoseconds.
func (c *Chunk) MinTime() int64 { return c.minTime }

// MaxTime returns the timestamp of the chunk's last entry, Unix nanoseconds
// (inclusive: a query for the chunk's whole span ends after it).
func (c *Chunk) MaxTime() int64 { return c.maxTime }

// Entries returns the number of entries in the chunk, at least 1.
func (c *Chunk) Entries() int { return c.entries }

// RawBytes returns the sum of the lengths of the chunk's lines: what a
// query's "bytes read" counts for it.
func (c *Chunk) RawBytes() int64 { return int64(c.rawBytes) }

// MayContain reports whether some line of the chunk may contain needle as a
// substring (case-sensitive, as |= matches). false is a guarantee that none
// does; true may be a false positive, and is always the answer for needles
// shorter than MinFilterNeedle bytes and for chunks stored without a filter.
// It reads only the filter: nothing is decompressed or allocated.
func (c *Chunk) MayContain(needle string) bool {
	return filterMayContain(c.filter, needle)
}

// Open reads the chunk in b: it checks the header, the lengths it declares
// against len(b), and the checksums of the header, the filter and both data
// sections. The returned Chunk refers to b. Open never panics, whatever b
// holds; its errors wrap ErrCorrupt or ErrUnsupported.
func Open(b []byte) (*Chunk, error) {
	if len(b) < headerSize {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrCorrupt, len(b), headerSize)
	}
	if string(b[:len(magic)]) != magic {
		return nil, fmt.Errorf("%w: magic %q, want %q", ErrCorrupt, b[:len(magic)], magic)
	}
	if got, want := crc32.Checksum(b[:offHeaderCRC], castagnoli), binary.LittleEndian.Uint32(b[offHeaderCRC:]); got != want {
		return nil, fmt.Errorf("%w: header checksum %08x, stored %08x", ErrCorrupt, got, want)
	}
	if v := b[offVersion]; v != version1 {
		return nil, fmt.Errorf("%w: version %d, this code reads version %d", ErrUnsupported, v, version1)
	}
	if c := b[offCodec]; c != codecZstd {
		return nil, fmt.Errorf("%w: codec %d, this code reads codec %d (zstd)", ErrUnsupported, c, codecZstd)
	}
	if k, w := b[offGramLen], b[offGramWindow]; k != gramLen || w != gramWindow {
		return nil, fmt.Errorf("%w: filter grams of %d bytes in windows of %d, this code reads %d and %d", ErrUnsupported, k, w, gramLen, gramWindow)
	}
	u32 := func(off int) int { return int(binary.LittleEndian.Uint32(b[off:])) }
	c := &Chunk{
		minTime:    int64(binary.LittleEndian.Uint64(b[offMinTime:])),
		maxTime:    int64(binary.LittleEndian.Uint64(b[offMaxTime:])),
		entries:    u32(offEntries),
		rawBytes:   u32(offRawBytes),
		tsLen:      u32(offTsLen),
		lenLen:     u32(offLenLen),
		metaRawLen: u32(offMetaRawLen),
	}
	filterLen, linesLen, metaLen := u32(offFilterLen), u32(offLinesLen), u32(offMetaLen)
	if err := c.checkHeader(filterLen, linesLen, metaLen); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	// Each length is below 2^32 and an int has 64 bits: the sum cannot
	// overflow.
	if total := headerSize + filterLen + linesLen + metaLen; total != len(b) {
		return nil, fmt.Errorf("%w: header declares %d bytes, chunk has %d", ErrCorrupt, total, len(b))
	}
	rest := b[headerSize:]
	c.filter, rest = rest[:filterLen:filterLen], rest[filterLen:]
	c.lines, rest = rest[:linesLen:linesLen], rest[linesLen:]
	if metaLen > 0 {
		c.meta = rest[:metaLen:metaLen]
	}
	for _, s := range []struct {
		name string
		b    []byte
		off  int
	}{{"filter", c.filter, offFilterCRC}, {"lines section", c.lines, offLinesCRC}, {"metadata section", c.meta, offMetaCRC}} {
		if got, want := crc32.Checksum(s.b, castagnoli), binary.LittleEndian.Uint32(b[s.off:]); got != want {
			return nil, fmt.Errorf("%w: %s checksum %08x, stored %08x", ErrCorrupt, s.name, got, want)
		}
	}
	return c, nil
}

// checkHeader checks what the header's fields say of each other, so that
// Iterate can trust the sizes it allocates and slices by.
func (c *Chunk) checkHeader(filterLen, linesLen, metaLen int) error {
	switch {
	case c.entries == 0:
		return errors.New("no entries")
	case c.maxTime < c.minTime:
		return fmt.Errorf("max time %d before min time %d", c.maxTime, c.minTime)
	case c.entries == 1 && c.maxTime != c.minTime:
		return fmt.Errorf("one entry, but min time %d and max time %d", c.minTime, c.maxTime)
	case c.tsLen < c.entries-1 || c.tsLen > binary.MaxVarintLen64*(c.entries-1):
		return fmt.Errorf("timestamps column of %d bytes for %d entries", c.tsLen, c.entries)
	case c.lenLen < c.entries || c.lenLen > binary.MaxVarintLen32*c.entries:
		return fmt.Errorf("lengths column of %d bytes for %d entries", c.lenLen, c.entries)
	case filterLen%filterBlockBytes != 0:
		return fmt.Errorf("filter of %d bytes, not a multiple of %d", filterLen, filterBlockBytes)
	case (metaLen == 0) != (c.metaRawLen == 0):
		return fmt.Errorf("metadata section of %d bytes holds %d bytes", metaLen, c.metaRawLen)
	}
	if err := checkSection("lines", c.linesRawLen(), linesLen); err != nil {
		return err
	}
	return checkSection("metadata", c.metaRawLen, metaLen)
}

func checkSection(name string, rawLen, frameLen int) error {
	if rawLen > maxSection || rawLen > maxExpansion*frameLen {
		return fmt.Errorf("%s section of %d bytes holds %d bytes", name, frameLen, rawLen)
	}
	return nil
}

// linesRawLen is the uncompressed size of the lines section.
func (c *Chunk) linesRawLen() int { return c.tsLen + c.lenLen + c.rawBytes }

// HeaderSize is how many bytes of a chunk FilterLen needs.
const HeaderSize = headerSize

// FilterLen returns, from the first HeaderSize bytes of a chunk, how many
// bytes from its start its header and token filter take: what a reader
// fetches to test needles before fetching the rest.
func FilterLen(head []byte) (int, error) {
	if len(head) < headerSize {
		return 0, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrCorrupt, len(head), headerSize)
	}
	if string(head[:len(magic)]) != magic {
		return 0, fmt.Errorf("%w: magic %q, want %q", ErrCorrupt, head[:len(magic)], magic)
	}
	if got, want := crc32.Checksum(head[:offHeaderCRC], castagnoli), binary.LittleEndian.Uint32(head[offHeaderCRC:]); got != want {
		return 0, fmt.Errorf("%w: header checksum %08x, stored %08x", ErrCorrupt, got, want)
	}
	return headerSize + int(binary.LittleEndian.Uint32(head[offFilterLen:])), nil
}

// FilterMayContain is MayContain over the first FilterLen bytes of a chunk:
// it checks the header's and the filter's checksums and tests needle
// without the chunk's data sections. A chunk it admits is then Opened
// whole.
func FilterMayContain(prefix []byte, needles []string) (bool, error) {
	n, err := FilterLen(prefix)
	if err != nil {
		return false, err
	}
	if len(prefix) < n {
		return false, fmt.Errorf("%w: %d bytes of header and filter given, %d needed", ErrCorrupt, len(prefix), n)
	}
	if v := prefix[offVersion]; v != version1 {
		return false, fmt.Errorf("%w: version %d, this code reads version %d", ErrUnsupported, v, version1)
	}
	if k, w := prefix[offGramLen], prefix[offGramWindow]; k != gramLen || w != gramWindow {
		return false, fmt.Errorf("%w: filter grams of %d bytes in windows of %d, this code reads %d and %d", ErrUnsupported, k, w, gramLen, gramWindow)
	}
	filter := prefix[headerSize:n]
	if got, want := crc32.Checksum(filter, castagnoli), binary.LittleEndian.Uint32(prefix[offFilterCRC:]); got != want {
		return false, fmt.Errorf("%w: filter checksum %08x, stored %08x", ErrCorrupt, got, want)
	}
	for _, nd := range needles {
		if !filterMayContain(filter, nd) {
			return false, nil
		}
	}
	return true, nil
}
