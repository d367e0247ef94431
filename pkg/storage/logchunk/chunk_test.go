package logchunk

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// readAll returns the entries of c in [from, through), copied out of the
// buffers Iterate reuses.
func readAll(t testing.TB, c *Chunk, from, through int64, withMetadata bool) []Entry {
	t.Helper()
	var out []Entry
	require.NoError(t, c.Iterate(from, through, withMetadata, func(e Entry) bool {
		out = append(out, Entry{Timestamp: e.Timestamp, Line: strings.Clone(e.Line), Metadata: e.Metadata.Copy()})
		return true
	}))
	return out
}

func withoutMetadata(es []Entry) []Entry {
	out := make([]Entry, len(es))
	for i, e := range es {
		out[i] = Entry{Timestamp: e.Timestamp, Line: e.Line, Metadata: labels.EmptyLabels()}
	}
	return out
}

// requireEntries compares entries field by field: labels.Labels of equal
// content may differ as Go values.
func requireEntries(t testing.TB, want, got []Entry) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		require.Equal(t, want[i].Timestamp, got[i].Timestamp, "entry %d", i)
		require.Equal(t, want[i].Line, got[i].Line, "entry %d", i)
		require.True(t, labels.Equal(want[i].Metadata, got[i].Metadata), "entry %d: metadata %s, want %s", i, got[i].Metadata, want[i].Metadata)
	}
}

func encodeOpen(t testing.TB, es []Entry) (*Chunk, []byte) {
	t.Helper()
	b, err := Encode(nil, es)
	require.NoError(t, err)
	c, err := Open(b)
	require.NoError(t, err)
	return c, b
}

func TestRoundTrip(t *testing.T) {
	md := labels.FromStrings("pod", "api-1", "trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")
	cases := map[string][]Entry{
		"one entry":       {{Timestamp: 5, Line: "hello"}},
		"one empty line":  {{Timestamp: 5, Line: ""}},
		"empty lines":     {{Timestamp: 1, Line: ""}, {Timestamp: 2, Line: "x"}, {Timestamp: 3, Line: ""}},
		"equal times":     {{Timestamp: 7, Line: "a"}, {Timestamp: 7, Line: "b"}, {Timestamp: 7, Line: "c"}},
		"extreme times":   {{Timestamp: math.MinInt64, Line: "first"}, {Timestamp: -1, Line: "before 1970"}, {Timestamp: math.MaxInt64 - 1, Line: "last"}},
		"binary and utf8": {{Timestamp: 1, Line: "\x00\xff\xfe invalid utf-8 \xc3"}, {Timestamp: 2, Line: "héllo wörld — ünïcode ✓ 日本語のログ行"}},
		"metadata on some": {
			{Timestamp: 1, Line: "no metadata"},
			{Timestamp: 2, Line: "some", Metadata: md},
			{Timestamp: 3, Line: "other", Metadata: labels.FromStrings("pod", "api-2", "empty", "")},
			{Timestamp: 4, Line: "none again"},
		},
		"metadata on all": {
			{Timestamp: 10, Line: "a", Metadata: md},
			{Timestamp: 20, Line: "b", Metadata: md},
		},
		"long line": {{Timestamp: 1, Line: strings.Repeat("0123456789abcdef", 70000)}, {Timestamp: 2, Line: "short"}},
	}
	for _, kind := range corpusKinds {
		cases["corpus "+kind] = genCorpus(t, kind, 1, 64<<10)
	}
	for name, es := range cases {
		t.Run(name, func(t *testing.T) {
			c, _ := encodeOpen(t, es)
			raw := int64(0)
			for _, e := range es {
				raw += int64(len(e.Line))
			}
			require.Equal(t, es[0].Timestamp, c.MinTime())
			require.Equal(t, es[len(es)-1].Timestamp, c.MaxTime())
			require.Equal(t, len(es), c.Entries())
			require.Equal(t, raw, c.RawBytes())
			requireEntries(t, es, readAll(t, c, math.MinInt64, math.MaxInt64, true))
			requireEntries(t, withoutMetadata(es), readAll(t, c, math.MinInt64, math.MaxInt64, false))
		})
	}
}

