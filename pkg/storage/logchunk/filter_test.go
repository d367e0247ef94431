package logchunk

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/stretchr/testify/require"
)

func TestGramKeyIsXXH64(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var b [8]byte
	for range 10000 {
		u := r.Uint64()
		binary.LittleEndian.PutUint64(b[:], u)
		require.Equal(t, xxhash.Sum64(b[:]), gramKey(u), "gram %x", b)
		require.Equal(t, u, load64(string(b[:]), 0))
	}
}

func TestGramOrderInverse(t *testing.T) {
	p, inv := prime1, gramOrderInverse // variables: the product wraps
	require.Equal(t, uint64(1), p*inv)
}

// windowKeySet is the set of keys windowKeys gives for s.
func windowKeySet(s string) map[uint64]bool {
	set := map[uint64]bool{}
	windowKeys(s, func(k uint64) bool {
		set[k] = true
		return true
	})
	return set
}

// TestWindowKeys checks windowKeys against the definition in FORMAT.md,
// written the slow way: for every window, the XXH64 of its gram of least
// order.
func TestWindowKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		s := randomLine(r, r.IntN(60))
		want := map[uint64]bool{}
		for i := 0; i+MinFilterNeedle <= len(s); i++ {
			best := -1
			for j := i; j < i+gramWindow; j++ {
				if best < 0 || gramOrder(load64(s, j)) < gramOrder(load64(s, best)) {
					best = j
				}
			}
			want[xxhash.Sum64String(s[best:best+gramLen])] = true
		}
		require.Equal(t, want, windowKeySet(s), "line %q", s)
	}
}

// TestAddLineIsWindowKeys checks that the filter builder's written-out loop
// adds the keys windowKeys gives, which MayContain tests.
func TestAddLineIsWindowKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	fb := newFilterBuilder()
	for range 2000 {
		s := randomLine(r, r.IntN(300))
		fb.reset()
		fb.addLine(s)
		got := map[uint64]bool{}
		for _, k := range fb.keys {
			got[k] = true
		}
		require.Equal(t, windowKeySet(s), got, "line %q", s)
	}
}

