package logpush

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
)

var otlpNow = time.Unix(1_800_000_000, 5)

// putAttrs sets attributes in order from name, value pairs; values are what
// pcommon.Value.FromRaw takes.
func putAttrs(t testing.TB, m pcommon.Map, kv ...any) {
	t.Helper()
	require.Zero(t, len(kv)%2, "name, value pairs")
	for i := 0; i < len(kv); i += 2 {
		require.NoError(t, m.PutEmpty(kv[i].(string)).FromRaw(kv[i+1]))
	}
}

// addResource appends a resource with attrs and returns its one scope.
func addResource(t testing.TB, ld plog.Logs, attrs ...any) plog.ScopeLogs {
	rl := ld.ResourceLogs().AppendEmpty()
	putAttrs(t, rl.Resource().Attributes(), attrs...)
	return rl.ScopeLogs().AppendEmpty()
}

// addRecord appends a record with a time, a string body and attrs.
func addRecord(t testing.TB, sl plog.ScopeLogs, ts uint64, body string, attrs ...any) plog.LogRecord {
	r := sl.LogRecords().AppendEmpty()
	r.SetTimestamp(pcommon.Timestamp(ts))
	r.Body().SetStr(body)
	putAttrs(t, r.Attributes(), attrs...)
	return r
}

func TestFromOTLPDefaultMapping(t *testing.T) {
	ld := plog.NewLogs()
	sl := addResource(t, ld,
		"service.name", "checkout",
		"service.namespace", "shop",
		"service.instance.id", "checkout-7d9f-abc",
		"deployment.environment.name", "prod",
		"cloud.region", "eu-west-1",
		"k8s.cluster.name", "eu1",
		"k8s.namespace.name", "shop",
		"k8s.pod.name", "checkout-7d9f-abc",
		"k8s.container.name", "app",
		"k8s.deployment.name", "checkout",
		"k8s.node.name", "node-3",
		"host.name", "node-3",
		"process.pid", 4242,
		"telemetry.sdk.language", "go",
	)
	sl.Scope().SetName("github.com/acme/log")
	sl.Scope().SetVersion("1.2.0")
	sl.Scope().SetDroppedAttributesCount(1)
	putAttrs(t, sl.Scope().Attributes(), "library.kind", "logger")

	r := addRecord(t, sl, 1_700_000_000_123_456_789, "order placed", "http.method", "POST", "user.id", 42)
	r.SetObservedTimestamp(1_700_000_000_200_000_000)
	r.SetSeverityNumber(plog.SeverityNumberInfo)
	r.SetSeverityText("INFO")
	r.SetTraceID(pcommon.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36})
	r.SetSpanID(pcommon.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7})
	r.SetFlags(plog.DefaultLogRecordFlags.WithIsSampled(true))
	r.SetDroppedAttributesCount(2)
	r.SetEventName("order.placed")

	r = sl.LogRecords().AppendEmpty() // the least a record can be
	r.SetObservedTimestamp(1_700_000_001_000_000_000)

	got, err := FromOTLP(ld, OTLPConfig{}, otlpNow)
	require.NoError(t, err)
	shared := []string{
		"host_name", "node-3",
		"k8s_node_name", "node-3",
		"library_kind", "logger",
		"process_pid", "4242",
		"scope_dropped_attributes_count", "1",
		"scope_name", "github.com/acme/log",
		"scope_version", "1.2.0",
		"telemetry_sdk_language", "go",
	}
	require.Equal(t, []Stream{{
		Labels: labels.FromStrings(
			"cloud_region", "eu-west-1",
			"deployment_environment_name", "prod",
			"k8s_cluster_name", "eu1",
			"k8s_container_name", "app",
			"k8s_deployment_name", "checkout",
			"k8s_namespace_name", "shop",
			"k8s_pod_name", "checkout-7d9f-abc",
			"service_instance_id", "checkout-7d9f-abc",
			"service_name", "checkout",
			"service_namespace", "shop",
		),
		Entries: []Entry{
			{
				Timestamp: 1_700_000_000_123_456_789,
				Line:      "order placed",
				Metadata: labels.FromStrings(append([]string{
					"dropped_attributes_count", "2",
					"event_name", "order.placed",
					"flags", "1",
					"http_method", "POST",
					"observed_timestamp", "1700000000200000000",
					"severity_number", "9",
					"severity_text", "INFO",
					"span_id", "00f067aa0ba902b7",
					"trace_id", "4bf92f3577b34da6a3ce929d0e0e4736",
					"user_id", "42",
				}, shared...)...),
			},
			{Timestamp: 1_700_000_001_000_000_000, Metadata: labels.FromStrings(shared...)},
		},
	}}, got)
}

