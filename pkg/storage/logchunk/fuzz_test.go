package logchunk

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// fixChecksums rewrites the checksums of chunk b wherever the lengths its
// header declares fit in b, so that the fuzzer gets past them to the
// lengths, the decompressor and the columns.
func fixChecksums(b []byte) {
	if len(b) < headerSize {
		return
	}
	le := binary.LittleEndian
	off := headerSize
	for _, f := range []struct{ lenOff, crcOff int }{{offFilterLen, offFilterCRC}, {offLinesLen, offLinesCRC}, {offMetaLen, offMetaCRC}} {
		n := int(le.Uint32(b[f.lenOff:]))
		if n > len(b)-off {
			break
		}
		le.PutUint32(b[f.crcOff:], crc32.Checksum(b[off:off+n], castagnoli))
		off += n
	}
	rechecksum(b)
}

// allocBound is the most Open, Iterate and MayContain may allocate for a
// chunk of n bytes: each section decompresses to at most maxExpansion times
// its size, the metadata symbol table takes a string header (16 bytes) per
// byte at most, and the zstd decoder's own tables and the pools' first
// buffers are a constant.
func allocBound(n int) uint64 {
	return uint64(n)*maxExpansion*(1+16) + 16<<20
}

// FuzzOpen opens arbitrary bytes, with their checksums as they are or made
// right: Open, Iterate and MayContain never panic, and allocate no more than
// allocBound of the input's length.
func FuzzOpen(f *testing.F) {
	golden, err := os.ReadFile(filepath.Join("testdata", goldenFile))
	require.NoError(f, err)
	small, err := Encode(nil, []Entry{
		{Timestamp: 1, Line: "level=info msg=hello", Metadata: labels.FromStrings("a", "b")},
		{Timestamp: 2, Line: "level=warn msg=bye"},
	})
	require.NoError(f, err)
	f.Add(small, false)
	f.Add(small, true)
	f.Add(small[:len(small)-3], true)
	f.Add(golden, false)
	f.Add(golden[:headerSize], true)
	f.Add([]byte(magic), false)
	f.Fuzz(func(t *testing.T, b []byte, fix bool) {
		if fix {
			fixChecksums(b)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		c, err := Open(b)
		if err == nil {
			for _, md := range []bool{false, true} {
				_ = c.Iterate(math.MinInt64, math.MaxInt64, md, func(e Entry) bool {
					_ = e.Metadata.Len()
					return true
				})
			}
			c.MayContain("level=info msg")
			c.MayContain(string(b))
		}
		runtime.ReadMemStats(&after)
		require.LessOrEqual(t, after.TotalAlloc-before.TotalAlloc, allocBound(len(b)))
	})
}

// fuzzEntries makes entries from fuzz input: one per line of lines, at
// timestamps from base on by steps of deltas[i]*step (stopping at
// MaxInt64), with metadata from meta ("name=value;...") on every other
// entry.
func fuzzEntries(lines string, base int64, step uint64, deltas []byte, meta string) []Entry {
	pairs := map[string]string{}
	for p := range strings.SplitSeq(meta, ";") {
		if name, value, _ := strings.Cut(p, "="); name != "" {
			pairs[name] = value
		}
	}
	sb := labels.NewScratchBuilder(len(pairs))
	for _, name := range slices.Sorted(maps.Keys(pairs)) {
		sb.Add(name, pairs[name])
	}
	md := sb.Labels()

	var es []Entry
	ts := base
	for i, l := range strings.Split(lines, "\n") {
		if i > 0 && len(deltas) > 0 {
			d := uint64(deltas[i%len(deltas)]) * (step % (1 << 40))
			if d > uint64(math.MaxInt64)-uint64(ts) {
				ts = math.MaxInt64
			} else {
				ts += int64(d)
			}
		}
		e := Entry{Timestamp: ts, Line: l, Metadata: labels.EmptyLabels()}
		if i%2 == 0 {
			e.Metadata = md
		}
		es = append(es, e)
	}
	return es
}

// FuzzRoundTrip encodes entries made from fuzz input: Open and Iterate give
// them back, and every substring of every line may be in the chunk (of long
// lines, those at window boundaries: edgeSubstrings).
func FuzzRoundTrip(f *testing.F) {
	f.Add("level=info msg=hello\nlevel=warn msg=\"disk almost full\" free=1%", int64(0), uint64(1_000_000), []byte{1, 0, 2}, "pod=api-1;trace_id=abc")
	f.Add("", int64(-5), uint64(0), []byte{}, "")
	f.Add("a\n\nbbbbbbbbbbbbbbbbbbbbbbbbb\n\xff\x00\xfe", int64(math.MaxInt64-3), uint64(1), []byte{255}, "=x;y=;z=1")
	r := rand.New(rand.NewPCG(1, 1))
	f.Fuzz(func(t *testing.T, lines string, base int64, step uint64, deltas []byte, meta string) {
		if len(lines)+len(meta) > 1<<16 {
			t.Skip("a chunk's worth of input is enough")
		}
		es := fuzzEntries(lines, base, step, deltas, meta)
		b, err := Encode(nil, es)
		require.NoError(t, err)
		c, err := Open(b)
		require.NoError(t, err)
		// Entries at MaxInt64 are past every [from, through) range.
		want := slices.DeleteFunc(slices.Clone(es), func(e Entry) bool { return e.Timestamp == math.MaxInt64 })
		requireEntries(t, want, readAll(t, c, math.MinInt64, math.MaxInt64, true))
		requireEntries(t, withoutMetadata(want), readAll(t, c, math.MinInt64, math.MaxInt64, false))
		// Every substring when there are not too many (the fuzzer's inputs
		// are mostly small), else the ones at window boundaries.
		set, pairs := allSubstrings, 0
		for _, e := range es {
			pairs += len(e.Line) * len(e.Line)
		}
		if pairs > 1<<18 {
			set = edgeSubstrings
		}
		requireNoFalseNegatives(t, c, es, set, r)
	})
}

// TestFilterMayContainAgreesWithOpen: testing needles on a chunk's header
// and filter alone answers as the opened chunk does.
func TestFilterMayContainAgreesWithOpen(t *testing.T) {
	var es []Entry
	for i := 0; i < 500; i++ {
		es = append(es, Entry{Timestamp: int64(i), Line: fmt.Sprintf("level=info request_id=%08x path=/api/%d", i*7919, i)})
	}
	b, err := Encode(nil, es)
	require.NoError(t, err)
	c, err := Open(b)
	require.NoError(t, err)
	n, err := FilterLen(b[:HeaderSize])
	require.NoError(t, err)
	for _, needle := range []string{"request_id=0000f76b", "request_id=ffffffff", "path=/api/499", "nothing like it here"} {
		got, err := FilterMayContain(b[:n], []string{needle})
		require.NoError(t, err)
		require.Equal(t, c.MayContain(needle), got, needle)
	}
	_, err = FilterMayContain(b[:n-1], []string{"x"})
	require.ErrorIs(t, err, ErrCorrupt)
	bad := append([]byte(nil), b[:n]...)
	bad[n-1] ^= 1
	_, err = FilterMayContain(bad, []string{"request_id=0000f76b"})
	require.ErrorIs(t, err, ErrCorrupt)
}
