package lokiapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"runtime"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/canopy-observability/canopy/pkg/logql"
)

func TestDetected(t *testing.T) {
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
			name: "detected labels of every stream", path: "detected_labels", params: inRange(),
			want: `{"detectedLabels":[{"label":"app","cardinality":3},{"label":"env","cardinality":2},{"label":"job","cardinality":2}]}`,
		},
		{
			// Labels with one value say nothing about these streams.
			name: "detected labels of a selector", path: "detected_labels", params: inRange("query", `{job="fake"}`),
			want: `{"detectedLabels":[{"label":"app","cardinality":2},{"label":"env","cardinality":2}]}`,
		},
		{
			name: "detected labels of nothing: []", path: "detected_labels", params: inRange("query", `{job="none"}`),
			want: `{"detectedLabels":[]}`,
		},
		{
			// logfmt and JSON fields of the sampled lines and structured
			// metadata (parsers null), typed; jsonPath for JSON fields.
			name: "detected fields", path: "detected_fields", params: inRange("query", `{job="fake"}`),
			want: `{"fields":[
				{"label":"duration","type":"duration","cardinality":3,"parsers":["logfmt"]},
				{"label":"latency_ms","type":"float","cardinality":2,"parsers":["json"],"jsonPath":["latency_ms"]},
				{"label":"level","type":"string","cardinality":3,"parsers":["logfmt","json"],"jsonPath":["level"]},
				{"label":"msg","type":"string","cardinality":4,"parsers":["logfmt","json"],"jsonPath":["msg"]},
				{"label":"req_method","type":"string","cardinality":2,"parsers":["json"],"jsonPath":["req","method"]},
				{"label":"req_path","type":"string","cardinality":2,"parsers":["json"],"jsonPath":["req","path"]},
				{"label":"status","type":"int","cardinality":2,"parsers":["logfmt"]},
				{"label":"trace_id","type":"string","cardinality":1,"parsers":null}],"limit":1000}`,
		},
		{
			name: "detected fields, limit", path: "detected_fields", params: inRange("query", `{app="api"} |= "error"`, "limit", "2"),
			want: `{"fields":[
				{"label":"duration","type":"duration","cardinality":1,"parsers":["logfmt"]},
				{"label":"level","type":"string","cardinality":1,"parsers":["logfmt"]}],"limit":2}`,
		},
		{
			name: "detected fields of nothing: []", path: "detected_fields", params: inRange("query", `{job="none"}`),
			want: `{"fields":[],"limit":1000}`,
		},
		{
			name: "field values", path: "detected_field/status/values", params: inRange("query", `{job="fake"}`),
			want: `{"values":["200","500"],"limit":1000}`,
		},
		{
			name: "JSON field values", path: "detected_field/req_method/values", params: inRange("query", `{job="fake"}`, "limit", "1"),
			want: `{"values":["GET"],"limit":1}`,
		},
		{
			name: "values of an unknown field: []", path: "detected_field/nope/values", params: inRange("query", `{job="fake"}`),
			want: `{"values":[],"limit":1000}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, a, "/loki/api/v1/"+tc.path, tc.params)
			require.Equal(t, http.StatusOK, code, body)
			require.JSONEq(t, tc.want, body)
		})
	}
	code, body := get(t, a, "/loki/api/v1/detected_fields", vals("query", `count_over_time({job="fake"}[1m])`))
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, `invalid parameter "query": fields are detected in a log query such as {app="x"}, not in a metric query`, body)
}

func TestDetectedStaticLabels(t *testing.T) {
	b := &fakeBackend{}
	b.add(labels.FromStrings("namespace", "prod", "pod", "p1", "app", "x"), logql.Entry{Timestamp: at(1e9), Line: "a"})
	b.add(labels.FromStrings("namespace", "prod", "pod", "p2", "app", "x"), logql.Entry{Timestamp: at(2e9), Line: "b"})
	code, body := get(t, newTestAPI(t, testConfig(), b), "/loki/api/v1/detected_labels", vals("query", `{app="x"}`, "start", startT0, "end", end10s))
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `{"detectedLabels":[{"label":"namespace","cardinality":1},{"label":"pod","cardinality":2}]}`, body)
}

func TestFieldTypes(t *testing.T) {
	for v, want := range map[string]string{
		"200": typeInt, "-3": typeInt, "1.5": typeFloat, "1e3": typeFloat, "true": typeBoolean, "false": typeBoolean,
		"15ms": typeDuration, "1h30m": typeDuration, "1.5s": typeDuration, "10KB": typeBytes, "2.5MiB": typeBytes,
		"GET": typeString, "": typeString, "ms": typeString, "1 minute": typeString,
	} {
		require.Equal(t, want, valueType(v), v)
	}
	require.Equal(t, typeFloat, unifyTypes(typeInt, typeFloat))
	require.Equal(t, typeString, unifyTypes(typeInt, typeDuration))
	require.Equal(t, typeInt, unifyTypes("", typeInt))
}

func TestDetectLevel(t *testing.T) {
	for _, tc := range []struct {
		name         string
		stream, meta labels.Labels
		line         string
		want         string
	}{
		{name: "metadata level", meta: labels.FromStrings("level", "WARNING"), line: "level=error", want: "warn"},
		{name: "stream label", stream: labels.FromStrings("severity", "err"), want: "error"},
		{name: "logfmt", line: `ts=1 level=info msg="x"`, want: "info"},
		{name: "logfmt quoted", line: `lvl="debug" msg=x`, want: "debug"},
		{name: "logfmt key must start a word", line: `mylevel=loud x`, want: "unknown"},
		{name: "JSON", line: `{"msg":"x","severity":"CRITICAL"}`, want: "critical"},
		{name: "JSON prefers level", line: `{"severity":"info","level":"fatal"}`, want: "fatal"},
		{name: "JSON nested level is not the entry's", line: `{"req":{"level":"loud"}}`, want: "unknown"},
		{name: "keyword", line: "2024-01-01 ERROR connection refused", want: "error"},
		{name: "first keyword", line: "[warn] retrying after error", want: "warn"},
		{name: "keywords are words", line: "information about terrors", want: "unknown"},
		{name: "unknown value", meta: labels.FromStrings("level", "loud"), want: "unknown"},
		{name: "nothing", line: "checkpoint complete", want: "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, detectLevel(tc.stream, tc.meta, tc.line))
		})
	}
}

func TestDetectedLevelFilter(t *testing.T) {
	// Drilldown filters and breaks down by detected_level; an entry that
	// has one (as metadata or stream label) keeps it.
	b := testBackend()
	b.add(labels.FromStrings("app", "cron", "detected_level", "debug"), logql.Entry{Timestamp: at(6e9), Line: "level=error but the stream says debug"})
	b.add(labels.FromStrings("app", "batch"), logql.Entry{Timestamp: at(7e9), Line: "ERROR x", Metadata: labels.FromStrings("detected_level", "info", "k", "v")})
	a := newTestAPI(t, testConfig(), b)
	code, body := get(t, a, "/loki/api/v1/query", vals("query", `sum by (detected_level) (count_over_time({app=~".+"} | detected_level="error" [10s]))`))
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"detected_level":"error"},"value":[1700000010,"2"]}],"stats":{}}}`, withoutStats(t, body))

	off := testConfig()
	off.DiscoverLogLevels = false
	code, body = get(t, newTestAPI(t, off, b), "/loki/api/v1/query", vals("query", `sum by (detected_level) (count_over_time({app=~".+"} | detected_level="error" [10s]))`))
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `{"status":"success","data":{"resultType":"vector","result":[],"stats":{}}}`, withoutStats(t, body))
}

