package layout

import (
	"context"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
)

// TestListTenantsPerSignal: a tenant is listed for a signal only when it has
// objects of that signal, so the metrics compactor never indexes metrics for
// a tenant that only has logs.
func TestListTenantsPerSignal(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	for _, obj := range []string{
		"team-a/metrics/01HF7Y3C7Z5Q7W9N4D2T8G6R1A/meta.json",
		"team-a/logs/x",
		"team-b/logs/x",
		"team-c/traces/x",
		"team-c/metrics/bucket-index.json.gz",
		"bad tenant/metrics/x",
	} {
		require.NoError(t, bkt.Upload(ctx, obj, strings.NewReader("x")))
	}
	for signal, want := range map[string][]string{
		Metrics: {"team-a", "team-c"},
		Logs:    {"team-a", "team-b"},
		Traces:  {"team-c"},
		Rules:   nil,
	} {
		got, err := ListTenants(ctx, bkt, signal)
		require.NoError(t, err)
		require.Equal(t, want, got, signal)
	}
}

// TestDeleteBlockOrder: the metadata object goes first, so a block deleted
// half-way reads as a partial upload, never as a damaged complete block.
func TestDeleteBlockOrder(t *testing.T) {
	ctx := context.Background()
	id := ulid.MustParse("01HF7Y3C7Z5Q7W9N4D2T8G6R1A")
	var deleted []string
	bkt := &recordingBucket{Bucket: objstore.NewInMemBucket(), deleted: &deleted}
	for _, obj := range []string{id.String() + "/meta.json", id.String() + "/index", id.String() + "/chunks/000001"} {
		require.NoError(t, bkt.Upload(ctx, obj, strings.NewReader("x")))
	}
	require.NoError(t, WriteMark(ctx, bkt, id, DeletionMarkFilename, "test", goldenTime))
	require.NoError(t, DeleteBlock(ctx, bkt, id, "meta.json"))
	require.Equal(t, id.String()+"/meta.json", deleted[0])
	require.Equal(t, MarkersDirname+"/"+id.String()+"-"+DeletionMarkFilename, deleted[len(deleted)-1])
	var left []string
	require.NoError(t, bkt.Iter(ctx, "", func(n string) error { left = append(left, n); return nil }, objstore.WithRecursiveIter()))
	require.Empty(t, left)
}

type recordingBucket struct {
	objstore.Bucket
	deleted *[]string
}

func (b *recordingBucket) Delete(ctx context.Context, name string) error {
	*b.deleted = append(*b.deleted, name)
	return b.Bucket.Delete(ctx, name)
}
