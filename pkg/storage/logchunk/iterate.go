package logchunk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
)

// iterScratch is what one Iterate call decompresses into; pooled, so that a
// querier walking many chunks reuses the same buffers.
type iterScratch struct {
	lines   []byte
	meta    []byte
	symbols []string
	sb      labels.ScratchBuilder
	md      labels.Labels
	mr      metaReader
}

// iterScratches keeps the scratch buffers of finished Iterate calls for
// the next ones. It is a bounded free list rather than a sync.Pool: a
// sync.Pool is emptied by every other garbage collection, and a query
// decompressing gigabytes runs many, so most calls would allocate their
// buffer afresh (5 GB of allocations for a 10 GB filter query, each page
// faulted in again once the runtime has returned memory to the OS).
var iterScratches = make(chan *iterScratch, 4*runtime.GOMAXPROCS(0)+16)

func getIterScratch() *iterScratch {
	select {
	case s := <-iterScratches:
		return s
	default:
		return &iterScratch{}
	}
}

func putIterScratch(s *iterScratch) {
	if cap(s.lines) > maxKeptScratch || cap(s.meta) > maxKeptScratch {
		return // an outsize chunk's buffers are not kept
	}
	select {
	case iterScratches <- s:
	default:
	}
}

// maxKeptScratch is the largest buffer the free list keeps: a few times
// the size chunks are cut at.
const maxKeptScratch = 8 << 20

// Iterate decompresses the chunk and calls fn with each entry whose
// timestamp is in [from, through), in order; fn returning false stops the
// walk, and Iterate returns nil. With withMetadata false, every Entry's
// Metadata is empty and the metadata section is not decompressed: the way
// to scan lines for a filter.
//
// The strings of the Entry given to fn (its Line, and the names and values
// of its Metadata) are valid only until fn returns: they point into buffers
// that the next entry or another Iterate call overwrites. Copy what you keep
// (strings.Clone, labels.Labels.Copy).
//
// Errors wrap ErrCorrupt (Open has checked the checksums, so they mean a
// chunk written wrong, not damaged since); fn may have been called for
// entries before the fault. Iterate may be called from several goroutines
// at once.
func (c *Chunk) Iterate(from, through int64, withMetadata bool, fn func(Entry) bool) error {
	if from >= through || through <= c.minTime || from > c.maxTime {
		return nil
	}
	s := getIterScratch()
	defer putIterScratch(s)
	if _, _, err := s.iterate(c, from, through, nil, withMetadata, fn); err != nil {
		return fmt.Errorf("reading log chunk: %w", err)
	}
	return nil
}

// IterateMatching is Iterate for the entries whose line contains every
// needle (case-sensitive, as |= matches): the others are not given to fn,
// and it returns how many entries in [from, through) it left out and their
// line bytes. It finds the longest needle by searching the whole lines
// section at once, not line by line, so lines that lack it cost only the
// walk over their timestamp and length.
func (c *Chunk) IterateMatching(from, through int64, needles []string, withMetadata bool, fn func(Entry) bool) (skippedLines, skippedBytes int64, err error) {
	if from >= through || through <= c.minTime || from > c.maxTime {
		return 0, 0, nil
	}
	s := getIterScratch()
	defer putIterScratch(s)
	if skippedLines, skippedBytes, err = s.iterate(c, from, through, needles, withMetadata, fn); err != nil {
		return skippedLines, skippedBytes, fmt.Errorf("reading log chunk: %w", err)
	}
	return skippedLines, skippedBytes, nil
}

