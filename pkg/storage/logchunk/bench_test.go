package logchunk

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
)

// benchRawBytes is the size chunks are cut at by ingesters, about: the
// benchmarks' chunks hold this many bytes of lines.
const benchRawBytes = 1 << 20

// benchChunk is a corpus chunk the benchmarks share, built once per kind.
type benchChunk struct {
	entries []Entry
	raw     int
	chunk   []byte
	c       *Chunk
	joined  string // the lines, each followed by "\n", to check needles against
}

var benchChunks = map[string]*benchChunk{}

func getBenchChunk(b *testing.B, kind string) *benchChunk {
	b.Helper()
	if bc, ok := benchChunks[kind]; ok {
		return bc
	}
	bc := &benchChunk{entries: genCorpus(b, kind, 1, benchRawBytes)}
	var sb strings.Builder
	for _, e := range bc.entries {
		bc.raw += len(e.Line)
		sb.WriteString(e.Line)
		sb.WriteByte('\n')
	}
	bc.joined = sb.String()
	var err error
	bc.chunk, err = Encode(nil, bc.entries)
	require.NoError(b, err)
	bc.c, err = Open(bc.chunk)
	require.NoError(b, err)
	benchChunks[kind] = bc
	return bc
}

func BenchmarkEncode(b *testing.B) {
	for _, kind := range corpusKinds {
		b.Run(kind, func(b *testing.B) {
			bc := getBenchChunk(b, kind)
			b.ReportAllocs()
			b.SetBytes(int64(bc.raw))
			var dst []byte
			for b.Loop() {
				var err error
				dst, err = Encode(dst[:0], bc.entries)
				if err != nil {
					b.Fatal(err)
				}
			}
			raw := float64(bc.raw)
			b.ReportMetric(float64(len(dst))/raw, "stored-B/raw-B")
			b.ReportMetric(float64(len(bc.c.lines)+len(bc.c.meta))/raw, "data-B/raw-B")
			b.ReportMetric(float64(len(bc.c.filter))/raw, "filter-B/raw-B")
		})
	}
}

// BenchmarkIterate walks every line of a chunk without metadata, as a
// line filter does: decompression and the walk.
func BenchmarkIterate(b *testing.B) {
	benchmarkIterate(b, false)
}

// BenchmarkIterateMetadata walks every entry of a chunk with its metadata.
func BenchmarkIterateMetadata(b *testing.B) {
	benchmarkIterate(b, true)
}

func benchmarkIterate(b *testing.B, withMetadata bool) {
	for _, kind := range corpusKinds {
		b.Run(kind, func(b *testing.B) {
			bc := getBenchChunk(b, kind)
			b.ReportAllocs()
			b.SetBytes(int64(bc.raw))
			for b.Loop() {
				n := 0
				err := bc.c.Iterate(math.MinInt64, math.MaxInt64, withMetadata, func(e Entry) bool {
					n += len(e.Line)
					return true
				})
				if err != nil || n != bc.raw {
					b.Fatal(n, err)
				}
			}
		})
	}
}

// BenchmarkFilterBuild is the filter's share of Encode.
func BenchmarkFilterBuild(b *testing.B) {
	for _, kind := range corpusKinds {
		b.Run(kind, func(b *testing.B) {
			bc := getBenchChunk(b, kind)
			fb := newFilterBuilder()
			var f []byte
			b.ReportAllocs()
			b.SetBytes(int64(bc.raw))
			for b.Loop() {
				fb.reset()
				for _, e := range bc.entries {
					fb.addLine(e.Line)
				}
				f = fb.appendFilter(f[:0], filterSize(fb.distinctKeys(), len(bc.c.lines)))
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(bc.raw), "ns/raw-B")
			b.ReportMetric(float64(fb.distinctKeys())/float64(bc.raw), "keys/raw-B")
		})
	}
}

// absentNeedles returns n needles that are in no line of bc: random hex
// strings of hexLength digits when it is not 0 (trace ids), else substrings
// of length bytes of the lines of another chunk of the same kind (the same
// fields, other values).
func absentNeedles(b *testing.B, bc *benchChunk, kind string, hexLength, length, n int) []string {
	b.Helper()
	r := rand.New(rand.NewPCG(uint64(hexLength), uint64(length)))
	other := genCorpus(b, kind, 2, 256<<10)
	var out []string
	for len(out) < n {
		var needle string
		if hexLength > 0 {
			needle = randomHex(r, hexLength)
		} else {
			line := other[r.IntN(len(other))].Line
			if len(line) < length {
				continue
			}
			p := r.IntN(len(line) - length + 1)
			needle = line[p : p+length]
		}
		if !strings.Contains(bc.joined, needle) {
			out = append(out, needle)
		}
	}
	return out
}

