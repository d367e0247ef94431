package distributor

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/canopy-observability/canopy/pkg/util/writeproto"
)

// flat is what a 2.0 request says, with the symbols resolved: what the two
// decoders must agree on.
type flatSeries struct {
	Labels     labels.Labels
	Samples    []writev2.Sample
	Histograms int
	Exemplars  []string
	Metadata   [3]string
}

func flatten(t *testing.T, req *writev2.Request) []flatSeries {
	t.Helper()
	var out []flatSeries
	var b labels.ScratchBuilder
	for _, ts := range req.Timeseries {
		b.Reset()
		for i := 0; i+1 < len(ts.LabelsRefs); i += 2 {
			b.Add(req.Symbols[ts.LabelsRefs[i]], req.Symbols[ts.LabelsRefs[i+1]])
		}
		f := flatSeries{Labels: b.Labels(), Samples: ts.Samples, Histograms: len(ts.Histograms)}
		for _, e := range ts.Exemplars {
			ex, err := e.ToExemplar(&b, req.Symbols)
			require.NoError(t, err)
			f.Exemplars = append(f.Exemplars, ex.Labels.String())
		}
		f.Metadata = [3]string{ts.Metadata.Type.String(), req.Symbols[ts.Metadata.HelpRef], req.Symbols[ts.Metadata.UnitRef]}
		if len(f.Samples) == 0 {
			f.Samples = nil
		}
		out = append(out, f)
	}
	return out
}

// decodeBoth decodes raw (a 1.0 WriteRequest) with the generated decoder
// and FromV1, and in place; it reports whether the generated one accepted
// it.
func decodeBoth(t *testing.T, raw []byte) (want, got []flatSeries, ok bool) {
	var v1 prompb.WriteRequest
	if err := v1.Unmarshal(raw); err != nil {
		return nil, nil, false
	}
	d := writeproto.Get()
	if d.DecodeV1(raw) != nil {
		// The generated decoder is laxer with malformed input (it reads a
		// packed field's last varint past the field's end): then the
		// request as it understood it, encoded properly, must decode.
		canonical, err := v1.Marshal()
		require.NoError(t, err)
		require.NoError(t, d.DecodeV1(canonical), "a request the generated decoder encoded")
	}
	return flatten(t, FromV1(&v1)), flatten(t, d.Request()), true
}

// FuzzDecodeV1MatchesGenerated: whatever the generated remote write 1.0
// decoder accepts, the in-place one decodes to the same series, labels,
// samples, histograms, exemplars and metadata; whatever it refuses, the
// in-place one does not crash on.
func FuzzDecodeV1MatchesGenerated(f *testing.F) {
	now := time.Now().UnixMilli()
	for _, req := range []*prompb.WriteRequest{
		makeV1(3, now),
		{Timeseries: []prompb.TimeSeries{{
			Labels:     []prompb.Label{{Name: "__name__", Value: "h"}, {Name: "job", Value: "x"}},
			Histograms: []prompb.Histogram{{Count: &prompb.Histogram_CountInt{CountInt: 3}, PositiveSpans: []prompb.BucketSpan{{Offset: 0, Length: 2}}, PositiveDeltas: []int64{1, 1}, Timestamp: now}},
			Exemplars:  []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "abc"}}, Value: 1, Timestamp: now}},
		}}},
		{Metadata: []prompb.MetricMetadata{{MetricFamilyName: "m", Type: prompb.MetricMetadata_COUNTER, Help: "help", Unit: "seconds"}}},
		{Timeseries: []prompb.TimeSeries{{Samples: []prompb.Sample{{Value: 1}}}}},
	} {
		raw, err := req.Marshal()
		require.NoError(f, err)
		f.Add(raw)
	}
	f.Add([]byte{0x0a, 0x04, 0x0a, 0x02, 0x0a, 0x00})
	f.Fuzz(func(t *testing.T, raw []byte) {
		want, got, ok := decodeBoth(t, raw)
		if !ok {
			_ = writeproto.Get().DecodeV1(raw)
			return
		}
		require.Equal(t, want, got)
	})
}

func TestDecodeV1Seeds(t *testing.T) {
	now := time.Now().UnixMilli()
	raw, err := newBenchRequest(0, 50).v1.Marshal()
	require.NoError(t, err)
	want, got, ok := decodeBoth(t, raw)
	require.True(t, ok)
	require.Len(t, got, 50)
	require.Equal(t, want, got)
	raw, err = makeV1(5, now).Marshal()
	require.NoError(t, err)
	want, got, ok = decodeBoth(t, raw)
	require.True(t, ok)
	require.Equal(t, want, got)
}

// FuzzDecodeV2MatchesGenerated is FuzzDecodeV1MatchesGenerated for remote
// write 2.0.
func FuzzDecodeV2MatchesGenerated(f *testing.F) {
	now := time.Now().UnixMilli()
	for _, req := range []*writev2.Request{
		newBenchRequest(0, 5).v2,
		{Symbols: []string{"", "__name__", "h", "help", "s"}, Timeseries: []writev2.TimeSeries{{
			LabelsRefs: []uint32{1, 2},
			Histograms: []writev2.Histogram{{Count: &writev2.Histogram_CountInt{CountInt: 3}, PositiveSpans: []writev2.BucketSpan{{Offset: 0, Length: 2}}, PositiveDeltas: []int64{1, 1}, Timestamp: now}},
			Exemplars:  []writev2.Exemplar{{LabelsRefs: []uint32{1, 2}, Value: 1, Timestamp: now}},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_HISTOGRAM, HelpRef: 3, UnitRef: 4},
		}}},
		{Symbols: []string{"", "__name__", "m"}, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2}, Samples: []writev2.Sample{{Value: 2, Timestamp: now, StartTimestamp: now - 1}}, Metadata: writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER}}}},
	} {
		raw, err := req.Marshal()
		require.NoError(f, err)
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var want writev2.Request
		d := writeproto.Get()
		if err := want.Unmarshal(raw); err != nil {
			_ = d.DecodeV2(raw)
			return
		}
		if d.DecodeV2(raw) != nil {
			canonical, err := want.Marshal()
			require.NoError(t, err)
			require.NoError(t, d.DecodeV2(canonical), "a request the generated decoder encoded")
		}
		require.Equal(t, want.Symbols, nilIfEmpty(d.Request().Symbols))
		require.Len(t, d.Request().Timeseries, len(want.Timeseries))
		for i := range want.Timeseries {
			w, g := want.Timeseries[i], d.Request().Timeseries[i]
			require.Equal(t, nilIfEmpty(w.LabelsRefs), nilIfEmpty(g.LabelsRefs), "series %d", i)
			require.Equal(t, samplesOf(w.Samples), samplesOf(g.Samples), "series %d", i)
			require.Equal(t, [3]uint32{uint32(w.Metadata.Type), w.Metadata.HelpRef, w.Metadata.UnitRef}, [3]uint32{uint32(g.Metadata.Type), g.Metadata.HelpRef, g.Metadata.UnitRef}, "series %d", i)
			require.Equal(t, len(w.Histograms), len(g.Histograms), "series %d", i)
			require.Equal(t, len(w.Exemplars), len(g.Exemplars), "series %d", i)
		}
	})
}

// samplesOf is what the samples say, without the generated decoder's
// record of unknown fields.
func samplesOf(ss []writev2.Sample) [][3]int64 {
	var out [][3]int64
	for _, s := range ss {
		out = append(out, [3]int64{int64(math.Float64bits(s.Value)), s.Timestamp, s.StartTimestamp})
	}
	return out
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}
