package tracepush

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestDecodeZipkinGolden pins the mapping: each testdata/zipkin/<name>.json
// decodes to the OTLP JSON in <name>.otlp.json.
func TestDecodeZipkinGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/zipkin/*.json")
	require.NoError(t, err)
	n := 0
	for _, in := range files {
		if strings.HasSuffix(in, ".otlp.json") {
			continue
		}
		n++
		t.Run(filepath.Base(in), func(t *testing.T) {
			body, err := os.ReadFile(in)
			require.NoError(t, err)
			td, err := DecodeZipkin(body)
			require.NoError(t, err)
			var m ptrace.JSONMarshaler
			js, err := m.MarshalTraces(td)
			require.NoError(t, err)
			var got bytes.Buffer
			require.NoError(t, json.Indent(&got, js, "", "  "))
			got.WriteByte('\n')
			golden := strings.TrimSuffix(in, ".json") + ".otlp.json"
			if *update {
				require.NoError(t, os.WriteFile(golden, got.Bytes(), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			require.Equal(t, string(want), got.String())
		})
	}
	require.NotZero(t, n)
}

// attrs lists a map's attributes in order, as name, value pairs.
func attrs(m pcommon.Map) []any {
	var out []any
	for k, v := range m.All() {
		out = append(out, k, v.AsRaw())
	}
	return out
}

func TestDecodeZipkinMapping(t *testing.T) {
	body, err := os.ReadFile("testdata/zipkin/brave.json")
	require.NoError(t, err)
	td, err := DecodeZipkin(body)
	require.NoError(t, err)
	require.Equal(t, 6, td.SpanCount())

	// One resource per localEndpoint service, in the order first seen.
	rss := td.ResourceSpans()
	require.Equal(t, 3, rss.Len())
	require.Equal(t, []any{"service.name", "frontend"}, attrs(rss.At(0).Resource().Attributes()))
	require.Equal(t, []any{"service.name", "backend"}, attrs(rss.At(1).Resource().Attributes()))
	require.Zero(t, rss.At(2).Resource().Attributes().Len(), "no localEndpoint: no service.name")

	frontend := rss.At(0).ScopeSpans()
	require.Equal(t, 1, frontend.Len())
	require.Equal(t, pcommon.NewInstrumentationScope(), frontend.At(0).Scope())
	require.Equal(t, 2, frontend.At(0).Spans().Len())

	// Span 0: a client span, every field.
	sp := frontend.At(0).Spans().At(0)
	require.Equal(t, "00000000000000005af7183fb1d4cf5f", sp.TraceID().String(), "a 16-digit trace ID is padded")
	require.Equal(t, "352bff9a74ca9ad2", sp.SpanID().String())
	require.Equal(t, "6b221d5bc9e6496c", sp.ParentSpanID().String())
	require.Equal(t, "get /api", sp.Name())
	require.Equal(t, ptrace.SpanKindClient, sp.Kind())
	require.Equal(t, pcommon.Timestamp(1556604172355737000), sp.StartTimestamp())
	require.Equal(t, pcommon.Timestamp(1556604172355737000+1431000), sp.EndTimestamp())
	require.Equal(t, []any{
		"network.local.address", "192.168.99.1",
		"network.local.port", int64(8081),
		"peer.service", "backend",
		"network.peer.address", "172.19.0.2",
		"network.peer.port", int64(9000),
		"clnt/finagle.version", "6.45.0",
		"http.method", "GET",
		"http.path", "/api",
	}, attrs(sp.Attributes()))
	require.Equal(t, 2, sp.Events().Len())
	require.Equal(t, "ws", sp.Events().At(0).Name())
	require.Equal(t, pcommon.Timestamp(1556604172355800000), sp.Events().At(0).Timestamp())
	require.Zero(t, sp.Events().At(0).Attributes().Len())
	require.Equal(t, "wr", sp.Events().At(1).Name())
	require.Equal(t, pcommon.Timestamp(1556604172357100000), sp.Events().At(1).Timestamp())
	require.Equal(t, ptrace.StatusCodeUnset, sp.Status().Code())
	require.Empty(t, sp.Status().Message())
	require.Zero(t, sp.Links().Len())
	require.Empty(t, sp.TraceState().AsRaw())

	// Span 2: a debug root span.
	sp = frontend.At(0).Spans().At(1)
	require.Equal(t, "6b221d5bc9e6496c", sp.SpanID().String())
	require.True(t, sp.ParentSpanID().IsEmpty())
	require.Equal(t, ptrace.SpanKindServer, sp.Kind())
	require.Equal(t, []any{
		"network.local.address", "192.168.99.1",
		"network.local.port", int64(8081),
		"zipkin.debug", true,
	}, attrs(sp.Attributes()))

	backend := rss.At(1).ScopeSpans()
	require.Equal(t, 2, backend.Len())

	// Span 1: the shared server side, failed by its error tag.
	sp = backend.At(0).Spans().At(0)
	require.Equal(t, ptrace.SpanKindServer, sp.Kind())
	require.Equal(t, []any{
		"network.local.address", "172.19.0.2",
		"network.local.port", int64(9000),
		"network.peer.address", "2001:db8::c001",
		"network.peer.port", int64(52712),
		"http.method", "GET",
		"http.path", "/api",
		"http.status_code", "500",
		"zipkin.shared", true,
	}, attrs(sp.Attributes()))
	require.Equal(t, ptrace.StatusCodeError, sp.Status().Code())
	require.Equal(t, "Internal Server Error", sp.Status().Message())

	// Spans 3 and 4: OpenTelemetry's Zipkin exporter's tags give the scope
	// and the status.
	scope := backend.At(1)
	require.Equal(t, "io.opentelemetry.okhttp", scope.Scope().Name())
	require.Equal(t, "1.2.3", scope.Scope().Version())
	require.Equal(t, 2, scope.Spans().Len())
	sp = scope.Spans().At(0)
	require.Equal(t, "463ac35c9f6413ad48485a3953bb6124", sp.TraceID().String())
	require.Equal(t, ptrace.SpanKindUnspecified, sp.Kind())
	require.Equal(t, []any{"retries", "2"}, attrs(sp.Attributes()))
	require.Equal(t, ptrace.StatusCodeError, sp.Status().Code())
	require.Equal(t, "timed out", sp.Status().Message())
	sp = scope.Spans().At(1)
	require.Equal(t, ptrace.SpanKindProducer, sp.Kind())
	require.Equal(t, sp.StartTimestamp(), sp.EndTimestamp(), "no duration")
	require.Equal(t, []any{"network.local.address", "::1", "peer.service", "kafka"}, attrs(sp.Attributes()))
	require.Equal(t, ptrace.StatusCodeOk, sp.Status().Code())

	// Span 5: no localEndpoint.
	sp = rss.At(2).ScopeSpans().At(0).Spans().At(0)
	require.Equal(t, "no service", sp.Name())
	require.Zero(t, sp.Attributes().Len())
}

func TestDecodeZipkinStatus(t *testing.T) {
	for name, tc := range map[string]struct {
		tags  string
		code  ptrace.StatusCode
		msg   string
		attrs []any
	}{
		"none":                       {tags: `{"a":"b"}`, attrs: []any{"a", "b"}},
		"error tag":                  {tags: `{"error":"boom"}`, code: ptrace.StatusCodeError, msg: "boom"},
		"empty error tag":            {tags: `{"error":""}`, code: ptrace.StatusCodeError},
		"otel code ERROR":            {tags: `{"otel.status_code":"ERROR"}`, code: ptrace.StatusCodeError},
		"otel code with error tag":   {tags: `{"otel.status_code":"ERROR","error":"boom"}`, code: ptrace.StatusCodeError, msg: "boom"},
		"otel description wins":      {tags: `{"otel.status_code":"ERROR","error":"boom","otel.status_description":"timed out"}`, code: ptrace.StatusCodeError, msg: "timed out"},
		"otel OK beats error tag":    {tags: `{"otel.status_code":"OK","error":"boom"}`, code: ptrace.StatusCodeOk},
		"otel UNSET beats error":     {tags: `{"otel.status_code":"UNSET","error":"boom"}`},
		"otel code any case":         {tags: `{"otel.status_code":"error"}`, code: ptrace.StatusCodeError},
		"empty otel code":            {tags: `{"otel.status_code":""}`},
		"description alone":          {tags: `{"otel.status_description":"why"}`, msg: "why"},
		"library name without scope": {tags: `{"otel.library.name":"lib","x":"y"}`, attrs: []any{"x", "y"}},
	} {
		t.Run(name, func(t *testing.T) {
			td, err := DecodeZipkin([]byte(`[{"traceId":"5af7183fb1d4cf5f","id":"352bff9a74ca9ad2","tags":` + tc.tags + `}]`))
			require.NoError(t, err)
			sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
			require.Equal(t, tc.code, sp.Status().Code())
			require.Equal(t, tc.msg, sp.Status().Message())
			require.Equal(t, tc.attrs, attrs(sp.Attributes()))
		})
	}
}

func TestDecodeZipkinScopes(t *testing.T) {
	td, err := DecodeZipkin([]byte(`[
		{"traceId":"5af7183fb1d4cf5f","id":"0000000000000001","localEndpoint":{"serviceName":"a"},"tags":{"otel.scope.name":"x","otel.library.name":"old"}},
		{"traceId":"5af7183fb1d4cf5f","id":"0000000000000002","localEndpoint":{"serviceName":"a"},"tags":{"otel.library.name":"x"}},
		{"traceId":"5af7183fb1d4cf5f","id":"0000000000000003","localEndpoint":{"serviceName":"a"},"tags":{"otel.scope.name":"x","otel.scope.version":"2"}},
		{"traceId":"5af7183fb1d4cf5f","id":"0000000000000004","localEndpoint":{"serviceName":"b"},"tags":{"otel.scope.name":"x"}}
	]`))
	require.NoError(t, err)
	require.Equal(t, 2, td.ResourceSpans().Len())
	a := td.ResourceSpans().At(0).ScopeSpans()
	require.Equal(t, 2, a.Len())
	require.Equal(t, "x", a.At(0).Scope().Name())
	require.Empty(t, a.At(0).Scope().Version())
	require.Equal(t, 2, a.At(0).Spans().Len(), "otel.scope.name wins over otel.library.name")
	require.Equal(t, "2", a.At(1).Scope().Version())
	require.Equal(t, 1, td.ResourceSpans().At(1).ScopeSpans().Len())
}

// TestDecodeZipkinTagsOverEndpoints: a tag wins over an attribute an
// endpoint gives.
func TestDecodeZipkinTagsOverEndpoints(t *testing.T) {
	td, err := DecodeZipkin([]byte(`[{"traceId":"5af7183fb1d4cf5f","id":"352bff9a74ca9ad2","remoteEndpoint":{"serviceName":"db"},"tags":{"peer.service":"postgres"}}]`))
	require.NoError(t, err)
	sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	require.Equal(t, []any{"peer.service", "postgres"}, attrs(sp.Attributes()))
}

func TestDecodeZipkinErrors(t *testing.T) {
	const ids = `"traceId":"5af7183fb1d4cf5f","id":"352bff9a74ca9ad2"`
	for name, tc := range map[string]struct {
		body string
		want string
	}{
		"not an array":         {`{"traceId":"5af7183fb1d4cf5f"}`, "Zipkin body: a Zipkin v2 body is a JSON array of spans"},
		"empty body":           {``, "Zipkin body: a Zipkin v2 body is a JSON array of spans"},
		"null":                 {`null`, "Zipkin body: a Zipkin v2 body is a JSON array of spans"},
		"invalid UTF-8":        {"[{" + ids + ",\"name\":\"\xff\"}]", "Zipkin body is not valid UTF-8"},
		"span not an object":   {`[{` + ids + `}, 3]`, "span 1: a span is a JSON object, not a JSON number"},
		"truncated":            {`[{` + ids + `}, {"traceId":`, "span 1: the JSON ends early"},
		"bad JSON":             {`[{` + ids + `,}]`, "span 0: invalid JSON at byte 55: invalid character '}' looking for beginning of object key string"},
		"no closing bracket":   {`[{` + ids + `}`, "Zipkin body: the JSON ends early"},
		"trailing data":        {`[{` + ids + `}] []`, "Zipkin body: something follows the array of spans"},
		"no traceId":           {`[{"id":"352bff9a74ca9ad2"}]`, "span 0 has no traceId"},
		"no id":                {`[{"traceId":"5af7183fb1d4cf5f"}]`, "span 0 has no id"},
		"traceId length":       {`[{"traceId":"5af7183fb1d4cf5f00","id":"352bff9a74ca9ad2"}]`, `span 0: traceId "5af7183fb1d4cf5f00" has 18 hex digits, not 16 or 32`},
		"traceId not hex":      {`[{"traceId":"5af7183fb1d4cf5g","id":"352bff9a74ca9ad2"}]`, `span 0: traceId "5af7183fb1d4cf5g" is not hex`},
		"id length":            {`[{"traceId":"5af7183fb1d4cf5f","id":"352bff9a"}]`, `span 0: id "352bff9a" has 8 hex digits, not 16`},
		"parentId not hex":     {`[{` + ids + `,"parentId":"x52bff9a74ca9ad2"}]`, `span 0: parentId "x52bff9a74ca9ad2" is not hex`},
		"traceId a number":     {`[{"traceId":5,"id":"352bff9a74ca9ad2"}]`, "span 0: traceId is a JSON number, not a string"},
		"unknown kind":         {`[{` + ids + `,"kind":"INTERNAL"}]`, `span 0: kind "INTERNAL" is not CLIENT, SERVER, PRODUCER or CONSUMER`},
		"lower-case kind":      {`[{` + ids + `,"kind":"client"}]`, `span 0: kind "client" is not CLIENT, SERVER, PRODUCER or CONSUMER`},
		"negative timestamp":   {`[{` + ids + `,"timestamp":-1}]`, "span 0: timestamp -1 is negative"},
		"huge negative":        {`[{` + ids + `,"timestamp":-99999999999999999999}]`, "span 0: timestamp -99999999999999999999 is negative"},
		"fractional time":      {`[{` + ids + `,"timestamp":1.5}]`, "span 0: timestamp 1.5 is not a whole number of microseconds"},
		"exponent time":        {`[{` + ids + `,"timestamp":1e15}]`, "span 0: timestamp 1e15 is not a whole number of microseconds"},
		"time past 2262":       {`[{` + ids + `,"timestamp":9223372036854776}]`, "span 0: timestamp of 9223372036854776 µs goes past 2262 (Unix nanoseconds in 63 bits)"},
		"time past int64":      {`[{` + ids + `,"timestamp":99999999999999999999}]`, "span 0: timestamp of 99999999999999999999 µs goes past 2262"},
		"time a string":        {`[{` + ids + `,"timestamp":"soon"}]`, `span 0: timestamp "soon" is not a whole number of microseconds`},
		"time a quoted number": {`[{` + ids + `,"timestamp":"-3"}]`, "span 0: timestamp -3 is negative"},
		"end past 2262":        {`[{` + ids + `,"timestamp":9223372036854775,"duration":1}]`, "span 0: timestamp plus duration goes past 2262"},
		"negative duration":    {`[{` + ids + `,"duration":-5}]`, "span 0: duration -5 is negative"},
		"annotation time":      {`[{` + ids + `,"annotations":[{"timestamp":1,"value":"a"},{"timestamp":-1,"value":"b"}]}]`, "span 0: annotations[1].timestamp -1 is negative"},
		"annotations object":   {`[{` + ids + `,"annotations":{}}]`, "span 0: annotations is a JSON object, not an array"},
		"tag not a string":     {`[{` + ids + `,"tags":{"http.status_code":200}}]`, "span 0: tags: a tag's value is a string, not a JSON number"},
		"bad ipv4":             {`[{` + ids + `,"localEndpoint":{"ipv4":"300.1.2.3"}}]`, `span 0: localEndpoint.ipv4 "300.1.2.3" is not an IPv4 address`},
		"ipv6 in ipv4":         {`[{` + ids + `,"localEndpoint":{"ipv4":"::1"}}]`, `span 0: localEndpoint.ipv4 "::1" is not an IPv4 address`},
		"bad ipv6":             {`[{` + ids + `,"remoteEndpoint":{"ipv6":"nope"}}]`, `span 0: remoteEndpoint.ipv6 "nope" is not an IPv6 address`},
		"port out of range":    {`[{` + ids + `,"remoteEndpoint":{"port":65536}}]`, "span 0: remoteEndpoint.port 65536 is not a port (0 to 65535)"},
		"port fractional":      {`[{` + ids + `,"remoteEndpoint":{"port":80.5}}]`, "span 0: remoteEndpoint.port is a JSON number 80.5, not a whole number"},
		"unknown otel code":    {`[{` + ids + `,"tags":{"otel.status_code":"FINE"}}]`, `span 0: tag otel.status_code is "FINE", not OK, ERROR or UNSET`},
		"later span":           {`[{` + ids + `},{` + ids + `,"kind":"X"}]`, `span 1: kind "X" is not CLIENT, SERVER, PRODUCER or CONSUMER`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeZipkin([]byte(tc.body))
			var e *Error
			require.True(t, errors.As(err, &e), "%v", err)
			require.True(t, strings.HasPrefix(err.Error(), tc.want), "%v", err)
		})
	}
}

func TestDecodeZipkinEmpty(t *testing.T) {
	for _, body := range []string{`[]`, " [ ] \n"} {
		td, err := DecodeZipkin([]byte(body))
		require.NoError(t, err)
		require.Zero(t, td.ResourceSpans().Len())
	}
}

// TestDecodeZipkinLarge: many spans, and a span with many tags, take time
// in proportion to their size.
func TestDecodeZipkinLarge(t *testing.T) {
	tags := map[string]string{}
	for i := range 20_000 {
		tags["tag."+itoa(i)] = "v"
	}
	tagsJSON, err := json.Marshal(tags)
	require.NoError(t, err)
	start := time.Now()
	td, err := DecodeZipkin([]byte(`[{"traceId":"5af7183fb1d4cf5f","id":"352bff9a74ca9ad2","tags":` + string(tagsJSON) + `}]`))
	require.NoError(t, err)
	require.Equal(t, 20_000, td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().Len())
	require.Less(t, time.Since(start), 5*time.Second, "quadratic in the tags")

	var body bytes.Buffer
	body.WriteByte('[')
	for i := range 20_000 {
		if i > 0 {
			body.WriteByte(',')
		}
		body.WriteString(`{"traceId":"5af7183fb1d4cf5f","id":"352bff9a74ca9ad2","localEndpoint":{"serviceName":"svc-` + itoa(i%50) + `"},"tags":{"otel.scope.name":"s` + itoa(i%7) + `"}}`)
	}
	body.WriteByte(']')
	start = time.Now()
	td, err = DecodeZipkin(body.Bytes())
	require.NoError(t, err)
	require.Equal(t, 20_000, td.SpanCount())
	require.Equal(t, 50, td.ResourceSpans().Len())
	require.Less(t, time.Since(start), 5*time.Second, "quadratic in the spans")
}

// FuzzDecodeZipkin: no body makes DecodeZipkin panic; whatever it decodes
// is kept or rejected span by span by Split, never refused.
func FuzzDecodeZipkin(f *testing.F) {
	files, err := filepath.Glob("testdata/zipkin/*.json")
	require.NoError(f, err)
	for _, in := range files {
		if !strings.HasSuffix(in, ".otlp.json") {
			b, err := os.ReadFile(in)
			require.NoError(f, err)
			f.Add(b)
		}
	}
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"traceId":"0000000000000000","id":"0000000000000000","timestamp":5,"duration":0}]`))
	f.Add([]byte(`[{"traceId":"5af7183fb1d4cf5f","id":"352bff9a74ca9ad2","tags":{"k":"v","error":""},"kind":"SERVER"}]`))
	lim := Limits{MaxAttributeKeyBytes: 8, MaxAttributeValueBytes: 8, MaxBytesPerTrace: 400}
	f.Fuzz(func(t *testing.T, body []byte) {
		td, err := DecodeZipkin(body)
		if err != nil {
			var e *Error
			require.True(t, errors.As(err, &e), "error of type %T: %v", err, err)
			return
		}
		b, err := Split(td, lim)
		require.NoError(t, err)
		require.Equal(t, td.SpanCount(), b.Spans+b.RejectedSpans)
		for _, tr := range b.Traces {
			require.Equal(t, tr.Spans, unmarshal(t, tr.Data).SpanCount())
		}
	})
}

// BenchmarkDecodeZipkin decodes 1,000 spans of 5 services.
func BenchmarkDecodeZipkin(b *testing.B) {
	var body bytes.Buffer
	body.WriteByte('[')
	for i := range 1000 {
		if i > 0 {
			body.WriteByte(',')
		}
		svc := itoa(i % 5)
		body.WriteString(`{"traceId":"5af7183fb1d4cf5f00000000000000` + strings.Repeat("0", 2-len(itoa(i/5%100))) + itoa(i/5%100) +
			`","parentId":"6b221d5bc9e6496c","id":"352bff9a74ca9ad2","kind":"SERVER","name":"post /api/orders","timestamp":1556604172355737,"duration":1431,` +
			`"localEndpoint":{"serviceName":"service-` + svc + `","ipv4":"192.168.99.1","port":8081},"remoteEndpoint":{"ipv4":"172.19.0.2","port":9000},` +
			`"annotations":[{"timestamp":1556604172355800,"value":"wr"}],` +
			`"tags":{"http.method":"POST","http.path":"/api/orders","http.status_code":"201","user_agent":"Mozilla/5.0 (X11; Linux x86_64)","order.items":"3"}}`)
	}
	body.WriteByte(']')
	b.SetBytes(int64(body.Len()))
	b.ReportAllocs()
	for b.Loop() {
		td, err := DecodeZipkin(body.Bytes())
		if err != nil || td.SpanCount() != 1000 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "spans/s")
}
