package client

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
)

// PushResponse tells the distributor what an ingester did with a push. An
// ingester appends every valid sample of a request and reports the rest here
// instead of failing the whole request, so a partly bad batch never loses its
// good part.
type PushResponse struct {
	// Rejected counts rejected samples (floats and histograms) per reason.
	Rejected map[string]int `json:"rejected,omitempty"`
	// RejectedExemplars counts rejected exemplars.
	RejectedExemplars int `json:"rejected_exemplars,omitempty"`
	// FirstError is the message of the first rejection, naming the limit.
	FirstError string `json:"first_error,omitempty"`
	// LimitError is true when a rejection came from a per-tenant limit (the
	// distributor answers 429 only for rate limits; this still maps to 400).
	LimitError bool `json:"limit_error,omitempty"`
}

// Marshal implements the codec's message interface.
func (m *PushResponse) Marshal() ([]byte, error) { return json.Marshal(m) }

// Unmarshal implements the codec's message interface.
func (m *PushResponse) Unmarshal(b []byte) error { return json.Unmarshal(b, m) }

// Matcher is a label matcher on the wire.
type Matcher struct {
	Type  labels.MatchType `json:"t"`
	Name  string           `json:"n"`
	Value string           `json:"v"`
}

// ToMatchers converts wire matchers to Prometheus matchers.
func ToMatchers(ms []Matcher) ([]*labels.Matcher, error) {
	out := make([]*labels.Matcher, 0, len(ms))
	for _, m := range ms {
		lm, err := labels.NewMatcher(m.Type, m.Name, m.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, lm)
	}
	return out, nil
}

// FromMatchers converts Prometheus matchers to wire matchers.
func FromMatchers(ms []*labels.Matcher) []Matcher {
	out := make([]Matcher, 0, len(ms))
	for _, m := range ms {
		out = append(out, Matcher{Type: m.Type, Name: m.Name, Value: m.Value})
	}
	return out
}

// LabelsRequest asks for label names (Name empty) or the values of label Name
// among series matching Matchers in [Start, End] (milliseconds).
type LabelsRequest struct {
	Start    int64     `json:"start"`
	End      int64     `json:"end"`
	Name     string    `json:"name,omitempty"`
	Matchers []Matcher `json:"matchers,omitempty"`
	Limit    int       `json:"limit,omitempty"`
}

// Marshal implements the codec's message interface.
func (m *LabelsRequest) Marshal() ([]byte, error) { return json.Marshal(m) }

// Unmarshal implements the codec's message interface.
func (m *LabelsRequest) Unmarshal(b []byte) error { return json.Unmarshal(b, m) }

// LabelsResponse holds sorted label names or values.
type LabelsResponse struct {
	Values   []string `json:"values"`
	Warnings []string `json:"warnings,omitempty"`
}

// Marshal implements the codec's message interface.
func (m *LabelsResponse) Marshal() ([]byte, error) { return json.Marshal(m) }

// Unmarshal implements the codec's message interface.
func (m *LabelsResponse) Unmarshal(b []byte) error { return json.Unmarshal(b, m) }

// ExemplarsRequest asks for exemplars of series matching any of the matcher
// sets in [Start, End] (milliseconds).
type ExemplarsRequest struct {
	Start    int64       `json:"start"`
	End      int64       `json:"end"`
	Matchers [][]Matcher `json:"matchers"`
}

// Marshal implements the codec's message interface.
func (m *ExemplarsRequest) Marshal() ([]byte, error) { return json.Marshal(m) }

// Unmarshal implements the codec's message interface.
func (m *ExemplarsRequest) Unmarshal(b []byte) error { return json.Unmarshal(b, m) }

// ExemplarsResponse carries exemplar query results.
type ExemplarsResponse struct {
	Results []ExemplarSeries `json:"results"`
}

// ExemplarSeries is one series' exemplars on the wire.
type ExemplarSeries struct {
	Labels    labels.Labels  `json:"labels"`
	Exemplars []WireExemplar `json:"exemplars"`
}

// WireExemplar is an exemplar whose value survives JSON (NaN and Inf included).
type WireExemplar struct {
	Labels labels.Labels `json:"labels"`
	Value  string        `json:"value"`
	Ts     int64         `json:"ts"`
}

// Marshal implements the codec's message interface.
func (m *ExemplarsResponse) Marshal() ([]byte, error) { return json.Marshal(m) }

// Unmarshal implements the codec's message interface.
func (m *ExemplarsResponse) Unmarshal(b []byte) error { return json.Unmarshal(b, m) }

// FromExemplarResults converts query results to the wire form.
func FromExemplarResults(rs []exemplar.QueryResult) *ExemplarsResponse {
	out := &ExemplarsResponse{Results: make([]ExemplarSeries, 0, len(rs))}
	for _, r := range rs {
		es := ExemplarSeries{Labels: r.SeriesLabels, Exemplars: make([]WireExemplar, 0, len(r.Exemplars))}
		for _, e := range r.Exemplars {
			es.Exemplars = append(es.Exemplars, WireExemplar{Labels: e.Labels, Value: strconv.FormatFloat(e.Value, 'g', -1, 64), Ts: e.Ts})
		}
		out.Results = append(out.Results, es)
	}
	return out
}

// ToExemplarResults converts the wire form to query results.
func (m *ExemplarsResponse) ToExemplarResults() ([]exemplar.QueryResult, error) {
	out := make([]exemplar.QueryResult, 0, len(m.Results))
	for _, r := range m.Results {
		qr := exemplar.QueryResult{SeriesLabels: r.Labels, Exemplars: make([]exemplar.Exemplar, 0, len(r.Exemplars))}
		for _, e := range r.Exemplars {
			v, err := strconv.ParseFloat(e.Value, 64)
			if err != nil {
				return nil, fmt.Errorf("exemplar value %q: %w", e.Value, err)
			}
			qr.Exemplars = append(qr.Exemplars, exemplar.Exemplar{Labels: e.Labels, Value: v, Ts: e.Ts, HasTs: true})
		}
		out = append(out, qr)
	}
	return out, nil
}

// MetadataRequest asks for metric metadata, optionally of one metric.
type MetadataRequest struct {
	Metric         string `json:"metric,omitempty"`
	Limit          int    `json:"limit,omitempty"`
	LimitPerMetric int    `json:"limit_per_metric,omitempty"`
}

// Marshal implements the codec's message interface.
func (m *MetadataRequest) Marshal() ([]byte, error) { return json.Marshal(m) }

// Unmarshal implements the codec's message interface.
func (m *MetadataRequest) Unmarshal(b []byte) error { return json.Unmarshal(b, m) }

// MetadataResponse maps metric family names to their distinct metadata.
type MetadataResponse struct {
	Metadata map[string][]metadata.Metadata `json:"metadata"`
}

// Marshal implements the codec's message interface.
func (m *MetadataResponse) Marshal() ([]byte, error) { return json.Marshal(m) }

// Unmarshal implements the codec's message interface.
func (m *MetadataResponse) Unmarshal(b []byte) error { return json.Unmarshal(b, m) }

// Frame is one chunk of a streamed query response: bytes in Prometheus's
// streamed remote-read framing (see storage/remote.ChunkedWriter).
type Frame struct {
	Data []byte
}

// Marshal implements the codec's message interface.
func (m *Frame) Marshal() ([]byte, error) { return m.Data, nil }

// Unmarshal implements the codec's message interface; it copies b.
func (m *Frame) Unmarshal(b []byte) error {
	m.Data = append(m.Data[:0], b...)
	return nil
}