// BenchmarkMayContain asks a chunk's filter about needles that are not in
// it. MB/s is the raw data ruled out per second; the fp metrics are the
// share of needles not ruled out: random hex strings of 11 digits (whose
// grams are in no line: the bloom filter's own rate) and of 32 (trace ids),
// and substrings of 11, 16 and 32 bytes of another chunk's lines, which
// share the stream's structure and so often all their grams (sub11, sub16,
// sub32).
func BenchmarkMayContain(b *testing.B) {
	for _, kind := range corpusKinds {
		b.Run(kind, func(b *testing.B) {
			bc := getBenchChunk(b, kind)
			sets := map[string][]string{}
			for _, set := range []struct {
				name              string
				hexLength, length int
			}{{"hex11", 11, 0}, {"hex32", 32, 0}, {"sub11", 0, 11}, {"sub16", 0, 16}, {"sub32", 0, 32}} {
				sets[set.name] = absentNeedles(b, bc, kind, set.hexLength, set.length, 5000)
			}
			needles := sets["hex32"]
			b.ReportAllocs()
			b.SetBytes(int64(bc.raw))
			i := 0
			for b.Loop() {
				bc.c.MayContain(needles[i%len(needles)])
				i++
			}
			for name, set := range sets {
				fp := 0
				for _, n := range set {
					if bc.c.MayContain(n) {
						fp++
					}
				}
				b.ReportMetric(float64(fp)/float64(len(set)), "fp-"+name)
			}
		})
	}
}

// BenchmarkCodecs compresses and decompresses a corpus chunk's lines section
// with the candidate codecs: the measurements behind zstdLevel (FORMAT.md).
func BenchmarkCodecs(b *testing.B) {
	type codec struct {
		name string
		enc  func(dst, src []byte) []byte
		dec  func(dst, src []byte) ([]byte, error)
	}
	var codecs []codec
	for _, level := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression} {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
		require.NoError(b, err)
		dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
		require.NoError(b, err)
		b.Cleanup(func() {
			_ = enc.Close() // EncodeAll only: nothing to flush
			dec.Close()
		})
		codecs = append(codecs, codec{
			name: "zstd-" + level.String(),
			enc:  func(dst, src []byte) []byte { return enc.EncodeAll(src, dst[:0]) },
			dec:  func(dst, src []byte) ([]byte, error) { return dec.DecodeAll(src, dst[:0]) },
		})
	}
	codecs = append(codecs,
		codec{name: "s2", enc: s2.Encode, dec: s2.Decode},
		codec{name: "s2-better", enc: s2.EncodeBetter, dec: s2.Decode},
	)
	for _, kind := range corpusKinds {
		bc := getBenchChunk(b, kind)
		var raw []byte
		var err error
		raw, err = decompress(nil, bc.c.lines, bc.c.linesRawLen())
		require.NoError(b, err)
		for _, c := range codecs {
			compressed := c.enc(nil, raw)
			b.Run(fmt.Sprintf("%s/%s/encode", kind, c.name), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(bc.raw))
				dst := make([]byte, 0, len(raw))
				for b.Loop() {
					dst = c.enc(dst, raw)
				}
				b.ReportMetric(float64(len(compressed))/float64(bc.raw), "data-B/raw-B")
			})
			b.Run(fmt.Sprintf("%s/%s/decode", kind, c.name), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(bc.raw))
				dst := make([]byte, len(raw))
				for b.Loop() {
					if _, err := c.dec(dst, compressed); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(compressed))/float64(bc.raw), "data-B/raw-B")
			})
		}
	}
}

// BenchmarkIterateMatching walks a chunk for the lines holding a needle,
// as a filter query does (`|= "status=500"` on the logfmt corpus, " 500 "
// on nginx, "\"status\":500" on json): MB/s of raw line bytes.
func BenchmarkIterateMatching(b *testing.B) {
	needles := map[string]string{"nginx": "\" 500 ", "logfmt": "status=500", "json": `"status":500`}
	for _, kind := range corpusKinds {
		b.Run(kind, func(b *testing.B) {
			bc := getBenchChunk(b, kind)
			b.ReportAllocs()
			b.SetBytes(int64(bc.raw))
			var n int
			for b.Loop() {
				n = 0
				_, _, err := bc.c.IterateMatching(math.MinInt64, math.MaxInt64, []string{needles[kind]}, false, func(Entry) bool {
					n++
					return true
				})
				require.NoError(b, err)
			}
			require.Positive(b, n)
		})
	}
}
