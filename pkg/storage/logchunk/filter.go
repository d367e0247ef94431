package logchunk

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// The token filter: which 8-byte substrings ("grams") of the chunk's lines
// are kept, how they are hashed, and the bloom filter that holds them.
// FORMAT.md describes the same in words; TestFilterNoFalseNegatives and
// FuzzRoundTrip check the guarantee below.
//
// Selection (winnowing with minimizers). Every gram g of a line, at every
// offset, has an order O(g), a function of its 8 bytes alone (gramOrder).
// Every window of w consecutive grams of a line (a run of w+k-1 bytes, k the
// gram length) has a minimizer: its gram of least order. The filter holds
// the key XXH64(g, seed 0) of the minimizer g of every window of every line.
//
// Why no needle is ever missed: let the needle n, |n| >= w+k-1, occur in line
// l at offset p. The window of n at needle offset i is the bytes
// n[i:i+w+k-1] = l[p+i:p+i+w+k-1], so it is also a window of l (inside l,
// because the occurrence is), its w grams are the same bytes, hence have the
// same orders, hence the same minimizer, whose key was added with l. So
// every window minimizer of the needle is in the filter, and MayContain,
// which answers false only when the key of some window minimizer of the
// needle is absent, cannot answer false for a chunk that holds n. Needles
// shorter than w+k-1 have no window and are answered true. Nothing depends
// on where the needle sits in the line (unlike grams kept at fixed offsets,
// which must be tried at every alignment), nor on the line's other bytes.
const (
	// gramLen is k, the length of a gram in bytes.
	gramLen = 8
	// gramWindow is w, the number of consecutive grams whose minimum is kept.
	gramWindow = 4
	// MinFilterNeedle is the length of the shortest needle the filter can
	// rule out; MayContain answers true for shorter ones.
	MinFilterNeedle = gramLen + gramWindow - 1
)

// The bloom filter is a split block bloom filter (the layout Parquet uses):
// blocks of 256 bits as 8 little-endian 32-bit words, one bit set in each
// word per key.
const (
	filterBlockBytes = 32
	// filterBitsPerKey aims at 1% false positives for one key: a bloom
	// filter with 8 hashes has about (1-exp(-8/b))^8 at b bits per key, and
	// -8/ln(1-0.01^(1/8)) = 9.68 (Parquet sizes its filters so). Blocks
	// load unevenly, which adds some: 1.5% measured (FORMAT.md).
	filterBitsPerKey = 9.68
	// maxFilterBytes caps a chunk's filter at 4 MiB.
	maxFilterBytes = 4 << 20
)

var filterSalts = [8]uint32{0x47b6137b, 0x44974d91, 0x8824ad5b, 0xa2b7289d, 0x705495c7, 0x2df1424b, 0x9efc4947, 0x5c6bfb31}

// XXH64 primes.
const (
	prime1 uint64 = 11400714785074694791
	prime2 uint64 = 14029467366897019727
	prime3 uint64 = 1609587929392839161
	prime4 uint64 = 9650029242287828579
	prime5 uint64 = 2870177450012600261
)

// gramOrder is the order in which the grams of a window compete: the gram
// with the smallest gramOrder is the window's minimizer. Any function of the
// gram's bytes alone keeps the guarantee; multiplying the gram's
// little-endian value by an odd constant is one multiply per byte of input,
// is a bijection (equal orders mean equal grams, so ties need no rule), and
// its high bits, which decide the comparisons, depend on every byte.
func gramOrder(u uint64) uint64 { return u * prime1 }

// gramOrderInverse is the inverse of prime1 modulo 2^64: gramOrder(u) *
// gramOrderInverse == u.
const gramOrderInverse uint64 = 0x0887493432badb37 // checked by TestGramOrderInverse

// gramKey is the key a selected gram is stored under in the bloom filter:
// XXH64 with seed 0 of its 8 bytes, u being their little-endian value. It is
// the value xxhash.Sum64 gives for them (TestGramKeyIsXXH64), written out so
// that it inlines into the loops below.
func gramKey(u uint64) uint64 {
	h := prime5 + gramLen
	h ^= bits.RotateLeft64(u*prime2, 31) * prime1
	h = bits.RotateLeft64(h, 27)*prime1 + prime4
	h ^= h >> 33
	h *= prime2
	h ^= h >> 29
	h *= prime3
	h ^= h >> 32
	return h
}

