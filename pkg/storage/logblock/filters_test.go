package logblock

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/canopy-observability/canopy/pkg/storage/logchunk"
)

// filterBlock writes a block of streams whose chunks have filters of many
// sizes, in groups of three chunks, and opens it.
func filterBlock(t *testing.T) (*Block, objstore.Bucket, map[string][]string) {
	t.Helper()
	defer func(n int) { groupChunks = n }(groupChunks)
	groupChunks = 3
	r := rand.New(rand.NewPCG(21, 22))
	lines := map[string][]string{}
	var streams []Stream
	for s := range 12 {
		ls := labels.FromStrings("app", "filters", "stream", fmt.Sprint(s))
		st := Stream{Labels: ls}
		ts := int64(1_700_000_000_000_000_000)
		for c := range 1 + s%4 {
			var es []logchunk.Entry
			for range 1 + (s*7+c*13)%200 {
				line := fmt.Sprintf("ts=%d stream=%d chunk=%d id=%016x path=/api/v%d/items/%d", ts, s, c, r.Uint64(), r.IntN(3), r.IntN(100000))
				es = append(es, logchunk.Entry{Timestamp: ts, Line: line})
				lines[ls.String()] = append(lines[ls.String()], line)
				ts += 1000
			}
			data, err := logchunk.Encode(nil, es)
			require.NoError(t, err)
			st.Chunks = append(st.Chunks, data)
		}
		streams = append(streams, st)
	}
	dir := t.TempDir()
	id := ulid.MustParse("01HF0000000000000000000001")
	meta, err := Write(dir, id, streams, "ingester", "i")
	require.NoError(t, err)
	bkt, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	require.NoError(t, Upload(context.Background(), bkt, "t", dir, id))
	b, err := OpenBlock(context.Background(), bkt, "t", meta)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	require.Greater(t, len(b.filters.groups), 3, "filters of several sizes, in groups of at most three")
	return b, bkt, lines
}

// TestFiltersNoFalseNegatives: a needle search through the filters file
// returns exactly the lines holding the needle (nothing missed), and rules
// out chunks.
func TestFiltersNoFalseNegatives(t *testing.T) {
	b, _, lines := filterBlock(t)
	ctx := context.Background()
	all := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "app", "filters")}
	r := rand.New(rand.NewPCG(23, 24))
	var skipped int
	for i := range 300 {
		var needle string
		if i%3 == 2 {
			needle = fmt.Sprintf("id=%016x", r.Uint64()) // in no line
		} else {
			var ls []string
			for _, l := range lines {
				ls = l
				break
			}
			line := ls[r.IntN(len(ls))]
			at := r.IntN(len(line) - 12)
			needle = line[at : at+11+r.IntN(len(line)-at-11)]
		}
		var want int
		for _, ls := range lines {
			for _, l := range ls {
				if strings.Contains(l, needle) {
					want++
				}
			}
		}
		var got int
		st, err := b.Select(ctx, all, 0, 1<<62, []string{needle}, func(_ labels.Labels, es []logchunk.Entry) error {
			for _, e := range es {
				if strings.Contains(e.Line, needle) {
					got++
				}
			}
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, want, got, "needle %q", needle)
		skipped += st.ChunksSkipped
		if i%3 == 2 {
			require.Less(t, st.Chunks, 4, "an absent needle reads few chunks (false positives only)")
		}
	}
	require.Positive(t, skipped)
}

// TestFiltersCorrupt: a damaged filters file is an error naming it, never
// a chunk silently skipped or a panic.
func TestFiltersCorrupt(t *testing.T) {
	b, bkt, _ := filterBlock(t)
	ctx := context.Background()
	name := filepath.Join(Dir("t", b.Meta.ULID), FiltersFile)
	r, err := bkt.Get(ctx, name)
	require.NoError(t, err)
	data, err := io.ReadAll(r)
	require.NoError(t, err)
	r.Close()

	put := func(d []byte) {
		require.NoError(t, bkt.Upload(ctx, name, strings.NewReader(string(d))))
	}
	// A flipped bit in the last row.
	bad := append([]byte(nil), data...)
	bad[len(bad)-10] ^= 1
	put(bad)
	all := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "app", "filters")}
	var err2 error
	for i := range 200 { // some key lands in the last row of the last group
		_, err2 = b.Select(ctx, all, 0, 1<<62, []string{fmt.Sprintf("needle-%d-abcdefgh", i)}, func(labels.Labels, []logchunk.Entry) error { return nil })
		if err2 != nil {
			break
		}
	}
	require.ErrorContains(t, err2, "checksum")

	// A damaged directory fails the open.
	bad = append([]byte(nil), data...)
	bad[filtersHeader] ^= 1
	put(bad)
	_, err = OpenBlock(ctx, bkt, "t", b.Meta)
	require.ErrorContains(t, err, "directory checksum")

	// A truncated file.
	put(data[:filtersHeader+2])
	_, err = OpenBlock(ctx, bkt, "t", b.Meta)
	require.ErrorContains(t, err, "filters")
}

// FuzzFilterIndex: no filters file, however damaged, makes the reader
// panic or allocate without bound.
func FuzzFilterIndex(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join("testdata", "block-v2", FiltersFile))
	require.NoError(f, err)
	f.Add(seed)
	f.Add([]byte(filtersMagic + "\x01\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x01\x01\x01\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		read := func(off, n int64) ([]byte, error) {
			if off < 0 || n < 0 || off+n > int64(len(data)) {
				return nil, fmt.Errorf("%d bytes at %d: beyond the file's %d", n, off, len(data))
			}
			return data[off : off+n], nil
		}
		fi, err := readFilterIndex(read)
		if err != nil {
			return
		}
		p, _, err := fi.test(logchunk.NeedleKeys("favicon.ico 404 not found"), read)
		if err != nil {
			return
		}
		for _, s := range fi.slots {
			p.mayHold(s.off)
		}
	})
}

// TestShards: the shards of a block's streams are disjoint and together
// every stream, each the streams whose labels.StableHash modulo the count
// is the index, however often they are read.
func TestShards(t *testing.T) {
	b, _, lines := filterBlock(t)
	ctx := context.Background()
	all := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "app", "filters")}
	for range 2 {
		seen := map[string]int{}
		for i := range uint64(3) {
			it, err := b.Streams(ctx, all, 0, 1<<62, nil, Shard{Index: i, Count: 3})
			require.NoError(t, err)
			for it.Next() {
				require.Equal(t, i, labels.StableHash(it.Labels())%3)
				seen[it.Labels().String()] += len(it.Entries())
			}
			require.NoError(t, it.Err())
		}
		require.Len(t, seen, len(lines))
		for ls, n := range seen {
			require.Len(t, lines[ls], n, ls)
		}
	}
}
