package federation

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/util/annotations"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/canopy-observability/canopy/pkg/querier"
	"github.com/canopy-observability/canopy/pkg/tempoapi"
)

// errNotFederated is what TraceQL metrics answer on a federator: they
// would need their own split into parts the children compute.
var errNotFederated = fmt.Errorf("%w: TraceQL metrics are not federated yet: ask a cluster (lookups by ID, searches, tags and tag values go through the tree)", tempoapi.ErrBadRequest)

// TracesBackend answers Tempo's trace by ID over the children's Tempo
// HTTP APIs (tempo_url): every child that may hold the trace is asked,
// and the pieces it is found in are merged into one trace, each piece's
// resources given its child's external labels.
type TracesBackend struct{ f *Federator }

// Traces returns the federator's backend for the Tempo HTTP API.
func (f *Federator) Traces() *TracesBackend { return &TracesBackend{f: f} }

// tempoURL is where a child's Tempo API is: tempo_url, or, for a Canopy
// cluster's /prometheus URL, its /tempo beside it; "" when it has none.
func (c *child) tempoURL() string {
	if c.cfg.TempoURL != "" {
		return strings.TrimSuffix(c.cfg.TempoURL, "/")
	}
	if base, ok := strings.CutSuffix(c.base, "/prometheus"); ok {
		return base + "/tempo"
	}
	return ""
}

func (b *TracesBackend) TraceByID(ctx context.Context, tenant string, id []byte, start, end time.Time) (ptrace.Traces, bool, error) {
	ev, asked := b.begin(ctx, tenant, start, end)
	type answer struct {
		td    ptrace.Traces
		found bool
		err   error
	}
	answers := make([]answer, len(asked))
	eachChild(asked, func(i int, c *child) {
		td, found, err := c.traceByID(ctx, ev, id, start, end)
		answers[i] = answer{td, found, err}
	})
	var (
		pieces []ptrace.Traces
		failed []error
	)
	for i, a := range answers {
		if a.err != nil {
			failed = append(failed, a.err)
			continue
		}
		if a.found {
			withExternal(a.td, asked[i].external)
			pieces = append(pieces, a.td)
		}
	}
	var annots annotations.Annotations // the Tempo API has no warnings to give
	if err := ev.settle(failed, &annots); err != nil {
		return ptrace.Traces{}, false, err
	}
	if len(pieces) == 0 {
		return ptrace.NewTraces(), false, nil
	}
	return querier.MergeTraces(pieces), true, nil
}

// traceByID asks the child's /api/traces/<id> for the trace in protobuf.
func (c *child) traceByID(ctx context.Context, ev *evaluation, id []byte, start, end time.Time) (ptrace.Traces, bool, error) {
	path := "/api/traces/" + hex.EncodeToString(id)
	if !start.IsZero() {
		path += "?" + url.Values{"start": {strconv.FormatInt(start.Unix(), 10)}, "end": {strconv.FormatInt(end.Unix()+1, 10)}}.Encode()
	}
	body, found, err := c.tempoGet(ctx, ev, path, "application/protobuf")
	if err != nil || !found {
		return ptrace.Traces{}, false, err
	}
	var u ptrace.ProtoUnmarshaler
	td, err := u.UnmarshalTraces(body) // tempopb.Trace: OTLP TracesData's wire format
	if err != nil {
		return ptrace.Traces{}, false, &childError{c.cfg.Name, fmt.Errorf("decoding the trace: %w", err)}
	}
	return td, td.SpanCount() > 0, nil
}

// withExternal gives each resource of td the external labels it lacks.
func withExternal(td ptrace.Traces, ext map[string]string) {
	for i := range td.ResourceSpans().Len() {
		attrs := td.ResourceSpans().At(i).Resource().Attributes()
		for k, v := range ext {
			if _, ok := attrs.Get(k); !ok {
				attrs.PutStr(k, v)
			}
		}
	}
}

