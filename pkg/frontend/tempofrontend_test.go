package frontend

import (
	"encoding/hex"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/canopy-observability/canopy/pkg/tempoapi"
)

// TestTempoOtherPathsAreProxied: every path of the Tempo API but search
// and the metrics queries, and those with another method than GET, goes
// to the querier as it came, and its answer back unchanged.
func TestTempoOtherPathsAreProxied(t *testing.T) {
	traces := genTraces(rand.New(rand.NewSource(9)), 20, 1)
	down, calls := tempoDownstreamOver(traces)
	f := startFrontend(t, testConfig(), defaultLimits(), down)
	id := traceIDString(traces.traces[3].ID)
	for _, tc := range []struct {
		method, path string
		form         url.Values
	}{
		{http.MethodGet, "traces/" + id, nil},
		{http.MethodGet, "traces/" + id, url.Values{"start": {unixSeconds(baseNs)}, "end": {unixSeconds(baseNs + int64(time.Hour))}}},
		{http.MethodGet, "traces/0123", nil},
		{http.MethodGet, "v2/traces/" + id, nil},
		{http.MethodGet, "search/tags", url.Values{"scope": {"resource"}}},
		{http.MethodGet, "v2/search/tags", nil},
		{http.MethodGet, "search/tag/service.name/values", nil},
		{http.MethodGet, "v2/search/tag/resource.service.name/values", url.Values{"q": {"{}"}}},
		{http.MethodGet, "echo", nil},
		{http.MethodGet, "status/buildinfo", nil},
		{http.MethodGet, "nothing/here", nil},
		{http.MethodPost, "search", url.Values{"q": {"{}"}}},
		{http.MethodPost, "metrics/query_range", url.Values{"q": {"{} | rate()"}}},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			got := callTempoMethod(f, tc.method, tc.path, tc.form)
			made := calls.take()
			require.Len(t, made, 1)
			require.Equal(t, tempoapi.PathPrefix+tc.path, made[0].path)
			want := callTempoMethod(down.Handler(), tc.method, tc.path, tc.form)
			calls.take()
			require.Equal(t, want.Code, got.Code)
			require.Equal(t, want.Header().Get("Content-Type"), got.Header().Get("Content-Type"))
			require.Equal(t, want.Body.String(), got.Body.String())
		})
	}
}

// traceIDString writes a 16-byte trace ID as the API writes it.
func traceIDString(id []byte) string { return normalTraceID(hex.EncodeToString(id)) }

// TestTempoWithoutTenant: 401 in Tempo's error shape.
func TestTempoWithoutTenant(t *testing.T) {
	down, calls := tempoDownstreamOver(&memTraces{})
	f := startFrontend(t, testConfig(), defaultLimits(), down)
	for _, path := range []string{"search", "metrics/query_range", "search/tags"} {
		rec := httptest.NewRecorder()
		f.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tempoapi.PathPrefix+path, nil))
		require.Equal(t, http.StatusUnauthorized, rec.Code, path)
		require.Equal(t, "text/plain; charset=utf-8", rec.Header().Get("Content-Type"))
	}
	require.Empty(t, calls.take())
}

// TestTempoOverHTTP: queriers in another process are called over HTTP,
// with GETs, for the pipelines' calls and the proxied ones.
func TestTempoOverHTTP(t *testing.T) {
	traces := genTraces(rand.New(rand.NewSource(10)), 200, 4)
	local, calls := tempoDownstreamOver(traces)
	srv := httptest.NewServer(local.Handler())
	defer srv.Close()
	down, err := NewHTTPDownstream(srv.URL)
	require.NoError(t, err)
	cfg := testConfig()
	cfg.SplitInterval = time.Hour
	f := startFrontend(t, cfg, defaultLimits(), down)
	s, e := unixSeconds(baseNs), unixSeconds(baseNs+4*int64(time.Hour))
	for _, tc := range []struct {
		path  string
		form  url.Values
		calls int
	}{
		{"search", url.Values{"q": {"{ span.size = 3 }"}, "start": {s}, "end": {e}, "limit": {"1000"}}, 4},
		{"metrics/query_range", url.Values{"q": {"{} | rate() by (resource.service.name)"}, "start": {s}, "end": {e}, "step": {"5m"}}, 4},
		{"metrics/query", url.Values{"q": {"{} | rate()"}, "start": {s}, "end": {e}}, 1},
		{"search/tags", nil, 1},
	} {
		got := callTempo(f, tc.path, tc.form)
		require.Equal(t, http.StatusOK, got.Code, "%s: %s", tc.path, got.Body)
		made := calls.take()
		require.Len(t, made, tc.calls, tc.path)
		if tc.path == "metrics/query_range" {
			// On a grid aligned to the split interval, a part is an hour.
			for _, c := range made {
				start, err := time.Parse(time.RFC3339Nano, c.form.Get("start"))
				require.NoError(t, err)
				end, err := time.Parse(time.RFC3339Nano, c.form.Get("end"))
				require.NoError(t, err)
				require.Equal(t, time.Hour, end.Sub(start))
				require.Zero(t, start.UnixNano()%int64(time.Hour))
			}
		}
		want := direct(local, tc.path, tc.form)
		calls.take()
		switch tc.path {
		case "search":
			require.Equal(t, decodeSearch(t, want.Body.Bytes()).Traces, decodeSearch(t, got.Body.Bytes()).Traces)
		case "metrics/query_range":
			require.Equal(t, decodeRange(t, want.Body.Bytes()), decodeRange(t, got.Body.Bytes()))
		default:
			require.Equal(t, want.Body.String(), got.Body.String())
		}
	}
}
