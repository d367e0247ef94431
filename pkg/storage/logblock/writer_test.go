package logblock

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
	"github.com/canopy-observability/canopy/pkg/storage/logchunk"
)

// randomStreams returns n streams of chunks chunks each, in time order,
// with lines of random words (so filters differ in size).
func randomStreams(t *testing.T, rng *rand.Rand, n, chunks int) []Stream {
	t.Helper()
	words := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett"}
	var out []Stream
	for s := range n {
		st := Stream{Labels: labels.FromStrings("app", fmt.Sprintf("app-%03d", s))}
		ts := int64(1_700_000_000_000_000_000)
		for range chunks {
			var es []logchunk.Entry
			for range 1 + rng.Intn(200) {
				ts += int64(rng.Intn(1000) + 1)
				var b strings.Builder
				for range 1 + rng.Intn(12) {
					b.WriteString(words[rng.Intn(len(words))])
					fmt.Fprintf(&b, "-%d ", rng.Intn(5000))
				}
				es = append(es, logchunk.Entry{Timestamp: ts, Line: b.String()})
			}
			data, err := logchunk.Encode(nil, es)
			require.NoError(t, err)
			st.Chunks = append(st.Chunks, data)
		}
		out = append(out, st)
	}
	return out
}

// TestWriterLargeBlock: a block written chunk by chunk with filter groups
// and bands far smaller than the block (as a compacted block of millions
// of chunks would be) reads back every entry, and a needle search finds
// exactly the lines holding the needle.
func TestWriterLargeBlock(t *testing.T) {
	defer func(g, b int) { groupChunks, bandBytes = g, b }(groupChunks, bandBytes)
	groupChunks, bandBytes = 7, 100
	rng := rand.New(rand.NewSource(1))
	streams := randomStreams(t, rng, 20, 15)

	dir := t.TempDir()
	id := ulid.MustNew(1, rand.New(rand.NewSource(2)))
	w, err := NewWriter(dir, Meta{ULID: id, Source: "compactor", Sources: []ulid.ULID{goldenID}})
	require.NoError(t, err)
	defer w.Close()
	for _, s := range streams {
		for _, c := range s.Chunks {
			require.NoError(t, w.Add(s.Labels, c))
		}
	}
	meta, err := w.Finish()
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.Equal(t, 300, meta.Stats.Chunks)
	require.Equal(t, []ulid.ULID{goldenID}, meta.Sources)
	_, err = os.Stat(filepath.Join(dir, id.String(), spillFile))
	require.ErrorIs(t, err, os.ErrNotExist, "the spill file is removed")

	bkt, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, Upload(ctx, bkt, "t", dir, id))
	b, err := OpenBlock(ctx, bkt, "t", meta)
	require.NoError(t, err)
	defer b.Close()

	all := labels.MustNewMatcher(labels.MatchRegexp, "app", ".+")
	for _, needle := range []string{"", "charlie-4242", "hotel-17 india"} {
		want := map[string][]string{}
		for _, s := range streams {
			for _, c := range s.Chunks {
				ch, err := logchunk.Open(c)
				require.NoError(t, err)
				require.NoError(t, ch.Iterate(math.MinInt64, math.MaxInt64, false, func(e logchunk.Entry) bool {
					if strings.Contains(e.Line, needle) {
						want[s.Labels.String()] = append(want[s.Labels.String()], strings.Clone(e.Line))
					}
					return true
				}))
			}
		}
		got := map[string][]string{}
		var needles []string
		if needle != "" {
			needles = []string{needle}
		}
		_, err := b.Select(ctx, []*labels.Matcher{all}, math.MinInt64, math.MaxInt64, needles, func(ls labels.Labels, es []logchunk.Entry) error {
			for _, e := range es {
				if strings.Contains(e.Line, needle) {
					got[ls.String()] = append(got[ls.String()], strings.Clone(e.Line))
				}
			}
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, want, got, "needle %q", needle)
	}
}

// TestWriteIsWriter: Write (streams in any order, overlapping chunks) and
// a Writer given the same chunks in order write the same bytes.
func TestWriteIsWriter(t *testing.T) {
	streams := goldenStreams(t)
	a, b := t.TempDir(), t.TempDir()
	_, err := Write(a, goldenID, streams, "ingester", "ingester-1")
	require.NoError(t, err)
	w, err := NewWriter(b, Meta{ULID: goldenID, Source: "ingester", Ingester: "ingester-1"})
	require.NoError(t, err)
	defer w.Close()
	for _, s := range []Stream{streams[1], streams[0]} { // label order: app=api first
		chunks, err := nonOverlapping(s.Chunks)
		require.NoError(t, err)
		for _, c := range chunks {
			require.NoError(t, w.Add(s.Labels, c))
		}
	}
	_, err = w.Finish()
	require.NoError(t, err)
	for _, name := range []string{ChunksFile, FiltersFile, IndexFile, MetaFile} {
		x, err := os.ReadFile(filepath.Join(a, goldenID.String(), name))
		require.NoError(t, err)
		y, err := os.ReadFile(filepath.Join(b, goldenID.String(), name))
		require.NoError(t, err)
		require.True(t, bytes.Equal(x, y), name)
	}
}

