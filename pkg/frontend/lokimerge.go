package frontend

import (
	"fmt"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	promparser "github.com/prometheus/prometheus/promql/parser"

	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/lokiapi"
)

// Merging the answers to the parts of a split query.

// decodeLokiResult reads a successful answer of query or query_range.
func decodeLokiResult(body []byte) (*logql.Result, error) { return lokiapi.DecodeQueryResult(body) }

// mergeLokiResults joins the answers to the parts of a query, in time
// order: a log query's streams (merged, limited, thinned by interval), a
// metric query's matrices (each series' points in time order); an instant
// query has one part. Statistics add up.
func mergeLokiResults(parts []*logql.Result, st *lokiRequest) (*logql.Result, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("no part to merge")
	}
	out := &logql.Result{Type: parts[0].Type}
	for _, p := range parts {
		if p.Type != out.Type {
			return nil, fmt.Errorf("parts answered a %s and a %s", out.Type, p.Type)
		}
		out.Stats.BytesProcessed += p.Stats.BytesProcessed
		out.Stats.LinesProcessed += p.Stats.LinesProcessed
		out.Stats.ExecTime += p.Stats.ExecTime
	}
	switch out.Type {
	case logql.ValueTypeStreams:
		out.Streams, out.Stats.EntriesReturned = logql.MergeStreams(parts, st.limit, st.dir, st.interval)
	case promparser.ValueTypeMatrix:
		out.Matrix = mergeMatrices(parts)
	default:
		if len(parts) != 1 {
			return nil, fmt.Errorf("%d parts answered a %s", len(parts), out.Type)
		}
		out.Vector, out.Scalar, out.Stats.EntriesReturned = parts[0].Vector, parts[0].Scalar, parts[0].Stats.EntriesReturned
	}
	return out, nil
}

// mergeMatrices joins the series of consecutive parts, in label order.
func mergeMatrices(parts []*logql.Result) promql.Matrix {
	if len(parts) == 1 {
		return parts[0].Matrix
	}
	byKey := map[string]int{}
	var out promql.Matrix
	for _, p := range parts {
		for _, s := range p.Matrix {
			k := s.Metric.String()
			i, ok := byKey[k]
			if !ok {
				i = len(out)
				byKey[k] = i
				out = append(out, promql.Series{Metric: s.Metric})
			}
			out[i].Floats = append(out[i].Floats, s.Floats...)
		}
	}
	slices.SortFunc(out, func(a, b promql.Series) int { return labels.Compare(a.Metric, b.Metric) })
	return out
}
