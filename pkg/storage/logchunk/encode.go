package logchunk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
)

// encodeScratch is what one Encode call builds the sections in; pooled, so
// that an ingester cutting chunks allocates little beyond the chunk itself.
type encodeScratch struct {
	lines   []byte // the lines section
	frame   []byte // the lines section compressed
	meta    []byte // the metadata section
	metaSym []byte // its symbols, as they are found
	metaCol []byte // its per-entry column
	symbols map[string]uint32
	fb      *filterBuilder
}

var encodeScratchPool = sync.Pool{New: func() any {
	return &encodeScratch{symbols: map[string]uint32{}, fb: newFilterBuilder()}
}}

// Encode writes entries as one chunk, appended to dst, and returns the
// extended slice. The entries are one stream's, in non-decreasing timestamp
// order. Encode returns an error when there are none, when two are out of
// order (wrapping ErrOutOfOrder), when their lines add up to more than
// 1 GiB, or when an entry's metadata is not valid labels (names non-empty,
// sorted and distinct, as labels.New makes them); dst is then returned
// unchanged. It keeps no reference to entries or dst and may be called from
// several goroutines at once.
func Encode(dst []byte, entries []Entry) ([]byte, error) {
	if len(entries) == 0 {
		return dst, errors.New("encoding log chunk: no entries")
	}
	if len(entries) > math.MaxUint32 {
		return dst, fmt.Errorf("encoding log chunk: %d entries, at most %d fit", len(entries), uint32(math.MaxUint32))
	}
	s := encodeScratchPool.Get().(*encodeScratch)
	defer encodeScratchPool.Put(s)
	out, err := s.encode(dst, entries)
	if err != nil {
		return dst, fmt.Errorf("encoding log chunk: %w", err)
	}
	return out, nil
}

func (s *encodeScratch) encode(dst []byte, entries []Entry) ([]byte, error) {
	rawBytes, hasMeta := 0, false
	for i, e := range entries {
		if i > 0 && e.Timestamp < entries[i-1].Timestamp {
			return dst, fmt.Errorf("entry %d: %w: timestamp %d before %d", i, ErrOutOfOrder, e.Timestamp, entries[i-1].Timestamp)
		}
		rawBytes += len(e.Line)
		if rawBytes > maxSection {
			return dst, fmt.Errorf("entry %d: lines add up to more than %d bytes", i, maxSection)
		}
		hasMeta = hasMeta || !e.Metadata.IsEmpty()
	}

	// The lines section: timestamps, lengths, lines.
	sec := s.lines[:0]
	for i := 1; i < len(entries); i++ {
		// Non-negative, so the unsigned difference is exact even when the
		// signed one would overflow.
		sec = binary.AppendUvarint(sec, uint64(entries[i].Timestamp)-uint64(entries[i-1].Timestamp))
	}
	tsLen := len(sec)
	for _, e := range entries {
		sec = binary.AppendUvarint(sec, uint64(len(e.Line)))
	}
	lenLen := len(sec) - tsLen
	for _, e := range entries {
		sec = append(sec, e.Line...)
	}
	s.lines = sec
	if len(sec) > maxSection {
		return dst, fmt.Errorf("lines section of %d bytes, more than %d", len(sec), maxSection)
	}

	var meta []byte
	if hasMeta {
		var err error
		if meta, err = s.encodeMetadata(entries); err != nil {
			return dst, err
		}
	}

	frame, err := compress(s.frame[:0], sec)
	if err != nil {
		return dst, err
	}
	s.frame = frame

	fb := s.fb
	fb.reset()
	for _, e := range entries {
		fb.addLine(e.Line)
	}
	filterLen := filterSize(fb.distinctKeys(), len(frame))

	start := len(dst)
	dst = append(dst, make([]byte, headerSize)...)
	dst = fb.appendFilter(dst, filterLen)
	filterEnd := len(dst)
	dst = append(dst, frame...)
	linesEnd := len(dst)
	if meta != nil {
		if dst, err = compress(dst, meta); err != nil {
			return dst[:start], err
		}
	}
	for _, n := range []int{filterEnd - start, linesEnd - filterEnd, len(dst) - linesEnd} {
		if n > math.MaxUint32 {
			return dst[:start], fmt.Errorf("section of %d bytes does not fit the header", n)
		}
	}

	h := dst[start : start+headerSize]
	chunk := dst[start:]
	copy(h, magic)
	h[offVersion], h[offCodec], h[offGramLen], h[offGramWindow] = version1, codecZstd, gramLen, gramWindow
	le := binary.LittleEndian
	le.PutUint64(h[offMinTime:], uint64(entries[0].Timestamp))
	le.PutUint64(h[offMaxTime:], uint64(entries[len(entries)-1].Timestamp))
	le.PutUint32(h[offEntries:], uint32(len(entries)))
	le.PutUint32(h[offRawBytes:], uint32(rawBytes))
	le.PutUint32(h[offTsLen:], uint32(tsLen))
	le.PutUint32(h[offLenLen:], uint32(lenLen))
	le.PutUint32(h[offFilterLen:], uint32(filterLen))
	le.PutUint32(h[offFilterCRC:], crc32.Checksum(chunk[headerSize:filterEnd-start], castagnoli))
	le.PutUint32(h[offLinesLen:], uint32(linesEnd-filterEnd))
	le.PutUint32(h[offLinesCRC:], crc32.Checksum(chunk[filterEnd-start:linesEnd-start], castagnoli))
	le.PutUint32(h[offMetaRawLen:], uint32(len(meta)))
	le.PutUint32(h[offMetaLen:], uint32(len(dst)-linesEnd))
	le.PutUint32(h[offMetaCRC:], crc32.Checksum(chunk[linesEnd-start:], castagnoli))
	le.PutUint32(h[offHeaderCRC:], crc32.Checksum(h[:offHeaderCRC], castagnoli))
	return dst, nil
}

// encodeMetadata returns the metadata section of entries: the symbol table
// of the names and values, then each entry's pairs of symbol numbers.
func (s *encodeScratch) encodeMetadata(entries []Entry) ([]byte, error) {
	clear(s.symbols)
	defer clear(s.symbols) // keep no caller's strings in the pool
	syms := s.metaSym[:0]
	col := s.metaCol[:0]
	symbol := func(v string) uint64 {
		id, ok := s.symbols[v]
		if !ok {
			id = uint32(len(s.symbols))
			s.symbols[v] = id
			syms = binary.AppendUvarint(syms, uint64(len(v)))
			syms = append(syms, v...)
		}
		return uint64(id)
	}
	for i, e := range entries {
		col = binary.AppendUvarint(col, uint64(e.Metadata.Len()))
		var prev string
		var bad error
		e.Metadata.Range(func(l labels.Label) {
			switch {
			case bad != nil:
				return
			case l.Name == "":
				bad = errors.New("an empty name")
			case prev != "" && l.Name <= prev:
				bad = fmt.Errorf("name %q after %q (names must be sorted and distinct)", l.Name, prev)
			}
			prev = l.Name
			col = binary.AppendUvarint(col, symbol(l.Name))
			col = binary.AppendUvarint(col, symbol(l.Value))
		})
		if bad != nil {
			return nil, fmt.Errorf("entry %d: metadata %s: %w", i, e.Metadata, bad)
		}
	}
	s.metaSym, s.metaCol = syms, col
	out := binary.AppendUvarint(s.meta[:0], uint64(len(s.symbols)))
	out = append(append(out, syms...), col...)
	s.meta = out
	if len(out) > maxSection {
		return nil, fmt.Errorf("metadata section of %d bytes, more than %d", len(out), maxSection)
	}
	return out, nil
}
