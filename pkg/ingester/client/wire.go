package client

import (
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/canopy-observability/canopy/pkg/rpc/ingesterpb"
)

// The Go types of the small messages convert to and from their generated
// form (rpc/ingesterpb) on the wire, so the contract is the .proto file and
// the callers keep Prometheus's types.

// Marshal encodes m as ingesterpb.PushResponse.
func (m *PushResponse) Marshal() ([]byte, error) {
	pb := &ingesterpb.PushResponse{RejectedExemplars: int64(m.RejectedExemplars), FirstError: m.FirstError, LimitError: m.LimitError}
	if len(m.Rejected) > 0 {
		pb.Rejected = make(map[string]int64, len(m.Rejected))
		for k, v := range m.Rejected {
			pb.Rejected[k] = int64(v)
		}
	}
	return deterministic.Marshal(pb)
}

// Unmarshal decodes an ingesterpb.PushResponse into m.
func (m *PushResponse) Unmarshal(b []byte) error {
	var pb ingesterpb.PushResponse
	if err := proto.Unmarshal(b, &pb); err != nil {
		return err
	}
	*m = PushResponse{RejectedExemplars: int(pb.RejectedExemplars), FirstError: pb.FirstError, LimitError: pb.LimitError}
	if len(pb.Rejected) > 0 {
		m.Rejected = make(map[string]int, len(pb.Rejected))
		for k, v := range pb.Rejected {
			m.Rejected[k] = int(v)
		}
	}
	return nil
}

// MatchersToPB converts matchers to their generated form.
func MatchersToPB(ms []Matcher) []*ingesterpb.Matcher {
	if len(ms) == 0 {
		return nil
	}
	out := make([]*ingesterpb.Matcher, len(ms))
	for i, m := range ms {
		out[i] = &ingesterpb.Matcher{Type: ingesterpb.MatchType(m.Type), Name: m.Name, Value: m.Value}
	}
	return out
}

// MatchersFromPB converts matchers from their generated form. An unknown
// match type is kept, and rejected by ToMatchers.
func MatchersFromPB(ms []*ingesterpb.Matcher) []Matcher {
	if len(ms) == 0 {
		return nil
	}
	out := make([]Matcher, len(ms))
	for i, m := range ms {
		out[i] = Matcher{Type: labels.MatchType(m.GetType()), Name: m.GetName(), Value: m.GetValue()}
	}
	return out
}

// Marshal encodes m as ingesterpb.LabelsRequest.
func (m *LabelsRequest) Marshal() ([]byte, error) {
	return proto.Marshal(&ingesterpb.LabelsRequest{StartMs: m.Start, EndMs: m.End, Name: m.Name, Matchers: MatchersToPB(m.Matchers), Limit: int64(m.Limit)})
}

// Unmarshal decodes an ingesterpb.LabelsRequest into m.
func (m *LabelsRequest) Unmarshal(b []byte) error {
	var pb ingesterpb.LabelsRequest
	if err := proto.Unmarshal(b, &pb); err != nil {
		return err
	}
	*m = LabelsRequest{Start: pb.StartMs, End: pb.EndMs, Name: pb.Name, Matchers: MatchersFromPB(pb.Matchers), Limit: int(pb.Limit)}
	return nil
}

// Marshal encodes m as ingesterpb.LabelsResponse.
func (m *LabelsResponse) Marshal() ([]byte, error) {
	return proto.Marshal(&ingesterpb.LabelsResponse{Values: m.Values, Warnings: m.Warnings})
}

// Unmarshal decodes an ingesterpb.LabelsResponse into m.
func (m *LabelsResponse) Unmarshal(b []byte) error {
	var pb ingesterpb.LabelsResponse
	if err := proto.Unmarshal(b, &pb); err != nil {
		return err
	}
	*m = LabelsResponse{Values: pb.Values, Warnings: pb.Warnings}
	return nil
}

// Marshal encodes m as ingesterpb.ExemplarsRequest.
func (m *ExemplarsRequest) Marshal() ([]byte, error) {
	pb := &ingesterpb.ExemplarsRequest{StartMs: m.Start, EndMs: m.End, MatcherSets: make([]*ingesterpb.MatcherSet, len(m.Matchers))}
	for i, ms := range m.Matchers {
		pb.MatcherSets[i] = &ingesterpb.MatcherSet{Matchers: MatchersToPB(ms)}
	}
	return proto.Marshal(pb)
}

// Unmarshal decodes an ingesterpb.ExemplarsRequest into m.
func (m *ExemplarsRequest) Unmarshal(b []byte) error {
	var pb ingesterpb.ExemplarsRequest
	if err := proto.Unmarshal(b, &pb); err != nil {
		return err
	}
	*m = ExemplarsRequest{Start: pb.StartMs, End: pb.EndMs, Matchers: make([][]Matcher, len(pb.MatcherSets))}
	for i, ms := range pb.MatcherSets {
		m.Matchers[i] = MatchersFromPB(ms.GetMatchers())
	}
	return nil
}

