// Package promjson reads what the Prometheus HTTP API's JSON answers hold
// back into Prometheus's types.
package promjson

import (
	"fmt"
	"math"
	"slices"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
)

// FloatHistogram rebuilds a native histogram from the buckets the JSON
// API renders (its non-empty buckets, with their boundaries): the schema
// from a bucket's width, each bucket's index from a boundary, the zero
// threshold from the zero bucket. Buckets whose boundaries are not those
// of an exponential schema are custom buckets (NHCB). What the JSON form
// leaves out, the rebuilt histogram lacks too: empty buckets, the counter
// reset hint, the zero threshold of a histogram with an empty zero
// bucket (the default then) and the schema of one without buckets
// (the finest, 8, which merges into any other without changing it).
func FloatHistogram(h *model.SampleHistogram) (*histogram.FloatHistogram, error) {
	fh := &histogram.FloatHistogram{
		Count:         float64(h.Count),
		Sum:           float64(h.Sum),
		Schema:        histogram.ExponentialSchemaMax,
		ZeroThreshold: defaultZeroThreshold,
	}
	if isCustom(h.Buckets) {
		return customHistogram(fh, h.Buckets)
	}
	var pos, neg []*model.HistogramBucket
	for _, b := range h.Buckets {
		lo, up := float64(b.Lower), float64(b.Upper)
		switch {
		case lo < 0 && up > 0 || lo == up || (lo <= 0 && up >= 0 && b.Boundaries == 3):
			fh.ZeroThreshold = math.Max(math.Abs(lo), math.Abs(up))
			fh.ZeroCount = float64(b.Count)
		case up <= 0:
			neg = append(neg, b)
		default:
			pos = append(pos, b)
		}
	}
	schema, cutAt, ok := schemaOf(pos, neg)
	if !ok {
		return nil, fmt.Errorf("a histogram's buckets fit neither an exponential schema nor custom bounds")
	}
	if cutAt > 0 && fh.ZeroCount == 0 {
		fh.ZeroThreshold = cutAt
	}
	if schema != histogram.ExponentialSchemaMax || len(pos)+len(neg) > 0 {
		fh.Schema = schema
	}
	scale := math.Exp2(float64(schema))
	index := func(bound float64) int32 { return int32(math.Round(math.Log2(bound) * scale)) }
	var pIdx, nIdx []int32
	var pCounts, nCounts []float64
	for _, b := range pos {
		pIdx = append(pIdx, index(float64(b.Upper)))
		pCounts = append(pCounts, float64(b.Count))
	}
	for _, b := range neg {
		nIdx = append(nIdx, index(-float64(b.Lower)))
		nCounts = append(nCounts, float64(b.Count))
	}
	// Negative buckets come lowest first: their indexes descend.
	slices.Reverse(nIdx)
	slices.Reverse(nCounts)
	fh.PositiveSpans, fh.PositiveBuckets = spansOf(pIdx, pCounts)
	fh.NegativeSpans, fh.NegativeBuckets = spansOf(nIdx, nCounts)
	return fh, nil
}

// natural reports whether |bound| is a bucket boundary of schema.
func natural(bound float64, schema int32) bool {
	x := math.Log2(math.Abs(bound)) * math.Exp2(float64(schema))
	return math.Abs(x-math.Round(x)) < 1e-9
}