func TestFromOTLPServiceName(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg   OTLPConfig
		attrs []any
		want  labels.Labels
	}{
		"service.name": {
			attrs: []any{"service.name", "api"},
			want:  labels.FromStrings("service_name", "api"),
		},
		"no attributes": {
			want: labels.FromStrings("service_name", "unknown_service"),
		},
		"only metadata attributes": {
			attrs: []any{"host.name", "h"},
			want:  labels.FromStrings("service_name", "unknown_service"),
		},
		"empty service.name": {
			attrs: []any{"service.name", "", "k8s.namespace.name", "ns"},
			want:  labels.FromStrings("k8s_namespace_name", "ns", "service_name", "unknown_service"),
		},
		"from k8s.container.name": {
			attrs: []any{"k8s.namespace.name", "ns", "k8s.container.name", "web"},
			want:  labels.FromStrings("k8s_container_name", "web", "k8s_namespace_name", "ns", "service_name", "web"),
		},
		"first candidate in attribute order": {
			attrs: []any{"k8s.job.name", "migrate", "k8s.container.name", "web"},
			want:  labels.FromStrings("k8s_container_name", "web", "k8s_job_name", "migrate", "service_name", "migrate"),
		},
		"candidate only when indexed": {
			cfg:   OTLPConfig{IgnoreDefaultIndexLabels: true, IndexLabelAttributes: []string{"team"}},
			attrs: []any{"k8s.container.name", "web", "team", "core"},
			want:  labels.FromStrings("service_name", "unknown_service", "team", "core"),
		},
		"custom index label as candidate": {
			cfg:   OTLPConfig{IndexLabelAttributes: []string{"app"}},
			attrs: []any{"app", "shop", "k8s.container.name", "web"},
			want:  labels.FromStrings("app", "shop", "k8s_container_name", "web", "service_name", "shop"),
		},
		"service.name dropped: no service_name": {
			cfg:   OTLPConfig{DropResourceAttributes: []string{"service.name"}},
			attrs: []any{"service.name", "api", "k8s.pod.name", "p"},
			want:  labels.FromStrings("k8s_pod_name", "p"),
		},
		"service_name attribute replaced": {
			cfg:   OTLPConfig{IndexLabelAttributes: []string{"service_name"}},
			attrs: []any{"service_name", "spoofed"},
			want:  labels.FromStrings("service_name", "unknown_service"),
		},
	} {
		t.Run(name, func(t *testing.T) {
			ld := plog.NewLogs()
			addRecord(t, addResource(t, ld, tc.attrs...), 1, "x")
			got, err := FromOTLP(ld, tc.cfg, otlpNow)
			require.NoError(t, err)
			require.Len(t, got, 1)
			require.Equal(t, tc.want, got[0].Labels)
		})
	}
}

