package frontend

import (
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
)

func TestPlanSharding(t *testing.T) {
	p := parser.NewParser(parser.Options{EnableExperimentalFunctions: true})
	for _, c := range []struct {
		query, outer string
		embedded     []string // shard 2 of 4
	}{
		{
			query:    `sum by (job) (rate(x[5m]))`,
			outer:    `sum by (job) (__canopy_embedded__{__canopy_embedded_query__="0"})`,
			embedded: []string{`sum by (job) (rate(x{__query_shard__="2_of_4"}[5m]))`},
		},
		{
			query:    `count without (i) (x)`,
			outer:    `sum without (i, __query_shard__) (__canopy_embedded__{__canopy_embedded_query__="0"})`,
			embedded: []string{`count without (i) (x{__query_shard__="2_of_4"})`},
		},
		{
			query: `1 / avg(x offset 1h)`,
			outer: `1 / (sum(__canopy_embedded__{__canopy_embedded_query__="0"}) / sum(__canopy_embedded__{__canopy_embedded_query__="1"}))`,
			embedded: []string{
				`sum(x{__query_shard__="2_of_4"} offset 1h)`,
				`count(x{__query_shard__="2_of_4"} offset 1h)`,
			},
		},
		{
			query:    `topk without (i) (3, x)`,
			outer:    `topk without (i) (3, __canopy_embedded__{__canopy_embedded_query__="0"})`,
			embedded: []string{`topk without (i) (3, x{__query_shard__="2_of_4"})`},
		},
		{
			query:    `histogram_quantile(0.9, sum by (le) (rate(x_bucket{job="a"}[5m])))`,
			outer:    `histogram_quantile(0.9, sum by (le) (__canopy_embedded__{__canopy_embedded_query__="0"}))`,
			embedded: []string{`sum by (le) (rate(x_bucket{__query_shard__="2_of_4",job="a"}[5m]))`},
		},
		{
			query:    `quantile(0.5, max by (i) (label_replace(x, "a", "$1", "b", "(.*)") > 2))`,
			outer:    `quantile(0.5, max by (i) (__canopy_embedded__{__canopy_embedded_query__="0"}))`,
			embedded: []string{`max by (i) (label_replace(x{__query_shard__="2_of_4"}, "a", "$1", "b", "(.*)") > 2)`},
		},
		{
			query:    `max(max_over_time(rate(x[1m])[1h:5m]))`,
			outer:    `max(__canopy_embedded__{__canopy_embedded_query__="0"})`,
			embedded: []string{`max(max_over_time(rate(x{__query_shard__="2_of_4"}[1m])[1h:5m]))`},
		},
		// Not shardable: a selector is left to the frontend, the inner
		// expression joins or makes series, or no aggregation is associative.
		{query: `sum(x) / y`},
		{query: `sum(x / y)`},
		{query: `sum(vector(1))`},
		{query: `sum(absent(x))`},
		{query: `sum(histogram_quantile(0.9, x))`},
		{query: `stddev(x)`},
		{query: `max_over_time(sum(x)[1h:])`},
		{query: `topk(scalar(y), x)`},
		{query: `sum(x * scalar(y))`},
		{query: `x`},
		{query: `info(sum by (instance, job) (x))`},
		{query: `sum(sum by (i) (x))`, outer: `sum(sum by (i) (__canopy_embedded__{__canopy_embedded_query__="0"}))`, embedded: []string{`sum by (i) (x{__query_shard__="2_of_4"})`}},
	} {
		expr, err := p.ParseExpr(c.query)
		require.NoError(t, err)
		plan := planSharding(expr, p)
		if c.outer == "" {
			require.Nil(t, plan, c.query)
			continue
		}
		require.NotNil(t, plan, c.query)
		require.Equal(t, c.outer, plan.outer, c.query)
		var got []string
		for k := range plan.embedded {
			got = append(got, plan.shardQuery(k, 1, 4))
		}
		require.Equal(t, c.embedded, got, c.query)
		// The original is untouched.
		require.Equal(t, c.query, expr.String())
	}
}
