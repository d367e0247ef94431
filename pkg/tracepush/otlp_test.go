package tracepush

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// sampleTraces has a bit of everything a span can carry.
func sampleTraces(t testing.TB) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
	putTestAttrs(t, rs.Resource().Attributes(), "service.name", "checkout", "host.cpus", int64(8))
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
	ss.Scope().SetVersion("0.60.0")
	sp := addSpan(t, ss, 1, 1, 1_700_000_000_000_000_000,
		"http.request.method", "POST",
		"http.response.status_code", int64(201),
		"ratio", 0.5,
		"retry", true,
		"tags", []any{"a", "b"},
		"nested", map[string]any{"k": "v"},
		"raw", []byte{1, 2, 3},
	)
	sp.SetParentSpanID(spanID(9))
	sp.SetKind(ptrace.SpanKindServer)
	sp.TraceState().FromRaw("vendor=x")
	sp.SetFlags(1)
	sp.Status().SetCode(ptrace.StatusCodeError)
	sp.Status().SetMessage("boom")
	ev := sp.Events().AppendEmpty()
	ev.SetName("exception")
	ev.SetTimestamp(1_700_000_000_000_500_000)
	putTestAttrs(t, ev.Attributes(), "exception.message", "boom")
	ln := sp.Links().AppendEmpty()
	ln.SetTraceID(traceID(7))
	ln.SetSpanID(spanID(7))
	sp.SetDroppedAttributesCount(1)
	addSpan(t, addScope(t, td, "service.name", "payments"), 2, 2, 1_700_000_000_100_000_000).SetKind(ptrace.SpanKindClient)
	return td
}

func TestDecodeOTLPBothEncodings(t *testing.T) {
	want := sampleTraces(t)
	req := ptraceotlp.NewExportRequestFromTraces(want)
	pb, err := req.MarshalProto()
	require.NoError(t, err)
	js, err := req.MarshalJSON()
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		body        []byte
		contentType string
	}{
		"protobuf":           {pb, "application/x-protobuf"},
		"JSON":               {js, "application/json"},
		"JSON with charset":  {js, "application/json; charset=utf-8"},
		"upper-case type":    {pb, "Application/X-Protobuf"},
		"JSON with newlines": {append(append([]byte("\n "), js...), "\r\n"...), "application/json"},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := DecodeOTLP(tc.body, tc.contentType)
			require.NoError(t, err)
			requireTracesEqual(t, want, got)
		})
	}
}

func TestDecodeOTLPEmpty(t *testing.T) {
	got, err := DecodeOTLP(nil, ContentTypeProtobuf)
	require.NoError(t, err)
	require.Zero(t, got.SpanCount())
	got, err = DecodeOTLP([]byte(`{}`), ContentTypeJSON)
	require.NoError(t, err)
	require.Zero(t, got.SpanCount())
}

// otlpJSON is a one-span OTLP JSON body with span's fields put in.
func otlpJSON(span string) string {
	return `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]},"scopeSpans":[{"scope":{"name":"lib"},"spans":[{` + span + `}]}]}]}`
}

const okIDs = `"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7"`

func TestDecodeOTLPJSON(t *testing.T) {
	got, err := DecodeOTLP([]byte(otlpJSON(okIDs+`,"name":"GET /","kind":2,"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":1700000000001000000,"status":{"code":"STATUS_CODE_ERROR","message":"x"},"unknownField":{"a":[1,2,{"b":null}]}`)), ContentTypeJSON)
	require.NoError(t, err, "numbers or strings for times, names or numbers for enums, unknown fields ignored")
	sp := got.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", sp.TraceID().String())
	require.Equal(t, "00f067aa0ba902b7", sp.SpanID().String())
	require.Equal(t, ptrace.SpanKindServer, sp.Kind())
	require.Equal(t, pcommon.Timestamp(1_700_000_000_000_000_000), sp.StartTimestamp())
	require.Equal(t, pcommon.Timestamp(1_700_000_000_001_000_000), sp.EndTimestamp())
	require.Equal(t, ptrace.StatusCodeError, sp.Status().Code())
}

func TestDecodeOTLPErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		body        string
		contentType string
		want        string // the start of the message
	}{
		"unsupported type": {
			body: "{}", contentType: "text/plain",
			want: `Content-Type "text/plain": OTLP traces are application/x-protobuf or application/json`,
		},
		"no type": {
			body: "{}", contentType: "",
			want: `Content-Type "": mime: no media type`,
		},
		"invalid UTF-8": {
			body: otlpJSON(okIDs + ",\"name\":\"\xff\""),
			want: "OTLP JSON body is not valid UTF-8",
		},
		"bad hex": {
			body: otlpJSON(`"traceId":"4bf92f3577b34da6a3ce929d0e0e47zz","spanId":"00f067aa0ba902b7"`),
			want: "OTLP JSON body: ID.UnmarshalJSONIter: encoding/hex: invalid byte: U+007A 'z'",
		},
		"short trace ID": {
			body: otlpJSON(`"traceId":"4bf92f35","spanId":"00f067aa0ba902b7"`),
			want: "OTLP JSON body: ID.UnmarshalJSONIter: length mismatch",
		},
		"negative time": {
			body: otlpJSON(okIDs + `,"startTimeUnixNano":"-1"`),
			want: `OTLP JSON body: ReadUint64: strconv.ParseUint: parsing "-1": invalid syntax`,
		},
		"time overflowing 64 bits": {
			body: otlpJSON(okIDs + `,"endTimeUnixNano":"18446744073709551616"`),
			want: `OTLP JSON body: ReadUint64: strconv.ParseUint: parsing "18446744073709551616": value out of range`,
		},
		"time after 2262": {
			body: otlpJSON(okIDs + `,"endTimeUnixNano":"18446744073709551615"`),
			want: "resource 0 scope 0 span 0: end_time_unix_nano 18446744073709551615 is after 2262 (Unix nanoseconds in 63 bits)",
		},
		"event time after 2262": {
			body: otlpJSON(okIDs + `,"events":[{"timeUnixNano":"9223372036854775808"}]`),
			want: "resource 0 scope 0 span 0 event 0: time_unix_nano 9223372036854775808 is after 2262 (Unix nanoseconds in 63 bits)",
		},
		"unknown kind name": {
			body: otlpJSON(okIDs + `,"kind":"SPAN_KIND_SOMETIMES"`),
			want: "OTLP JSON body: ReadEnumValue: unknown string value",
		},
		"unknown kind number": {
			body: otlpJSON(okIDs + `,"kind":9`),
			want: "resource 0 scope 0 span 0: kind 9 is not a span kind (0 to 5)",
		},
		"unknown status code": {
			body: otlpJSON(okIDs + `,"status":{"code":7}`),
			want: "resource 0 scope 0 span 0: status code 7 is not a status code (0 to 2)",
		},
		"not JSON": {
			body: "resourceSpans",
			want: "OTLP JSON body: ReadObject: expect { or , or } or n",
		},
		"two values": {
			body: `{"resourceSpans":[]} {"resourceSpans":[]}`,
			want: "JSON body: more than one JSON value (from byte 20)",
		},
		"nested too deep": {
			body: `{"resourceSpans":` + strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth) + `}`,
			want: "JSON body nests more than 268 deep (at byte 284)",
		},
		"array, not object": {
			body: `[]`,
			want: "OTLP JSON body: ReadObject: expect { or , or } or n, but found [",
		},
	} {
		t.Run(name, func(t *testing.T) {
			ct := tc.contentType
			if ct == "" && !strings.HasPrefix(name, "no type") {
				ct = ContentTypeJSON
			}
			_, err := DecodeOTLP([]byte(tc.body), ct)
			var e *Error
			require.True(t, errors.As(err, &e), "%v", err)
			require.True(t, strings.HasPrefix(err.Error(), tc.want), "%v", err)
		})
	}
}

