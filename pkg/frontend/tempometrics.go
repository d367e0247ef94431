package frontend

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/canopy-observability/canopy/pkg/tempoapi"
	"github.com/canopy-observability/canopy/pkg/traceql"
)

// TraceQL metrics queries of Tempo's API (/tempo/api/metrics/query_range
// and /tempo/api/metrics/query), read with tempoapi's own rules.
//
// Step i of a range query from start counts the spans that start in
// [start + i*step, start + (i+1)*step), the last step only those before
// end, and its sample is at start + i*step: every step is computed from its
// own spans, so a range query splits on its step grid. But a series exists
// in an answer when some span of its range falls in it: rate,
// count_over_time and histogram_over_time then answer 0 at each step
// without spans, where a part without the series' spans has no series.
// The merge writes those zeros; a filter (rate() > 1) or topk/bottomk,
// which would have seen them, is not split. The others answer nothing at
// a step without spans, and split whatever their filter or limit.
//
// The pipeline sees each step as the last millisecond of its window,
// start + (i+1)*step - 1 ms (Request.Start is the first's, Request.End
// the last's): a part holds the steps starting in one split interval (on
// a grid aligned to it, the interval's steps), and is cached only once the
// whole window of its last step is older than max_cache_freshness. A part
// runs as the query from the start of its first window to the end of its
// last (the query's end for the last part). The parts' series are joined
// by their labels. A query whose start or step is not a whole millisecond
// runs as one part, uncached, and so does a query that does not parse (the
// querier's message answers it). An instant query computes one value over
// its whole range, which does not split: it runs as one part, uncached.

// tempoMetrics is the decoded form of a metrics query (Request.State).
type tempoMetrics struct {
	query      string
	start, end int64 // Unix ns
	step       int64 // ns; 0 for an instant query
	exemplars  int
	// zeros: a series has a sample at every step of the range it exists
	// in, 0 where it has no spans (rate, count_over_time,
	// histogram_over_time).
	zeros bool
}

// tempoMetricsParams are the parameters the codecs render: the client's
// others (exemplars) go to the downstream as they came.
var tempoMetricsParams = []string{"q", "query", "start", "end", "since", "step"}

// decodeTempoMetrics reads a metrics query as the querier does, its range
// resolved against now.
func decodeTempoMetrics(r *http.Request, now time.Time, rangeQuery bool) (*tempoMetrics, url.Values, error) {
	if err := r.ParseForm(); err != nil {
		return nil, nil, badRequest{fmt.Sprintf("reading the request's parameters: %v", err)}
	}
	p, err := tempoapi.ParseMetricsRequest(r, now, rangeQuery)
	if err != nil {
		return nil, nil, badRequest{err.Error()}
	}
	params := cloneForm(r.Form)
	for _, k := range tempoMetricsParams {
		params.Del(k)
	}
	return &tempoMetrics{query: p.Query, start: p.Start.UnixNano(), end: p.End.UnixNano(), step: int64(p.Step), exemplars: p.Exemplars}, params, nil
}

// encodeTempoMetrics renders a metrics query over [from, to] (Unix ns).
func encodeTempoMetrics(st *tempoMetrics, params url.Values, from, to int64) url.Values {
	form := cloneForm(params)
	form.Set("q", st.query)
	form.Set("start", formatNanos(from))
	form.Set("end", formatNanos(to))
	if st.step > 0 {
		form.Set("step", strconv.FormatInt(st.step, 10)+"ns")
	}
	return form
}

// tempoRangeCodec is the Codec of /tempo/api/metrics/query_range. It is
// safe for concurrent use.
type tempoRangeCodec struct {
	now func() time.Time // a query without end ends now
}

var _ Codec[*tempoRangeAnswer] = (*tempoRangeCodec)(nil)

