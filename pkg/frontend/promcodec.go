package frontend

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
)

// promCodec is the Codec of the Prometheus HTTP API's queries:
// /api/v1/query_range or, with instant set, /api/v1/query. Its decoded
// answer is the querier's JSON body, kept as it is: an answer of one part
// goes to the client byte for byte. It is safe for concurrent use.
type promCodec struct {
	instant bool
	parser  parser.Parser
	engine  *promql.Engine   // evaluates what is left of sharded queries
	now     func() time.Time // an instant query without a time is at now
}

func (c *promCodec) path() string {
	if c.instant {
		return "query"
	}
	return "query_range"
}

// DecodeRequest implements Codec. A request the query-frontend cannot read
// is Verbatim: the querier answers it with Prometheus's own messages.
func (c *promCodec) DecodeRequest(r *http.Request) (*Request, error) {
	if err := r.ParseForm(); err != nil {
		return nil, badRequest{fmt.Sprintf("invalid form: %v", err)}
	}
	if c.instant {
		return c.decodeInstant(cloneForm(r.Form)), nil
	}
	return c.decodeRange(r.Form), nil
}

func (c *promCodec) decodeRange(form url.Values) *Request {
	start, err1 := parseTime(form.Get("start"))
	end, err2 := parseTime(form.Get("end"))
	step, err3 := parseStep(form.Get("step"))
	expr, err4 := c.parser.ParseExpr(form.Get("query"))
	if err := errors.Join(err1, err2, err3, err4); err != nil || end < start || step <= 0 || (end-start)/step > 11_000 {
		return &Request{Params: form, Verbatim: true}
	}
	params := cloneForm(form)
	for _, k := range []string{"query", "start", "end"} {
		params.Del(k)
	}
	req := &Request{
		Query: form.Get("query"), Start: start, End: end, Step: step, Params: params,
		// @ start() and @ end() would mean another time in each part.
		Split: !usesStartOrEnd(expr),
	}
	if form.Get("stats") != "" {
		// Statistics are those of the one query the querier runs, and a
		// request for them runs every part, so they are whole.
		return req
	}
	// Every parameter but the range is part of the key (lookback_delta,
	// limit, …): they change the answer. The key is pinned
	// (TestPromQLCacheKeysArePinned).
	rest := cloneForm(params)
	rest.Del("step")
	req.CacheKey = req.Query + "\x00" + rest.Encode()
	req.Sharding = c.shardPlan(expr)
	return req
}

func (c *promCodec) decodeInstant(form url.Values) *Request {
	expr, err := c.parser.ParseExpr(form.Get("query"))
	if err != nil || form.Get("stats") != "" {
		return &Request{Params: form, Verbatim: true}
	}
	var ts int64
	if form.Get("time") == "" {
		// Every shard must evaluate the same instant.
		ts = c.now().UnixMilli()
		form.Set("time", formatTime(ts))
	} else if ts, err = parseTime(form.Get("time")); err != nil {
		return &Request{Params: form, Verbatim: true}
	}
	params := cloneForm(form)
	params.Del("query")
	return &Request{Query: form.Get("query"), Start: ts, End: ts, Params: params, Sharding: c.shardPlan(expr)}
}

// shardPlan returns how expr runs sharded, nil when it cannot be.
func (c *promCodec) shardPlan(expr parser.Expr) ShardPlan {
	plan := planSharding(expr, c.parser)
	if plan == nil {
		return nil
	}
	return promShards{plan: plan, engine: c.engine}
}

// EncodeRequest implements Codec: the request's parameters as the client
// gave them, but the query and, for a range query, the part's range.
func (c *promCodec) EncodeRequest(req *Request) (string, url.Values) {
	form := cloneForm(req.Params)
	if req.Verbatim {
		return c.path(), form
	}
	form.Set("query", req.Query)
	if !c.instant {
		form.Set("start", formatTime(req.Start))
		form.Set("end", formatTime(req.End))
	}
	return c.path(), form
}

// DecodeResponse implements Codec: the body is decoded when parts are
// merged.
func (c *promCodec) DecodeResponse(_ *Request, body []byte) ([]byte, error) { return body, nil }

// MergeResponses implements Codec.
func (c *promCodec) MergeResponses(_ *Request, parts [][]byte) ([]byte, error) {
	return mergeRange(parts)
}

// EncodeResponse implements Codec.
func (c *promCodec) EncodeResponse(_ *Request, body []byte) (*Response, error) {
	return &Response{Status: http.StatusOK, Header: http.Header{"Content-Type": []string{"application/json"}}, Body: body}, nil
}

// Prefix implements Codec.
func (c *promCodec) Prefix() string { return "/prometheus/api/v1/" }

// EncodeError implements Codec: the Prometheus API's error shape.
func (c *promCodec) EncodeError(code int, typ, msg string) *Response {
	return promError(code, typ, msg)
}

// usesStartOrEnd reports whether expr uses @ start() or @ end(), whose
// meaning changes when the query is split.
func usesStartOrEnd(expr parser.Expr) bool {
	found := false
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			found = found || n.StartOrEnd != 0
		case *parser.SubqueryExpr:
			found = found || n.StartOrEnd != 0
		}
		return nil
	})
	return found
}

func cloneForm(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// parseTime parses a Prometheus API time (Unix seconds, possibly
// fractional, or RFC 3339) into milliseconds.
func parseTime(s string) (int64, error) {
	if t, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(t) || math.IsInf(t, 0) || math.Abs(t) > 1e15 {
			return 0, fmt.Errorf("cannot parse %q to a valid timestamp", s)
		}
		return int64(math.Round(t * 1000)), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UnixMilli(), nil
	}
	return 0, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}

// parseStep parses a step (seconds or a Prometheus duration) into
// milliseconds.
func parseStep(s string) (int64, error) {
	if d, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(d) || math.IsInf(d, 0) || d*1000 > math.MaxInt64/2 {
			return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
		}
		return int64(math.Round(d * 1000)), nil
	}
	d, err := model.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
	}
	return time.Duration(d).Milliseconds(), nil
}

func formatTime(ms int64) string {
	return strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)
}
