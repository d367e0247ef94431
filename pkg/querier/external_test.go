package querier

import (
	"context"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/util/teststorage"
	"github.com/stretchr/testify/require"
)

// TestExternalLabels: series get the cluster's external labels, selectors
// match them as stored, label APIs list them, a series' own label wins.
func TestExternalLabels(t *testing.T) {
	st := teststorage.New(t)
	app := st.Appender(context.Background())
	for _, ls := range []labels.Labels{
		labels.FromStrings("__name__", "up", "job", "a"),
		labels.FromStrings("__name__", "up", "job", "b", "cluster", "own"),
	} {
		_, err := app.Append(0, ls, 1000, 1)
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
	var ext ExternalLabels
	require.NoError(t, ext.Set("cluster=eu-1,region=eu"))
	require.Equal(t, "cluster=eu-1,region=eu", ext.String())
	q, err := NewExternalLabelsQueryable(st, ext.Labels()).Querier(0, 2000)
	require.NoError(t, err)
	sel := func(ms ...*labels.Matcher) []string {
		var out []string
		set := q.Select(context.Background(), true, nil, ms...)
		for set.Next() {
			out = append(out, set.At().Labels().String())
		}
		require.NoError(t, set.Err())
		return out
	}
	eq := func(n, v string) *labels.Matcher { return labels.MustNewMatcher(labels.MatchEqual, n, v) }
	require.Equal(t, []string{
		`{__name__="up", cluster="eu-1", job="a", region="eu"}`,
		`{__name__="up", cluster="own", job="b", region="eu"}`,
	}, sel(eq("__name__", "up")))
	require.Len(t, sel(eq("__name__", "up"), eq("region", "eu")), 2)
	require.Empty(t, sel(eq("__name__", "up"), eq("region", "us")))
	require.Len(t, sel(eq("region", "eu")), 2, "a selector of external labels alone selects every series")
	names, _, err := q.LabelNames(context.Background(), nil)
	require.NoError(t, err)
	require.Equal(t, []string{"__name__", "cluster", "job", "region"}, names)
	vals, _, err := q.LabelValues(context.Background(), "region", nil)
	require.NoError(t, err)
	require.Equal(t, []string{"eu"}, vals)
	vals, _, err = q.LabelValues(context.Background(), "job", nil, eq("region", "us"))
	require.NoError(t, err)
	require.Empty(t, vals)
	require.Error(t, ext.Set("bad-name=x"))
	require.Error(t, ext.Set("cluster"))
}
