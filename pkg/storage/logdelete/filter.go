package logdelete

import (
	"errors"
	"fmt"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/canopy-observability/canopy/pkg/logql"
)

// Filter is a request compiled: which entries it deletes. Safe for
// concurrent use; each goroutine filters a stream through its own
// StreamFilter.
type Filter struct {
	matchers []*labels.Matcher
	pipeline *logql.Pipeline // nil: every line of the selected streams
	// start and end bound the entries deleted, Unix ns, both included.
	start, end int64
}

// ParseQuery checks that query is what a delete request takes: a LogQL
// log query (a stream selector and, optionally, a pipeline such as line
// filters), not a metric query. It returns the compiled selection.
func ParseQuery(query string) ([]*labels.Matcher, *logql.Pipeline, error) {
	if query == "" {
		return nil, nil, errors.New("the query is empty: give a stream selector such as {app=\"x\"}, optionally with line filters")
	}
	e, err := logql.Parse(query)
	if err != nil {
		return nil, nil, err
	}
	le, ok := e.(*logql.LogExpr)
	if !ok {
		return nil, nil, fmt.Errorf("%q is a metric query: give a stream selector such as {app=\"x\"}, optionally with line filters", query)
	}
	if len(le.Pipeline) == 0 {
		return le.Matchers, nil, nil
	}
	pl, err := logql.CompilePipeline(le.Pipeline)
	if err != nil {
		return nil, nil, err
	}
	return le.Matchers, pl, nil
}

// Filter compiles the request.
func (r Request) Filter() (*Filter, error) {
	ms, pl, err := ParseQuery(r.Query)
	if err != nil {
		return nil, fmt.Errorf("delete request %s: %w", r.ID, err)
	}
	return &Filter{matchers: ms, pipeline: pl, start: r.Start * 1e6, end: r.End * 1e6}, nil
}

// Matchers are the request's stream selector.
func (f *Filter) Matchers() []*labels.Matcher { return f.matchers }

// Range is the time range whose entries may be deleted, Unix ns, both
// included.
func (f *Filter) Range() (start, end int64) { return f.start, f.end }

// Selects says whether the request deletes entries of stream ls.
func (f *Filter) Selects(ls labels.Labels) bool {
	for _, m := range f.matchers {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

// Overlaps says whether [mint, maxt] (Unix ns, both included) may hold
// entries the request deletes.
func (f *Filter) Overlaps(mint, maxt int64) bool { return mint <= f.end && maxt >= f.start }

// StreamFilter tests the entries of one stream the request selects. Not
// safe for concurrent use.
type StreamFilter struct {
	f *Filter
	p *logql.Processor
}

// ForStream returns the filter of the entries of stream ls, which the
// request must select.
func (f *Filter) ForStream(ls labels.Labels) *StreamFilter {
	sf := &StreamFilter{f: f}
	if f.pipeline != nil {
		sf.p = f.pipeline.NewProcessor()
		sf.p.SetStream(ls)
	}
	return sf
}

// Deletes says whether the request deletes an entry of the stream.
func (sf *StreamFilter) Deletes(ts int64, line string, md labels.Labels) bool {
	if ts < sf.f.start || ts > sf.f.end {
		return false
	}
	if sf.p == nil {
		return true
	}
	_, keep := sf.p.Process(ts, line, md)
	return keep
}