// DecodeRequest implements Codec.
func (c *tempoRangeCodec) DecodeRequest(r *http.Request) (*Request, error) {
	st, params, err := decodeTempoMetrics(r, c.now(), true)
	if err != nil {
		return nil, err
	}
	req := &Request{Query: st.query, Params: params, State: st}
	steps := (st.end - st.start + st.step - 1) / st.step
	split := st.start%1e6 == 0 && st.step%1e6 == 0
	q, err := traceql.Parse(st.query)
	if err != nil || !q.IsMetrics() {
		split = false
	} else {
		switch q.Metrics.Op {
		case traceql.MetricsRate, traceql.MetricsCountOverTime, traceql.MetricsHistogramOverTime:
			st.zeros = true
			split = split && q.Metrics.Filter == nil && q.Metrics.Limit == nil
		}
	}
	if !split {
		req.Start, req.End = floorDiv(st.start, 1e6), floorDiv(st.end, 1e6)
		return req, nil
	}
	req.Step = st.step / 1e6
	req.Start = st.start/1e6 + req.Step - 1
	req.End = req.Start + (steps-1)*req.Step
	req.Split = true
	// The last step's window is cut at the query's end: its length is in
	// the key, which the part holding it has besides its range.
	last := st.end - (st.start + (steps-1)*st.step)
	req.CacheKey = fmt.Sprintf("traceql_range:%s\x00exemplars=%d\x00last=%d", st.query, st.exemplars, last)
	return req, nil
}

// EncodeRequest implements Codec.
func (c *tempoRangeCodec) EncodeRequest(req *Request) (string, url.Values) {
	st := req.State.(*tempoMetrics)
	from, to := st.start, st.end
	if req.Split {
		from, to = (req.Start+1)*1e6-st.step, min((req.End+1)*1e6, st.end)
	}
	return "metrics/query_range", encodeTempoMetrics(st, req.Params, from, to)
}

// tempoRangeAnswer is tempopb.QueryRangeResponse as pkg/tempoapi writes
// it. Samples and exemplars are kept as they came.
type tempoRangeAnswer struct {
	Series  []tempoSeries      `json:"series"`
	Metrics tempoSearchMetrics `json:"metrics"`

	// The steps of the part answered, for the zeros of series it does
	// not have: steps steps from first (Unix ms), step apart.
	first, step int64
	steps       int
}

type tempoSeries struct {
	Labels    json.RawMessage   `json:"labels"`
	Samples   []json.RawMessage `json:"samples"`
	Exemplars []json.RawMessage `json:"exemplars,omitempty"`
}

// DecodeResponse implements Codec.
func (c *tempoRangeCodec) DecodeResponse(req *Request, body []byte) (*tempoRangeAnswer, error) {
	var a tempoRangeAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, fmt.Errorf("decoding a Tempo metrics answer: %w", err)
	}
	if req != nil && req.Split {
		a.first, a.step, a.steps = req.Start+1-req.Step, req.Step, int((req.End-req.Start)/req.Step)+1
	}
	return &a, nil
}

// MergeResponses implements Codec: each series (by its labels) with the
// samples and exemplars of every part in time order (zeros at the steps of
// the parts without it, for a function answering zeros), ordered by labels
// as the querier orders them; the metrics added up. A series keeps at most
// the query's exemplars (traceql.DefaultExemplars when it names none), as
// the querier does: each part may have found that many, so the merge keeps
// that many spread evenly over them.
func (c *tempoRangeCodec) MergeResponses(req *Request, parts []*tempoRangeAnswer) (*tempoRangeAnswer, error) {
	if len(parts) == 1 {
		return parts[0], nil
	}
	type series struct {
		tempoSeries
		labels []tempoapi.KeyValue
		parts  [][]json.RawMessage // samples by part; nil: none
	}
	var (
		all   []*series
		byKey = map[string]*series{}
		out   = &tempoRangeAnswer{Series: []tempoSeries{}}
	)
	for i, p := range parts {
		out.Metrics.add(p.Metrics)
		for _, s := range p.Series {
			ls, err := decodeTempoLabels(s.Labels)
			if err != nil {
				return nil, err
			}
			key := tempoLabelsKey(ls)
			m, ok := byKey[key]
			if !ok {
				m = &series{tempoSeries: tempoSeries{Labels: s.Labels}, labels: ls, parts: make([][]json.RawMessage, len(parts))}
				byKey[key] = m
				all = append(all, m)
			}
			m.parts[i] = s.Samples
			if m.parts[i] == nil {
				m.parts[i] = []json.RawMessage{} // present, with no samples
			}
			m.Exemplars = append(m.Exemplars, s.Exemplars...)
		}
	}
	slices.SortStableFunc(all, func(x, y *series) int { return compareTempoLabels(x.labels, y.labels) })
	st := req.State.(*tempoMetrics)
	limit := st.exemplars
	if limit <= 0 {
		limit = traceql.DefaultExemplars
	}
	for _, s := range all {
		s.Samples = []json.RawMessage{}
		for i, samples := range s.parts {
			if samples == nil && st.zeros {
				samples = zeros(parts[i])
			}
			s.Samples = append(s.Samples, samples...)
		}
		if s.Labels == nil {
			s.Labels = json.RawMessage("[]")
		}
		s.Exemplars = spread(s.Exemplars, limit)
		out.Series = append(out.Series, s.tempoSeries)
	}
	return out, nil
}

