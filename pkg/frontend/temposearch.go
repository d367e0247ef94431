package frontend

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/canopy-observability/canopy/pkg/tempoapi"
)

// tempoSearchCodec is the Codec of Tempo's search (/tempo/api/search,
// pkg/tempoapi). It reads requests with tempoapi's own rules and the
// queriers' -querier.traces.* limits, so an error reads as the querier's.
// A search with a range is split into parts at multiples of the split
// interval, each a search of its own range with the whole search's limit;
// the merge keeps each trace once and the limit newest of all, as the
// querier orders them. A search without a range (recent data) goes to the
// querier Verbatim. The parts run newest first and stop early
// (searchPipeline), so they are not run by the shared fan-out. They are
// not cached: a part holds only its limit newest traces, and traces still
// receiving spans change. It is safe for concurrent use.
type tempoSearchCodec struct {
	// cfg is the queriers' Tempo API configuration (-querier.traces.*):
	// the default limit and the bounds of limit and spss.
	cfg tempoapi.Config
}

var _ Codec[*tempoSearchAnswer] = (*tempoSearchCodec)(nil)

// tempoSearch is the decoded form of a search (Request.State): a part's
// has the part's range.
type tempoSearch struct {
	start, end int64 // Unix ns, both inclusive
	limit      int
}

// tempoSearchParams are the parameters the codec renders for every part:
// the client's others (q or tags, minDuration, maxDuration, spss) go to
// the downstream as they came.
var tempoSearchParams = []string{"start", "end", "limit"}

// DecodeRequest implements Codec.
func (c *tempoSearchCodec) DecodeRequest(r *http.Request) (*Request, error) {
	if err := r.ParseForm(); err != nil {
		return nil, badRequest{fmt.Sprintf("reading the request's parameters: %v", err)}
	}
	p, err := tempoapi.ParseSearchRequest(r, c.cfg)
	if err != nil {
		return nil, badRequest{err.Error()}
	}
	if p.Start.IsZero() {
		return &Request{Query: p.Query, Params: cloneForm(r.Form), Verbatim: true}, nil
	}
	params := cloneForm(r.Form)
	for _, k := range tempoSearchParams {
		params.Del(k)
	}
	st := &tempoSearch{start: p.Start.UnixNano(), end: p.End.UnixNano(), limit: p.Limit}
	return &Request{
		Query:  p.Query,
		Start:  floorDiv(st.start, 1e6),
		End:    floorDiv(st.end, 1e6),
		Params: params,
		Split:  true,
		State:  st,
	}, nil
}

// EncodeRequest implements Codec: a part's range and the whole search's
// limit.
func (c *tempoSearchCodec) EncodeRequest(req *Request) (string, url.Values) {
	form := cloneForm(req.Params)
	if req.Verbatim {
		return "search", form
	}
	st := req.State.(*tempoSearch)
	form.Set("start", formatNanos(st.start))
	form.Set("end", formatNanos(st.end))
	form.Set("limit", strconv.Itoa(st.limit))
	return "search", form
}

// searchPart is a part of a search: [start, end] in Unix ns.
type searchPart struct{ start, end int64 }

// searchParts cuts [start, end] at the multiples of interval (ns) inside
// it, newest part first. Neighbours share their boundary: each part is a
// valid range (start before end) however the range falls, and a trace at
// the boundary is found twice and merged.
func searchParts(start, end, interval int64) []searchPart {
	if interval <= 0 {
		return []searchPart{{start, end}}
	}
	var out []searchPart
	for e := end; ; {
		b := (floorDiv(e-1, interval)) * interval
		if b <= start {
			return append(out, searchPart{start, e})
		}
		out = append(out, searchPart{b, e})
		e = b
	}
}

// withSearchPart is a copy of req over the part p.
func withSearchPart(req *Request, p searchPart) *Request {
	cp := *req
	st := *req.State.(*tempoSearch)
	st.start, st.end = p.start, p.end
	cp.State, cp.Start, cp.End = &st, floorDiv(p.start, 1e6), floorDiv(p.end, 1e6)
	return &cp
}

// tempoSearchAnswer is a search answer, tempopb.SearchResponse as
// pkg/tempoapi writes it. Span sets are kept as they came.
type tempoSearchAnswer struct {
	Traces  []tempoTrace       `json:"traces"`
	Metrics tempoSearchMetrics `json:"metrics"`
}

// tempoTrace is tempopb.TraceSearchMetadata, its fields in the querier's
// order.
type tempoTrace struct {
	TraceID           string            `json:"traceID"`
	RootServiceName   string            `json:"rootServiceName,omitempty"`
	RootTraceName     string            `json:"rootTraceName,omitempty"`
	StartTimeUnixNano uint64            `json:"startTimeUnixNano,omitempty,string"`
	DurationMs        uint32            `json:"durationMs,omitempty"`
	SpanSet           json.RawMessage   `json:"spanSet,omitempty"`
	SpanSets          []json.RawMessage `json:"spanSets,omitempty"`
}