func TestPatterns(t *testing.T) {
	require.Equal(t, `ts=<_>:<_>:<_> caller=grpc_logging.go:<_> level=info method=/cortex.Ingester/Push duration=<_> msg=gRPC`,
		patternOf(`ts=2024-03-30T23:03:40 caller=grpc_logging.go:66 level=info method=/cortex.Ingester/Push duration=200ms msg=gRPC`))
	require.Equal(t, `GET /api/<_>/users/<_> from <_>:<_>`, patternOf(`GET /api/v1/users/123 from 10.0.0.1:8080`))

	a := newTestAPI(t, testConfig(), testBackend())
	code, body := get(t, a, "/loki/api/v1/patterns", vals("query", `{job=~".+"}`, "start", startT0, "end", end10s, "step", "5s"))
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `{"status":"success","data":[
		{"pattern":"level=info msg=\"request done\" status=<_> duration=<_>","samples":[[1700000000,2]]},
		{"pattern":"ERROR connection refused","samples":[[1700000000,1]]},
		{"pattern":"checkpoint complete","samples":[[1700000005,1]]},
		{"pattern":"level=error msg=failed status=<_> duration=<_>","samples":[[1700000000,1]]},
		{"pattern":"{\"level\":\"info\",\"msg\":\"ok\",\"latency_ms\":<_>,\"req\":{\"method\":\"POST\",\"path\":\"/b\"}}","samples":[[1700000000,1]]},
		{"pattern":"{\"level\":\"warn\",\"msg\":\"slow\",\"latency_ms\":<_>,\"req\":{\"method\":\"GET\",\"path\":\"/a\"}}","samples":[[1700000000,1]]}]}`, body)

	code, body = get(t, a, "/loki/api/v1/patterns", vals("query", `{job="none"}`, "start", startT0, "end", end10s))
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `{"status":"success","data":[]}`, body)
}