func TestFromOTLPConfig(t *testing.T) {
	attrs := []any{
		"service.name", "api",
		"service.group", "payments",
		"k8s.pod.name", "api-1",
		"k8s.namespace.name", "prod",
		"host.name", "h1",
		"secret.token", "s3cr3t",
	}
	for name, tc := range map[string]struct {
		cfg        OTLPConfig
		wantLabels labels.Labels
		wantMeta   labels.Labels
	}{
		"default": {
			wantLabels: labels.FromStrings("k8s_namespace_name", "prod", "k8s_pod_name", "api-1", "service_name", "api"),
			wantMeta:   labels.FromStrings("host_name", "h1", "secret_token", "s3cr3t", "service_group", "payments"),
		},
		"add an index label": {
			cfg:        OTLPConfig{IndexLabelAttributes: []string{"service.group"}},
			wantLabels: labels.FromStrings("k8s_namespace_name", "prod", "k8s_pod_name", "api-1", "service_group", "payments", "service_name", "api"),
			wantMeta:   labels.FromStrings("host_name", "h1", "secret_token", "s3cr3t"),
		},
		"drop a default index label and a metadata attribute": {
			cfg:        OTLPConfig{DropResourceAttributes: []string{"k8s.pod.name", "secret.token"}},
			wantLabels: labels.FromStrings("k8s_namespace_name", "prod", "service_name", "api"),
			wantMeta:   labels.FromStrings("host_name", "h1", "service_group", "payments"),
		},
		"only the given index labels": {
			cfg:        OTLPConfig{IgnoreDefaultIndexLabels: true, IndexLabelAttributes: []string{"service.name", "service.group"}},
			wantLabels: labels.FromStrings("service_group", "payments", "service_name", "api"),
			wantMeta:   labels.FromStrings("host_name", "h1", "k8s_namespace_name", "prod", "k8s_pod_name", "api-1", "secret_token", "s3cr3t"),
		},
		"names match as sent, not sanitised": {
			cfg:        OTLPConfig{IndexLabelAttributes: []string{"service_group"}, DropResourceAttributes: []string{"host_name"}},
			wantLabels: labels.FromStrings("k8s_namespace_name", "prod", "k8s_pod_name", "api-1", "service_name", "api"),
			wantMeta:   labels.FromStrings("host_name", "h1", "secret_token", "s3cr3t", "service_group", "payments"),
		},
	} {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, tc.cfg.Validate())
			ld := plog.NewLogs()
			addRecord(t, addResource(t, ld, attrs...), 1, "x")
			got, err := FromOTLP(ld, tc.cfg, otlpNow)
			require.NoError(t, err)
			require.Equal(t, []Stream{{Labels: tc.wantLabels, Entries: []Entry{{Timestamp: 1, Line: "x", Metadata: tc.wantMeta}}}}, got)
		})
	}
}

func TestOTLPConfigValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg  OTLPConfig
		want string
	}{
		"zero value": {},
		"lists":      {cfg: OTLPConfig{IndexLabelAttributes: []string{"team"}, DropResourceAttributes: []string{"host.name"}, IgnoreDefaultIndexLabels: true}},
		"both lists": {cfg: OTLPConfig{IndexLabelAttributes: []string{"team"}, DropResourceAttributes: []string{"team"}}, want: `"team" is in both`},
		"no letters": {cfg: OTLPConfig{IndexLabelAttributes: []string{".."}}, want: `".." does not make a label name`},
		"empty drop": {cfg: OTLPConfig{DropResourceAttributes: []string{""}}, want: "empty"},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestFromOTLPValues(t *testing.T) {
	for name, tc := range map[string]struct {
		value any      // an attribute's, and the body's
		meta  []string // the attribute "v" as metadata
		line  string
	}{
		"string":         {value: "héllo", meta: []string{"v", "héllo"}, line: "héllo"},
		"empty string":   {value: "", line: ""},
		"int":            {value: int64(-42), meta: []string{"v", "-42"}, line: "-42"},
		"double":         {value: 1.5, meta: []string{"v", "1.5"}, line: "1.5"},
		"whole double":   {value: 3.0, meta: []string{"v", "3"}, line: "3"},
		"big double":     {value: 1e21, meta: []string{"v", "1e+21"}, line: "1e+21"},
		"small double":   {value: 1e-7, meta: []string{"v", "1e-7"}, line: "1e-7"},
		"NaN":            {value: math.NaN(), meta: []string{"v", "NaN"}, line: "NaN"},
		"infinity":       {value: math.Inf(-1), meta: []string{"v", "-Infinity"}, line: "-Infinity"},
		"bool":           {value: true, meta: []string{"v", "true"}, line: "true"},
		"bytes":          {value: []byte{0xde, 0xad, 0xbe, 0xef}, meta: []string{"v", "3q2+7w=="}, line: "3q2+7w=="},
		"empty":          {value: nil, line: ""},
		"array":          {value: []any{"a<b>&", int64(1), true, 2.5, nil}, meta: []string{"v", `["a<b>&",1,true,2.5,null]`}, line: `["a<b>&",1,true,2.5,null]`},
		"map":            {value: map[string]any{"b": "x", "a": int64(1)}, meta: []string{"v_a", "1", "v_b", "x"}, line: `{"a":1,"b":"x"}`},
		"nested map":     {value: map[string]any{"http.req": map[string]any{"method": "GET", "size": int64(10)}}, meta: []string{"v_http_req_method", "GET", "v_http_req_size", "10"}, line: `{"http.req":{"method":"GET","size":10}}`},
		"map with array": {value: map[string]any{"ids": []any{int64(1), int64(2)}}, meta: []string{"v_ids", "[1,2]"}, line: `{"ids":[1,2]}`},
		"empty map":      {value: map[string]any{}, line: "{}"},
	} {
		t.Run(name, func(t *testing.T) {
			ld := plog.NewLogs()
			r := addRecord(t, addResource(t, ld, "service.name", "s"), 1, "", "v", tc.value)
			require.NoError(t, r.Body().FromRaw(tc.value))
			got, err := FromOTLP(ld, OTLPConfig{}, otlpNow)
			require.NoError(t, err)
			require.Len(t, got, 1)
			require.Equal(t, []Entry{{Timestamp: 1, Line: tc.line, Metadata: labels.FromStrings(tc.meta...)}}, got[0].Entries)
		})
	}
}

func TestFromOTLPValueAsIndexLabel(t *testing.T) {
	ld := plog.NewLogs()
	addRecord(t, addResource(t, ld, "service.name", int64(7), "k8s.pod.name", map[string]any{"uid": "u1"}), 1, "x")
	got, err := FromOTLP(ld, OTLPConfig{}, otlpNow)
	require.NoError(t, err)
	require.Equal(t, labels.FromStrings("k8s_pod_name_uid", "u1", "service_name", "7"), got[0].Labels)
}

func TestLabelName(t *testing.T) {
	for in, want := range map[string]string{
		"service_name":               "service_name",
		"service.name":               "service_name",
		"k8s.pod.name":               "k8s_pod_name",
		"http.request.header.x-id":   "http_request_header_x_id",
		"a..b":                       "a_b",
		"a__b":                       "a_b",
		"a._b":                       "a_b",
		"trailing.":                  "trailing_",
		"_private":                   "_private",
		"__private":                  "_private",
		"__reserved__":               "__reserved__",
		"__re..served__":             "__re_served__",
		"9lives":                     "key_9lives",
		"ünïcode":                    "_n_code",
		"\xff\xfeok":                 "_ok",
		"CamelCase123":               "CamelCase123",
		"x":                          "x",
		"1":                          "key_1",
		"__1__":                      "__1__",
		"a very long.name/with:more": "a_very_long_name_with_more",
	} {
		got, ok := labelName(in)
		require.True(t, ok, "%q", in)
		require.Equal(t, want, got, "%q", in)
		again, _ := labelName(got)
		require.Equal(t, got, again, "sanitising %q twice", in)
	}
	for _, in := range []string{"", "_", "__", ".", "___", "____", "..", "é", "__.__"} {
		_, ok := labelName(in)
		require.False(t, ok, "%q", in)
	}
}

func TestFromOTLPIDs(t *testing.T) {
	ld := plog.NewLogs()
	sl := addResource(t, ld, "service.name", "s")
	r := addRecord(t, sl, 1, "both", "trace_id", "from-attribute")
	r.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	r.SetSpanID(pcommon.SpanID{0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 0, 1})
	addRecord(t, sl, 2, "neither")
	addRecord(t, sl, 3, "attribute only", "trace_id", "from-attribute")
	got, err := FromOTLP(ld, OTLPConfig{}, otlpNow)
	require.NoError(t, err)
	require.Equal(t, []Entry{
		{Timestamp: 1, Line: "both", Metadata: labels.FromStrings("span_id", "0a0b0c0d0e0f0001", "trace_id", "0102030405060708090a0b0c0d0e0f10")},
		{Timestamp: 2, Line: "neither", Metadata: labels.EmptyLabels()},
		{Timestamp: 3, Line: "attribute only", Metadata: labels.FromStrings("trace_id", "from-attribute")},
	}, got[0].Entries)
}

func TestFromOTLPTimestamps(t *testing.T) {
	for name, tc := range map[string]struct {
		time, observed uint64
		want           int64
		meta           labels.Labels
	}{
		"time":                 {time: 10, want: 10, meta: labels.EmptyLabels()},
		"time and observed":    {time: 10, observed: 20, want: 10, meta: labels.FromStrings("observed_timestamp", "20")},
		"observed only":        {observed: 20, want: 20, meta: labels.EmptyLabels()},
		"neither: arrival":     {want: otlpNow.UnixNano(), meta: labels.EmptyLabels()},
		"last nanosecond":      {time: math.MaxInt64, want: math.MaxInt64, meta: labels.EmptyLabels()},
		"observed beyond 2262": {time: 10, observed: math.MaxUint64, want: 10, meta: labels.FromStrings("observed_timestamp", "18446744073709551615")},
	} {
		t.Run(name, func(t *testing.T) {
			ld := plog.NewLogs()
			r := addRecord(t, addResource(t, ld, "service.name", "s"), tc.time, "x")
			r.SetObservedTimestamp(pcommon.Timestamp(tc.observed))
			got, err := FromOTLP(ld, OTLPConfig{}, otlpNow)
			require.NoError(t, err)
			require.Equal(t, []Entry{{Timestamp: tc.want, Line: "x", Metadata: tc.meta}}, got[0].Entries)
		})
	}
}

func TestFromOTLPGrouping(t *testing.T) {
	ld := plog.NewLogs()
	// Two pods' resources differ only in structured metadata: one stream.
	a1 := addResource(t, ld, "service.name", "a", "host.name", "h1")
	addRecord(t, a1, 30, "a1-first")
	addRecord(t, a1, 10, "a1-second")
	b := addResource(t, ld, "service.name", "b")
	addRecord(t, b, 20, "b")
	addResource(t, ld, "service.name", "c") // no records: no stream
	a2 := addResource(t, ld, "host.name", "h2", "service.name", "a")
	a2.Scope().SetName("second-scope")
	addRecord(t, a2, 5, "a2")
	a2again := ld.ResourceLogs().At(3).ScopeLogs().AppendEmpty()
	addRecord(t, a2again, 6, "a2-other-scope")

	got, err := FromOTLP(ld, OTLPConfig{}, otlpNow)
	require.NoError(t, err)
	require.Equal(t, []Stream{
		{Labels: labels.FromStrings("service_name", "a"), Entries: []Entry{
			{Timestamp: 30, Line: "a1-first", Metadata: labels.FromStrings("host_name", "h1")},
			{Timestamp: 10, Line: "a1-second", Metadata: labels.FromStrings("host_name", "h1")},
			{Timestamp: 5, Line: "a2", Metadata: labels.FromStrings("host_name", "h2", "scope_name", "second-scope")},
			{Timestamp: 6, Line: "a2-other-scope", Metadata: labels.FromStrings("host_name", "h2")},
		}},
		{Labels: labels.FromStrings("service_name", "b"), Entries: []Entry{
			{Timestamp: 20, Line: "b", Metadata: labels.EmptyLabels()},
		}},
	}, got)

	got, err = FromOTLP(plog.NewLogs(), OTLPConfig{}, otlpNow)
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestFromOTLPNameCollisions(t *testing.T) {
	ld := plog.NewLogs()
	sl := addResource(t, ld, "service.name", "s", "host.name", "resource", "a.b", "resource-dotted", "a_b", "resource-underscored")
	sl.Scope().SetName("the-scope")
	putAttrs(t, sl.Scope().Attributes(), "scope.name", "attribute", "host.name", "scope")
	r := addRecord(t, sl, 1, "x", "host.name", "record", "severity.text", "attribute", "event_name", "attribute", "x_y", "first", "x.y", "second")
	r.SetSeverityText("WARN")
	r = addRecord(t, sl, 2, "y", "event_name", "attribute", "a.b", "record")
	r.SetEventName("field")
	got, err := FromOTLP(ld, OTLPConfig{}, otlpNow)
	require.NoError(t, err)
	require.Equal(t, labels.FromStrings(
		"a_b", "resource-underscored", // the later attribute
		"event_name", "attribute", // no event_name field
		"host_name", "record", // record over scope over resource
		"scope_name", "the-scope", // field over attribute
		"severity_text", "WARN",
		"x_y", "second",
	), got[0].Entries[0].Metadata)
	require.Equal(t, labels.FromStrings(
		"a_b", "record",
		"event_name", "field",
		"host_name", "scope",
		"scope_name", "the-scope",
	), got[0].Entries[1].Metadata)
}

func TestFromOTLPErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg   OTLPConfig
		build func(ld plog.Logs)
		want  string
	}{
		"invalid UTF-8 index label": {
			build: func(ld plog.Logs) {
				addRecord(t, addResource(t, ld, "service.name", "s"), 1, "x")
				addRecord(t, addResource(t, ld, "k8s.pod.name", "p\xff"), 1, "x")
			},
			want: `resource 1: attribute "k8s.pod.name": value is not valid UTF-8`,
		},
		"invalid UTF-8 resource metadata": {
			build: func(ld plog.Logs) { addRecord(t, addResource(t, ld, "host.name", "\xc0"), 1, "x") },
			want:  `resource 0: attribute "host.name": value is not valid UTF-8`,
		},
		"invalid UTF-8 scope attribute": {
			build: func(ld plog.Logs) {
				rl := ld.ResourceLogs().AppendEmpty()
				rl.ScopeLogs().AppendEmpty() // no records: not looked at
				sl := rl.ScopeLogs().AppendEmpty()
				putAttrs(t, sl.Scope().Attributes(), "lib", "\xff")
				addRecord(t, sl, 1, "x")
			},
			want: `resource 0 scope 1: attribute "lib": value is not valid UTF-8`,
		},
		"invalid UTF-8 scope name": {
			build: func(ld plog.Logs) {
				sl := addResource(t, ld)
				sl.Scope().SetName("\xff")
				addRecord(t, sl, 1, "x")
			},
			want: `resource 0 scope 0: scope_name is not valid UTF-8`,
		},
		"invalid UTF-8 record attribute": {
			build: func(ld plog.Logs) {
				sl := addResource(t, ld)
				addRecord(t, sl, 1, "x")
				addRecord(t, sl, 1, "x", "ok", "fine", "user.name", "\xffbob")
			},
			want: `resource 0 scope 0 record 1: attribute "user.name": value is not valid UTF-8`,
		},
		"invalid UTF-8 nested": {
			build: func(ld plog.Logs) {
				addRecord(t, addResource(t, ld), 1, "x", "http", map[string]any{"req": map[string]any{"path": "/\xff"}})
			},
			want: `resource 0 scope 0 record 0: attribute "http": value is not valid UTF-8`,
		},
		"invalid UTF-8 severity text": {
			build: func(ld plog.Logs) { addRecord(t, addResource(t, ld), 1, "x").SetSeverityText("\xff") },
			want:  `resource 0 scope 0 record 0: severity_text is not valid UTF-8`,
		},
		"empty attribute name": {
			build: func(ld plog.Logs) { addRecord(t, addResource(t, ld), 1, "x", "", "v") },
			want:  `resource 0 scope 0 record 0: attribute "": a name needs a letter or digit`,
		},
		"punctuation attribute name": {
			build: func(ld plog.Logs) { addRecord(t, addResource(t, ld, "...", "v"), 1, "x") },
			want:  `resource 0: attribute "...": a name needs a letter or digit`,
		},
		"timestamp beyond 2262": {
			build: func(ld plog.Logs) { addRecord(t, addResource(t, ld), math.MaxInt64+1, "x") },
			want:  `resource 0 scope 0 record 0: timestamp of 9223372036854775808 ns is after 2262`,
		},
		"observed timestamp beyond 2262": {
			build: func(ld plog.Logs) {
				addRecord(t, addResource(t, ld), 0, "x").SetObservedTimestamp(math.MaxUint64)
			},
			want: `resource 0 scope 0 record 0: timestamp of 18446744073709551615 ns is after 2262`,
		},
		"no index labels": {
			cfg:   OTLPConfig{IgnoreDefaultIndexLabels: true},
			build: func(ld plog.Logs) { addRecord(t, addResource(t, ld, "service.name", "s"), 1, "x") },
			want:  `resource 0 has no index labels`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			ld := plog.NewLogs()
			tc.build(ld)
			got, err := FromOTLP(ld, tc.cfg, otlpNow)
			require.Nil(t, got)
			var e *Error
			require.True(t, errors.As(err, &e), "%v", err)
			require.True(t, strings.HasPrefix(err.Error(), tc.want), "%v", err)
		})
	}
}

