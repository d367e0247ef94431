package logblock

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/canopy-observability/canopy/pkg/storage/logchunk"
)

var update = flag.Bool("update", false, "rewrite testdata/block-v2")

// goldenStreams are the streams of the golden block: two streams, one with
// two chunks (the second overlapping the first in time, so they are merged)
// and metadata.
func goldenStreams(t *testing.T) []Stream {
	t.Helper()
	enc := func(es ...logchunk.Entry) []byte {
		b, err := logchunk.Encode(nil, es)
		require.NoError(t, err)
		return b
	}
	return []Stream{
		{Labels: labels.FromStrings("app", "web", "env", "prod"), Chunks: [][]byte{
			enc(logchunk.Entry{Timestamp: 1_700_000_000_000_000_000, Line: "GET / 200"},
				logchunk.Entry{Timestamp: 1_700_000_001_000_000_000, Line: "GET /favicon.ico 404", Metadata: labels.FromStrings("trace_id", "4bf92f3577b34da6")}),
			enc(logchunk.Entry{Timestamp: 1_700_000_000_500_000_000, Line: "late line"}),
		}},
		{Labels: labels.FromStrings("app", "api"), Chunks: [][]byte{
			enc(logchunk.Entry{Timestamp: 1_700_000_002_000_000_000, Line: "level=info msg=\"started\""}),
		}},
	}
}

var goldenID = ulid.MustParse("01HF0000000000000000000000")

// TestGoldenBlock pins the block layout (FORMAT.md): the same streams
// always write the same files, and the stored files read back. The
// version 1 files of the same streams (testdata/block-v1, whose chunks hold
// their filters) still read back the same.
func TestGoldenBlock(t *testing.T) {
	dir := t.TempDir()
	meta, err := Write(dir, goldenID, goldenStreams(t), "ingester", "ingester-1")
	require.NoError(t, err)
	require.Equal(t, Stats{Streams: 2, Chunks: 2, Entries: 4, RawBytes: 9 + 20 + 9 + 24, Bytes: meta.Stats.Bytes, FilterBytes: meta.Stats.FilterBytes}, meta.Stats)
	require.Positive(t, meta.Stats.FilterBytes)
	golden := filepath.Join("testdata", "block-v2")
	files := []string{ChunksFile, FiltersFile, IndexFile, MetaFile}
	for _, name := range files {
		got, err := os.ReadFile(filepath.Join(dir, goldenID.String(), name))
		require.NoError(t, err)
		if *update {
			require.NoError(t, os.MkdirAll(golden, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(golden, name), got, 0o644))
			continue
		}
		want, err := os.ReadFile(filepath.Join(golden, name))
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got), "%s differs from the golden file: the log block format changed (rerun with -update only for a new format version)", name)
	}
	for _, version := range []string{"block-v1", "block-v2"} {
		t.Run(version, func(t *testing.T) { testGoldenReads(t, filepath.Join("testdata", version)) })
	}
}

// testGoldenReads uploads the golden block in dir to a bucket and reads it.
func testGoldenReads(t *testing.T, golden string) {
	bkt, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	ctx := context.Background()
	names, err := os.ReadDir(golden)
	require.NoError(t, err)
	for _, de := range names {
		f, err := os.Open(filepath.Join(golden, de.Name()))
		require.NoError(t, err)
		require.NoError(t, bkt.Upload(ctx, filepath.Join(Dir("tenant", goldenID), de.Name()), f))
		f.Close()
	}
	metas, err := ListBlocks(ctx, bkt, "tenant")
	require.NoError(t, err)
	require.Len(t, metas, 1)
	require.Equal(t, int64(1_700_000_000_000_000_000), metas[0].MinTime)
	require.Equal(t, int64(1_700_000_002_000_000_000), metas[0].MaxTime)
	b, err := OpenBlock(ctx, bkt, "tenant", metas[0])
	require.NoError(t, err)
	defer b.Close()

	type line struct {
		ts   int64
		line string
		md   string
	}
	all := []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "app", ".+")}
	read := func(needles ...string) (map[string][]line, SelectStats) {
		got := map[string][]line{}
		st, err := b.Select(ctx, all, 0, 2_000_000_000_000_000_000, needles, func(ls labels.Labels, es []logchunk.Entry) error {
			for _, e := range es {
				got[ls.String()] = append(got[ls.String()], line{e.Timestamp, strings.Clone(e.Line), e.Metadata.String()})
			}
			return nil
		})
		require.NoError(t, err)
		return got, st
	}
	web := []line{
		{1_700_000_000_000_000_000, "GET / 200", "{}"},
		{1_700_000_000_500_000_000, "late line", "{}"},
		{1_700_000_001_000_000_000, "GET /favicon.ico 404", `{trace_id="4bf92f3577b34da6"}`},
	}
	got, _ := read()
	require.Equal(t, map[string][]line{
		`{app="api"}`:             {{1_700_000_002_000_000_000, `level=info msg="started"`, "{}"}},
		`{app="web", env="prod"}`: web,
	}, got)

	// Needles skip the chunks whose filter rules them out, and the lines
	// without them.
	got, st := read("favicon.ico 404")
	require.Equal(t, map[string][]line{`{app="web", env="prod"}`: web[2:]}, got)
	require.Equal(t, SelectStats{Chunks: 1, ChunksSkipped: 1, Bytes: st.Bytes, SkippedLines: 2, SkippedBytes: 18}, st)
	got, st = read("no line has this")
	require.Empty(t, got)
	require.Equal(t, 2, st.ChunksSkipped)

	// Time ranges select chunks.
	var n int
	st, err = b.Select(ctx, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "app", "web")}, 1_700_000_000_400_000_000, 1_700_000_000_600_000_000, nil, func(_ labels.Labels, es []logchunk.Entry) error {
		n += len(es)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, 1, st.Chunks, "the overlapping chunks were merged into one")

	series, err := b.Series(ctx, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "env", "prod")}, 0, 2_000_000_000_000_000_000)
	require.NoError(t, err)
	require.Equal(t, []labels.Labels{labels.FromStrings("app", "web", "env", "prod")}, series)
}

func TestWriteRejects(t *testing.T) {
	_, err := Write(t.TempDir(), goldenID, nil, "ingester", "")
	require.ErrorContains(t, err, "at least one chunk")
	s := goldenStreams(t)
	_, err = Write(t.TempDir(), goldenID, append(s, s[0]), "ingester", "")
	require.ErrorContains(t, err, "given twice")
}
