package logchunk

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSplitFilter: the chunk without its filter is a valid chunk with the
// same entries that rules nothing out, and the filter it gave, tested block
// by block with FilterBlockOf and BlockHas over NeedleKeys, answers as the
// chunk did.
func TestSplitFilter(t *testing.T) {
	entries := genCorpus(t, "logfmt", 3, 64<<10)
	data, err := Encode(nil, entries)
	require.NoError(t, err)
	whole, err := Open(data)
	require.NoError(t, err)
	filter, rest, err := SplitFilter(data)
	require.NoError(t, err)
	require.NotEmpty(t, filter)
	require.Zero(t, len(filter)%FilterBlockBytes)
	n := len(filter) / FilterBlockBytes
	require.Equal(t, 0, n&(n-1), "%d filter blocks, a power of two", n)
	require.Len(t, rest, len(data)-len(filter))

	stripped, err := Open(rest)
	require.NoError(t, err)
	var got []Entry
	require.NoError(t, stripped.Iterate(math.MinInt64, math.MaxInt64, true, func(e Entry) bool {
		got = append(got, Entry{Timestamp: e.Timestamp, Line: string([]byte(e.Line)), Metadata: e.Metadata.Copy()})
		return true
	}))
	require.Equal(t, len(entries), len(got))
	for i := range got {
		require.Equal(t, entries[i].Line, got[i].Line)
		require.Equal(t, entries[i].Timestamp, got[i].Timestamp)
	}

	mayContain := func(needle string) bool {
		for _, k := range NeedleKeys(needle) {
			if !BlockHas(filter[FilterBlockOf(k, n)*FilterBlockBytes:], k) {
				return false
			}
		}
		return true
	}
	line := entries[len(entries)/2].Line
	needles := []string{line, line[3:20], "trace_id=00000000000000000000000000000000", "short", randomHex(rand.New(rand.NewPCG(13, 14)), 32)}
	for _, nd := range needles {
		require.Equal(t, whole.MayContain(nd), mayContain(nd), "needle %q", nd)
		require.True(t, stripped.MayContain(nd), "a chunk without its filter rules nothing out")
	}
	require.True(t, mayContain(line))
	require.Empty(t, NeedleKeys("short"))
	require.Len(t, NeedleKeys("aaaaaaaaaaaaaaaaaaaaaaaa"), 1, "repeated keys are given once")

	// A chunk without a filter splits into nothing and itself.
	f2, rest2, err := SplitFilter(rest)
	require.NoError(t, err)
	require.Empty(t, f2)
	require.Equal(t, rest, rest2)

	_, _, err = SplitFilter(data[:len(data)-1])
	require.ErrorIs(t, err, ErrCorrupt)
}

// TestIterateMatching: IterateMatching gives exactly the entries Iterate
// gives whose line holds every needle, and counts the others; needles that
// run from one line into the next (the section is searched whole) and
// occur several times in a line are no trouble.
func TestIterateMatching(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	var entries []Entry
	for i := range 3000 {
		var line []byte
		for range r.IntN(12) {
			line = append(line, "ab"[r.IntN(2)])
		}
		if i%50 == 0 {
			line = nil // empty lines too
		}
		entries = append(entries, Entry{Timestamp: int64(i / 3), Line: string(line)})
	}
	data, err := Encode(nil, entries)
	require.NoError(t, err)
	c, err := Open(data)
	require.NoError(t, err)
	for _, needles := range [][]string{{"a"}, {"ab"}, {"abba"}, {"bbbbb"}, {"aab", "bba"}, {"aaaaaaaaaaaa"}, {"b", "abab", "a"}} {
		for _, rng := range [][2]int64{{0, 1000}, {100, 200}, {999, 1000}} {
			var want []Entry
			require.NoError(t, c.Iterate(rng[0], rng[1], false, func(e Entry) bool {
				for _, nd := range needles {
					if !strings.Contains(e.Line, nd) {
						return true
					}
				}
				want = append(want, Entry{Timestamp: e.Timestamp, Line: strings.Clone(e.Line)})
				return true
			}))
			var got []Entry
			var all, allBytes int64
			require.NoError(t, c.Iterate(rng[0], rng[1], false, func(e Entry) bool {
				all++
				allBytes += int64(len(e.Line))
				return true
			}))
			skipped, skippedBytes, err := c.IterateMatching(rng[0], rng[1], needles, false, func(e Entry) bool {
				got = append(got, Entry{Timestamp: e.Timestamp, Line: strings.Clone(e.Line)})
				return true
			})
			require.NoError(t, err)
			require.Equal(t, want, got, "needles %q in %v", needles, rng)
			require.Equal(t, all, skipped+int64(len(got)))
			var gotBytes int64
			for _, e := range got {
				gotBytes += int64(len(e.Line))
			}
			require.Equal(t, allBytes, skippedBytes+gotBytes)
		}
	}
}

// TestIterateReusesBuffers: walking chunks of varying sizes one after
// another allocates nothing once warm: the decompression buffers keep
// their capacity and go back to a free list that garbage collections do not
// empty (a filter over 10 GB allocated 5 GB when they did not).
func TestIterateReusesBuffers(t *testing.T) {
	var chunks []*Chunk
	for i := range 30 {
		data, err := Encode(nil, genCorpus(t, "logfmt", uint64(i), 200<<10+(i%7)*9000-(i%3)*20000))
		require.NoError(t, err)
		c, err := Open(data)
		require.NoError(t, err)
		chunks = append(chunks, c)
	}
	allocs := testing.AllocsPerRun(5, func() {
		for _, c := range chunks {
			_, _, err := c.IterateMatching(math.MinInt64, math.MaxInt64, []string{"status=500"}, true, func(Entry) bool { return true })
			require.NoError(t, err)
		}
	})
	require.LessOrEqual(t, allocs, 1.0, "allocations per walk over 30 chunks")
}
