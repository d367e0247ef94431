package federation

import (
	"context"
	"encoding/hex"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/grafana/dskit/user"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/canopy-observability/canopy/pkg/tempoapi"
)

// tracesChild is a child's Tempo API over the traces it holds.
type tracesChild struct {
	tempoapi.Backend // unused methods
	traces           map[string]ptrace.Traces
	search           tempoapi.SearchResponse
	asked            tempoapi.SearchRequest
	tags             []string
	values           []string
}

func (c *tracesChild) SearchTags(context.Context, string, tempoapi.TagsRequest) (tempoapi.TagsResponse, error) {
	return tempoapi.TagsResponse{Scopes: []tempoapi.TagScope{{Name: "span", Tags: c.tags}}}, nil
}

func (c *tracesChild) TagValues(context.Context, string, tempoapi.TagValuesRequest) (tempoapi.TagValuesResponse, error) {
	var out tempoapi.TagValuesResponse
	for _, v := range c.values {
		out.Values = append(out.Values, tempoapi.TagValue{Type: "string", Value: v})
	}
	return out, nil
}

func (c *tracesChild) Search(_ context.Context, _ string, req tempoapi.SearchRequest) (tempoapi.SearchResponse, error) {
	c.asked = req
	return c.search, nil
}

func (c *tracesChild) TraceByID(_ context.Context, _ string, id []byte, _, _ time.Time) (ptrace.Traces, bool, error) {
	td, ok := c.traces[hex.EncodeToString(id)]
	return td, ok, nil
}

func tempoConfig() tempoapi.Config {
	var cfg tempoapi.Config
	cfg.RegisterFlags(flag.NewFlagSet("t", flag.PanicOnError))
	return cfg
}

// withTenant serves h with the request's X-Scope-OrgID (anonymous when
// absent) in the context, as Canopy's resolver does.
func withTenant(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		org := r.Header.Get("X-Scope-OrgID")
		if org == "" {
			org = "anonymous"
		}
		h.ServeHTTP(w, r.WithContext(user.InjectOrgID(r.Context(), org)))
	})
}

func spans(tid pcommon.TraceID, service string, ids ...byte) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	ss := rs.ScopeSpans().AppendEmpty()
	for _, id := range ids {
		s := ss.Spans().AppendEmpty()
		s.SetTraceID(tid)
		s.SetSpanID(pcommon.SpanID{id})
		s.SetName("op")
		s.SetStartTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + int64(id)))
		s.SetEndTimestamp(pcommon.Timestamp(1_700_000_000_000_001_000 + int64(id)))
	}
	return td
}

// TestTraceByIDThroughTree: a trace whose spans two clusters hold is
// found through the federator whole, each half with its cluster's
// external labels; a trace no child holds is 404; a failing child
// aborts the lookup (or not, with partial_response=warn).
func TestTraceByIDThroughTree(t *testing.T) {
	tid := pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	key := hex.EncodeToString(tid[:])
	serve := func(b tempoapi.Backend) *httptest.Server {
		srv := httptest.NewServer(withTenant(tempoapi.NewHandler(tempoConfig(), b, nil)))
		t.Cleanup(srv.Close)
		return srv
	}
	eu := serve(&tracesChild{traces: map[string]ptrace.Traces{key: spans(tid, "checkout", 1, 2)}})
	us := serve(&tracesChild{traces: map[string]ptrace.Traces{key: spans(tid, "payments", 3)}})
	empty := serve(&tracesChild{traces: map[string]ptrace.Traces{}})
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "disk on fire", http.StatusInternalServerError)
	}))
	t.Cleanup(broken.Close)

	federator := func(children []ChildConfig, partial string) *httptest.Server {
		var cfg Config
		cfg.RegisterFlags(flag.NewFlagSet("t", flag.PanicOnError))
		cfg.Children, cfg.PartialResponse = children, partial
		f, err := New(cfg, nil, nil, nil)
		require.NoError(t, err)
		return serve(f.Traces())
	}
	children := []ChildConfig{
		// A Canopy cluster: /tempo beside /prometheus.
		{Name: "eu", URL: eu.URL + "/prometheus", ExternalLabels: map[string]string{"cluster": "eu"}},
		{Name: "us", URL: "http://127.0.0.1:1/prometheus", TempoURL: us.URL + "/tempo", ExternalLabels: map[string]string{"cluster": "us"}},
		{Name: "empty", URL: empty.URL + "/prometheus", ExternalLabels: map[string]string{"cluster": "empty"}},
	}
	fed := federator(children, "abort")
	get := func(base, id string) (int, ptrace.Traces) {
		req, err := http.NewRequest(http.MethodGet, base+"/tempo/api/traces/"+id, nil)
		require.NoError(t, err)
		req.Header.Set("Accept", "application/protobuf")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		if resp.StatusCode != http.StatusOK {
			return resp.StatusCode, ptrace.Traces{}
		}
		var u ptrace.ProtoUnmarshaler
		td, err := u.UnmarshalTraces(body)
		require.NoError(t, err)
		return resp.StatusCode, td
	}
	code, td := get(fed.URL, key)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, 3, td.SpanCount())
	clusters := map[string]string{}
	for i := range td.ResourceSpans().Len() {
		attrs := td.ResourceSpans().At(i).Resource().Attributes()
		svc, _ := attrs.Get("service.name")
		cl, _ := attrs.Get("cluster")
		clusters[svc.Str()] = cl.Str()
	}
	require.Equal(t, map[string]string{"checkout": "eu", "payments": "us"}, clusters)
	code, _ = get(fed.URL, "ffffffffffffffffffffffffffffffff")
	require.Equal(t, http.StatusNotFound, code)

	// A failing child: the lookup fails (abort, the default), or answers
	// from the others (warn).
	withBroken := append(children, ChildConfig{Name: "broken", URL: broken.URL + "/prometheus", ExternalLabels: map[string]string{"cluster": "broken"}})
	code, _ = get(federator(withBroken, "abort").URL, key)
	require.Equal(t, http.StatusInternalServerError, code)
	code, td = get(federator(withBroken, "warn").URL, key)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, 3, td.SpanCount())
}