func labelsToPB(ls labels.Labels) []*ingesterpb.Label {
	out := make([]*ingesterpb.Label, 0, ls.Len())
	ls.Range(func(l labels.Label) {
		out = append(out, &ingesterpb.Label{Name: l.Name, Value: l.Value})
	})
	return out
}

func labelsFromPB(b *labels.ScratchBuilder, ls []*ingesterpb.Label) labels.Labels {
	b.Reset()
	for _, l := range ls {
		b.Add(l.GetName(), l.GetValue())
	}
	b.Sort()
	return b.Labels()
}

// Marshal encodes m as ingesterpb.ExemplarsResponse.
func (m *ExemplarsResponse) Marshal() ([]byte, error) {
	pb := &ingesterpb.ExemplarsResponse{Results: make([]*ingesterpb.ExemplarSeries, len(m.Results))}
	for i, r := range m.Results {
		es := &ingesterpb.ExemplarSeries{Labels: labelsToPB(r.SeriesLabels), Exemplars: make([]*ingesterpb.Exemplar, len(r.Exemplars))}
		for j, e := range r.Exemplars {
			es.Exemplars[j] = &ingesterpb.Exemplar{Labels: labelsToPB(e.Labels), Value: e.Value, TimestampMs: e.Ts}
		}
		pb.Results[i] = es
	}
	return proto.Marshal(pb)
}

// Unmarshal decodes an ingesterpb.ExemplarsResponse into m.
func (m *ExemplarsResponse) Unmarshal(b []byte) error {
	var pb ingesterpb.ExemplarsResponse
	if err := proto.Unmarshal(b, &pb); err != nil {
		return err
	}
	var sb labels.ScratchBuilder
	m.Results = make([]exemplar.QueryResult, len(pb.Results))
	for i, r := range pb.Results {
		qr := exemplar.QueryResult{SeriesLabels: labelsFromPB(&sb, r.Labels), Exemplars: make([]exemplar.Exemplar, len(r.Exemplars))}
		for j, e := range r.Exemplars {
			qr.Exemplars[j] = exemplar.Exemplar{Labels: labelsFromPB(&sb, e.Labels), Value: e.Value, Ts: e.TimestampMs, HasTs: true}
		}
		m.Results[i] = qr
	}
	return nil
}

// Marshal encodes m as ingesterpb.MetadataRequest.
func (m *MetadataRequest) Marshal() ([]byte, error) {
	return proto.Marshal(&ingesterpb.MetadataRequest{Metric: m.Metric, Limit: int64(m.Limit), LimitPerMetric: int64(m.LimitPerMetric)})
}

// Unmarshal decodes an ingesterpb.MetadataRequest into m.
func (m *MetadataRequest) Unmarshal(b []byte) error {
	var pb ingesterpb.MetadataRequest
	if err := proto.Unmarshal(b, &pb); err != nil {
		return err
	}
	*m = MetadataRequest{Metric: pb.Metric, Limit: int(pb.Limit), LimitPerMetric: int(pb.LimitPerMetric)}
	return nil
}

// Marshal encodes m as ingesterpb.MetadataResponse.
func (m *MetadataResponse) Marshal() ([]byte, error) {
	pb := &ingesterpb.MetadataResponse{Metadata: make(map[string]*ingesterpb.MetadataList, len(m.Metadata))}
	for name, list := range m.Metadata {
		l := &ingesterpb.MetadataList{Metadata: make([]*ingesterpb.Metadata, len(list))}
		for i, md := range list {
			l.Metadata[i] = &ingesterpb.Metadata{Type: string(md.Type), Help: md.Help, Unit: md.Unit}
		}
		pb.Metadata[name] = l
	}
	return deterministic.Marshal(pb)
}

// Unmarshal decodes an ingesterpb.MetadataResponse into m.
func (m *MetadataResponse) Unmarshal(b []byte) error {
	var pb ingesterpb.MetadataResponse
	if err := proto.Unmarshal(b, &pb); err != nil {
		return err
	}
	m.Metadata = make(map[string][]metadata.Metadata, len(pb.Metadata))
	for name, l := range pb.Metadata {
		list := make([]metadata.Metadata, len(l.GetMetadata()))
		for i, md := range l.GetMetadata() {
			list[i] = metadata.Metadata{Type: model.MetricType(md.Type), Help: md.Help, Unit: md.Unit}
		}
		m.Metadata[name] = list
	}
	return nil
}

// deterministic orders map entries, so equal messages marshal to equal bytes.
var deterministic = proto.MarshalOptions{Deterministic: true}