func TestStatusEndpoints(t *testing.T) {
	cfg := testConfig()
	cfg.MaxQueryBytesRead = 10 << 30
	a := newTestAPI(t, cfg, testBackend())

	code, body := get(t, a, "/loki/api/v1/status/buildinfo", nil)
	require.Equal(t, http.StatusOK, code, body)
	var bi map[string]string
	require.NoError(t, json.Unmarshal([]byte(body), &bi))
	require.Equal(t, "3.7.0", bi["version"])
	require.Equal(t, runtime.Version(), bi["goVersion"])
	require.NotEmpty(t, bi["canopyVersion"])
	for _, k := range []string{"revision", "branch", "buildDate", "buildUser"} {
		require.Contains(t, bi, k)
	}

	code, body = get(t, a, "/loki/api/v1/drilldown-limits", nil)
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `{"limits":{
		"discover_log_levels":true,"discover_service_name":[],
		"log_level_fields":["level","LEVEL","Level","severity","SEVERITY","Severity","lvl","LVL","Lvl"],
		"max_entries_limit_per_query":5000,"max_line_size_truncate":false,"max_query_bytes_read":"10GB",
		"max_query_length":"0s","max_query_lookback":"0s","max_query_range":"0s","max_query_series":500,
		"metric_aggregation_enabled":false,"pattern_persistence_enabled":false,"query_timeout":"2m",
		"retention_period":"0s","volume_enabled":true,"volume_max_series":5000},
		"pattern_ingester_enabled":true,"version":"3.7.0"}`, body)

	for _, method := range []string{http.MethodGet, http.MethodPost} {
		code, body, _ = call(t, a, method, "/loki/api/v1/format_query", vals("query", `sum(rate({a="b"}|="x"[5m]))by(c)`), nil)
		require.Equal(t, http.StatusOK, code, body)
		require.JSONEq(t, `{"status":"success","data":"sum by (c) (rate({a=\"b\"} |= \"x\" [5m]))"}`, body)
	}
	code, body = get(t, a, "/loki/api/v1/format_query", vals("query", `sum(`))
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, "parse error at position")
}