// load64 reads s[i:i+8] as a little-endian uint64; the compiler makes one
// load of it.
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// windowKeys calls fn with the key of the minimizer of every window of s,
// in order, except that a minimizer equal to the one before it is not
// repeated (successive windows often share it). fn returning false stops. s
// shorter than MinFilterNeedle has no window. filterBuilder.addLine is the
// same loop, written out for speed; TestAddLineIsWindowKeys checks that they
// agree.
func windowKeys(s string, fn func(key uint64) bool) {
	if len(s) < MinFilterNeedle {
		return
	}
	o0, o1, o2, o3 := gramOrder(load64(s, 0)), gramOrder(load64(s, 1)), gramOrder(load64(s, 2)), gramOrder(load64(s, 3))
	m := min(o0, o1, o2, o3)
	if !fn(gramKey(m * gramOrderInverse)) {
		return
	}
	for j := gramWindow; j+gramLen <= len(s); j++ {
		o0, o1, o2, o3 = o1, o2, o3, gramOrder(load64(s, j))
		if next := min(o0, o1, o2, o3); next != m {
			m = next
			if !fn(gramKey(m * gramOrderInverse)) {
				return
			}
		}
	}
}

// filterBuilder collects the keys of a chunk's lines. Its zero value is not
// ready: use newFilterBuilder.
type filterBuilder struct {
	keys    []uint64
	scratch []uint64 // addLine's
	bitmap  []uint64 // distinctKeys'

	// seen is a direct-mapped cache of recent minimizers (their orders): one
	// found in its slot is not hashed and appended again, so the common
	// grams of a stream ("level=info") cost one compare. Slot i starts as a
	// value that does not belong in slot i, so it matches nothing until a
	// minimizer is stored there.
	seen [1 << 10]uint64
}

// seenShift picks the bits of a minimizer's order that index the cache: the
// top bits of a minimum lean towards zero and the low bits of an order
// depend only on the gram's first bytes, the middle ones on its first
// six or seven.
const seenShift = 40

func newFilterBuilder() *filterBuilder {
	fb := &filterBuilder{}
	fb.reset()
	return fb
}

func (fb *filterBuilder) reset() {
	fb.keys = fb.keys[:0]
	for i := range fb.seen {
		fb.seen[i] = uint64(i^(len(fb.seen)-1)) << seenShift
	}
}