// zeros are the samples of a series without spans over the part answered
// by a: 0 at each step.
func zeros(a *tempoRangeAnswer) []json.RawMessage {
	out := make([]json.RawMessage, a.steps)
	for i := range out {
		out[i] = fmt.Appendf(nil, `{"timestampMs":"%d","value":0}`, a.first+int64(i)*a.step)
	}
	return out
}

// spread returns n of xs evenly spaced, all when there are no more.
func spread[T any](xs []T, n int) []T {
	if len(xs) <= n {
		return xs
	}
	out := make([]T, n)
	for i := range out {
		out[i] = xs[i*len(xs)/n]
	}
	return out
}

// EncodeResponse implements Codec.
func (c *tempoRangeCodec) EncodeResponse(_ *Request, res *tempoRangeAnswer) (*Response, error) {
	b, err := marshalTempo(res)
	if err != nil {
		return nil, err
	}
	return &Response{Status: http.StatusOK, Header: http.Header{"Content-Type": []string{"application/json"}}, Body: b}, nil
}

// Prefix implements Codec.
func (c *tempoRangeCodec) Prefix() string { return tempoapi.PathPrefix }

// EncodeError implements Codec.
func (c *tempoRangeCodec) EncodeError(code int, typ, msg string) *Response {
	return tempoError(code, typ, msg)
}

// tempoInstantCodec is the Codec of /tempo/api/metrics/query: one part,
// whose answer is the client's. It is safe for concurrent use.
type tempoInstantCodec struct {
	now func() time.Time // a query without end ends now
}

var _ Codec[[]byte] = (*tempoInstantCodec)(nil)

// DecodeRequest implements Codec.
func (c *tempoInstantCodec) DecodeRequest(r *http.Request) (*Request, error) {
	st, params, err := decodeTempoMetrics(r, c.now(), false)
	if err != nil {
		return nil, err
	}
	return &Request{Query: st.query, Start: floorDiv(st.start, 1e6), End: floorDiv(st.end, 1e6), Params: params, State: st}, nil
}

// EncodeRequest implements Codec.
func (c *tempoInstantCodec) EncodeRequest(req *Request) (string, url.Values) {
	st := req.State.(*tempoMetrics)
	return "metrics/query", encodeTempoMetrics(st, req.Params, st.start, st.end)
}

// DecodeResponse implements Codec.
func (c *tempoInstantCodec) DecodeResponse(_ *Request, body []byte) ([]byte, error) {
	return body, nil
}

// MergeResponses implements Codec.
func (c *tempoInstantCodec) MergeResponses(_ *Request, parts [][]byte) ([]byte, error) {
	if len(parts) != 1 {
		return nil, fmt.Errorf("an instant metrics query has %d parts, not 1", len(parts))
	}
	return parts[0], nil
}

// EncodeResponse implements Codec.
func (c *tempoInstantCodec) EncodeResponse(_ *Request, res []byte) (*Response, error) {
	return &Response{Status: http.StatusOK, Header: http.Header{"Content-Type": []string{"application/json"}}, Body: res}, nil
}

// Prefix implements Codec.
func (c *tempoInstantCodec) Prefix() string { return tempoapi.PathPrefix }

// EncodeError implements Codec.
func (c *tempoInstantCodec) EncodeError(code int, typ, msg string) *Response {
	return tempoError(code, typ, msg)
}

