package client

import (
	"fmt"

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
	Rejected map[string]int
	// RejectedExemplars counts rejected exemplars.
	RejectedExemplars int
	// FirstError is the message of the first rejection, naming the limit.
	FirstError string
	// LimitError is true when a rejection came from a per-tenant limit (the
	// distributor answers 429 only for rate limits; this still maps to 400).
	LimitError bool
}

// Matcher is a label matcher (ingesterpb.Matcher).
type Matcher struct {
	Type  labels.MatchType
	Name  string
	Value string
}

// ToMatchers converts wire matchers to Prometheus matchers; an unknown match
// type or a bad regular expression is an error.
func ToMatchers(ms []Matcher) ([]*labels.Matcher, error) {
	out := make([]*labels.Matcher, 0, len(ms))
	for _, m := range ms {
		if m.Type < labels.MatchEqual || m.Type > labels.MatchNotRegexp {
			// A newer peer's match type: refuse it rather than match wrongly.
			return nil, fmt.Errorf("matcher %s: unknown match type %d", m.Name, int(m.Type))
		}
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
	Start    int64
	End      int64
	Name     string
	Matchers []Matcher
	Limit    int
}

// LabelsResponse holds sorted label names or values.
type LabelsResponse struct {
	Values   []string
	Warnings []string
}

// ExemplarsRequest asks for exemplars of series matching any of the matcher
// sets in [Start, End] (milliseconds).
type ExemplarsRequest struct {
	Start    int64
	End      int64
	Matchers [][]Matcher
}

// ExemplarsResponse carries exemplar query results.
type ExemplarsResponse struct {
	Results []exemplar.QueryResult
}

// FromExemplarResults wraps query results for the wire.
func FromExemplarResults(rs []exemplar.QueryResult) *ExemplarsResponse {
	return &ExemplarsResponse{Results: rs}
}

// ToExemplarResults returns the query results.
func (m *ExemplarsResponse) ToExemplarResults() ([]exemplar.QueryResult, error) {
	return m.Results, nil
}

// MetadataRequest asks for metric metadata, optionally of one metric.
type MetadataRequest struct {
	Metric         string
	Limit          int
	LimitPerMetric int
}

// MetadataResponse maps metric family names to their distinct metadata.
type MetadataResponse struct {
	Metadata map[string][]metadata.Metadata
}
