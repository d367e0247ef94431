package lokiapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

func TestLabelsAndSeries(t *testing.T) {
	a := newTestAPI(t, testConfig(), testBackend())
	inRange := func(kv ...string) url.Values {
		return vals(append([]string{"start", startT0, "end", end10s}, kv...)...)
	}
	for _, tc := range []struct {
		name   string
		method string
		path   string
		params url.Values
		want   string
	}{
		{name: "labels", path: "labels", params: inRange(), want: `{"status":"success","data":["app","env","job"]}`},
		{name: "label (alias)", path: "label", params: inRange(), want: `{"status":"success","data":["app","env","job"]}`},
		{name: "labels POST", method: http.MethodPost, path: "labels", params: inRange(), want: `{"status":"success","data":["app","env","job"]}`},
		{name: "labels of a selector", path: "labels", params: inRange("query", `{app="db"}`), want: `{"status":"success","data":["app","env","job"]}`},
		{name: "labels of nothing: []", path: "labels", params: vals("start", "1800000000", "end", "1800000010"), want: `{"status":"success","data":[]}`},
		{name: "label values", path: "label/app/values", params: inRange(), want: `{"status":"success","data":["api","db","web"]}`},
		{name: "label values of a selector", path: "label/app/values", params: inRange("query", `{env="prod"}`), want: `{"status":"success","data":["api","db"]}`},
		{name: "values of an unknown label: []", path: "label/nope/values", params: inRange(), want: `{"status":"success","data":[]}`},
		{name: "series, match[] repeated", path: "series", params: inRange("match[]", `{app="db"}`, "match[]", `{app="api"}`),
			want: `{"status":"success","data":[{"app":"api","env":"prod","job":"fake"},{"app":"db","env":"prod","job":"other"}]}`},
		{name: "series, POST form", method: http.MethodPost, path: "series", params: inRange("match[]", `{job="other"}`),
			want: `{"status":"success","data":[{"app":"db","env":"prod","job":"other"}]}`},
		{name: "series, match", path: "series", params: inRange("match", `{app="web"}`),
			want: `{"status":"success","data":[{"app":"web","env":"dev","job":"fake"}]}`},
		{name: "series, all", path: "series", params: inRange(),
			want: `{"status":"success","data":[{"app":"api","env":"prod","job":"fake"},{"app":"db","env":"prod","job":"other"},{"app":"web","env":"dev","job":"fake"}]}`},
		{name: "series of nothing: []", path: "series", params: inRange("match[]", `{app="none"}`), want: `{"status":"success","data":[]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			code, body, _ := call(t, a, method, "/loki/api/v1/"+tc.path, tc.params, nil)
			require.Equal(t, http.StatusOK, code, body)
			require.JSONEq(t, tc.want, body)
		})
	}
}

func TestMetadataErrors(t *testing.T) {
	failing := testBackend()
	failing.err = errors.New("index unreachable")
	for _, tc := range []struct {
		name    string
		backend *fakeBackend
		path    string
		params  url.Values
		code    int
		body    string
	}{
		{name: "bad selector", path: "series", params: vals("match[]", `{app=`), code: 400, body: `invalid parameter "match[]": parse error at position 6: expected a quoted value, found end of query`},
		{name: "metric query as a selector is fine, vector() is not", path: "labels", params: vals("query", `vector(1)`), code: 400, body: `invalid parameter "query": the query has no stream selector`},
		{name: "end before start", path: "labels", params: vals("start", end10s, "end", startT0), code: 400, body: "the end of the range (1700000000000000000) is before its start (1700000010000000000)"},
		{name: "store failure", backend: failing, path: "label/app/values", code: 500, body: "index unreachable"},
		{name: "stats need a query", path: "index/stats", code: 400, body: `the query parameter (a stream selector such as {app="x"}) is required`},
		{name: "volume needs a query", path: "index/volume", code: 400, body: `the query parameter (a stream selector such as {app="x"}) is required`},
		{name: "bad aggregateBy", path: "index/volume", params: vals("query", `{app="api"}`, "aggregateBy", "stream"), code: 400, body: `invalid parameter "aggregateBy": "stream" is neither series nor labels`},
		{name: "bad volume limit", path: "index/volume", params: vals("query", `{app="api"}`, "limit", "x"), code: 400, body: `invalid parameter "limit": "x" is not a positive integer`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.backend
			if b == nil {
				b = testBackend()
			}
			code, body := get(t, newTestAPI(t, testConfig(), b), "/loki/api/v1/"+tc.path, tc.params)
			require.Equal(t, tc.code, code, body)
			require.Equal(t, tc.body, body)
		})
	}
}

// statsBackend answers index/stats from its "index".
type statsBackend struct {
	*fakeBackend
	got []*labels.Matcher
}

func (b *statsBackend) IndexStats(_ context.Context, _, _ int64, ms []*labels.Matcher) (IndexStats, error) {
	b.got = ms
	return IndexStats{Streams: 1, Chunks: 2, Entries: 3, Bytes: 4}, nil
}

func TestIndexStats(t *testing.T) {
	a := newTestAPI(t, testConfig(), testBackend())
	// Grafana sends the whole query; its selector is what counts.
	code, body := get(t, a, "/loki/api/v1/index/stats", vals("query", `{job="fake"} |= "level"`, "start", startT0, "end", end10s))
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `{"streams":2,"chunks":2,"entries":5,"bytes":317}`, body)

	code, body = get(t, a, "/loki/api/v1/index/stats", vals("query", `sum(rate({job="none"}[1m]))`, "start", startT0, "end", end10s))
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `{"streams":0,"chunks":0,"entries":0,"bytes":0}`, body)

	sb := &statsBackend{fakeBackend: testBackend()}
	code, body = get(t, newTestAPI(t, testConfig(), sb), "/loki/api/v1/index/stats", vals("query", `{job="fake"}`))
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `{"streams":1,"chunks":2,"entries":3,"bytes":4}`, body)
	require.Equal(t, `job="fake"`, sb.got[0].String())
}

func TestVolume(t *testing.T) {
	a := newTestAPI(t, testConfig(), testBackend())
	inRange := func(kv ...string) url.Values {
		return vals(append([]string{"start", startT0, "end", end10s}, kv...)...)
	}
	for _, tc := range []struct {
		name   string
		path   string
		params url.Values
		want   string
	}{
		{
			// By default the series are the label values of the query's
			// matchers; the largest first.
			name: "volume by the selector's labels", path: "index/volume", params: inRange("query", `{env=~".+"}`),
			want: `{"status":"success","data":{"resultType":"vector","result":[
				{"metric":{"env":"prod"},"value":[1700000010,"198"]},
				{"metric":{"env":"dev"},"value":[1700000010,"162"]}],"stats":{}}}`,
		},
		{
			// What Logs Drilldown's service selection asks for.
			name: "Drilldown's volume", path: "index/volume", params: vals("query", `{app=~".+"}`, "limit", "5000", "start", "2023-11-14T22:13:20.000Z", "end", "2023-11-14T22:13:30.000Z"),
			want: `{"status":"success","data":{"resultType":"vector","result":[
				{"metric":{"app":"web"},"value":[1700000010,"162"]},
				{"metric":{"app":"api"},"value":[1700000010,"155"]},
				{"metric":{"app":"db"},"value":[1700000010,"43"]}],"stats":{}}}`,
		},
		{
			name: "limit", path: "index/volume", params: inRange("query", `{env=~".+"}`, "limit", "1"),
			want: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"env":"prod"},"value":[1700000010,"198"]}],"stats":{}}}`,
		},
		{
			name: "targetLabels", path: "index/volume", params: inRange("query", `{env=~".+", app!="x"}`, "targetLabels", "job"),
			want: `{"status":"success","data":{"resultType":"vector","result":[
				{"metric":{"job":"fake"},"value":[1700000010,"317"]},
				{"metric":{"job":"other"},"value":[1700000010,"43"]}],"stats":{}}}`,
		},
		{
			// aggregateBy=labels: one series per label name, value "".
			name: "aggregateBy labels", path: "index/volume", params: inRange("query", `{env=~".+"}`, "targetLabels", "env,app", "aggregateBy", "labels"),
			want: `{"status":"success","data":{"resultType":"vector","result":[
				{"metric":{"app":""},"value":[1700000010,"360"]},
				{"metric":{"env":""},"value":[1700000010,"360"]}],"stats":{}}}`,
		},
		{
			// A step at t counts the bytes of (t-step, t]; empty steps are
			// left out.
			name: "volume_range", path: "index/volume_range", params: inRange("query", `{env=~".+"}`, "step", "2s"),
			want: `{"status":"success","data":{"resultType":"matrix","result":[
				{"metric":{"env":"dev"},"values":[[1700000002,"81"],[1700000004,"81"]]},
				{"metric":{"env":"prod"},"values":[[1700000002,"101"],[1700000004,"78"],[1700000006,"19"]]}],"stats":{}}}`,
		},
		{
			name: "volume of nothing", path: "index/volume_range", params: inRange("query", `{env="none"}`, "step", "2s"),
			want: `{"status":"success","data":{"resultType":"matrix","result":[],"stats":{}}}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, a, "/loki/api/v1/"+tc.path, tc.params)
			require.Equal(t, http.StatusOK, code, body)
			require.JSONEq(t, tc.want, withoutStats(t, body))
		})
	}
}