// Search runs a TraceQL search on every child and merges the traces
// found: one trace found by two children (its halves) is one, starting
// at the earliest and ending at the latest of them, with both's span
// sets. Each child evaluates the query on the spans it holds, so a query
// only a whole trace matches (a structural one across clusters) misses
// it. The API sorts the traces newest first and keeps the limit.
func (b *TracesBackend) Search(ctx context.Context, tenant string, req tempoapi.SearchRequest) (tempoapi.SearchResponse, error) {
	form := tagsForm(req.Query, req.Start, req.End, req.Limit)
	if req.SpansPerSpanSet > 0 {
		form.Set("spss", strconv.Itoa(req.SpansPerSpanSet))
	}
	if req.MinDuration > 0 {
		form.Set("minDuration", req.MinDuration.String())
	}
	if req.MaxDuration > 0 {
		form.Set("maxDuration", req.MaxDuration.String())
	}
	ev, asked := b.begin(ctx, tenant, req.Start, req.End)
	type answer struct {
		res tempoapi.SearchResponse
		err error
	}
	answers := make([]answer, len(asked))
	eachChild(asked, func(i int, c *child) {
		body, found, err := c.tempoGet(ctx, ev, "/api/search?"+form.Encode(), "")
		var res tempoapi.SearchResponse
		if err == nil && found {
			if res, err = tempoapi.DecodeSearch(body); err != nil {
				err = &childError{c.cfg.Name, fmt.Errorf("decoding the search answer: %w", err)}
			}
		}
		answers[i] = answer{res, err}
	})
	type merged struct {
		md  tempoapi.TraceSearchMetadata
		end uint64
	}
	byID := map[string]*merged{}
	var (
		out    tempoapi.SearchResponse
		failed []error
		order  []string
	)
	for _, a := range answers {
		if a.err != nil {
			failed = append(failed, a.err)
			continue
		}
		m := a.res.Metrics
		out.Metrics.InspectedTraces += m.InspectedTraces
		out.Metrics.InspectedBytes += m.InspectedBytes
		out.Metrics.TotalBlocks += m.TotalBlocks
		out.Metrics.CompletedJobs += m.CompletedJobs
		out.Metrics.TotalJobs += m.TotalJobs
		out.Metrics.TotalBlockBytes += m.TotalBlockBytes
		for _, t := range a.res.Traces {
			key := hex.EncodeToString(t.TraceID)
			end := t.StartTimeUnixNano + uint64(t.DurationMs)*1_000_000
			cur := byID[key]
			if cur == nil {
				byID[key] = &merged{md: t, end: end}
				order = append(order, key)
				continue
			}
			if t.StartTimeUnixNano < cur.md.StartTimeUnixNano {
				cur.md.StartTimeUnixNano = t.StartTimeUnixNano
			}
			cur.end = max(cur.end, end)
			if cur.md.RootServiceName == "" || strings.HasPrefix(cur.md.RootServiceName, "<") {
				cur.md.RootServiceName, cur.md.RootTraceName = t.RootServiceName, t.RootTraceName
			}
			cur.md.SpanSets = append(cur.md.SpanSets, t.SpanSets...)
		}
	}
	var annots annotations.Annotations // the Tempo API has no warnings to give
	if err := ev.settle(failed, &annots); err != nil {
		return tempoapi.SearchResponse{}, err
	}
	for _, key := range order {
		m := byID[key]
		m.md.DurationMs = uint32((m.end - m.md.StartTimeUnixNano) / 1_000_000)
		out.Traces = append(out.Traces, m.md)
	}
	return out, nil
}

// tempoGet GETs path of the child's Tempo API (accept: the Accept
// header, or none) and returns the answer's body, found false on a 404,
// recording what it cost.
func (c *child) tempoGet(ctx context.Context, ev *evaluation, path, accept string) (body []byte, found bool, err error) {
	h := http.Header{}
	if accept != "" {
		h.Set("Accept", accept)
	}
	return c.get(ctx, ev, c.tempoURL()+path, h)
}