// addLine adds the keys of the minimizers of s: the keys windowKeys gives
// for s, less some repeats. It is written in three branch-free passes
// because whether the minimum changes from one window to the next, and
// whether a minimizer was seen recently, are coin flips the CPU cannot
// predict: over the orders of the windows (keeping each change of minimum),
// over those (keeping the ones not in the cache), and over those (hashing
// them into keys).
func (fb *filterBuilder) addLine(s string) {
	if len(s) < MinFilterNeedle {
		return
	}
	n := len(s) - MinFilterNeedle + 1 // windows
	if cap(fb.scratch) < n {
		fb.scratch = make([]uint64, n)
	}
	sc := fb.scratch[:n]
	o0, o1, o2, o3 := gramOrder(load64(s, 0)), gramOrder(load64(s, 1)), gramOrder(load64(s, 2)), gramOrder(load64(s, 3))
	m := min(o0, o1, o2, o3)
	sc[0] = m
	k := 1
	for j := gramWindow; j+gramLen <= len(s); j++ {
		o0, o1, o2, o3 = o1, o2, o3, gramOrder(load64(s, j))
		next := min(o0, o1, o2, o3)
		sc[k] = next // kept when it differs from m
		k += b2i(next != m)
		m = next
	}
	nk := 0
	for _, m := range sc[:k] {
		slot := &fb.seen[(m>>seenShift)&(uint64(len(fb.seen))-1)]
		miss := *slot != m
		*slot = m
		sc[nk] = m // kept on a miss; nk <= the index of m
		nk += b2i(miss)
	}
	for _, m := range sc[:nk] {
		fb.keys = append(fb.keys, gramKey(m*gramOrderInverse))
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// distinctKeys estimates how many distinct keys fb holds by linear counting
// on a bitmap at least as large as the number of keys: within a few percent,
// which is all the sizing needs, without sorting or a hash set.
func (fb *filterBuilder) distinctKeys() int {
	if len(fb.keys) == 0 {
		return 0
	}
	m := 64
	for m < len(fb.keys) {
		m *= 2
	}
	if cap(fb.bitmap) < m/64 {
		fb.bitmap = make([]uint64, m/64)
	}
	bitmap := fb.bitmap[:m/64]
	clear(bitmap)
	for _, k := range fb.keys {
		i := k & uint64(m-1)
		bitmap[i/64] |= 1 << (i % 64)
	}
	zeros := 0
	for _, w := range bitmap {
		zeros += 64 - bits.OnesCount64(w)
	}
	if zeros == 0 {
		return len(fb.keys)
	}
	est := -float64(m) * math.Log(float64(zeros)/float64(m))
	return min(len(fb.keys), int(math.Round(est)))
}

// filterSize is the size in bytes of the filter of a chunk with the given
// distinct keys whose lines section compressed to dataBytes: a power of two
// of blocks, the one nearest (in ratio) to 1% false positives for one key,
// so between 6.8 and 13.7 bits per key; but never more than dataBytes (a
// filter larger than the data it lets a query skip costs more to read than
// it saves) nor maxFilterBytes. 0 means no filter. Powers of two let a
// block file lay the filters of equal size side by side (logblock's
// filters file), so that a needle search reads one row of blocks for many
// chunks.
func filterSize(distinct, dataBytes int) int {
	if distinct == 0 {
		return 0
	}
	want := float64(distinct) * filterBitsPerKey / (filterBlockBytes * 8)
	blocks := 1
	if want > 1 {
		blocks = 1 << int(math.Round(math.Log2(want)))
	}
	limit := min(maxFilterBytes, dataBytes) / filterBlockBytes
	if blocks > limit {
		if limit == 0 {
			return 0
		}
		blocks = 1 << (bits.Len(uint(limit)) - 1)
	}
	return blocks * filterBlockBytes
}

// appendFilter appends the filter of fb's keys, size bytes (a multiple of
// filterBlockBytes), to dst.
func (fb *filterBuilder) appendFilter(dst []byte, size int) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, size)...)
	f := dst[start:]
	if size == 0 {
		return dst
	}
	for _, k := range fb.keys {
		filterInsert(f, k)
	}
	return dst
}

// filterBlock returns the offset of the block of key in a filter of n
// blocks: the high 32 bits of the key scaled to [0, n).
func filterBlock(key uint64, n int) int {
	return int((key>>32)*uint64(n)>>32) * filterBlockBytes
}

// filterInsert sets the bits of key. Word i of the block is bytes 4i to
// 4i+3, so words 2j and 2j+1 are the little-endian uint64 at 8j: four 64-bit
// read-modify-writes do the eight words.
func filterInsert(f []byte, key uint64) {
	b := f[filterBlock(key, len(f)/filterBlockBytes):]
	b = b[:filterBlockBytes:filterBlockBytes]
	x := uint32(key)
	for j := 0; j < 4; j++ {
		lo := uint64(1) << ((x * filterSalts[2*j]) >> 27)
		hi := uint64(1) << ((x * filterSalts[2*j+1]) >> 27)
		w := binary.LittleEndian.Uint64(b[8*j:])
		binary.LittleEndian.PutUint64(b[8*j:], w|lo|hi<<32)
	}
}

func filterHas(f []byte, key uint64) bool {
	return blockHas(f[filterBlock(key, len(f)/filterBlockBytes):], key)
}

// blockHas reports whether the filter block at the start of b has every bit
// of key.
func blockHas(b []byte, key uint64) bool {
	b = b[:filterBlockBytes]
	x := uint32(key)
	for i, salt := range filterSalts {
		if binary.LittleEndian.Uint32(b[4*i:])&(1<<((x*salt)>>27)) == 0 {
			return false
		}
	}
	return true
}

// filterMayContain reports whether the filter f may hold every window key
// of needle; see the proof at the top of this file. An empty filter (none
// was kept) and a needle shorter than MinFilterNeedle answer true.
func filterMayContain(f []byte, needle string) bool {
	if len(f) == 0 {
		return true
	}
	found := true
	windowKeys(needle, func(key uint64) bool {
		found = filterHas(f, key)
		return found
	})
	return found
}
