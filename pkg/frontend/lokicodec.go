package frontend

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/lokiapi"
)

// lokiCodec is the Codec of Loki's query API (pkg/lokiapi):
// /loki/api/v1/query_range or, with instant set, /loki/api/v1/query. It
// reads requests with lokiapi's own parameter rules, and its decoded answer
// is a *logql.Result, written back with lokiapi.EncodeQueryResult, so a
// merged answer has the querier's shape. It is safe for concurrent use.
//
// A log query is split by time: each part answers with up to limit entries,
// and the merge keeps the limit newest (backward) or oldest (forward) of
// them all, as the whole query would. One whose limit is above
// -querier.logs.max-query-series runs whole (see DecodeRequest). Its parts are not cached: late
// entries change them, and Loki does not cache them either. A metric range
// query is split on its step grid and its parts cached; an associative
// aggregation of a range aggregation is sharded by stream (lokishards.go).
// The frontend holds the query to the querier's per-query limits as a
// whole: the entries limit before it runs, the bytes read by its parts and
// shards together (Budget) as they answer, the series of the merged answer.
type lokiCodec struct {
	instant bool
	// limits are the querier's -querier.logs.* limits.
	limits lokiapi.Config
	now    func() time.Time // a request without a time or end is at now
}

// lokiRequest is the decoded form of a Loki query request (Request.State).
type lokiRequest struct {
	// log: a log query, answered with streams; else a metric query.
	log bool
	// start and end are the whole query's range (Unix ns; entries in
	// [start, end) for a log query); an instant query's time is both.
	start, end int64
	step       time.Duration
	limit      int
	dir        logql.Direction
	// interval thins a log query's entries; the frontend applies it to the
	// merged entries, as the querier would to the whole query's.
	interval   time.Duration
	categorize bool
	// shard, for a shard query, is its lokiapi.ShardParam value.
	shard string
}

func (c *lokiCodec) path() string {
	if c.instant {
		return "query"
	}
	return "query_range"
}

// lokiParams are the parameters the codec renders for every call: the
// client's others go to the downstream as they came.
var lokiParams = []string{"query", "start", "end", "since", "time", "step", "limit", "direction", "interval"}

// DecodeRequest implements Codec. Its errors are the querier's messages
// for the same request; a request choosing its own shard, or an instant
// log query (which the engine refuses), goes to the querier Verbatim.
func (c *lokiCodec) DecodeRequest(r *http.Request) (*Request, error) {
	if err := r.ParseForm(); err != nil {
		return nil, badRequest{fmt.Sprintf("reading the request's parameters: %v", err)}
	}
	if r.Form.Has(lokiapi.ShardParam) {
		return &Request{Params: cloneForm(r.Form), Header: lokiHeader(r.Header), Verbatim: true}, nil
	}
	query := r.Form.Get("query")
	expr, err := logql.Parse(query)
	if err != nil {
		return nil, badRequest{err.Error()}
	}
	_, isLog := expr.(*logql.LogExpr)
	st := &lokiRequest{log: isLog, categorize: lokiapi.Categorize(r.Header)}
	params := cloneForm(r.Form)
	for _, k := range lokiParams {
		params.Del(k)
	}
	req := &Request{Query: query, Params: params, Header: lokiHeader(r.Header), State: st, Budget: c.budget()}
	if c.instant {
		if isLog {
			return &Request{Params: cloneForm(r.Form), Header: req.Header, Verbatim: true}, nil
		}
		p, err := lokiapi.ParseInstantParams(r, c.now(), c.limits.MaxEntriesLimitPerQuery)
		if err != nil {
			return nil, badRequest{err.Error()}
		}
		st.start, st.end, st.limit, st.dir = p.Time, p.Time, p.Limit, p.Direction
		// The engine evaluates at the millisecond.
		req.Start, req.End = p.Time/1e6, p.Time/1e6
		req.Sharding = planLokiSharding(expr, c)
		return req, nil
	}
	p, err := lokiapi.ParseRangeParams(r, c.now(), c.limits.MaxEntriesLimitPerQuery)
	if err != nil {
		return nil, badRequest{err.Error()}
	}
	st.start, st.end, st.step, st.limit, st.dir, st.interval = p.Start, p.End, p.Step, p.Limit, p.Direction, p.Interval
	if isLog {
		// Entries are at any nanosecond: the parts are whole milliseconds
		// (the first and last cut to the query's range), on a grid of 1 ms.
		req.Start, req.End, req.Step = floorDiv(p.Start, 1e6), floorDiv(p.End-1, 1e6), 1
		if p.End <= p.Start {
			req.End = req.Start
		}
		// The querier holds each part's answer, its limit entries, to
		// -querier.logs.max-query-series. With a limit above it, a part
		// could fail where the whole query, whose limit entries are not
		// the part's, would not: such a query runs as one part.
		req.Split = p.End > p.Start && (c.limits.MaxQuerySeries <= 0 || p.Limit <= c.limits.MaxQuerySeries)
		return req, nil
	}
	step := p.Step.Milliseconds()
	if step <= 0 {
		// The engine refuses steps under a millisecond with its message.
		return &Request{Params: cloneForm(r.Form), Header: req.Header, Verbatim: true}, nil
	}
	// The engine evaluates at start/1e6 + k*step ≤ end/1e6 milliseconds.
	req.Start, req.End, req.Step = p.Start/1e6, p.End/1e6, step
	req.Split = true
	req.CacheKey = fmt.Sprintf("logql:%s\x00step=%d\x00limit=%d\x00direction=%s\x00categorize=%t",
		expr, step, st.limit, directionName(st.dir), st.categorize)
	req.Sharding = planLokiSharding(expr, c)
	return req, nil
}