func TestIterateRange(t *testing.T) {
	var es []Entry
	for i := range 20 {
		es = append(es, Entry{Timestamp: int64(100 + 10*(i/2)), Line: strings.Repeat("x", i), Metadata: labels.FromStrings("i", strings.Repeat("y", i))})
	}
	c, _ := encodeOpen(t, es) // timestamps 100,100,110,110,...,190,190
	in := func(from, through int64) []Entry {
		var out []Entry
		for _, e := range es {
			if e.Timestamp >= from && e.Timestamp < through {
				out = append(out, e)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name          string
		from, through int64
	}{
		{"all", 100, 191},
		{"through is exclusive", 100, 190},
		{"from is inclusive", 110, 130},
		{"inside", 125, 165},
		{"one instant", 150, 151},
		{"between entries", 151, 159},
		{"before", 0, 100},
		{"after", 191, 1000},
		{"empty range", 150, 150},
		{"reversed range", 160, 120},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireEntries(t, in(tc.from, tc.through), readAll(t, c, tc.from, tc.through, true))
		})
	}

	t.Run("fn false stops", func(t *testing.T) {
		n := 0
		require.NoError(t, c.Iterate(0, 1000, false, func(Entry) bool {
			n++
			return n < 3
		}))
		require.Equal(t, 3, n)
	})
}

func TestEncodeErrors(t *testing.T) {
	unsorted := labels.NewScratchBuilder(2)
	unsorted.Add("b", "1")
	unsorted.Add("a", "2")
	dup := labels.NewScratchBuilder(2)
	dup.Add("a", "1")
	dup.Add("a", "2")
	for _, tc := range []struct {
		name    string
		entries []Entry
		errIs   error
		errText string
	}{
		{name: "no entries", errText: "encoding log chunk: no entries"},
		{name: "out of order", entries: []Entry{{Timestamp: 2}, {Timestamp: 3}, {Timestamp: 1}}, errIs: ErrOutOfOrder, errText: "entry 2"},
		{name: "unsorted metadata", entries: []Entry{{Timestamp: 1, Metadata: unsorted.Labels()}}, errText: "sorted and distinct"},
		{name: "duplicate metadata", entries: []Entry{{Timestamp: 1, Metadata: dup.Labels()}}, errText: "sorted and distinct"},
		{name: "empty name", entries: []Entry{{Timestamp: 1, Metadata: labels.FromStrings("", "v")}}, errText: "empty name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("prefix")
			out, err := Encode(dst, tc.entries)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.errText)
			if tc.errIs != nil {
				require.ErrorIs(t, err, tc.errIs)
			}
			require.Equal(t, "prefix", string(out))
		})
	}
}

func TestEncodeAppends(t *testing.T) {
	es := genCorpus(t, "logfmt", 3, 8<<10)
	want, err := Encode(nil, es)
	require.NoError(t, err)
	got, err := Encode([]byte("prefix"), es)
	require.NoError(t, err)
	require.Equal(t, "prefix", string(got[:6]))
	require.Equal(t, want, got[6:], "the same entries encode to the same bytes wherever they are appended")
}

// rechecksum recomputes the header checksum of chunk b after a test changed
// a header field.
func rechecksum(b []byte) {
	binary.LittleEndian.PutUint32(b[offHeaderCRC:], crc32.Checksum(b[:offHeaderCRC], castagnoli))
}

