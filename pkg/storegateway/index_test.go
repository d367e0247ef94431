package storegateway

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/index"
	"github.com/stretchr/testify/require"
)

// TestPostingsMatchPrometheus checks the block index's postings lookups,
// which read with the query's context, against Prometheus's reader of the
// same index.
func TestPostingsMatchPrometheus(t *testing.T) {
	f := newFixture(t, 1<<20)
	ctx := context.Background()
	b, err := f.gateway.block(ctx, "t1", mustULID(t, f.id))
	require.NoError(t, err)
	ours, theirs := b.index.reader(ctx), b.index.Reader
	names, err := theirs.LabelNames(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"__name__", "i", "job"}, names)

	expand := func(p index.Postings, err error) []storage.SeriesRef {
		t.Helper()
		require.NoError(t, err)
		refs, err := index.ExpandPostings(p)
		require.NoError(t, err)
		return refs
	}
	allName, allValue := index.AllPostingsKey()
	require.Len(t, expand(ours.Postings(ctx, allName, allValue)), 500)
	for _, name := range append(names, "absent") {
		values, err := theirs.LabelValues(ctx, name, nil)
		require.NoError(t, err)
		var every3rd []string
		for i := 0; i < len(values); i += 3 {
			every3rd = append(every3rd, values[i])
		}
		cases := map[string][]string{
			"all":                   values,
			"every third":           every3rd,
			"absent and in between": {"", "0", "1a", "job-10a", "metric_3a", "zzz"},
			"unsorted, repeated":    {"9", "job-2", "metric_6", "10", "job-2", "metric_0"},
		}
		for _, v := range values {
			cases["value "+v] = []string{v}
		}
		for what, vs := range cases {
			t.Run(name+"/"+what, func(t *testing.T) {
				want := expand(theirs.Postings(ctx, name, append([]string(nil), vs...)...))
				require.Equal(t, want, expand(ours.Postings(ctx, name, vs...)))
			})
		}
		for what, match := range map[string]func(string) bool{
			"all":        nil,
			"contains 1": func(v string) bool { return strings.Contains(v, "1") },
			"none":       func(string) bool { return false },
		} {
			t.Run(name+"/matching "+what, func(t *testing.T) {
				want := expand(theirs.PostingsForLabelMatching(ctx, name, orAll(match)), nil)
				require.Equal(t, want, expand(ours.PostingsForLabelMatching(ctx, name, match), nil))
			})
		}
	}
}

func orAll(match func(string) bool) func(string) bool {
	if match == nil {
		return func(string) bool { return true }
	}
	return match
}