// lokiHeader is the part of a client's headers every downstream call
// carries: the encoding flags (categorize-labels).
func lokiHeader(h http.Header) http.Header {
	vs := h.Values(lokiapi.EncodingFlagsHeader)
	if len(vs) == 0 {
		return nil
	}
	return http.Header{lokiapi.EncodingFlagsHeader: append([]string(nil), vs...)}
}

func directionName(d logql.Direction) string {
	if d == logql.Forward {
		return "forward"
	}
	return "backward"
}

// budget returns the bytes-read budget of one query, nil when
// -querier.logs.max-query-bytes-read is 0.
func (c *lokiCodec) budget() Budget {
	if c.limits.MaxQueryBytesRead <= 0 {
		return nil
	}
	return &bytesBudget{max: int64(c.limits.MaxQueryBytesRead)}
}

// bytesBudget holds a query's parts and shards to
// -querier.logs.max-query-bytes-read together: each answer says in a
// header how many bytes of log lines it read.
type bytesBudget struct {
	max  int64
	read atomic.Int64
}

// Spend implements Budget.
func (b *bytesBudget) Spend(resp *Response) error {
	n, err := strconv.ParseInt(resp.Header.Get(lokiapi.BytesReadHeader), 10, 64)
	if err != nil {
		return nil
	}
	if total := b.read.Add(n); total > b.max {
		return errLimit{reason: "max_query_bytes_read", msg: fmt.Sprintf("%v: the query would read more than %d bytes of log lines over its parts and shards (%s); narrow the time range or the stream selector", logql.ErrLimit, b.max, lokiapi.FlagMaxQueryBytesRead)}
	}
	return nil
}

// EncodeRequest implements Codec: the request's range (a part's, cut to
// the query's) and every parameter explicit, so that every part and shard
// runs with the whole query's step, limit and direction; no interval, which
// the merge applies.
func (c *lokiCodec) EncodeRequest(req *Request) (string, url.Values) {
	form := cloneForm(req.Params)
	if req.Verbatim {
		return c.path(), form
	}
	st := req.State.(*lokiRequest)
	form.Set("query", req.Query)
	if c.instant {
		form.Set("time", formatNanos(st.start))
	} else {
		from, to := req.Start*1e6, req.End*1e6
		if st.log {
			from, to = max(from, st.start), min((req.End+1)*1e6, st.end)
		}
		form.Set("start", formatNanos(from))
		form.Set("end", formatNanos(to))
		// Go's duration syntax, which the API reads, for an exact step.
		form.Set("step", strconv.FormatInt(int64(st.step), 10)+"ns")
	}
	form.Set("limit", strconv.Itoa(st.limit))
	form.Set("direction", directionName(st.dir))
	if st.shard != "" {
		form.Set(lokiapi.ShardParam, st.shard)
	}
	return c.path(), form
}

// formatNanos writes Unix nanoseconds as RFC 3339: an integer would be read
// as seconds when small.
func formatNanos(ns int64) string {
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

// DecodeResponse implements Codec.
func (c *lokiCodec) DecodeResponse(_ *Request, body []byte) (*logql.Result, error) {
	return decodeLokiResult(body)
}

// MergeResponses implements Codec: streams merged and limited, matrices
// joined in time order; then the series limit of the whole answer.
func (c *lokiCodec) MergeResponses(req *Request, parts []*logql.Result) (*logql.Result, error) {
	st := req.State.(*lokiRequest)
	res, err := mergeLokiResults(parts, st)
	if err != nil {
		return nil, err
	}
	return res, c.checkSeries(res)
}

// checkSeries holds a merged answer to -querier.logs.max-query-series.
func (c *lokiCodec) checkSeries(res *logql.Result) error {
	max := c.limits.MaxQuerySeries
	switch {
	case max <= 0:
	case res.Type == logql.ValueTypeStreams && len(res.Streams) > max:
		return errLimit{reason: "max_query_series", msg: fmt.Sprintf("%v: the result has more than %d streams (%s); narrow the query", logql.ErrLimit, max, lokiapi.FlagMaxQuerySeries)}
	case len(res.Matrix) > max:
		return errLimit{reason: "max_query_series", msg: fmt.Sprintf("%v: the query has more than %d series (%s); aggregate with sum by (…), narrow the selector or drop labels", logql.ErrLimit, max, lokiapi.FlagMaxQuerySeries)}
	}
	return nil
}

// EncodeResponse implements Codec.
func (c *lokiCodec) EncodeResponse(req *Request, res *logql.Result) (*Response, error) {
	st := req.State.(*lokiRequest)
	return &Response{
		Status: http.StatusOK,
		Header: http.Header{"Content-Type": []string{"application/json; charset=utf-8"}},
		Body:   lokiapi.EncodeQueryResult(res, st.categorize, st.dir),
	}, nil
}

// Prefix implements Codec.
func (c *lokiCodec) Prefix() string { return lokiapi.PathPrefix }

// EncodeError implements Codec.
func (c *lokiCodec) EncodeError(code int, typ, msg string) *Response {
	return lokiError(code, typ, msg)
}

// lokiError is an error answer as the Loki API gives it (pkg/lokiapi,
// errors.go): the message as text/plain; exceeded limits are 400 and
// timeouts 504.
func lokiError(code int, typ, msg string) *Response {
	switch typ {
	case "execution":
		code = http.StatusBadRequest
	case "timeout":
		code = http.StatusGatewayTimeout
	}
	return &Response{Status: code, Header: http.Header{"Content-Type": []string{"text/plain; charset=utf-8"}}, Body: []byte(msg)}
}