// get GETs u from the child with the headers h and the request's tenant,
// and returns the answer's body, found false on a 404, recording what it
// cost.
func (c *child) get(ctx context.Context, ev *evaluation, u string, h http.Header) (body []byte, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	t0 := time.Now()
	fail := func(err error) ([]byte, bool, error) {
		err = &childError{c.cfg.Name, err}
		ev.record(c, int64(len(body)), time.Since(t0), err)
		return nil, false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fail(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if c.cfg.Tenant != "" {
		req.Header.Set("X-Scope-OrgID", c.cfg.Tenant)
	} else if ev.tenant != "" {
		req.Header.Set("X-Scope-OrgID", ev.tenant)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("no answer within its timeout of %s", c.timeout)
		}
		return fail(err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	switch {
	case err != nil:
		if ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("no whole answer within its timeout of %s", c.timeout)
		}
		return fail(err)
	case resp.StatusCode == http.StatusNotFound:
		ev.record(c, int64(len(body)), time.Since(t0), nil)
		return nil, false, nil
	case resp.StatusCode != http.StatusOK:
		return fail(&statusError{resp.StatusCode, strings.TrimSpace(string(body[:min(len(body), 300)]))})
	case len(body) > maxResponseBytes:
		return fail(fmt.Errorf("answer larger than %d bytes", maxResponseBytes))
	}
	ev.record(c, int64(len(body)), time.Since(t0), nil)
	return body, true, nil
}

// SearchTags and TagValues are the children's, merged by the API.
func (b *TracesBackend) SearchTags(ctx context.Context, tenant string, req tempoapi.TagsRequest) (tempoapi.TagsResponse, error) {
	form := tagsForm(req.Query, req.Start, req.End, req.Limit)
	if req.Scope != "" {
		form.Set("scope", req.Scope)
	}
	var out tempoapi.TagsResponse
	err := b.each(ctx, tenant, req.Start, req.End, "/api/v2/search/tags?"+form.Encode(), func(body []byte) error {
		var res struct {
			Scopes []struct {
				Name string   `json:"name"`
				Tags []string `json:"tags"`
			} `json:"scopes"`
		}
		if err := json.Unmarshal(body, &res); err != nil {
			return err
		}
		for _, sc := range res.Scopes {
			out.Scopes = append(out.Scopes, tempoapi.TagScope{Name: sc.Name, Tags: sc.Tags})
		}
		return nil
	})
	return out, err
}

func (b *TracesBackend) TagValues(ctx context.Context, tenant string, req tempoapi.TagValuesRequest) (tempoapi.TagValuesResponse, error) {
	form := tagsForm(req.Query, req.Start, req.End, req.Limit)
	var out tempoapi.TagValuesResponse
	err := b.each(ctx, tenant, req.Start, req.End, "/api/v2/search/tag/"+url.PathEscape(req.Tag)+"/values?"+form.Encode(), func(body []byte) error {
		var res struct {
			TagValues []struct {
				Type  string `json:"type"`
				Value string `json:"value"`
			} `json:"tagValues"`
		}
		if err := json.Unmarshal(body, &res); err != nil {
			return err
		}
		for _, v := range res.TagValues {
			out.Values = append(out.Values, tempoapi.TagValue{Type: v.Type, Value: v.Value})
		}
		return nil
	})
	return out, err
}

// begin starts a request of tenant over the children that have a Tempo
// API.
func (b *TracesBackend) begin(ctx context.Context, tenant string, start, end time.Time) (*evaluation, []*child) {
	ev := b.f.newEvaluation(ctx, &plan{}, start, end, 0, 0)
	if tenant != "" {
		ev.tenant = tenant
	}
	var asked []*child
	for _, c := range ev.children {
		if c.tempoURL() != "" {
			asked = append(asked, c)
		}
	}
	return ev, asked
}

// tagsForm is the form of a Tempo search or tags request: q, start and
// end (seconds, end inclusive), limit.
func tagsForm(q string, start, end time.Time, limit int) url.Values {
	form := url.Values{}
	if q != "" {
		form.Set("q", q)
	}
	if !start.IsZero() {
		form.Set("start", strconv.FormatInt(start.Unix(), 10))
		form.Set("end", strconv.FormatInt(end.Unix()+1, 10))
	}
	if limit > 0 {
		form.Set("limit", strconv.Itoa(limit))
	}
	return form
}

// each GETs path of every child's Tempo API and hands each answer to
// read, one at a time; failures abort or are left out (warn).
func (b *TracesBackend) each(ctx context.Context, tenant string, start, end time.Time, path string, read func([]byte) error) error {
	ev, asked := b.begin(ctx, tenant, start, end)
	bodies := make([][]byte, len(asked))
	errs := make([]error, len(asked))
	eachChild(asked, func(i int, c *child) {
		bodies[i], _, errs[i] = c.tempoGet(ctx, ev, path, "")
	})
	var failed []error
	for i, body := range bodies {
		if errs[i] == nil && body != nil {
			if err := read(body); err != nil {
				errs[i] = &childError{asked[i].cfg.Name, fmt.Errorf("decoding the answer: %w", err)}
			}
		}
		if errs[i] != nil {
			failed = append(failed, errs[i])
		}
	}
	var annots annotations.Annotations // the Tempo API has no warnings to give
	return ev.settle(failed, &annots)
}

func (b *TracesBackend) MetricsQueryRange(context.Context, string, tempoapi.MetricsRequest) (tempoapi.MetricsRangeResponse, error) {
	return tempoapi.MetricsRangeResponse{}, errNotFederated
}

func (b *TracesBackend) MetricsQueryInstant(context.Context, string, tempoapi.MetricsRequest) (tempoapi.MetricsInstantResponse, error) {
	return tempoapi.MetricsInstantResponse{}, errNotFederated
}

// statusError is a child's answer other than 200 or 404.
type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.code, e.body) }