// tempoValueJSON is an OTLP AnyValue as pkg/tempoapi writes a label's.
type tempoValueJSON struct {
	StringValue *string         `json:"stringValue"`
	IntValue    *string         `json:"intValue"`
	DoubleValue json.RawMessage `json:"doubleValue"`
	BoolValue   *bool           `json:"boolValue"`
}

// decodeTempoLabels reads a series' labels, OTLP KeyValues.
func decodeTempoLabels(raw json.RawMessage) ([]tempoapi.KeyValue, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var kvs []struct {
		Key   string         `json:"key"`
		Value tempoValueJSON `json:"value"`
	}
	if err := json.Unmarshal(raw, &kvs); err != nil {
		return nil, fmt.Errorf("decoding a series' labels: %w", err)
	}
	out := make([]tempoapi.KeyValue, len(kvs))
	for i, kv := range kvs {
		v, err := kv.Value.value()
		if err != nil {
			return nil, fmt.Errorf("decoding the label %q: %w", kv.Key, err)
		}
		out[i] = tempoapi.KeyValue{Key: kv.Key, Value: v}
	}
	return out, nil
}

func (j tempoValueJSON) value() (tempoapi.Value, error) {
	switch {
	case j.StringValue != nil:
		return tempoapi.StringValue(*j.StringValue), nil
	case j.IntValue != nil:
		n, err := strconv.ParseInt(*j.IntValue, 10, 64)
		return tempoapi.IntValue(n), err
	case j.DoubleValue != nil:
		var s string
		if json.Unmarshal(j.DoubleValue, &s) == nil {
			switch s {
			case "NaN":
				return tempoapi.DoubleValue(math.NaN()), nil
			case "Infinity":
				return tempoapi.DoubleValue(math.Inf(1)), nil
			case "-Infinity":
				return tempoapi.DoubleValue(math.Inf(-1)), nil
			}
			return tempoapi.Value{}, fmt.Errorf("%q is not a double", s)
		}
		var f float64
		err := json.Unmarshal(j.DoubleValue, &f)
		return tempoapi.DoubleValue(f), err
	case j.BoolValue != nil:
		return tempoapi.BoolValue(*j.BoolValue), nil
	}
	return tempoapi.Value{}, nil
}

// tempoLabelsKey identifies a series by its labels.
func tempoLabelsKey(ls []tempoapi.KeyValue) string {
	var b strings.Builder
	for _, l := range ls {
		fmt.Fprintf(&b, "%q\x00%d\x00", l.Key, l.Value.Type)
		switch l.Value.Type {
		case tempoapi.ValueString:
			b.WriteString(strconv.Quote(l.Value.Str))
		case tempoapi.ValueInt:
			b.WriteString(strconv.FormatInt(l.Value.Int, 10))
		case tempoapi.ValueDouble:
			b.WriteString(strconv.FormatUint(math.Float64bits(l.Value.Double), 16))
		case tempoapi.ValueBool:
			b.WriteString(strconv.FormatBool(l.Value.Bool))
		}
		b.WriteByte(0)
	}
	return b.String()
}

// compareTempoLabels orders label sets as the querier orders series
// (pkg/tempoapi's compareLabels): pair by pair, by key, then by value
// type, then value (false before true); a shorter set first when it is a
// prefix.
func compareTempoLabels(x, y []tempoapi.KeyValue) int {
	for i := 0; i < len(x) && i < len(y); i++ {
		a, b := x[i].Value, y[i].Value
		c := cmp.Or(cmp.Compare(x[i].Key, y[i].Key), cmp.Compare(a.Type, b.Type))
		if c == 0 {
			switch a.Type {
			case tempoapi.ValueString:
				c = cmp.Compare(a.Str, b.Str)
			case tempoapi.ValueInt:
				c = cmp.Compare(a.Int, b.Int)
			case tempoapi.ValueDouble:
				c = cmp.Compare(a.Double, b.Double)
			case tempoapi.ValueBool:
				c = cmp.Compare(strconv.FormatBool(a.Bool), strconv.FormatBool(b.Bool))
			}
		}
		if c != 0 {
			return c
		}
	}
	return cmp.Compare(len(x), len(y))
}
