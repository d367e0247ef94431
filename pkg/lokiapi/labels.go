package lokiapi

import (
	"net/http"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
)

// The label endpoints answer {"status":"success","data":[…]}; an empty
// list is [] (Loki leaves data out; Grafana reads both).

// metaBounds reads start, end and since of the metadata endpoints.
func (a *API) metaBounds(r *http.Request) (start, end int64, err error) {
	start, end, err = bounds(r, a.now())
	if err == nil && end < start {
		err = badf("the end of the range (%d) is before its start (%d)", end, start)
	}
	return start, end, err
}

// serveLabels is /labels (and /label): the label names of the streams
// matching the optional query selector.
func (a *API) serveLabels(w http.ResponseWriter, r *http.Request) error {
	start, end, err := a.metaBounds(r)
	if err != nil {
		return err
	}
	ms, err := parseSelector("query", r.Form.Get("query"))
	if err != nil {
		return err
	}
	names, err := a.b.Labels(r.Context(), start, end, ms)
	if err != nil {
		return &storeError{err: err}
	}
	writeJSON(w, encodeStrings(names))
	return nil
}

// serveLabelValues is /label/<name>/values.
func (a *API) serveLabelValues(w http.ResponseWriter, r *http.Request) error {
	start, end, err := a.metaBounds(r)
	if err != nil {
		return err
	}
	ms, err := parseSelector("query", r.Form.Get("query"))
	if err != nil {
		return err
	}
	values, err := a.b.LabelValues(r.Context(), r.PathValue("name"), start, end, ms)
	if err != nil {
		return &storeError{err: err}
	}
	writeJSON(w, encodeStrings(values))
	return nil
}

// serveSeries is /series: the label sets of the streams matching any of
// the match[] selectors (or match); all streams without one.
func (a *API) serveSeries(w http.ResponseWriter, r *http.Request) error {
	start, end, err := a.metaBounds(r)
	if err != nil {
		return err
	}
	var sets [][]*labels.Matcher
	for _, name := range []string{"match[]", "match"} {
		for _, q := range r.Form[name] {
			ms, err := parseSelector(name, q)
			if err != nil {
				return err
			}
			if ms != nil {
				sets = append(sets, ms)
			}
		}
	}
	if len(sets) == 0 {
		sets = [][]*labels.Matcher{{}} // one empty set: every stream
	}
	series, err := a.b.Series(r.Context(), start, end, sets)
	if err != nil {
		return &storeError{err: err}
	}
	slices.SortFunc(series, labels.Compare)
	out := &jw{}
	out.raw(`{"status":"success","data":[`)
	for i, s := range series {
		if i > 0 {
			out.byte(',')
		}
		out.labels(s)
	}
	out.raw("]}")
	writeJSON(w, out.b)
	return nil
}

// encodeStrings writes {"status":"success","data":[…]}.
func encodeStrings(ss []string) []byte {
	w := &jw{}
	w.raw(`{"status":"success","data":`)
	w.strings(ss)
	w.byte('}')
	return w.b
}
