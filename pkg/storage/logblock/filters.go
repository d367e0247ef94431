package logblock

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
	"slices"
	"sort"

	"github.com/canopy-observability/canopy/pkg/storage/logchunk"
)

// The filters file holds the token filters of a block's chunks (FORMAT.md,
// "filters"), taken out of the chunks: filters of the same size are laid
// side by side, block by block, so that testing a needle's key against up
// to maxGroupChunks chunks reads one row of filter blocks instead of each
// chunk's filter.
const (
	filtersMagic   = "CNLF"
	filtersVersion = 1
	filtersHeader  = 16
	// maxGroupChunks is the most chunks whose filters share rows: a row is
	// at most 4096 × 32 B + 4 = 128 KiB.
	maxGroupChunks = 4096
	// maxFilterBlocks bounds a filter's blocks as the chunk encoder does
	// (4 MiB); a directory asking for more is corrupt.
	maxFilterBlocks = 4 << 20 / logchunk.FilterBlockBytes
	// maxFiltersDirectory bounds the directory a reader loads.
	maxFiltersDirectory = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// groupChunks is how many chunks the writer puts in a group (tests make
// groups small).
var groupChunks = maxGroupChunks

// chunkFilter is one chunk's filter, for writeFilters: its bytes are in
// the writer's spill file.
type chunkFilter struct {
	off  uint64 // the chunk's offset in the chunks file
	size int    // the filter's length, a whole number of blocks
	at   int64  // where the filter is in the spill file
}

// filterGroup is a run of chunks with filters of the same size.
type filterGroup struct {
	blocks int      // blocks in each filter
	offs   []uint64 // the chunks' offsets, increasing
	start  int64    // where the group's first row starts in the file
}

// rowLen is the length of one row: a filter block of each chunk and the
// row's CRC.
func (g *filterGroup) rowLen() int64 {
	return int64(len(g.offs))*logchunk.FilterBlockBytes + 4
}

// groupFilters groups filters by size, each group's chunks in offset order
// and at most maxGroupChunks of them. It returns the groups and, for each,
// its filters in the group's order.
func groupFilters(fs []chunkFilter) ([]filterGroup, [][]chunkFilter) {
	fs = slices.Clone(fs)
	slices.SortStableFunc(fs, func(a, b chunkFilter) int { return a.size - b.size })
	var (
		out     []filterGroup
		members [][]chunkFilter
	)
	for i := 0; i < len(fs); {
		j := i + 1
		for j < len(fs) && j-i < groupChunks && fs[j].size == fs[i].size {
			j++
		}
		g := filterGroup{blocks: fs[i].size / logchunk.FilterBlockBytes}
		for _, f := range fs[i:j] {
			g.offs = append(g.offs, f.off)
		}
		out = append(out, g)
		members = append(members, fs[i:j])
		i = j
	}
	return out, members
}

// bandBytes bounds the filter bytes writeFilters holds at once: it reads a
// band of rows of a group from each of the group's filters in turn (tests
// make it small).
var bandBytes = 8 << 20

// writeFilters writes the filters file of a block whose chunks have the
// given filters (chunks without a filter are not given), reading their
// bytes from spill, and returns its length. It holds at most about
// bandBytes of filters in memory, whatever the block's size.
func writeFilters(w io.Writer, fs []chunkFilter, spill io.ReaderAt) (int64, error) {
	for _, f := range fs {
		if f.size == 0 || f.size%logchunk.FilterBlockBytes != 0 {
			return 0, fmt.Errorf("filter of %d bytes: not a whole number of blocks", f.size)
		}
	}
	groups, members := groupFilters(fs)
	dir := binary.AppendUvarint(nil, uint64(len(groups)))
	for _, g := range groups {
		dir = binary.AppendUvarint(dir, uint64(g.blocks))
		dir = binary.AppendUvarint(dir, uint64(len(g.offs)))
		var prev uint64
		for i, off := range g.offs {
			if i > 0 {
				off -= prev // strictly increasing: chunks do not share offsets
			}
			dir = binary.AppendUvarint(dir, off)
			prev = g.offs[i]
		}
	}
	head := make([]byte, filtersHeader)
	copy(head, filtersMagic)
	head[4] = filtersVersion
	binary.LittleEndian.PutUint32(head[8:], uint32(len(dir)))
	binary.LittleEndian.PutUint32(head[12:], crc32.Checksum(dir, castagnoli))
	n := int64(0)
	for _, b := range [][]byte{head, dir} {
		k, err := w.Write(b)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	var row, band []byte
	for gi, g := range groups {
		fs := members[gi]
		// A band is rows [r0, r0+perBand) of every filter of the group.
		perBand := max(1, bandBytes/(len(fs)*logchunk.FilterBlockBytes))
		for r0 := 0; r0 < g.blocks; r0 += perBand {
			rows := min(perBand, g.blocks-r0)
			width := rows * logchunk.FilterBlockBytes
			band = slices.Grow(band[:0], width*len(fs))[:width*len(fs)]
			for i, f := range fs {
				if _, err := spill.ReadAt(band[i*width:(i+1)*width], f.at+int64(r0*logchunk.FilterBlockBytes)); err != nil {
					return n, fmt.Errorf("reading back the filter of the chunk at %d: %w", f.off, err)
				}
			}
			for r := range rows {
				row = row[:0]
				for i := range fs {
					at := i*width + r*logchunk.FilterBlockBytes
					row = append(row, band[at:at+logchunk.FilterBlockBytes]...)
				}
				row = binary.LittleEndian.AppendUint32(row, crc32.Checksum(row, castagnoli))
				k, err := w.Write(row)
				n += int64(k)
				if err != nil {
					return n, err
				}
			}
		}
	}
	return n, nil
}

// filterIndex is a block's filters directory, held in memory while the
// block is open.
type filterIndex struct {
	groups []filterGroup
	slots  []filterSlot // every chunk with a filter, by offset
}

type filterSlot struct {
	off         uint64
	group, slot uint32
}

var errFilters = errors.New("corrupt filters file")

// readFilterIndex reads the header and directory of a filters file.
func readFilterIndex(read func(off, n int64) ([]byte, error)) (*filterIndex, error) {
	head, err := read(0, filtersHeader)
	if err != nil {
		return nil, err
	}
	if string(head[:4]) != filtersMagic {
		return nil, fmt.Errorf("%w: magic %q, want %q", errFilters, head[:4], filtersMagic)
	}
	if head[4] != filtersVersion {
		return nil, fmt.Errorf("%w: version %d, this Canopy reads %d", errFilters, head[4], filtersVersion)
	}
	dirLen := binary.LittleEndian.Uint32(head[8:])
	if dirLen == 0 || dirLen > maxFiltersDirectory {
		return nil, fmt.Errorf("%w: a directory of %d bytes", errFilters, dirLen)
	}
	dir, err := read(filtersHeader, int64(dirLen))
	if err != nil {
		return nil, err
	}
	if got, want := crc32.Checksum(dir, castagnoli), binary.LittleEndian.Uint32(head[12:]); got != want {
		return nil, fmt.Errorf("%w: directory checksum %08x, stored %08x", errFilters, got, want)
	}
	next := func(what string) (uint64, error) {
		v, k := binary.Uvarint(dir)
		if k <= 0 {
			return 0, fmt.Errorf("%w: bad %s in the directory", errFilters, what)
		}
		dir = dir[k:]
		return v, nil
	}
	ng, err := next("group count")
	if err != nil {
		return nil, err
	}
	if ng > uint64(len(dir)) {
		return nil, fmt.Errorf("%w: %d groups in a directory of %d bytes", errFilters, ng, dirLen)
	}
	fi := &filterIndex{groups: make([]filterGroup, ng)}
	start := int64(filtersHeader) + int64(dirLen)
	for gi := range fi.groups {
		blocks, err := next("filter size")
		if err != nil {
			return nil, err
		}
		count, err := next("chunk count")
		if err != nil {
			return nil, err
		}
		if blocks == 0 || blocks > maxFilterBlocks || count == 0 || count > maxGroupChunks || count > uint64(len(dir)) {
			return nil, fmt.Errorf("%w: a group of %d chunks with filters of %d blocks", errFilters, count, blocks)
		}
		g := filterGroup{blocks: int(blocks), offs: make([]uint64, count), start: start}
		for i := range g.offs {
			v, err := next("chunk offset")
			if err != nil {
				return nil, err
			}
			if i > 0 {
				if v == 0 || v > 1<<40 {
					return nil, fmt.Errorf("%w: chunk offsets not increasing", errFilters)
				}
				v += g.offs[i-1]
			}
			g.offs[i] = v
			fi.slots = append(fi.slots, filterSlot{off: v, group: uint32(gi), slot: uint32(i)})
		}
		start += int64(g.blocks) * g.rowLen()
		fi.groups[gi] = g
	}
	if len(dir) != 0 {
		return nil, fmt.Errorf("%w: %d bytes left after the directory", errFilters, len(dir))
	}
	slices.SortFunc(fi.slots, func(a, b filterSlot) int { return cmp.Compare(a.off, b.off) })
	for i := 1; i < len(fi.slots); i++ {
		if fi.slots[i].off == fi.slots[i-1].off {
			return nil, fmt.Errorf("%w: chunk at %d listed twice", errFilters, fi.slots[i].off)
		}
	}
	return fi, nil
}

// filterPass says, for each chunk with a filter, whether it may hold every
// needle: a bit per slot per group.
type filterPass struct {
	fi   *filterIndex
	bits [][]uint64
}

// mayHold reports whether the chunk at off may hold the needles: false
// only for a chunk whose filter rules them out.
func (p *filterPass) mayHold(off uint64) bool {
	i := sort.Search(len(p.fi.slots), func(i int) bool { return p.fi.slots[i].off >= off })
	if i == len(p.fi.slots) || p.fi.slots[i].off != off {
		return true // no filter
	}
	s := p.fi.slots[i]
	return p.bits[s.group][s.slot/64]&(1<<(s.slot%64)) != 0
}

// none reports whether the filters rule out all of the chunks of a block
// of chunks chunks: every chunk has a filter, and none may hold the
// needles.
func (p *filterPass) none(chunks int) bool {
	if len(p.fi.slots) != chunks {
		return false
	}
	for _, g := range p.bits {
		for _, w := range g {
			if w != 0 {
				return false
			}
		}
	}
	return true
}

// test tests keys (every key of every needle) against every chunk's
// filter: for each group, it reads the row of each key in turn, until no
// chunk of the group is left. It returns the bytes it read.
func (fi *filterIndex) test(keys []uint64, read func(off, n int64) ([]byte, error)) (*filterPass, int64, error) {
	p := &filterPass{fi: fi, bits: make([][]uint64, len(fi.groups))}
	var bytes int64
	for gi := range fi.groups {
		g := &fi.groups[gi]
		set := make([]uint64, (len(g.offs)+63)/64)
		for s := range g.offs {
			set[s/64] |= 1 << (s % 64)
		}
		p.bits[gi] = set
		left := len(g.offs)
		for _, k := range keys {
			if left == 0 {
				break
			}
			r := logchunk.FilterBlockOf(k, g.blocks)
			row, err := read(g.start+int64(r)*g.rowLen(), g.rowLen())
			if err != nil {
				return nil, bytes, err
			}
			bytes += int64(len(row))
			body := row[:len(row)-4]
			if got, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(row[len(body):]); got != want {
				return nil, bytes, fmt.Errorf("%w: row %d of the filters of %d blocks: checksum %08x, stored %08x", errFilters, r, g.blocks, got, want)
			}
			for w, word := range set {
				for word != 0 {
					b := bits.TrailingZeros64(word)
					word &^= 1 << b
					s := w*64 + b
					if !logchunk.BlockHas(body[s*logchunk.FilterBlockBytes:], k) {
						set[w] &^= 1 << b
						left--
					}
				}
			}
		}
	}
	return p, bytes, nil
}