// tempoSearchMetrics is tempopb.SearchMetrics, of search and metrics
// answers.
type tempoSearchMetrics struct {
	InspectedTraces uint32 `json:"inspectedTraces,omitempty"`
	InspectedBytes  uint64 `json:"inspectedBytes,omitempty,string"`
	TotalBlocks     uint32 `json:"totalBlocks,omitempty"`
	CompletedJobs   uint32 `json:"completedJobs,omitempty"`
	TotalJobs       uint32 `json:"totalJobs,omitempty"`
	TotalBlockBytes uint64 `json:"totalBlockBytes,omitempty,string"`
}

// add adds o's counts to m, the 32-bit ones saturating.
func (m *tempoSearchMetrics) add(o tempoSearchMetrics) {
	add32 := func(a, b uint32) uint32 { return uint32(min(uint64(a)+uint64(b), math.MaxUint32)) }
	m.InspectedTraces = add32(m.InspectedTraces, o.InspectedTraces)
	m.InspectedBytes += o.InspectedBytes
	m.TotalBlocks = add32(m.TotalBlocks, o.TotalBlocks)
	m.CompletedJobs = add32(m.CompletedJobs, o.CompletedJobs)
	m.TotalJobs = add32(m.TotalJobs, o.TotalJobs)
	m.TotalBlockBytes += o.TotalBlockBytes
}

// DecodeResponse implements Codec.
func (c *tempoSearchCodec) DecodeResponse(_ *Request, body []byte) (*tempoSearchAnswer, error) {
	var a tempoSearchAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, fmt.Errorf("decoding a Tempo search answer: %w", err)
	}
	return &a, nil
}

// MergeResponses implements Codec: the parts' traces, in any order of
// parts, each once, newest first (then by trace ID), at most the limit;
// their metrics added up. A trace found by several parts keeps the answer
// with the most span sets (the first given of equals), its root names
// filled from the others.
func (c *tempoSearchCodec) MergeResponses(req *Request, parts []*tempoSearchAnswer) (*tempoSearchAnswer, error) {
	out := &tempoSearchAnswer{Traces: []tempoTrace{}}
	index := map[string]int{}
	for _, p := range parts {
		out.Metrics.add(p.Metrics)
		for _, t := range p.Traces {
			id := normalTraceID(t.TraceID)
			i, ok := index[id]
			if !ok {
				index[id] = len(out.Traces)
				out.Traces = append(out.Traces, t)
				continue
			}
			kept := &out.Traces[i]
			if len(t.SpanSets) > len(kept.SpanSets) {
				t, *kept = *kept, t
			}
			kept.RootServiceName = cmp.Or(kept.RootServiceName, t.RootServiceName)
			kept.RootTraceName = cmp.Or(kept.RootTraceName, t.RootTraceName)
		}
	}
	slices.SortFunc(out.Traces, func(x, y tempoTrace) int {
		return cmp.Or(cmp.Compare(y.StartTimeUnixNano, x.StartTimeUnixNano), compareTraceIDs(normalTraceID(x.TraceID), normalTraceID(y.TraceID)))
	})
	if limit := req.State.(*tempoSearch).limit; len(out.Traces) > limit {
		out.Traces = out.Traces[:limit]
	}
	return out, nil
}

// normalTraceID is a trace ID of a search answer as the querier writes it:
// lower-case hex without leading zeros.
func normalTraceID(id string) string {
	id = strings.TrimLeft(strings.ToLower(id), "0")
	if id == "" {
		return "0"
	}
	return id
}

// compareTraceIDs orders normal trace IDs as the 16-byte IDs they are.
func compareTraceIDs(x, y string) int {
	return cmp.Or(cmp.Compare(len(x), len(y)), strings.Compare(x, y))
}

// EncodeResponse implements Codec.
func (c *tempoSearchCodec) EncodeResponse(_ *Request, res *tempoSearchAnswer) (*Response, error) {
	b, err := marshalTempo(res)
	if err != nil {
		return nil, err
	}
	return &Response{Status: http.StatusOK, Header: http.Header{"Content-Type": []string{"application/json"}}, Body: b}, nil
}

// marshalTempo writes v as the Tempo API does: <, > and & as such.
func marshalTempo(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Prefix implements Codec.
func (c *tempoSearchCodec) Prefix() string { return tempoapi.PathPrefix }

// EncodeError implements Codec.
func (c *tempoSearchCodec) EncodeError(code int, typ, msg string) *Response {
	return tempoError(code, typ, msg)
}

// tempoError is an error answer as the Tempo API gives it (pkg/tempoapi,
// errors.go): the message as text/plain, as Loki's; exceeded limits are
// 400 and timeouts 504.
func tempoError(code int, typ, msg string) *Response { return lokiError(code, typ, msg) }
