package promjson

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	jsoniter "github.com/json-iterator/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/util/jsonutil"
	"github.com/stretchr/testify/require"
)

func histogramJSON(t *testing.T, h *histogram.FloatHistogram) []byte {
	stream := jsoniter.ConfigCompatibleWithStandardLibrary.BorrowStream(nil)
	defer jsoniter.ConfigCompatibleWithStandardLibrary.ReturnStream(stream)
	jsonutil.MarshalHistogram(h, stream)
	require.NoError(t, stream.Error)
	return append([]byte(nil), stream.Buffer()...)
}

// TestFloatHistogramFromJSON: histograms of every exponential schema (zero
// and negative buckets included) and with custom bounds, rendered by
// Prometheus's JSON code and rebuilt, render the same again.
func TestFloatHistogramFromJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	spans := func() ([]histogram.Span, []float64) {
		var ss []histogram.Span
		var bs []float64
		for range 1 + rng.IntN(3) {
			n := uint32(1 + rng.IntN(4))
			off := int32(rng.IntN(5))
			if len(ss) == 0 {
				off -= 2 // the first span may start below index 0
			}
			ss = append(ss, histogram.Span{Offset: off, Length: n})
			for range n {
				bs = append(bs, float64(rng.IntN(4))) // empty buckets too
			}
		}
		return ss, bs
	}
	var cases []*histogram.FloatHistogram
	for schema := int32(-4); schema <= 8; schema++ {
		for range 20 {
			h := &histogram.FloatHistogram{Schema: schema, ZeroThreshold: []float64{0, 0.001, defaultZeroThreshold}[rng.IntN(3)], ZeroCount: float64(rng.IntN(3)), Sum: rng.Float64() * 100}
			h.PositiveSpans, h.PositiveBuckets = spans()
			if rng.IntN(2) == 0 {
				h.NegativeSpans, h.NegativeBuckets = spans()
			}
			h.Count = h.ZeroCount
			for _, b := range append(append([]float64(nil), h.PositiveBuckets...), h.NegativeBuckets...) {
				h.Count += b
			}
			cases = append(cases, h)
		}
	}
	cases = append(cases,
		&histogram.FloatHistogram{Schema: histogram.CustomBucketsSchema, CustomValues: []float64{0.1, 0.5, 1, 5}, PositiveSpans: []histogram.Span{{Offset: 0, Length: 5}}, PositiveBuckets: []float64{1, 0, 3, 2, 4}, Count: 10, Sum: 7},
		&histogram.FloatHistogram{Schema: histogram.CustomBucketsSchema, CustomValues: []float64{-1, 0, 1}, PositiveSpans: []histogram.Span{{Offset: 0, Length: 4}}, PositiveBuckets: []float64{2, 1, 0, 1}, Count: 4, Sum: -1},
		&histogram.FloatHistogram{Schema: 3, Count: 2, Sum: 0, ZeroCount: 2, ZeroThreshold: 0.01},
		&histogram.FloatHistogram{Schema: 0, Count: 0, Sum: 0},
	)
	for i, h := range cases {
		want := histogramJSON(t, h)
		var sh model.SampleHistogram
		require.NoError(t, json.Unmarshal(want, &sh), "%s", want)
		got, err := FloatHistogram(&sh)
		require.NoError(t, err, "case %d: %s", i, want)
		require.NoError(t, got.Validate(), "case %d: %s", i, want)
		require.Equal(t, string(want), string(histogramJSON(t, got)), "case %d", i)
	}
}

// FuzzFloatHistogram: any buckets a child may answer with are rebuilt or
// refused, never a crash.
func FuzzFloatHistogram(f *testing.F) {
	f.Add([]byte(`{"count":"7","sum":"79.4","buckets":[[3,"-0.001","0.001","1"],[0,"0.001","1","2"],[0,"1","65536","3"]]}`))
	f.Add([]byte(`{"count":"4","sum":"-1","buckets":[[0,"-Inf","-1","2"],[0,"-1","0","1"],[0,"1","+Inf","1"]]}`))
	f.Add([]byte(`{"count":"1","sum":"1","buckets":[[1,"-4","-2.82842712474619","1"]]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var sh model.SampleHistogram
		if json.Unmarshal(b, &sh) != nil {
			return
		}
		if h, err := FloatHistogram(&sh); err == nil {
			_ = histogramJSON(t, h)
		}
	})
}
