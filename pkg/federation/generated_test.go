package federation

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// queryGen writes random PromQL over the test world's series: selectors
// with matchers on the external labels and others, range functions,
// aggregations of every kind with every grouping, binary operations with
// every matching, functions and subqueries.
type queryGen struct{ rng *rand.Rand }

func (g *queryGen) pick(xs ...string) string { return xs[g.rng.IntN(len(xs))] }

func (g *queryGen) matchers() string {
	var ms []string
	for range g.rng.IntN(3) {
		ms = append(ms, g.pick(`job="job-1"`, `job!="job-2"`, `cluster="eu-1"`, `cluster=~"us-.*"`, `cluster!="eu-2"`, `region="eu"`, `region!="us"`, `instance=~".*-1"`))
	}
	if len(ms) == 0 {
		return ""
	}
	return "{" + strings.Join(ms, ", ") + "}"
}

func (g *queryGen) grouping() string {
	var ls []string
	for _, l := range []string{"job", "instance", "cluster", "region"} {
		if g.rng.IntN(3) == 0 {
			ls = append(ls, l)
		}
	}
	return g.pick("by", "without") + " (" + strings.Join(ls, ", ") + ")"
}

func (g *queryGen) vector(depth int) string {
	if depth <= 0 {
		switch g.rng.IntN(4) {
		case 0:
			return "y" + g.matchers()
		case 1:
			return g.pick("rate", "increase", "irate", "resets") + "(x_total" + g.matchers() + "[" + g.pick("1m", "5m", "10m") + "])"
		case 2:
			return g.pick("avg_over_time", "max_over_time", "min_over_time", "sum_over_time", "count_over_time", "last_over_time", "stddev_over_time", "changes", "deriv") + "(y" + g.matchers() + "[" + g.pick("2m", "5m") + "])"
		default:
			return "y" + g.matchers() + g.pick(" offset 2m", " offset 10m", "")
		}
	}
	switch g.rng.IntN(9) {
	case 0, 1:
		op := g.pick("sum", "min", "max", "count", "avg", "group", "stddev", "stdvar")
		return op + " " + g.grouping() + " (" + g.vector(depth-1) + ")"
	case 2:
		// Over distinct values only: which of two equal series topk keeps
		// is not defined.
		return g.pick("topk", "bottomk") + " " + g.grouping() + " (" + g.pick("1", "2", "5") + ", y" + g.matchers() + ")"
	case 3:
		return "quantile " + g.grouping() + " (" + g.pick("0.1", "0.5", "0.99") + ", " + g.vector(depth-1) + ")"
	case 4:
		return "(" + g.vector(depth-1) + ") " + g.pick("+", "-", "*", "/", ">", "<=", "> bool") + " " + g.pick("2", "0.5", "10")
	case 5:
		match := g.pick("", " on (job, instance, cluster, region)", " ignoring (job)", " on (cluster, job, instance)")
		side := "rate(x_total" + g.matchers() + "[5m])"
		return "(" + g.vector(depth-1) + ") " + g.pick("+", "/", "and", "or", "unless", ">") + match + " (" + side + ")"
	case 6:
		return g.pick("abs", "round", "sort", "sort_desc", "ceil", "timestamp") + "(" + g.vector(depth-1) + ")"
	case 7:
		return "max_over_time((" + g.vector(depth-1) + ")[" + g.pick("5m:1m", "10m:30s") + "])"
	default:
		return `label_replace(` + g.vector(depth-1) + `, "dst", "$1", "` + g.pick("job", "cluster", "instance") + `", "(.*)")`
	}
}

// TestGeneratedQueries: generated queries answer through the federation
// tree exactly as through the central store (errors included: a query
// the central store rejects, the tree rejects too).
func TestGeneratedQueries(t *testing.T) {
	w := newWorld(t, 2)
	g := &queryGen{rng: rand.New(rand.NewPCG(42, 7))}
	n := 300
	if testing.Short() {
		n = 60
	}
	compared := 0
	for i := range n {
		q := g.vector(1 + g.rng.IntN(3))
		compareQuery(t, w, q, fmt.Sprintf("query %d", i))
		compared++
	}
	t.Logf("%d generated queries compared", compared)
}

func compareQuery(t *testing.T, w *world, q, name string) {
	t.Helper()
	for _, kind := range []string{"range", "instant"} {
		path, form := "/api/v1/query_range", rangeForm(q)
		if kind == "instant" {
			path, form = "/api/v1/query", instantForm(q, worldStart+2400_000)
		}
		want, _ := getJSON(t, w.central.URL, path, form)
		got, _ := getJSON(t, w.global.URL, path, form)
		if want.Status != "success" {
			require.NotEqual(t, "success", got.Status, "%s %s %s: central fails (%s), the tree answers", name, kind, q, want.Error)
			continue
		}
		require.Equal(t, "success", got.Status, "%s %s %s: %s", name, kind, q, got.Error)
		requireSameMatrix(t, matrixOf(t, want), matrixOf(t, got), name+" "+kind+" "+q)
	}
}

// FuzzRewrite: for any query the central store answers, the tree
// answers the same.
func FuzzRewrite(f *testing.F) {
	for _, q := range equivalenceQueries {
		f.Add(q)
	}
	w := newWorld(f, 3)
	f.Fuzz(func(t *testing.T, q string) {
		compareQuery(t, w, q, "fuzz")
	})
}