// TestSearchThroughTree: a TraceQL search asks every child with the
// request's parameters and merges what they find: a trace two children
// hold halves of is one, spanning both, with both's span sets.
func TestSearchThroughTree(t *testing.T) {
	id := []byte{0xa, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	other := []byte{0xb, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	half := func(start uint64, durMs uint32, root string, span byte) tempoapi.TraceSearchMetadata {
		return tempoapi.TraceSearchMetadata{TraceID: id, RootServiceName: root, RootTraceName: "GET /", StartTimeUnixNano: start, DurationMs: durMs,
			SpanSets: []tempoapi.SpanSet{{Matched: 1, Spans: []tempoapi.Span{{SpanID: []byte{span, 0, 0, 0, 0, 0, 0, 1}, Name: "op", StartTimeUnixNano: start, DurationNanos: 1000}}}}}
	}
	eu := &tracesChild{tags: []string{"http.method", "http.url"}, values: []string{"GET", "POST"}, search: tempoapi.SearchResponse{Traces: []tempoapi.TraceSearchMetadata{
		half(1_700_000_000_000_000_000, 30, "checkout", 1),
		{TraceID: other, RootServiceName: "cart", StartTimeUnixNano: 1_600_000_000_000_000_000, DurationMs: 5},
	}, Metrics: tempoapi.SearchMetrics{InspectedTraces: 10}}}
	us := &tracesChild{tags: []string{"http.method", "db.system"}, values: []string{"GET", "PUT"}, search: tempoapi.SearchResponse{Traces: []tempoapi.TraceSearchMetadata{
		half(1_700_000_000_010_000_000, 50, "<root span not yet received>", 2),
	}, Metrics: tempoapi.SearchMetrics{InspectedTraces: 5}}}
	serve := func(b tempoapi.Backend) *httptest.Server {
		srv := httptest.NewServer(withTenant(tempoapi.NewHandler(tempoConfig(), b, nil)))
		t.Cleanup(srv.Close)
		return srv
	}
	euSrv, usSrv := serve(eu), serve(us)
	var cfg Config
	cfg.RegisterFlags(flag.NewFlagSet("t", flag.PanicOnError))
	cfg.Children = []ChildConfig{
		{Name: "eu", URL: euSrv.URL + "/prometheus", ExternalLabels: map[string]string{"cluster": "eu"}},
		{Name: "us", URL: usSrv.URL + "/prometheus", ExternalLabels: map[string]string{"cluster": "us"}},
	}
	f, err := New(cfg, nil, nil, nil)
	require.NoError(t, err)
	fed := serve(f.Traces())
	resp, err := http.Get(fed.URL + `/tempo/api/search?q={span.http.status_code=500}&limit=20&spss=3&start=1600000000&end=1800000000&minDuration=1ms`)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	res, err := tempoapi.DecodeSearch(body)
	require.NoError(t, err)
	require.Len(t, res.Traces, 2)
	got := res.Traces[0] // newest first
	require.Equal(t, id, got.TraceID)
	require.Equal(t, "checkout", got.RootServiceName)
	require.Equal(t, uint64(1_700_000_000_000_000_000), got.StartTimeUnixNano)
	require.Equal(t, uint32(60), got.DurationMs, "from the eu half's start to the us half's end")
	require.Len(t, got.SpanSets, 2)
	require.Equal(t, other, res.Traces[1].TraceID)
	require.Equal(t, `{span.http.status_code=500}`, eu.asked.Query)
	require.Equal(t, 3, us.asked.SpansPerSpanSet)
	require.Equal(t, time.Millisecond, us.asked.MinDuration)
	require.Equal(t, int64(1600000000), us.asked.Start.Unix())

	// Tags and tag values: the children's, merged.
	getBody := func(path string) string {
		resp, err := http.Get(fed.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
		return string(b)
	}
	require.JSONEq(t, `{"scopes":[{"name":"span","tags":["db.system","http.method","http.url"]}]}`, getBody("/tempo/api/v2/search/tags?scope=span"))
	require.JSONEq(t, `{"tagValues":[{"type":"string","value":"GET"},{"type":"string","value":"POST"},{"type":"string","value":"PUT"}]}`, getBody("/tempo/api/v2/search/tag/span.http.method/values"))
}
