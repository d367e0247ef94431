package querier

import (
	"math"
	"net/http"
	"slices"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	promvalue "github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"google.golang.org/protobuf/proto"
)

// FederateHandler serves Prometheus's /federate for Prometheus servers
// that federate from Canopy: the latest sample, at most lookback old and
// not a staleness marker, of every series one of the match[] selectors
// selects, with the cluster's external labels (q adds them), in the
// exposition format the scraper asks for. Native histograms go out in the
// protobuf format only, as in Prometheus.
func FederateHandler(q storage.Queryable, p parser.Parser, lookback time.Duration, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "parsing the form: "+err.Error(), http.StatusBadRequest)
			return
		}
		if len(r.Form["match[]"]) == 0 {
			http.Error(w, "no match[] selector: /federate answers the series of at least one", http.StatusBadRequest)
			return
		}
		sets, err := p.ParseMetricSelectors(r.Form["match[]"])
		if err != nil {
			http.Error(w, "match[]: "+err.Error(), http.StatusBadRequest)
			return
		}
		for i, ms := range sets {
			if !slices.ContainsFunc(ms, func(m *labels.Matcher) bool { return !m.Matches("") }) {
				http.Error(w, "match[] "+r.Form["match[]"][i]+": a selector needs a matcher that does not match the empty string, as in PromQL", http.StatusBadRequest)
				return
			}
		}
		maxt := now().UnixMilli()
		mint := maxt - lookback.Milliseconds()
		qr, err := q.Querier(mint, maxt)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer qr.Close()
		hints := &storage.SelectHints{Start: mint, End: maxt, Func: "federate"}
		var selected []storage.SeriesSet
		for _, ms := range sets {
			selected = append(selected, qr.Select(r.Context(), true, hints, ms...))
		}
		set := storage.NewMergeSeriesSet(selected, 0, storage.ChainedSeriesMerge)
		families := map[string]*dto.MetricFamily{}
		format := expfmt.Negotiate(r.Header)
		protobuf := format.FormatType() == expfmt.TypeProtoDelim
		var it chunkenc.Iterator
		for set.Next() {
			s := set.At()
			it = s.Iterator(it)
			m, ok := latest(it, mint, maxt, protobuf)
			if !ok {
				continue
			}
			name := s.Labels().Get(labels.MetricName)
			s.Labels().Range(func(l labels.Label) {
				if l.Name != labels.MetricName {
					m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(l.Name), Value: proto.String(l.Value)})
				}
			})
			fam := families[name]
			if fam == nil {
				typ := dto.MetricType_UNTYPED
				if m.Histogram != nil {
					typ = dto.MetricType_HISTOGRAM
				}
				fam = &dto.MetricFamily{Name: proto.String(name), Type: typ.Enum()}
				families[name] = fam
			}
			if (m.Histogram != nil) != (fam.GetType() == dto.MetricType_HISTOGRAM) {
				continue // floats and histograms under one name: the family's first kind wins
			}
			fam.Metric = append(fam.Metric, m)
		}
		if err := set.Err(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		names := make([]string, 0, len(families))
		for n := range families {
			names = append(names, n)
		}
		slices.Sort(names)
		w.Header().Set("Content-Type", string(format))
		enc := expfmt.NewEncoder(w, format)
		for _, n := range names {
			if err := enc.Encode(families[n]); err != nil {
				return // the client went away
			}
		}
		if c, ok := enc.(expfmt.Closer); ok {
			_ = c.Close()
		}
	})
}

// latest returns the last sample in [mint, maxt] of a series as a metric,
// not when there is none or it is a staleness marker, nor a histogram
// when the format has no place for it.
func latest(it chunkenc.Iterator, mint, maxt int64, histograms bool) (*dto.Metric, bool) {
	var (
		t     int64 = math.MinInt64
		f     float64
		fh    *histogram.FloatHistogram
		isHis bool
	)
	for typ := it.Next(); typ != chunkenc.ValNone; typ = it.Next() {
		ts := it.AtT()
		if ts > maxt {
			break
		}
		if ts < mint {
			continue
		}
		switch typ {
		case chunkenc.ValFloat:
			t, f = it.At()
			isHis = false
		case chunkenc.ValHistogram, chunkenc.ValFloatHistogram:
			t, fh = it.AtFloatHistogram(nil)
			isHis = true
		}
	}
	if t == math.MinInt64 {
		return nil, false
	}
	m := &dto.Metric{TimestampMs: proto.Int64(t)}
	if !isHis {
		if promvalue.IsStaleNaN(f) {
			return nil, false
		}
		m.Untyped = &dto.Untyped{Value: proto.Float64(f)}
		return m, true
	}
	if !histograms || promvalue.IsStaleNaN(fh.Sum) || fh.UsesCustomBuckets() {
		return nil, false // custom-bucket histograms have no exposition form here
	}
	m.Histogram = nativeHistogram(fh)
	return m, true
}

// nativeHistogram writes a float histogram in the exposition format's
// native fields: absolute bucket counts as floats.
func nativeHistogram(h *histogram.FloatHistogram) *dto.Histogram {
	spans := func(ss []histogram.Span) []*dto.BucketSpan {
		out := make([]*dto.BucketSpan, len(ss))
		for i, s := range ss {
			out[i] = &dto.BucketSpan{Offset: proto.Int32(s.Offset), Length: proto.Uint32(s.Length)}
		}
		return out
	}
	out := &dto.Histogram{
		SampleCountFloat: proto.Float64(h.Count),
		SampleSum:        proto.Float64(h.Sum),
		Schema:           proto.Int32(h.Schema),
		ZeroThreshold:    proto.Float64(h.ZeroThreshold),
		ZeroCountFloat:   proto.Float64(h.ZeroCount),
		PositiveSpan:     spans(h.PositiveSpans),
		PositiveCount:    slices.Clone(h.PositiveBuckets),
		NegativeSpan:     spans(h.NegativeSpans),
		NegativeCount:    slices.Clone(h.NegativeBuckets),
	}
	return out
}
