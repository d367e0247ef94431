package logsclient

import (
	"fmt"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/rpc/logspb"
)

// FromLabels converts labels to wire pairs (sorted, as labels are).
func FromLabels(ls labels.Labels) []*logspb.LabelPair {
	if ls.IsEmpty() {
		return nil
	}
	out := make([]*logspb.LabelPair, 0, ls.Len())
	ls.Range(func(l labels.Label) { out = append(out, &logspb.LabelPair{Name: l.Name, Value: l.Value}) })
	return out
}

// ToLabels converts wire pairs to labels, sorting them.
func ToLabels(ps []*logspb.LabelPair, sb *labels.ScratchBuilder) labels.Labels {
	if len(ps) == 0 {
		return labels.EmptyLabels()
	}
	sb.Reset()
	for _, p := range ps {
		sb.Add(p.Name, p.Value)
	}
	sb.Sort()
	return sb.Labels()
}

// FromMatchers converts Prometheus matchers to wire matchers.
func FromMatchers(ms []*labels.Matcher) []*logspb.Matcher {
	out := make([]*logspb.Matcher, len(ms))
	for i, m := range ms {
		out[i] = &logspb.Matcher{Type: logspb.MatchType(m.Type), Name: m.Name, Value: m.Value}
	}
	return out
}

// ToMatchers converts wire matchers; an unknown match type (a newer peer's)
// or a bad regular expression is an error, never a wrong match.
func ToMatchers(ms []*logspb.Matcher) ([]*labels.Matcher, error) {
	out := make([]*labels.Matcher, len(ms))
	for i, m := range ms {
		t := labels.MatchType(m.Type)
		if t < labels.MatchEqual || t > labels.MatchNotRegexp {
			return nil, fmt.Errorf("matcher %s: unknown match type %d", m.Name, int(m.Type))
		}
		lm, err := labels.NewMatcher(t, m.Name, m.Value)
		if err != nil {
			return nil, err
		}
		out[i] = lm
	}
	return out, nil
}

// ToEntries converts wire entries to the engine's.
func ToEntries(es []*logspb.Entry, sb *labels.ScratchBuilder) []logql.Entry {
	out := make([]logql.Entry, len(es))
	for i, e := range es {
		out[i] = logql.Entry{Timestamp: e.Timestamp, Line: e.Line, Metadata: ToLabels(e.Metadata, sb)}
	}
	return out
}