// TestCheckJSONStrings: brackets and quotes inside strings do not count.
func TestCheckJSONStrings(t *testing.T) {
	require.NoError(t, checkJSON([]byte(`{"a":"[[[\"{{{"} `), 1))
	require.NoError(t, checkJSON([]byte(`{"a":"\\"}`), 1))
	require.Error(t, checkJSON([]byte(`{"a":[]}`), 1))
	require.Error(t, checkJSON([]byte(`{"a":"\\"} x`), 1))
}

// TestDecodeOTLPDeepValues: values nested deeper than pdata can safely
// decode are refused before pdata sees them, in both encodings.
func TestDecodeOTLPDeepValues(t *testing.T) {
	body := appendRequest(nil, withField(spanBytes(traceID(1), spanID(1)), spanAttributes, bytesField(keyValue("deep", nested(1000)))))
	_, err := DecodeOTLP(body, ContentTypeProtobuf)
	require.EqualError(t, err, `resource 0 scope 0 span 0: attribute "deep": its value nests more than 64 deep`)

	value := strings.Repeat(`{"arrayValue":{"values":[`, 1000) + `{"boolValue":true}` + strings.Repeat(`]}}`, 1000)
	_, err = DecodeOTLP([]byte(otlpJSON(okIDs+`,"attributes":[{"key":"deep","value":`+value+`}]`)), ContentTypeJSON)
	require.ErrorContains(t, err, "JSON body nests more than 268 deep")

	// Within what JSON allows, but deeper than values may nest.
	value = strings.Repeat(`{"arrayValue":{"values":[`, 80) + `{"boolValue":true}` + strings.Repeat(`]}}`, 80)
	_, err = DecodeOTLP([]byte(otlpJSON(okIDs+`,"attributes":[{"key":"deep","value":`+value+`}]`)), ContentTypeJSON)
	require.EqualError(t, err, `resource 0 scope 0 span 0: attribute "deep": its value nests more than 64 deep`)
}

// FuzzDecodeOTLP: no body makes DecodeOTLP or SplitProto panic; they
// agree on which protobuf bodies are valid; whatever decodes is kept or
// rejected span by span by Split, never refused, and every piece decodes
// with pdata as the ingester decodes it.
func FuzzDecodeOTLP(f *testing.F) {
	td := sampleTraces(f)
	req := ptraceotlp.NewExportRequestFromTraces(td)
	pb, err := req.MarshalProto()
	require.NoError(f, err)
	js, err := req.MarshalJSON()
	require.NoError(f, err)
	f.Add(pb, false)
	f.Add(js, true)
	f.Add([]byte(otlpJSON(okIDs+`,"kind":9`)), true)
	f.Add(appendRequest(nil, spanBytes(pcommon.TraceID{}, spanID(1))), false)
	f.Add(appendRequest(nil, withField(spanBytes(traceID(1), spanID(1)), spanAttributes, bytesField(keyValue("deep", nested(3))))), false)
	f.Add([]byte{}, false)
	lim := Limits{MaxAttributeKeyBytes: 8, MaxAttributeValueBytes: 8, MaxBytesPerTrace: 600}
	f.Fuzz(func(t *testing.T, body []byte, asJSON bool) {
		ct := ContentTypeProtobuf
		if asJSON {
			ct = ContentTypeJSON
		}
		td, err := DecodeOTLP(body, ct)
		if !asJSON {
			b, serr := SplitProto(body, lim)
			require.Equal(t, err == nil, serr == nil, "DecodeOTLP: %v; SplitProto: %v", err, serr)
			if serr == nil {
				requireBatch(t, b, td.SpanCount())
			}
		}
		if err != nil {
			var e *Error
			require.True(t, errors.As(err, &e), "error of type %T: %v", err, err)
			return
		}
		b, err := Split(td, lim)
		require.NoError(t, err)
		requireBatch(t, b, td.SpanCount())
	})
}