func (s *iterScratch) iterate(c *Chunk, from, through int64, needles []string, withMetadata bool, fn func(Entry) bool) (skippedLines, skippedBytes int64, err error) {
	sec, err := decompress(s.lines, c.lines, c.linesRawLen())
	if err != nil {
		return skippedLines, skippedBytes, fmt.Errorf("lines section: %w", err)
	}
	s.lines = sec
	tsCol, lenCol, lines := sec[:c.tsLen], sec[c.tsLen:c.tsLen+c.lenLen], sec[c.tsLen+c.lenLen:]

	var md *metaReader
	if withMetadata && c.meta != nil {
		if md, err = s.openMetadata(c); err != nil {
			return skippedLines, skippedBytes, fmt.Errorf("metadata section: %w", err)
		}
	}

	// With needles, next is where the longest needle next occurs in lines
	// at or after the current line's start (len(lines) when nowhere).
	var (
		needle searcher
		others []string
		next   = -1
	)
	if len(needles) > 0 {
		longest := 0
		for i, nd := range needles {
			if len(nd) > len(needles[longest]) {
				longest = i
			}
		}
		needle = newSearcher(needles[longest])
		others = make([]string, 0, len(needles)-1)
		others = append(append(others, needles[:longest]...), needles[longest+1:]...)
	}
	linesStr := yoloString(lines)
	ts, off := c.minTime, 0
	e := Entry{Metadata: labels.EmptyLabels()}
	for i := range c.entries {
		if i > 0 {
			d, n := binary.Uvarint(tsCol)
			// uint64(max)-uint64(ts) is max-ts exactly, as ts <= max.
			if n <= 0 || d > uint64(c.maxTime)-uint64(ts) {
				return skippedLines, skippedBytes, fmt.Errorf("%w: entry %d: bad timestamp delta", ErrCorrupt, i)
			}
			tsCol = tsCol[n:]
			ts += int64(d)
		}
		l, n := binary.Uvarint(lenCol)
		if n <= 0 || l > uint64(len(lines)-off) {
			return skippedLines, skippedBytes, fmt.Errorf("%w: entry %d: bad line length", ErrCorrupt, i)
		}
		lenCol = lenCol[n:]
		start := off
		line := lines[off : off+int(l)]
		off += int(l)
		if md != nil {
			if err := md.next(s); err != nil {
				return skippedLines, skippedBytes, fmt.Errorf("%w: entry %d: metadata: %w", ErrCorrupt, i, err)
			}
		}
		if ts < from {
			continue
		}
		if ts >= through {
			return skippedLines, skippedBytes, nil
		}
		if len(needles) > 0 && !matches(linesStr, start, off, &needle, others, &next) {
			skippedLines++
			skippedBytes += int64(len(line))
			continue
		}
		e.Timestamp, e.Line = ts, yoloString(line)
		if md != nil {
			e.Metadata = s.md
		}
		if !fn(e) {
			return skippedLines, skippedBytes, nil
		}
	}
	switch {
	case len(tsCol) != 0 || len(lenCol) != 0 || off != len(lines):
		return skippedLines, skippedBytes, fmt.Errorf("%w: %d bytes of timestamps, %d of lengths and %d of lines left after the last entry", ErrCorrupt, len(tsCol), len(lenCol), len(lines)-off)
	case ts != c.maxTime:
		return skippedLines, skippedBytes, fmt.Errorf("%w: last timestamp %d, header says %d", ErrCorrupt, ts, c.maxTime)
	case md != nil && len(md.col) != 0:
		return skippedLines, skippedBytes, fmt.Errorf("%w: %d bytes of metadata left after the last entry", ErrCorrupt, len(md.col))
	}
	return skippedLines, skippedBytes, nil
}

// matches reports whether the line lines[start:end] holds needle and
// every other needle. *next is where needle next occurs in lines at or
// after start, updated as the walk moves on (-1 before the first search,
// len(lines) when there is none): one search of the whole section finds the
// few lines that hold a rare needle, and an occurrence that runs from one
// line into the next is not a match.
func matches(lines string, start, end int, needle *searcher, others []string, next *int) bool {
	n := len(needle.needle)
	if *next < start {
		*next = needle.indexFrom(lines, start)
	}
	for *next < end && *next+n > end {
		*next = needle.indexFrom(lines, *next+1)
	}
	if *next+n > end {
		return false
	}
	line := lines[start:end]
	for _, o := range others {
		if !strings.Contains(line, o) {
			return false
		}
	}
	return true
}

// metaReader walks the metadata column.
type metaReader struct {
	symbols []string
	col     []byte
}

// openMetadata decompresses the metadata section of c and reads its symbol
// table.
func (s *iterScratch) openMetadata(c *Chunk) (*metaReader, error) {
	sec, err := decompress(s.meta, c.meta, c.metaRawLen)
	if err != nil {
		return nil, err
	}
	s.meta = sec
	n, k := binary.Uvarint(sec)
	// Every symbol takes at least the byte of its length.
	if k <= 0 || n > uint64(len(sec)-k) {
		return nil, fmt.Errorf("%w: bad symbol count", ErrCorrupt)
	}
	sec = sec[k:]
	syms := s.symbols[:0]
	for i := range int(n) {
		l, k := binary.Uvarint(sec)
		if k <= 0 || l > uint64(len(sec)-k) {
			return nil, fmt.Errorf("%w: symbol %d: bad length", ErrCorrupt, i)
		}
		syms = append(syms, yoloString(sec[k:k+int(l)]))
		sec = sec[k+int(l):]
	}
	s.symbols = syms
	s.mr = metaReader{symbols: syms, col: sec}
	return &s.mr, nil
}

// next reads the metadata of the next entry into s.md.
func (m *metaReader) next(s *iterScratch) error {
	n, k := binary.Uvarint(m.col)
	// Every pair takes at least two bytes.
	if k <= 0 || n > uint64(len(m.col)-k)/2 {
		return errors.New("bad pair count")
	}
	m.col = m.col[k:]
	if n == 0 {
		s.md = labels.EmptyLabels()
		return nil
	}
	s.sb.Reset()
	var prev string
	for j := range int(n) {
		name, err := m.symbol()
		if err != nil {
			return err
		}
		value, err := m.symbol()
		if err != nil {
			return err
		}
		if name == "" || (j > 0 && name <= prev) {
			return fmt.Errorf("name %q after %q: names must be non-empty, sorted and distinct", name, prev)
		}
		prev = name
		s.sb.Add(name, value)
	}
	s.sb.Overwrite(&s.md)
	return nil
}

func (m *metaReader) symbol() (string, error) {
	id, k := binary.Uvarint(m.col)
	if k <= 0 || id >= uint64(len(m.symbols)) {
		return "", errors.New("bad symbol number")
	}
	m.col = m.col[k:]
	return m.symbols[id], nil
}

// yoloString returns the bytes of b as a string without copying them: the
// string is valid while b is not overwritten.
func yoloString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
