package traceblock

import (
	"bytes"
	"context"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore/providers/filesystem"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

var update = flag.Bool("update", false, "rewrite testdata/block-v1")

// goldenBatches are the golden block's spans: the trace using every field
// and 20 telemetrygen-like traces.
func goldenBatches() []ptrace.Traces {
	return []ptrace.Traces{richTrace(), telemetrygenLike(rand.New(rand.NewPCG(7, 7)), 20, 1_700_000_000_000_000_000)}
}

// TestGoldenBlock pins the bytes of the three files of a block: a change
// that alters them is a new format version (FORMAT.md). The golden block
// is then read back through the bucket.
func TestGoldenBlock(t *testing.T) {
	dir := t.TempDir()
	id := ulid.MustParse("01JGZ0000000000000000TRACE")
	_, err := Write(dir, id, goldenBatches(), "ingester", "ingester-1")
	require.NoError(t, err)
	golden := filepath.Join("testdata", "block-v1")
	for _, name := range []string{DataFile, BloomFile, MetaFile} {
		got, err := os.ReadFile(filepath.Join(dir, id.String(), name))
		require.NoError(t, err)
		if *update {
			require.NoError(t, os.MkdirAll(golden, 0o750))
			require.NoError(t, os.WriteFile(filepath.Join(golden, name), got, 0o640))
			continue
		}
		want, err := os.ReadFile(filepath.Join(golden, name))
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got), "%s differs from the golden file: the trace block format changed (rerun with -update only for a new format version)", name)
	}

	// The golden files, as a block in a bucket, answer every trace.
	bdir := t.TempDir()
	bkt, err := filesystem.NewBucket(bdir)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(bdir, "t", Signal), 0o750))
	require.NoError(t, os.CopyFS(filepath.Join(bdir, "t", Signal, id.String()), os.DirFS(golden)))
	ctx := context.Background()
	m, err := ReadMeta(ctx, bkt, "t", id)
	require.NoError(t, err)
	b, err := OpenBlock(ctx, bkt, "t", m)
	require.NoError(t, err)
	want := map[[16]byte][]ptrace.Traces{}
	for _, td := range goldenBatches() {
		for i := range td.ResourceSpans().Len() {
			for j := range td.ResourceSpans().At(i).ScopeSpans().Len() {
				spans := td.ResourceSpans().At(i).ScopeSpans().At(j).Spans()
				for k := range spans.Len() {
					tid := [16]byte(spans.At(k).TraceID())
					want[tid] = append(want[tid], td)
				}
			}
		}
	}
	require.Len(t, want, 21)
	for tid, batches := range want {
		got, ok, err := b.FindTrace(ctx, tid)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, canonical(t, only(tid, batches[0])), canonical(t, got))
	}
}

// only returns the spans of trace tid in td, under their resources and scopes.
func only(tid [16]byte, td ptrace.Traces) ptrace.Traces {
	out := ptrace.NewTraces()
	td.CopyTo(out)
	out.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
		rs.ScopeSpans().RemoveIf(func(ss ptrace.ScopeSpans) bool {
			ss.Spans().RemoveIf(func(s ptrace.Span) bool { return [16]byte(s.TraceID()) != tid })
			return ss.Spans().Len() == 0
		})
		return rs.ScopeSpans().Len() == 0
	})
	return out
}