// TestFromOTLPLineKeptAsSent: the line is not checked for UTF-8, as with
// Loki's push API.
func TestFromOTLPLineKeptAsSent(t *testing.T) {
	ld := plog.NewLogs()
	addRecord(t, addResource(t, ld, "service.name", "s"), 1, "bad \xff line")
	got, err := FromOTLP(ld, OTLPConfig{}, otlpNow)
	require.NoError(t, err)
	require.Equal(t, "bad \xff line", got[0].Entries[0].Line)
}

func sampleOTLP(t testing.TB) plog.Logs {
	ld := plog.NewLogs()
	sl := addResource(t, ld, "service.name", "api", "k8s.pod.name", "api-1", "host.name", "h")
	sl.Scope().SetName("lib")
	r := addRecord(t, sl, 1_700_000_000_000_000_000, "hello", "n", int64(1), "m", map[string]any{"a": "b"})
	r.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	r.SetSeverityText("INFO")
	addRecord(t, addResource(t, ld, "k8s.container.name", "web"), 0, "no time")
	return ld
}

// FuzzFromOTLP: whatever decodes as an OTLP logs request converts without
// panicking, to valid streams holding every record, or to an *Error.
func FuzzFromOTLP(f *testing.F) {
	seed, err := plogotlp.NewExportRequestFromLogs(sampleOTLP(f)).MarshalProto()
	require.NoError(f, err)
	f.Add(seed)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00})
	configs := []OTLPConfig{
		{},
		{IgnoreDefaultIndexLabels: true, IndexLabelAttributes: []string{"a", "service.name"}, DropResourceAttributes: []string{"b"}},
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req := plogotlp.NewExportRequest()
		if req.UnmarshalProto(b) != nil {
			return
		}
		for _, cfg := range configs {
			streams, err := FromOTLP(req.Logs(), cfg, otlpNow)
			if err != nil {
				var e *Error
				require.True(t, errors.As(err, &e), "error of type %T: %v", err, err)
				continue
			}
			n := 0
			for _, s := range streams {
				require.False(t, s.Labels.IsEmpty())
				requireValidLabels(t, s.Labels)
				require.NotEmpty(t, s.Entries)
				for _, e := range s.Entries {
					requireValidLabels(t, e.Metadata)
				}
				n += len(s.Entries)
			}
			require.Equal(t, req.Logs().LogRecordCount(), n)
		}
	})
}

