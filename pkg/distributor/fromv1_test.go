package distributor

import (
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// FromV1 is the reference the in-place decoder (writeproto) is checked
// against: the generated decoder's 1.0 request converted to the 2.0 form
// with a symbol table, the way Canopy decoded remote write 1.0 before.
// It converts a remote write 1.0 request to the 2.0 form. Metadata, sent
// per metric family in 1.0, becomes metadata-only series.
func FromV1(req *prompb.WriteRequest) *writev2.Request {
	st := writev2.NewSymbolTable()
	out := &writev2.Request{Timeseries: make([]writev2.TimeSeries, 0, len(req.Timeseries)+len(req.Metadata))}
	for i := range req.Timeseries {
		in := &req.Timeseries[i]
		refs := make([]uint32, 0, 2*len(in.Labels))
		for _, l := range in.Labels {
			refs = append(refs, st.Symbolize(l.Name), st.Symbolize(l.Value))
		}
		ts := writev2.TimeSeries{LabelsRefs: refs}
		if len(in.Samples) > 0 {
			ts.Samples = make([]writev2.Sample, len(in.Samples))
			for j, s := range in.Samples {
				ts.Samples[j] = writev2.Sample{Value: s.Value, Timestamp: s.Timestamp}
			}
		}
		for _, h := range in.Histograms {
			if h.IsFloatHistogram() {
				ts.Histograms = append(ts.Histograms, writev2.FromFloatHistogram(0, h.Timestamp, h.ToFloatHistogram()))
			} else {
				ts.Histograms = append(ts.Histograms, writev2.FromIntHistogram(0, h.Timestamp, h.ToIntHistogram()))
			}
		}
		for _, e := range in.Exemplars {
			erefs := make([]uint32, 0, 2*len(e.Labels))
			for _, l := range e.Labels {
				erefs = append(erefs, st.Symbolize(l.Name), st.Symbolize(l.Value))
			}
			ts.Exemplars = append(ts.Exemplars, writev2.Exemplar{LabelsRefs: erefs, Value: e.Value, Timestamp: e.Timestamp})
		}
		out.Timeseries = append(out.Timeseries, ts)
	}
	for _, m := range req.Metadata {
		if m.MetricFamilyName == "" {
			continue
		}
		out.Timeseries = append(out.Timeseries, writev2.TimeSeries{
			LabelsRefs: []uint32{st.Symbolize("__name__"), st.Symbolize(m.MetricFamilyName)},
			Metadata: writev2.Metadata{
				Type:    writev2.Metadata_MetricType(m.Type),
				HelpRef: st.Symbolize(m.Help),
				UnitRef: st.Symbolize(m.Unit),
			},
		})
	}
	out.Symbols = st.Symbols()
	return out
}