// requireBatch checks that a Batch accounts for every span and that its
// pieces decode, each holding its trace only.
func requireBatch(t *testing.T, b *Batch, spans int) {
	t.Helper()
	require.Equal(t, spans, b.Spans+b.RejectedSpans)
	n, size := 0, 0
	for _, r := range b.Rejected {
		n += r
	}
	require.Equal(t, b.RejectedSpans, n)
	require.Equal(t, b.RejectedSpans > 0, b.FirstRejection != nil)
	for _, tr := range b.Traces {
		got := unmarshal(t, tr.Data)
		require.Equal(t, tr.Spans, got.SpanCount())
		for _, rs := range got.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					require.Equal(t, tr.ID, sp.TraceID())
				}
			}
		}
		size += len(tr.Data)
	}
	require.Equal(t, b.Bytes, size)
}

func benchTraces(b *testing.B) ptrace.Traces {
	td := ptrace.NewTraces()
	// 1,000 spans: 5 services of 200 spans each, 200 traces of 5 spans
	// (one per service), as a gateway collector batches them.
	for svc := range 5 {
		rs := td.ResourceSpans().AppendEmpty()
		putTestAttrs(b, rs.Resource().Attributes(),
			"service.name", "service-"+itoa(svc),
			"service.namespace", "shop",
			"service.instance.id", "b1f0c6a2-4c4e-4bb3-9d0c-"+itoa(100000+svc),
			"k8s.pod.name", "service-"+itoa(svc)+"-7d9f-abc",
			"k8s.namespace.name", "shop",
			"k8s.node.name", "node-3",
			"telemetry.sdk.language", "go",
			"telemetry.sdk.version", "1.35.0",
		)
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
		ss.Scope().SetVersion("0.60.0")
		for tr := range 200 {
			sp := ss.Spans().AppendEmpty()
			sp.SetTraceID(pcommon.TraceID{byte(tr), byte(tr >> 8), 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
			sp.SetSpanID(pcommon.SpanID{byte(svc), byte(tr), byte(tr >> 8), 4, 5, 6, 7, 8})
			if svc > 0 {
				sp.SetParentSpanID(pcommon.SpanID{byte(svc - 1), byte(tr), byte(tr >> 8), 4, 5, 6, 7, 8})
			}
			sp.SetName("POST /api/orders")
			sp.SetKind(ptrace.SpanKindServer)
			start := uint64(1_700_000_000_000_000_000 + tr*1_000_000)
			sp.SetStartTimestamp(pcommon.Timestamp(start))
			sp.SetEndTimestamp(pcommon.Timestamp(start + 23_400_000))
			putTestAttrs(b, sp.Attributes(),
				"http.request.method", "POST",
				"http.route", "/api/orders",
				"url.path", "/api/orders/"+itoa(tr),
				"http.response.status_code", int64(201),
				"server.address", "service-"+itoa(svc),
				"user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)",
				"network.protocol.version", "1.1",
				"order.items", int64(3),
			)
			ev := sp.Events().AppendEmpty()
			ev.SetName("order.validated")
			ev.SetTimestamp(pcommon.Timestamp(start + 1_000_000))
			sp.Status().SetCode(ptrace.StatusCodeOk)
		}
	}
	return td
}

// BenchmarkDecodeOTLP decodes 1,000 spans.
func BenchmarkDecodeOTLP(b *testing.B) {
	req := ptraceotlp.NewExportRequestFromTraces(benchTraces(b))
	pb, err := req.MarshalProto()
	require.NoError(b, err)
	js, err := req.MarshalJSON()
	require.NoError(b, err)
	for name, body := range map[string][]byte{ContentTypeProtobuf: pb, ContentTypeJSON: js} {
		b.Run(strings.TrimPrefix(name, "application/"), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				td, err := DecodeOTLP(body, name)
				if err != nil || td.SpanCount() != 1000 {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "spans/s")
		})
	}
}