// requireValidLabels: Prometheus's legacy names, sorted and unique, values
// non-empty UTF-8.
func requireValidLabels(t *testing.T, ls labels.Labels) {
	t.Helper()
	prev := ""
	ls.Range(func(l labels.Label) {
		name, ok := labelName(l.Name)
		require.True(t, ok && name == l.Name, "name %q", l.Name)
		require.Greater(t, l.Name, prev)
		require.NotEmpty(t, l.Value)
		require.True(t, utf8.ValidString(l.Value), "value of %s", l.Name)
		prev = l.Name
	})
}

// BenchmarkFromOTLP converts 1,000 records from 10 resources (k8s pods);
// bytes are those of the protobuf request.
func BenchmarkFromOTLP(b *testing.B) {
	ld := plog.NewLogs()
	for i := range 10 {
		rl := ld.ResourceLogs().AppendEmpty()
		putAttrs(b, rl.Resource().Attributes(),
			"service.name", "checkout",
			"service.namespace", "shop",
			"k8s.cluster.name", "eu1",
			"k8s.namespace.name", "shop",
			"k8s.pod.name", "checkout-7d9f-"+strconv.Itoa(i),
			"k8s.container.name", "app",
			"k8s.deployment.name", "checkout",
			"k8s.node.name", "node-"+strconv.Itoa(i%3),
			"host.name", "node-"+strconv.Itoa(i%3),
			"process.pid", int64(1000+i),
			"telemetry.sdk.language", "go",
		)
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName("go.opentelemetry.io/contrib/bridges/otelslog")
		sl.Scope().SetVersion("0.9.0")
		for j := range 100 {
			r := sl.LogRecords().AppendEmpty()
			r.SetTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + int64(i*100+j)*1_000_000))
			r.SetObservedTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + int64(i*100+j)*1_000_000 + 500))
			r.SetSeverityNumber(plog.SeverityNumberInfo)
			r.SetSeverityText("INFO")
			r.Body().SetStr("order " + strconv.Itoa(j) + " placed for customer 8812 in 23.4ms with 3 items")
			r.SetTraceID(pcommon.TraceID{byte(i), byte(j), 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
			r.SetSpanID(pcommon.SpanID{byte(i), byte(j), 3, 4, 5, 6, 7, 8})
			r.SetFlags(1)
			putAttrs(b, r.Attributes(),
				"http.method", "POST",
				"http.route", "/api/orders",
				"http.status_code", int64(201),
				"user.id", int64(8812),
				"duration_ms", 23.4,
			)
		}
	}
	body, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	require.NoError(b, err)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		streams, err := FromOTLP(ld, OTLPConfig{}, otlpNow)
		if err != nil || len(streams) != 10 {
			b.Fatal(err, len(streams))
		}
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "records/s")
}
