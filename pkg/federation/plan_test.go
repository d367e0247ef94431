package federation

import (
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
)

// TestPlan pins the rewrite rules: what each child computes and what the
// federator computes over their answers (P0, P1: the parts' placeholders).
func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		query string
		root  string
		parts []string
	}{
		// Per-series work and aggregations keeping the external labels go
		// whole to the children.
		{`rate(x[5m])`, `P0`, []string{`rate(x[5m])`}},
		{`sum by (cluster, job) (rate(x[5m]))`, `P0`, []string{`sum by (cluster, job) (rate(x[5m]))`}},
		{`max without (instance) (x) > 3`, `P0`, []string{`max without (instance) (x) > 3`}},
		{`quantile by (cluster) (0.9, x)`, `P0`, []string{`quantile by (cluster) (0.9, x)`}},
		{`x / on (cluster, job) y`, `P0`, []string{`x / on (cluster, job) y`}},
		{`x / y`, `P0`, []string{`x / y`}},
		{`max_over_time(rate(x[1m])[10m:1m])`, `P0`, []string{`max_over_time(rate(x[1m])[10m:1m])`}},
		// Decomposable aggregations: the children aggregate by their
		// external labels too, the federator again.
		{`sum(rate(x[5m]))`, `sum(P0)`, []string{`sum by (cluster) (rate(x[5m]))`}},
		{`sum by (job) (x)`, `sum by (job) (P0)`, []string{`sum by (job, cluster) (x)`}},
		{`sum without (cluster) (x)`, `sum without (cluster) (P0)`, []string{`sum without () (x)`}},
		{`count(x)`, `sum(P0)`, []string{`count by (cluster) (x)`}},
		{`avg by (job) (x)`, `sum by (job) (P0) / sum by (job) (P1)`, []string{`sum by (job, cluster) (x)`, `count by (job, cluster) (x)`}},
		{`topk(3, x)`, `topk(3, P0)`, []string{`topk by (cluster) (3, x)`}},
		{`count_values("v", x)`, `sum by (v) (P0)`, []string{`count_values by (cluster) ("v", x)`}},
		{`histogram_quantile(0.9, sum by (le) (rate(h[5m])))`, `histogram_quantile(0.9, sum by (le) (P0))`, []string{`sum by (le, cluster) (rate(h[5m]))`}},
		// What does not decompose is computed by the federator over the
		// series the children compute.
		{`quantile(0.9, rate(x[5m]))`, `quantile(0.9, P0)`, []string{`rate(x[5m])`}},
		{`stddev(x)`, `stddev(P0)`, []string{`x`}},
		{`x / ignoring (cluster) y`, `P0 / ignoring (cluster) P1`, []string{`x`, `y`}},
		{`x / on (job) group_left y`, `P0 / on (job) group_left () P1`, []string{`x`, `y`}},
		{`label_replace(x, "c", "$1", "cluster", "(.*)")`, `label_replace(P0, "c", "$1", "cluster", "(.*)")`, []string{`x`}},
		{`sort(x)`, `sort(P0)`, []string{`x`}},
		{`clamp_max(x, scalar(y))`, `clamp_max(P0, scalar(P1))`, []string{`x`, `y`}},
		{`absent(x{job="a"})`, `label_replace(label_replace(absent(P0), "__canopy_part__", "", "", ""), "job", "a", "", "")`, []string{`x{job="a"}`}},
		// Under a subquery the federator evaluates, parts are pushed too
		// (the children evaluate them at the subquery's steps).
		{`max_over_time(sum(x)[10m:1m])`, `max_over_time(sum(P0)[10m:1m])`, []string{`sum by (cluster) (x)`}},
		{`absent_over_time(x{job="a"}[5m])`, `label_replace(label_replace(absent(P0), "__canopy_part__", "", "", ""), "job", "a", "", "")`, []string{`count_over_time(x{job="a"}[5m])`}},
		// No series read: nothing to push.
		{`vector(1) + 2`, `vector(1) + 2`, nil},
	} {
		e, err := parser.NewParser(parser.Options{}).ParseExpr(tc.query)
		require.NoError(t, err)
		p := planQuery(e, []string{"cluster"}, false)
		root := p.root.String()
		for i := range p.parts {
			root = strings.ReplaceAll(root, placeholder(i).String(), "P"+strconv.Itoa(i))
		}
		require.Equal(t, tc.root, root, tc.query)
		var parts []string
		for _, part := range p.parts {
			parts = append(parts, part.String())
		}
		require.Equal(t, tc.parts, parts, tc.query)
	}
}