// randomLine returns a line of n bytes from a small alphabet, so that
// grams repeat within and across lines as they do in logs, with now and
// then a byte of any value.
func randomLine(r *rand.Rand, n int) string {
	const alphabet = "ab0= \"x"
	b := make([]byte, n)
	for i := range b {
		if r.IntN(20) == 0 {
			b[i] = byte(r.UintN(256))
		} else {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
	}
	return string(b)
}

// Which substrings of a line requireNoFalseNegatives tries.
type needleSet int

const (
	allSubstrings needleSet = iota
	// edgeSubstrings: those of MinFilterNeedle to MinFilterNeedle+2w bytes at
	// every offset (one to 2w+1 windows), and every prefix and suffix: the
	// needles whose ends fall on every window boundary, in O(len) of them.
	edgeSubstrings
	// sampledSubstrings: four random ones.
	sampledSubstrings
)

// requireNoFalseNegatives checks that c may contain substrings of the lines
// of es, which set says.
func requireNoFalseNegatives(t testing.TB, c *Chunk, es []Entry, set needleSet, r *rand.Rand) {
	t.Helper()
	check := func(l string, i, j int) {
		if !c.MayContain(l[i:j]) {
			require.Failf(t, "false negative", "needle %q of line %q", l[i:j], l)
		}
	}
	for _, e := range es {
		l := e.Line
		switch {
		case len(l) == 0:
		case set == allSubstrings:
			for i := range len(l) {
				for j := i + 1; j <= len(l); j++ {
					check(l, i, j)
				}
			}
		case set == edgeSubstrings:
			for i := range len(l) {
				for n := MinFilterNeedle; n <= MinFilterNeedle+2*gramWindow && i+n <= len(l); n++ {
					check(l, i, i+n)
				}
				check(l, 0, i+1)
				check(l, i, len(l))
			}
		default:
			for range 4 {
				i := r.IntN(len(l))
				check(l, i, i+1+r.IntN(len(l)-i))
			}
		}
	}
}

// TestFilterNoFalseNegatives is the filter's guarantee: every substring of
// every line of a chunk may be in the chunk. Exhaustively on small chunks
// of each corpus kind and of lines made to repeat grams, by sampling on a
// chunk of the size ingesters cut.
func TestFilterNoFalseNegatives(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, kind := range corpusKinds {
		t.Run(kind, func(t *testing.T) {
			es := genCorpus(t, kind, 11, 12<<10)
			c, _ := encodeOpen(t, es)
			require.NotEmpty(t, c.filter)
			requireNoFalseNegatives(t, c, es, allSubstrings, r)

			es = genCorpus(t, kind, 12, 1<<20)
			c, _ = encodeOpen(t, es)
			requireNoFalseNegatives(t, c, es, sampledSubstrings, r)
		})
	}
	t.Run("repetitive", func(t *testing.T) {
		var es []Entry
		for i := range 200 {
			es = append(es, Entry{Timestamp: int64(i), Line: randomLine(r, r.IntN(120))})
		}
		es = append(es, Entry{Timestamp: 300, Line: strings.Repeat("a", 300)}, Entry{Timestamp: 301, Line: strings.Repeat("ab", 150)})
		c, _ := encodeOpen(t, es)
		require.NotEmpty(t, c.filter)
		requireNoFalseNegatives(t, c, es, allSubstrings, r)
	})
}

// TestFilterRulesOut checks that the filter is of use: needles that are in
// no line are mostly ruled out, and short ones never are.
func TestFilterRulesOut(t *testing.T) {
	es := genCorpus(t, "logfmt", 1, 256<<10)
	c, _ := encodeOpen(t, es)
	r := rand.New(rand.NewPCG(9, 10))
	fp := 0
	const n = 1000
	for range n {
		if c.MayContain(randomHex(r, 32)) {
			fp++
		}
	}
	require.Less(t, fp, n/50, "random trace ids that may be in the chunk")
	require.True(t, c.MayContain("zzzzzzzzzz"), "needles shorter than %d bytes cannot be ruled out", MinFilterNeedle)
	require.False(t, c.MayContain("zzzzzzzzzzz"))
}

func randomHex(r *rand.Rand, n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[r.IntN(16)]
	}
	return string(b)
}

func TestFilterSize(t *testing.T) {
	for _, tc := range []struct {
		distinct, data, want int
	}{
		{0, 1 << 20, 0},
		{1, 1 << 20, 32},
		{26, 1 << 20, 32},       // 26*9.68 = 251.7 bits: one block
		{27, 1 << 20, 32},       // 261.4 bits: 1.02 blocks, nearest power of two 1
		{1000, 1 << 20, 1024},   // 9680 bits: 37.8 blocks, nearest power of two 32
		{1200, 1 << 20, 2048},   // 11616 bits: 45.4 blocks, past √(32·64): 64
		{100, 31, 0},            // capped at the data's 31 bytes: no whole block
		{100000, 100020, 65536}, // 3781 blocks wanted, capped at the data's 3125, a power of two below
		{100 << 20, 1 << 30, maxFilterBytes},
	} {
		t.Run(fmt.Sprint(tc.distinct, "/", tc.data), func(t *testing.T) {
			require.Equal(t, tc.want, filterSize(tc.distinct, tc.data))
		})
	}
}

func TestDistinctKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{1, 10, 1000, 100000} {
		fb := newFilterBuilder()
		for range n {
			k := r.Uint64()
			fb.keys = append(fb.keys, k, k) // every key twice
		}
		fb.keys = append(fb.keys, slices.Clone(fb.keys[:n])...)
		got := fb.distinctKeys()
		require.InEpsilon(t, n, got, 0.05, "%d distinct keys", n)
	}
}
