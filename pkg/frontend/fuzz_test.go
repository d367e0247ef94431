package frontend

import (
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/lokiapi"
)

// FuzzMergeRange feeds arbitrary part answers to the merge: it may reject
// them, never panic.
func FuzzMergeRange(f *testing.F) {
	f.Add([]byte(`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"b"},"values":[[1,"1"]]}]}}`), []byte(`{"status":"success","data":{"resultType":"matrix","result":[],"stats":{"timings":{"x":1},"samples":{"totalQueryableSamples":3,"peakSamples":2}}},"warnings":["w"]}`))
	f.Add([]byte(`{}`), []byte(`null`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		_, _ = mergeRange([][]byte{a, b})
	})
}

// FuzzParseParams checks the time and step parsers never panic and never
// accept what they cannot represent.
func FuzzParseParams(f *testing.F) {
	for _, s := range []string{"1700000000.123", "2023-11-14T22:13:20Z", "1e300", "NaN", "-Inf", "5m", "15", "1y2w", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseTime(s)
		_, _ = parseStep(s)
	})
}

// FuzzDecodeShard feeds arbitrary shard answers to the decoder and the
// queryable built from them: they may be rejected, never panic.
func FuzzDecodeShard(f *testing.F) {
	f.Add([]byte(`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"b"},"values":[[1,"1"],[2,"NaN"]]}]}}`), int64(1000), int64(3000), int64(1000))
	f.Add([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1.5,"+Inf"]}]},"warnings":["w"]}`), int64(1500), int64(1500), int64(0))
	f.Add([]byte(`{"data":{"resultType":"matrix","result":[{"metric":{"a":"b"},"values":[[1,"1"]]},{"metric":{"a":"b"},"values":[[1,"1"]]}]}}`), int64(0), int64(10), int64(1))
	f.Fuzz(func(t *testing.T, body []byte, start, end, step int64) {
		if step < 0 || end < start || (step > 0 && (end-start)/step > 1000) || (step == 0 && end != start) {
			return
		}
		series, _, _, err := decodeShard(body, 1)
		if err != nil {
			return
		}
		q, err := newEmbeddedQueryable([][]embeddedSeries{series}, start, end, step)
		if err != nil {
			return
		}
		set := q.Select(t.Context(), true, nil, embeddedSelector(0).LabelMatchers...)
		for set.Next() {
			it := set.At().Iterator(nil)
			for it.Next() != chunkenc.ValNone {
			}
			if it.Err() != nil {
				t.Fatal(it.Err())
			}
		}
	})
}

// FuzzPlanSharding checks that every plan for a valid query renders
// queries that parse again.
func FuzzPlanSharding(f *testing.F) {
	for _, q := range []string{`sum by (job) (rate(x[5m]))`, `1 / avg(x offset 1h)`, `topk(3, x) + sum(y)`, `histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))`, `count(x > bool 1)`} {
		f.Add(q)
	}
	p := parser.NewParser(parser.Options{})
	f.Fuzz(func(t *testing.T, q string) {
		expr, err := p.ParseExpr(q)
		if err != nil {
			return
		}
		plan := planSharding(expr, p)
		if plan == nil {
			return
		}
		if _, err := p.ParseExpr(plan.outer); err != nil {
			t.Fatalf("outer %q of %q: %v", plan.outer, q, err)
		}
		for k := range plan.embedded {
			if s := plan.shardQuery(k, 0, 2); s == "" {
				t.Fatalf("embedded %d of %q is empty", k, q)
			}
		}
	})
}

// FuzzLokiMerge feeds arbitrary Loki answers to the decoder, the merge of
// split parts and the shard merge: they may be rejected, never panic.
func FuzzLokiMerge(f *testing.F) {
	f.Add([]byte(`{"status":"success","data":{"resultType":"streams","result":[{"stream":{"a":"b"},"values":[["1700000000000000000","x"],["1700000000000000001","y",{"structuredMetadata":{"t":"1"}}]]}],"stats":{"summary":{"totalBytesProcessed":3}}}}`),
		[]byte(`{"status":"success","data":{"resultType":"streams","result":[{"stream":{"a":"b"},"values":[["1700000000000000000","x"]]}]}}`), uint8(2))
	f.Add([]byte(`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"b"},"values":[[1700000000.5,"1"]]}]}}`),
		[]byte(`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"b"},"values":[[1700000060,"NaN"]]}]}}`), uint8(0))
	f.Add([]byte(`{"data":{"resultType":"vector","result":[{"metric":{},"value":[1,"+Inf"]}]}}`), []byte(`{"data":{"resultType":"scalar","result":[1,"2"]}}`), uint8(1))
	queries := []string{`sum by (a) (count_over_time({a="b"}[1m]))`, `avg(count_over_time({a="b"}[1m]))`, `topk(1, count_over_time({a="b"}[1m]))`, `max(rate({a="b"}[1m]))`}
	f.Fuzz(func(t *testing.T, a, b []byte, n uint8) {
		var parts []*logql.Result
		for _, body := range [][]byte{a, b} {
			if res, err := decodeLokiResult(body); err == nil {
				parts = append(parts, res)
			}
		}
		st := &lokiRequest{log: true, limit: int(n%4) + 1, dir: logql.Direction(n % 2), interval: time.Duration(n%3) * time.Second}
		if len(parts) > 0 {
			if res, err := mergeLokiResults(parts, st); err == nil {
				_ = lokiapi.EncodeQueryResult(res, n%2 == 0, st.dir)
			}
		}
		expr, err := logql.Parse(queries[int(n)%len(queries)])
		if err != nil {
			t.Fatal(err)
		}
		plan := planLokiSharding(expr, &lokiCodec{})
		part := &Request{Step: int64(n % 2), State: st}
		m := plan.Merger(part)
		for k := range plan.Queries() {
			if m.Add(k, 0, a) != nil || m.Add(k, 1, b) != nil {
				return
			}
		}
		if _, err := m.Merge(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}