func TestOpenErrors(t *testing.T) {
	_, good := encodeOpen(t, genCorpus(t, "json", 1, 8<<10))
	filterLen := int(binary.LittleEndian.Uint32(good[offFilterLen:]))
	linesLen := int(binary.LittleEndian.Uint32(good[offLinesLen:]))
	require.Positive(t, filterLen)
	for _, tc := range []struct {
		name    string
		change  func(b []byte) []byte
		errIs   error
		errText string
	}{
		{"empty", func([]byte) []byte { return nil }, ErrCorrupt, "shorter than the 72-byte header"},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }, ErrCorrupt, "header declares"},
		{"trailing byte", func(b []byte) []byte { return append(b, 0) }, ErrCorrupt, "header declares"},
		{"magic", func(b []byte) []byte { b[0] = 'X'; return b }, ErrCorrupt, "magic"},
		{"header checksum", func(b []byte) []byte { b[offEntries]++; return b }, ErrCorrupt, "header checksum"},
		{"version", func(b []byte) []byte { b[offVersion] = 2; rechecksum(b); return b }, ErrUnsupported, "version 2"},
		{"codec", func(b []byte) []byte { b[offCodec] = 9; rechecksum(b); return b }, ErrUnsupported, "codec 9"},
		{"gram length", func(b []byte) []byte { b[offGramLen] = 4; rechecksum(b); return b }, ErrUnsupported, "grams of 4 bytes"},
		{"filter checksum", func(b []byte) []byte { b[headerSize] ^= 1; return b }, ErrCorrupt, "filter checksum"},
		{"lines checksum", func(b []byte) []byte { b[headerSize+filterLen+linesLen/2] ^= 1; return b }, ErrCorrupt, "lines section checksum"},
		{"metadata checksum", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, ErrCorrupt, "metadata section checksum"},
		{"no entries", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[offEntries:], 0)
			rechecksum(b)
			return b
		}, ErrCorrupt, "no entries"},
		{"times reversed", func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[offMaxTime:], 0)
			rechecksum(b)
			return b
		}, ErrCorrupt, "before min time"},
		{"filter not whole blocks", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[offFilterLen:], uint32(filterLen-1))
			rechecksum(b)
			return b
		}, ErrCorrupt, "not a multiple"},
		{"huge lines section", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[offRawBytes:], math.MaxUint32)
			rechecksum(b)
			return b
		}, ErrCorrupt, "lines section of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.change(bytes.Clone(good))
			c, err := Open(b)
			require.Nil(t, c)
			require.ErrorIs(t, err, tc.errIs)
			require.Contains(t, err.Error(), tc.errText)
		})
	}
}

// TestIterateCorrupt writes chunks whose checksums are right but whose
// sections are not what the header says: Iterate reports them.
func TestIterateCorrupt(t *testing.T) {
	es := []Entry{{Timestamp: 1, Line: "a", Metadata: labels.FromStrings("k", "v")}, {Timestamp: 5, Line: "bc"}}
	for _, tc := range []struct {
		name    string
		change  func(b []byte)
		errText string
	}{
		{"max time too late", func(b []byte) { binary.LittleEndian.PutUint64(b[offMaxTime:], 6) }, "last timestamp 5, header says 6"},
		{"max time too early", func(b []byte) { binary.LittleEndian.PutUint64(b[offMaxTime:], 4) }, "bad timestamp delta"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, b := encodeOpen(t, es)
			tc.change(b)
			rechecksum(b)
			c, err := Open(b)
			require.NoError(t, err)
			err = c.Iterate(math.MinInt64, math.MaxInt64, true, func(Entry) bool { return true })
			require.ErrorIs(t, err, ErrCorrupt)
			require.Contains(t, err.Error(), tc.errText)
		})
	}
}

func TestIterateConcurrently(t *testing.T) {
	es := genCorpus(t, "json", 5, 32<<10)
	c, _ := encodeOpen(t, es)
	done := make(chan []Entry)
	for range 4 {
		go func() {
			var out []Entry
			err := c.Iterate(math.MinInt64, math.MaxInt64, true, func(e Entry) bool {
				out = append(out, Entry{Timestamp: e.Timestamp, Line: strings.Clone(e.Line), Metadata: e.Metadata.Copy()})
				return true
			})
			if err != nil {
				out = nil
			}
			done <- out
		}()
	}
	for range 4 {
		requireEntries(t, es, <-done)
	}
}
