package lokiapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/canopy-observability/canopy/pkg/logql"
)

var (
	startT0 = fmt.Sprint(t0)
	end10s  = fmt.Sprint(at(10 * time.Second))
	catHdr  = http.Header{"X-Loki-Response-Encoding-Flags": {"categorize-labels"}}
)

func TestQueryRange(t *testing.T) {
	a := newTestAPI(t, testConfig(), testBackend())
	for _, tc := range []struct {
		name   string
		method string
		params url.Values
		header http.Header
		want   string
	}{
		{
			name:   "log query, backward, limit",
			params: vals("query", `{job="fake"}`, "start", startT0, "end", end10s, "limit", "3", "step", "1000ms"),
			// Without categorize-labels, structured metadata is part of the
			// stream's labels, as in Loki.
			want: `{"status":"success","data":{"resultType":"streams","result":[
				{"stream":{"app":"api","env":"prod","job":"fake"},"values":[["1700000002000000000","level=error msg=failed status=500 duration=1.5s"]]},
				{"stream":{"app":"api","env":"prod","job":"fake","trace_id":"abc"},"values":[["1700000003000000000","level=info msg=\"request done\" status=200 duration=20ms"]]},
				{"stream":{"app":"web","env":"dev","job":"fake"},"values":[["1700000004000000000","{\"level\":\"info\",\"msg\":\"ok\",\"latency_ms\":12.5,\"req\":{\"method\":\"POST\",\"path\":\"/b\"}}"]]}],"stats":{}}}`,
		},
		{
			name:   "log query, forward, POST form",
			method: http.MethodPost,
			params: vals("query", `{job="fake"} |= "level"`, "start", startT0, "end", end10s, "limit", "2", "direction", "FORWARD"),
			want: `{"status":"success","data":{"resultType":"streams","result":[
				{"stream":{"app":"api","env":"prod","job":"fake"},"values":[["1700000001000000000","level=info msg=\"request done\" status=200 duration=15ms"]]},
				{"stream":{"app":"web","env":"dev","job":"fake"},"values":[["1700000001500000000","{\"level\":\"warn\",\"msg\":\"slow\",\"latency_ms\":250,\"req\":{\"method\":\"GET\",\"path\":\"/a\"}}"]]}],"stats":{}}}`,
		},
		{
			name:   "interval keeps one entry per interval of a stream",
			params: vals("query", `{app="web"}`, "start", startT0, "end", end10s, "interval", "3s", "direction", "forward"),
			want: `{"status":"success","data":{"resultType":"streams","result":[
				{"stream":{"app":"web","env":"dev","job":"fake"},"values":[["1700000001500000000","{\"level\":\"warn\",\"msg\":\"slow\",\"latency_ms\":250,\"req\":{\"method\":\"GET\",\"path\":\"/a\"}}"]]}],"stats":{}}}`,
		},
		{
			name:   "categorize-labels: stream labels apart, structuredMetadata and parsed per entry, {} when neither",
			params: vals("query", `{job="fake"} | logfmt`, "start", startT0, "end", end10s, "limit", "10"),
			header: catHdr,
			want: `{"status":"success","data":{"resultType":"streams","encodingFlags":["categorize-labels"],"result":[
				{"stream":{"app":"api","env":"prod","job":"fake"},"values":[
					["1700000003000000000","level=info msg=\"request done\" status=200 duration=20ms",{"structuredMetadata":{"trace_id":"abc"},"parsed":{"duration":"20ms","level":"info","msg":"request done","status":"200"}}],
					["1700000002000000000","level=error msg=failed status=500 duration=1.5s",{"parsed":{"duration":"1.5s","level":"error","msg":"failed","status":"500"}}],
					["1700000001000000000","level=info msg=\"request done\" status=200 duration=15ms",{"parsed":{"duration":"15ms","level":"info","msg":"request done","status":"200"}}]]},
				{"stream":{"app":"web","env":"dev","job":"fake"},"values":[
					["1700000004000000000","{\"level\":\"info\",\"msg\":\"ok\",\"latency_ms\":12.5,\"req\":{\"method\":\"POST\",\"path\":\"/b\"}}",{}],
					["1700000001500000000","{\"level\":\"warn\",\"msg\":\"slow\",\"latency_ms\":250,\"req\":{\"method\":\"GET\",\"path\":\"/a\"}}",{}]]}],"stats":{}}}`,
		},
		{
			name:   "metric query: matrix, values as strings, oldest first",
			params: vals("query", `sum by (app) (count_over_time({job="fake"}[2s]))`, "start", startT0, "end", fmt.Sprint(at(4*time.Second)), "step", "2"),
			want: `{"status":"success","data":{"resultType":"matrix","result":[
				{"metric":{"app":"api"},"values":[[1700000002,"2"],[1700000004,"1"]]},
				{"metric":{"app":"web"},"values":[[1700000002,"1"],[1700000004,"1"]]}],"stats":{}}}`,
		},
		{
			// Grafana's logs volume query; detected_level is derived from
			// the lines (the level= pairs, the JSON level fields).
			name:   "Grafana's logs volume query",
			params: vals("query", `sum by (level, detected_level) (count_over_time({job="fake"} | drop __error__[1s]))`, "start", startT0, "end", fmt.Sprint(at(5*time.Second)), "step", "1000ms"),
			header: http.Header{"X-Loki-Response-Encoding-Flags": {"categorize-labels"}, "X-Query-Tags": {"Source=logvolhist"}},
			want: `{"status":"success","data":{"resultType":"matrix","encodingFlags":["categorize-labels"],"result":[
				{"metric":{"detected_level":"error"},"values":[[1700000002,"1"]]},
				{"metric":{"detected_level":"info"},"values":[[1700000001,"1"],[1700000003,"1"],[1700000004,"1"]]},
				{"metric":{"detected_level":"warn"},"values":[[1700000002,"1"]]}],"stats":{}}}`,
		},
		{
			name:   "no match: an empty result list, not null",
			params: vals("query", `{job="none"}`, "start", startT0, "end", end10s),
			want:   `{"status":"success","data":{"resultType":"streams","result":[],"stats":{}}}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			code, body, hdr := call(t, a, method, "/loki/api/v1/query_range", tc.params, tc.header)
			require.Equal(t, http.StatusOK, code, body)
			require.Equal(t, "application/json; charset=utf-8", hdr.Get("Content-Type"))
			require.JSONEq(t, tc.want, withoutStats(t, body))
			if tc.header != nil {
				// Grafana's streaming parser needs the flag before the result.
				require.Less(t, strings.Index(body, `"encodingFlags"`), strings.Index(body, `"result"`))
			}
		})
	}
}

func TestQueryStats(t *testing.T) {
	a := newTestAPI(t, testConfig(), testBackend())
	_, body := get(t, a, "/loki/api/v1/query_range", vals("query", `{job="fake"}`, "start", startT0, "end", end10s))
	require.Contains(t, body, `"totalBytesProcessed":317,"totalLinesProcessed":5,`)
	require.Contains(t, body, `"totalEntriesReturned":5,`)
	require.Contains(t, body, `"decompressedBytes":317,"decompressedLines":5,`)
	require.Regexp(t, `"summary":\{"bytesProcessedPerSecond":\d+,"linesProcessedPerSecond":\d+,"totalBytesProcessed":317,"totalLinesProcessed":5,"execTime":[0-9.e-]+,"queueTime":0,`, body)
}

func TestInstantQuery(t *testing.T) {
	a := newTestAPI(t, testConfig(), testBackend())
	count := `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000010,"5"]}],"stats":{}}}`
	for _, tc := range []struct {
		name   string
		params url.Values
		want   string
	}{
		{
			// Grafana's health check: exactly one sample with the value 2.
			// Loki reads 4000000000 (up to 10^10) as seconds.
			name:   "Grafana health check",
			params: vals("direction", "backward", "query", "vector(1)+vector(1)", "time", "4000000000"),
			want:   `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[4000000000,"2"]}],"stats":{}}}`,
		},
		{name: "time in nanoseconds", params: vals("query", `sum(count_over_time({job="fake"}[10s]))`, "time", fmt.Sprint(at(10*time.Second))), want: count},
		{name: "time in seconds", params: vals("query", `sum(count_over_time({job="fake"}[10s]))`, "time", "1700000010"), want: count},
		{name: "time in float seconds", params: vals("query", `sum(count_over_time({job="fake"}[10s]))`, "time", "1700000010.000"), want: count},
		{name: "time RFC3339", params: vals("query", `sum(count_over_time({job="fake"}[10s]))`, "time", "2023-11-14T22:13:30Z"), want: count},
		{name: "time RFC3339Nano with zone", params: vals("query", `sum(count_over_time({job="fake"}[10s]))`, "time", "2023-11-14T23:13:30.000000000+01:00"), want: count},
		{name: "time defaults to now", params: vals("query", `sum(count_over_time({job="fake"}[10s]))`), want: count},
		{name: "scalar", params: vals("query", `1+1`), want: `{"status":"success","data":{"resultType":"scalar","result":[1700000010,"2"],"stats":{}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, a, "/loki/api/v1/query", tc.params)
			require.Equal(t, http.StatusOK, code, body)
			require.JSONEq(t, tc.want, withoutStats(t, body))
		})
	}
}