// schemaOf finds the exponential schema whose buckets have these
// boundaries. Every bucket's outer boundary (a positive bucket's upper, a
// negative one's lower) is a boundary of the schema; its inner one is
// too, one bucket width away, unless the zero bucket cuts it there, all
// cuts being at the zero threshold. Of the schemas that fit, the one
// most buckets are whole at wins, then the finest. cutAt is the zero
// threshold the cuts reveal (0: none).
func schemaOf(pos, neg []*model.HistogramBucket) (schema int32, cutAt float64, ok bool) {
	type edge struct{ outer, inner float64 }
	var edges []edge
	for _, b := range pos {
		edges = append(edges, edge{float64(b.Upper), float64(b.Lower)})
	}
	for _, b := range neg {
		edges = append(edges, edge{-float64(b.Lower), -float64(b.Upper)})
	}
	if len(edges) == 0 {
		return histogram.ExponentialSchemaMax, 0, true
	}
	bestWhole := -1
	for s := int32(histogram.ExponentialSchemaMax); s >= histogram.ExponentialSchemaMin; s-- {
		width := math.Exp2(-float64(s))
		whole, cut, fits := 0, 0.0, true
		for _, e := range edges {
			if e.outer <= 0 || !natural(e.outer, s) {
				fits = false
				break
			}
			if e.inner > 0 && math.Abs(math.Log2(e.outer/e.inner)-width) < 1e-9 {
				whole++
				continue
			}
			// Cut by the zero bucket: the inner boundary is the zero
			// threshold, above the bucket's own lower boundary.
			if (cut != 0 && e.inner != cut) || math.Log2(e.outer)-width >= math.Log2(math.Max(e.inner, math.SmallestNonzeroFloat64)) {
				fits = false
				break
			}
			cut = e.inner
		}
		if fits && whole > bestWhole {
			bestWhole, schema, cutAt = whole, s, cut
		}
	}
	return schema, cutAt, bestWhole >= 0
}

// defaultZeroThreshold is the zero threshold of Prometheus's native
// histograms unless configured: 2^-128.
const defaultZeroThreshold = 2.938735877055719e-39

// isCustom tells custom buckets (NHCB): infinite boundaries, buckets
// below zero open on the left (exponential ones are open on the right),
// or boundaries no exponential schema has.
func isCustom(buckets []*model.HistogramBucket) bool {
	var pos, neg []*model.HistogramBucket
	for _, b := range buckets {
		lo, up := float64(b.Lower), float64(b.Upper)
		if math.IsInf(lo, 0) || math.IsInf(up, 0) || (up <= 0 && b.Boundaries == 0) {
			return true
		}
		switch {
		case lo < 0 && up > 0 || lo == up || (lo <= 0 && up >= 0 && b.Boundaries == 3):
		case up <= 0:
			neg = append(neg, b)
		default:
			pos = append(pos, b)
		}
	}
	_, _, ok := schemaOf(pos, neg)
	return !ok
}

// customHistogram places buckets with custom bounds: the bounds are the
// finite boundaries seen, each bucket's index that of its upper bound.
func customHistogram(fh *histogram.FloatHistogram, buckets []*model.HistogramBucket) (*histogram.FloatHistogram, error) {
	fh.Schema = histogram.CustomBucketsSchema
	fh.ZeroThreshold, fh.ZeroCount = 0, 0
	var bounds []float64
	for _, b := range buckets {
		for _, x := range []float64{float64(b.Lower), float64(b.Upper)} {
			if !math.IsInf(x, 0) && !slices.Contains(bounds, x) {
				bounds = append(bounds, x)
			}
		}
	}
	slices.Sort(bounds)
	fh.CustomValues = bounds
	var idx []int32
	var counts []float64
	for _, b := range buckets {
		up := float64(b.Upper)
		i := len(bounds)
		if !math.IsInf(up, 1) {
			i = slices.Index(bounds, up)
		}
		idx = append(idx, int32(i))
		counts = append(counts, float64(b.Count))
	}
	fh.PositiveSpans, fh.PositiveBuckets = spansOf(idx, counts)
	return fh, nil
}

// spansOf lays out buckets at ascending indexes as spans and counts.
func spansOf(idx []int32, counts []float64) ([]histogram.Span, []float64) {
	var spans []histogram.Span
	var out []float64
	next := int32(0)
	for k, i := range idx {
		switch {
		case len(spans) == 0:
			spans = append(spans, histogram.Span{Offset: i, Length: 1})
		case i == next:
			spans[len(spans)-1].Length++
		default:
			spans = append(spans, histogram.Span{Offset: i - next, Length: 1})
		}
		out = append(out, counts[k])
		next = i + 1
	}
	return spans, out
}