func TestWriterRefusesDisorder(t *testing.T) {
	enc := func(ts ...int64) []byte {
		var es []logchunk.Entry
		for _, t := range ts {
			es = append(es, logchunk.Entry{Timestamp: t, Line: "x"})
		}
		b, err := logchunk.Encode(nil, es)
		require.NoError(t, err)
		return b
	}
	a, b := labels.FromStrings("app", "a"), labels.FromStrings("app", "b")
	for _, tc := range []struct {
		name string
		add  func(w *Writer) error
		want string
	}{
		{"streams out of label order", func(w *Writer) error {
			require.NoError(t, w.Add(b, enc(1)))
			return w.Add(a, enc(2))
		}, "label order"},
		{"chunks overlapping", func(w *Writer) error {
			require.NoError(t, w.Add(a, enc(1, 5)))
			return w.Add(a, enc(5, 6))
		}, "not after the previous one's end"},
		{"no chunk", func(w *Writer) error { _, err := w.Finish(); return err }, "at least one chunk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := NewWriter(t.TempDir(), Meta{ULID: goldenID})
			require.NoError(t, err)
			defer w.Close()
			require.ErrorContains(t, tc.add(w), tc.want)
		})
	}
}

// TestListings: ListBlocks leaves out blocks marked for deletion and
// incomplete ones; List shows them all for what they are.
func TestListings(t *testing.T) {
	bkt, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	ctx := context.Background()
	upload := func(ms int64) ulid.ULID {
		id := ulid.MustNew(uint64(ms), rand.New(rand.NewSource(ms)))
		dir := t.TempDir()
		_, err := Write(dir, id, goldenStreams(t), "ingester", "i")
		require.NoError(t, err)
		require.NoError(t, Upload(ctx, bkt, "t", dir, id))
		return id
	}
	kept, marked, partial := upload(1), upload(2), upload(3)
	require.NoError(t, bkt.Delete(ctx, Dir("t", partial)+"/"+MetaFile))
	tb := layout.TenantBucket(bkt, "t", Signal)
	require.NoError(t, layout.WriteMark(ctx, tb, marked, layout.DeletionMarkFilename, "compacted", time.Unix(100, 0)))

	metas, err := ListBlocks(ctx, bkt, "t")
	require.NoError(t, err)
	require.Len(t, metas, 1)
	require.Equal(t, kept, metas[0].ULID)

	l, err := List(ctx, bkt, "t")
	require.NoError(t, err)
	require.Len(t, l.Blocks, 2)
	require.Equal(t, []ulid.ULID{kept, marked}, []ulid.ULID{l.Blocks[0].ULID, l.Blocks[1].ULID})
	require.Equal(t, []ulid.ULID{partial}, l.Partial)
	require.Contains(t, l.Deletion, marked)
	require.Empty(t, l.Corrupt)
}

// TestRefs: a block's streams walked by reference, each chunk read on its
// own, give back every entry.
func TestRefs(t *testing.T) {
	bkt, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	ctx := context.Background()
	dir := t.TempDir()
	meta, err := Write(dir, goldenID, goldenStreams(t), "ingester", "i")
	require.NoError(t, err)
	require.NoError(t, Upload(ctx, bkt, "t", dir, goldenID))
	b, err := OpenBlock(ctx, bkt, "t", meta)
	require.NoError(t, err)
	defer b.Close()
	it, err := b.Refs(ctx)
	require.NoError(t, err)
	got := map[string][]string{}
	for it.Next() {
		for _, c := range it.Chunks() {
			ch, err := b.ReadChunk(ctx, c)
			require.NoError(t, err)
			require.Equal(t, c.MinTime, ch.MinTime())
			require.NoError(t, ch.Iterate(math.MinInt64, math.MaxInt64, true, func(e logchunk.Entry) bool {
				got[it.Labels().String()] = append(got[it.Labels().String()], strings.Clone(e.Line))
				return true
			}))
		}
	}
	require.NoError(t, it.Err())
	require.Equal(t, map[string][]string{
		`{app="api"}`:             {`level=info msg="started"`},
		`{app="web", env="prod"}`: {"GET / 200", "late line", "GET /favicon.ico 404"},
	}, got)
}