// ctxBackend fails as a store does when its context ends.
type ctxBackend struct{ *fakeBackend }

func (b ctxBackend) Select(ctx context.Context, p logql.SelectParams) (logql.StreamIterator, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return b.fakeBackend.Select(ctx, p)
}

func TestQueryErrors(t *testing.T) {
	limited := testConfig()
	limited.MaxQuerySeries = 1
	smallRead := testConfig()
	smallRead.MaxQueryBytesRead = 100
	timeout := testConfig()
	timeout.QueryTimeout = time.Nanosecond
	failing := testBackend()
	failing.err = errors.New("store unreachable")
	for _, tc := range []struct {
		name     string
		cfg      *Config
		backend  *fakeBackend
		path     string
		params   url.Values
		canceled bool
		code     int
		body     string // exact, or a substring when contains
		contains bool
	}{
		{name: "log query on /query", path: "query", params: vals("query", `{job="fake"}`), code: 400,
			body: "log queries are not supported as an instant query type: make the query a range query, or a metric query such as count_over_time"},
		{name: "parse error", path: "query_range", params: vals("query", `{job="fake"`), code: 400,
			body: `parse error at position 12: expected "}" or ",", found end of query`},
		{name: "empty query", path: "query_range", params: vals("query", ""), code: 400, body: "parse error", contains: true},
		{name: "bad time", path: "query", params: vals("query", "vector(1)", "time", "yesterday"), code: 400,
			body: `invalid parameter "time": cannot parse "yesterday" as a timestamp (RFC3339, Unix seconds or nanoseconds)`},
		{name: "bad start", path: "query_range", params: vals("query", `{a="b"}`, "start", "1.2.3"), code: 400, body: `invalid parameter "start"`, contains: true},
		{name: "bad since", path: "query_range", params: vals("query", `{a="b"}`, "since", "a while"), code: 400, body: `invalid parameter "since"`, contains: true},
		{name: "bad step", path: "query_range", params: vals("query", `{a="b"}`, "step", "fast"), code: 400,
			body: `invalid parameter "step": cannot parse "fast" as a duration (e.g. 15s, 1000ms, 1m, or float seconds)`},
		{name: "zero step", path: "query_range", params: vals("query", `{a="b"}`, "step", "0"), code: 400, body: `invalid parameter "step": it must be positive`},
		{name: "too many points", path: "query_range", params: vals("query", `{a="b"}`, "start", startT0, "end", fmt.Sprint(at(time.Hour)), "step", "0.1"), code: 400,
			body: "the query would have more than 11000 points per series: increase step (now 100ms) or shorten the range"},
		{name: "end before start", path: "query_range", params: vals("query", `{a="b"}`, "start", end10s, "end", startT0), code: 400,
			body: "the end of the query (1700000000000000000) is before its start (1700000010000000000)"},
		{name: "negative interval", path: "query_range", params: vals("query", `{a="b"}`, "interval", "-1s"), code: 400, body: `invalid parameter "interval": it must not be negative`},
		{name: "bad limit", path: "query_range", params: vals("query", `{a="b"}`, "limit", "-1"), code: 400, body: `invalid parameter "limit": "-1" is not a positive integer`},
		{name: "limit over the max entries", path: "query_range", params: vals("query", `{a="b"}`, "limit", "5001"), code: 400,
			body: "max entries limit per query exceeded: limit 5001 > 5000; ask for fewer lines or raise -querier.logs.max-entries-limit-per-query"},
		{name: "bad direction", path: "query_range", params: vals("query", `{a="b"}`, "direction", "sideways"), code: 400,
			body: `invalid parameter "direction": "sideways" is neither forward nor backward`},
		{name: "max series", cfg: &limited, path: "query_range", params: vals("query", `count_over_time({job="fake"}[10s])`, "start", startT0, "end", end10s), code: 400,
			body: "-querier.logs.max-query-series", contains: true},
		{name: "max streams of a log query", cfg: &limited, path: "query_range", params: vals("query", `{job="fake"}`, "start", startT0, "end", end10s), code: 400,
			body: "-querier.logs.max-query-series", contains: true},
		{name: "max bytes read", cfg: &smallRead, path: "query_range", params: vals("query", `{job="fake"}`, "start", startT0, "end", end10s), code: 400,
			body: "-querier.logs.max-query-bytes-read", contains: true},
		{name: "store failure", backend: failing, path: "query_range", params: vals("query", `{job="fake"}`, "start", startT0, "end", end10s), code: 500, body: "store unreachable"},
		{name: "client gone", path: "query_range", params: vals("query", `{job="fake"}`, "start", startT0, "end", end10s), canceled: true, code: 499,
			body: "The request was cancelled by the client."},
		{name: "timeout", cfg: &timeout, path: "query_range", params: vals("query", `{job="fake"}`, "start", startT0, "end", end10s), code: 504,
			body: "-querier.logs.query-timeout", contains: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			if tc.cfg != nil {
				cfg = *tc.cfg
			}
			b := tc.backend
			if b == nil {
				b = testBackend()
			}
			a := newTestAPI(t, cfg, ctxBackend{b})
			req := httptest.NewRequest(http.MethodGet, "/loki/api/v1/"+tc.path+"?"+tc.params.Encode(), nil)
			if tc.canceled {
				ctx, cancel := context.WithCancel(req.Context())
				cancel()
				req = req.WithContext(ctx)
			}
			rec := httptest.NewRecorder()
			a.ServeHTTP(rec, req)
			require.Equal(t, tc.code, rec.Code, rec.Body.String())
			require.Equal(t, "text/plain; charset=utf-8", rec.Header().Get("Content-Type"))
			if tc.contains {
				require.Contains(t, rec.Body.String(), tc.body)
			} else {
				require.Equal(t, tc.body, rec.Body.String())
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	a := newTestAPI(t, testConfig(), testBackend())
	code, _, _ := call(t, a, http.MethodPut, "/loki/api/v1/query", nil, nil)
	require.Equal(t, http.StatusMethodNotAllowed, code)
	code, _ = get(t, a, "/loki/api/v1/nothing", nil)
	require.Equal(t, http.StatusNotFound, code)
	code, _ = get(t, a, "/loki/api/v1/push", nil)
	require.Equal(t, http.StatusNotFound, code, "push is the distributor's")
}
