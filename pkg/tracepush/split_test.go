package tracepush

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func TestSplitByTrace(t *testing.T) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
	putTestAttrs(t, rs.Resource().Attributes(), "service.name", "checkout", "k8s.pod.name", "checkout-1")
	rs.Resource().SetDroppedAttributesCount(2)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("net/http")
	ss.Scope().SetVersion("1.2")
	ss.SetSchemaUrl("https://scope.schema")
	addSpan(t, ss, 1, 1, 1000, "http.method", "GET")
	addSpan(t, ss, 2, 2, 500)
	addSpan(t, ss, 1, 3, 2000)
	ss2 := rs.ScopeSpans().AppendEmpty()
	ss2.Scope().SetName("db")
	addSpan(t, ss2, 1, 4, 3000)
	other := addScope(t, td, "service.name", "payments")
	addSpan(t, other, 2, 5, 100)
	addSpan(t, other, 1, 6, 4000)

	b, err := Split(td, Limits{})
	require.NoError(t, err)
	require.Nil(t, b.FirstRejection)
	require.Zero(t, b.RejectedSpans)
	require.Len(t, b.Traces, 2)
	require.Equal(t, 6, b.Spans)

	// Trace 1: spans 1, 3 (first scope), 4 (second scope), 6 (payments).
	want1 := ptrace.NewTraces()
	rs1 := want1.ResourceSpans().AppendEmpty()
	rs.Resource().CopyTo(rs1.Resource())
	rs1.SetSchemaUrl(rs.SchemaUrl())
	s1 := rs1.ScopeSpans().AppendEmpty()
	ss.Scope().CopyTo(s1.Scope())
	s1.SetSchemaUrl(ss.SchemaUrl())
	ss.Spans().At(0).CopyTo(s1.Spans().AppendEmpty())
	ss.Spans().At(2).CopyTo(s1.Spans().AppendEmpty())
	s2 := rs1.ScopeSpans().AppendEmpty()
	ss2.Scope().CopyTo(s2.Scope())
	ss2.Spans().At(0).CopyTo(s2.Spans().AppendEmpty())
	rs2 := want1.ResourceSpans().AppendEmpty()
	td.ResourceSpans().At(1).Resource().CopyTo(rs2.Resource())
	other.Spans().At(1).CopyTo(rs2.ScopeSpans().AppendEmpty().Spans().AppendEmpty())

	// Trace 2: span 2 (checkout), span 5 (payments).
	want2 := ptrace.NewTraces()
	rs1 = want2.ResourceSpans().AppendEmpty()
	rs.Resource().CopyTo(rs1.Resource())
	rs1.SetSchemaUrl(rs.SchemaUrl())
	s1 = rs1.ScopeSpans().AppendEmpty()
	ss.Scope().CopyTo(s1.Scope())
	s1.SetSchemaUrl(ss.SchemaUrl())
	ss.Spans().At(1).CopyTo(s1.Spans().AppendEmpty())
	rs2 = want2.ResourceSpans().AppendEmpty()
	td.ResourceSpans().At(1).Resource().CopyTo(rs2.Resource())
	other.Spans().At(0).CopyTo(rs2.ScopeSpans().AppendEmpty().Spans().AppendEmpty())

	got := b.Traces[0]
	require.Equal(t, traceID(1), got.ID)
	require.Equal(t, 4, got.Spans)
	require.Equal(t, uint64(1000), got.Start)
	require.Equal(t, uint64(4000+1_000_000), got.End)
	requireTracesEqual(t, want1, unmarshal(t, got.Data))
	require.Len(t, got.Data, cap(got.Data), "appending to a piece must not overwrite the next")

	got = b.Traces[1]
	require.Equal(t, traceID(2), got.ID)
	require.Equal(t, 2, got.Spans)
	require.Equal(t, uint64(100), got.Start)
	require.Equal(t, uint64(500+1_000_000), got.End)
	requireTracesEqual(t, want2, unmarshal(t, got.Data))

	require.Equal(t, len(b.Traces[0].Data)+len(b.Traces[1].Data), b.Bytes)
}

func TestSplitEmpty(t *testing.T) {
	for name, td := range map[string]ptrace.Traces{
		"no resources": ptrace.NewTraces(),
		"no spans": func() ptrace.Traces {
			td := ptrace.NewTraces()
			addScope(t, td, "service.name", "x")
			return td
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			b, err := Split(td, Limits{MaxBytesPerTrace: 1})
			require.NoError(t, err)
			require.Empty(t, b.Traces)
			require.Zero(t, b.Spans+b.Bytes+b.RejectedSpans)
			require.Nil(t, b.FirstRejection)
		})
	}
}

// TestSplitStartEnd: Start counts only spans that have one.
func TestSplitStartEnd(t *testing.T) {
	td := ptrace.NewTraces()
	ss := addScope(t, td)
	sp := addSpan(t, ss, 1, 1, 0)
	sp.SetEndTimestamp(0)
	addSpan(t, ss, 1, 2, 500)
	b, err := Split(td, Limits{})
	require.NoError(t, err)
	require.Equal(t, uint64(500), b.Traces[0].Start)
	require.Equal(t, uint64(500+1_000_000), b.Traces[0].End)
}

var testLimits = Limits{
	MaxAttributeKeyBytes:   8,
	MaxAttributeValueBytes: 16,
	Names: LimitNames{
		MaxAttributeKeyBytes:   "-validation.traces.max-attribute-key-bytes",
		MaxAttributeValueBytes: "-validation.traces.max-attribute-value-bytes",
		MaxBytesPerTrace:       "-ingester.traces.max-bytes-per-trace",
	},
}

func TestSplitRejectsSpans(t *testing.T) {
	long := strings.Repeat("v", 17)
	const okSpan = 9 // every case adds this span to trace 9, which is kept
	for name, tc := range map[string]struct {
		build  func(ss ptrace.ScopeSpans) // adds the bad span
		reason Reason
		msg    string
	}{
		"no trace ID": {
			build:  func(ss ptrace.ScopeSpans) { addSpan(t, ss, 1, 1, 10).SetTraceID(pcommon.TraceID{}) },
			reason: ReasonInvalidTraceID,
			msg:    "resource 0 scope 0 span 1 has no trace ID",
		},
		"no span ID": {
			build:  func(ss ptrace.ScopeSpans) { addSpan(t, ss, 1, 1, 10).SetSpanID(pcommon.SpanID{}) },
			reason: ReasonInvalidSpanID,
			msg:    "trace 01f92f3577b34da6a3ce929d0e0e4736: resource 0 scope 0 span 1 has no span ID",
		},
		"end before start": {
			build:  func(ss ptrace.ScopeSpans) { addSpan(t, ss, 1, 1, 10).SetEndTimestamp(9) },
			reason: ReasonEndBeforeStart,
			msg:    "trace 01f92f3577b34da6a3ce929d0e0e4736 span 01f067aa0ba902b7: it ends at 9 before it starts at 10 (Unix nanoseconds)",
		},
		"span attribute key": {
			build:  func(ss ptrace.ScopeSpans) { addSpan(t, ss, 1, 1, 10, "ok", "fine", "http.request.method", "GET") },
			reason: ReasonAttributeTooLarge,
			msg:    `trace 01f92f3577b34da6a3ce929d0e0e4736 span 01f067aa0ba902b7: attribute "http.request.method": its key is 19 bytes, longer than the limit of 8 bytes (-validation.traces.max-attribute-key-bytes)`,
		},
		"span attribute value": {
			build:  func(ss ptrace.ScopeSpans) { addSpan(t, ss, 1, 1, 10, "url", long) },
			reason: ReasonAttributeTooLarge,
			msg:    `trace 01f92f3577b34da6a3ce929d0e0e4736 span 01f067aa0ba902b7: attribute "url": its value is 17 bytes, longer than the limit of 16 bytes (-validation.traces.max-attribute-value-bytes)`,
		},
		"bytes value": {
			build:  func(ss ptrace.ScopeSpans) { addSpan(t, ss, 1, 1, 10, "b", []byte(long)) },
			reason: ReasonAttributeTooLarge,
			msg:    `trace 01f92f3577b34da6a3ce929d0e0e4736 span 01f067aa0ba902b7: attribute "b": its value is 17 bytes, longer than the limit of 16 bytes (-validation.traces.max-attribute-value-bytes)`,
		},
		"value in an array": {
			build:  func(ss ptrace.ScopeSpans) { addSpan(t, ss, 1, 1, 10, "list", []any{"a", int64(1), long}) },
			reason: ReasonAttributeTooLarge,
			msg:    `trace 01f92f3577b34da6a3ce929d0e0e4736 span 01f067aa0ba902b7: attribute "list": a value in it is 17 bytes, longer than the limit of 16 bytes (-validation.traces.max-attribute-value-bytes)`,
		},
		"key in a map": {
			build: func(ss ptrace.ScopeSpans) {
				addSpan(t, ss, 1, 1, 10, "m", map[string]any{"inner": map[string]any{"a-long-key": "x"}})
			},
			reason: ReasonAttributeTooLarge,
			msg:    `trace 01f92f3577b34da6a3ce929d0e0e4736 span 01f067aa0ba902b7: attribute "m": a key in its value is 10 bytes, longer than the limit of 8 bytes (-validation.traces.max-attribute-key-bytes)`,
		},
		"event attribute": {
			build: func(ss ptrace.ScopeSpans) {
				sp := addSpan(t, ss, 1, 1, 10)
				sp.Events().AppendEmpty()
				putTestAttrs(t, sp.Events().AppendEmpty().Attributes(), "exception.stacktrace", "x")
			},
			reason: ReasonAttributeTooLarge,
			msg:    `trace 01f92f3577b34da6a3ce929d0e0e4736 span 01f067aa0ba902b7: event 1 attribute "exception.stacktrace": its key is 20 bytes, longer than the limit of 8 bytes (-validation.traces.max-attribute-key-bytes)`,
		},
		"link attribute": {
			build: func(ss ptrace.ScopeSpans) {
				sp := addSpan(t, ss, 1, 1, 10)
				putTestAttrs(t, sp.Links().AppendEmpty().Attributes(), "k", long)
			},
			reason: ReasonAttributeTooLarge,
			msg:    `trace 01f92f3577b34da6a3ce929d0e0e4736 span 01f067aa0ba902b7: link 0 attribute "k": its value is 17 bytes, longer than the limit of 16 bytes (-validation.traces.max-attribute-value-bytes)`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			td := ptrace.NewTraces()
			ss := addScope(t, td)
			addSpan(t, ss, okSpan, okSpan, 10, "ok", "fine")
			tc.build(ss)
			b, err := Split(td, testLimits)
			require.NoError(t, err)
			require.Equal(t, 1, b.RejectedSpans)
			require.Equal(t, map[Reason]int{tc.reason: 1}, b.Rejected)
			require.Equal(t, tc.reason, b.FirstRejection.Reason)
			require.Equal(t, tc.msg, b.FirstRejection.Error())
			if tc.reason != ReasonInvalidTraceID {
				require.Equal(t, traceID(1), b.FirstRejection.TraceID)
			}
			require.Len(t, b.Traces, 1, "the good span is kept")
			require.Equal(t, traceID(okSpan), b.Traces[0].ID)
			require.Equal(t, 1, b.Spans)
		})
	}
}

// TestSplitRejectsByResourceAndScope: an attribute over a limit on a
// resource or scope rejects its spans, and only those.
func TestSplitRejectsByResourceAndScope(t *testing.T) {
	td := ptrace.NewTraces()
	bad := addScope(t, td, "service", "a-very-long-service-name")
	addSpan(t, bad, 1, 1, 10)
	addSpan(t, bad, 2, 2, 10)
	rs := td.ResourceSpans().AppendEmpty()
	good := rs.ScopeSpans().AppendEmpty()
	addSpan(t, good, 1, 3, 10)
	badScope := rs.ScopeSpans().AppendEmpty()
	putTestAttrs(t, badScope.Scope().Attributes(), "library.language", "go")
	addSpan(t, badScope, 1, 4, 10)

	b, err := Split(td, testLimits)
	require.NoError(t, err)
	require.Equal(t, 3, b.RejectedSpans)
	require.Equal(t, map[Reason]int{ReasonAttributeTooLarge: 3}, b.Rejected)
	require.Equal(t, `trace 01f92f3577b34da6a3ce929d0e0e4736 span 01f067aa0ba902b7: resource attribute "service": its value is 24 bytes, longer than the limit of 16 bytes (-validation.traces.max-attribute-value-bytes)`, b.FirstRejection.Msg)
	require.Len(t, b.Traces, 1)
	require.Equal(t, 1, b.Traces[0].Spans)
	got := unmarshal(t, b.Traces[0].Data)
	require.Equal(t, spanID(3), got.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SpanID())

	// Which rejection is first follows the body; the scope's message:
	td = ptrace.NewTraces()
	td.ResourceSpans().AppendEmpty()
	rs.CopyTo(td.ResourceSpans().At(0))
	b, err = Split(td, testLimits)
	require.NoError(t, err)
	require.Equal(t, `trace 01f92f3577b34da6a3ce929d0e0e4736 span 04f067aa0ba902b7: scope attribute "library.language": its key is 16 bytes, longer than the limit of 8 bytes (-validation.traces.max-attribute-key-bytes)`, b.FirstRejection.Msg)
}

func TestSplitRejectsZeroIDs(t *testing.T) {
	// pdata writes no field for IDs of zeros; a client may send them.
	body := appendRequest(nil, spanBytes(pcommon.TraceID{}, spanID(1)))
	b, err := SplitProto(body, Limits{})
	require.NoError(t, err)
	require.Equal(t, map[Reason]int{ReasonInvalidTraceID: 1}, b.Rejected)
	require.Equal(t, "resource 0 scope 0 span 0: the trace ID is all zeros", b.FirstRejection.Msg)

	body = appendRequest(nil, spanBytes(traceID(1), pcommon.SpanID{}))
	b, err = SplitProto(body, Limits{})
	require.NoError(t, err)
	require.Equal(t, map[Reason]int{ReasonInvalidSpanID: 1}, b.Rejected)
	require.Equal(t, "trace 01f92f3577b34da6a3ce929d0e0e4736: resource 0 scope 0 span 0: the span ID is all zeros", b.FirstRejection.Msg)
}

func TestSplitTraceTooLarge(t *testing.T) {
	td := ptrace.NewTraces()
	ss := addScope(t, td, "service.name", "api")
	big := strings.Repeat("x", 1000)
	for i := range 5 {
		addSpan(t, ss, 1, byte(i), 10, "payload", big)
	}
	addSpan(t, ss, 2, 9, 10)
	addSpan(t, ss, 1, 10, 10).SetEndTimestamp(0) // rejected alone first

	one, err := Split(td, Limits{})
	require.NoError(t, err)
	size := len(one.Traces[0].Data)

	lim := Limits{MaxBytesPerTrace: size - 1, Names: LimitNames{MaxBytesPerTrace: "-ingester.traces.max-bytes-per-trace"}}
	b, err := Split(td, lim)
	require.NoError(t, err)
	require.Equal(t, 6, b.RejectedSpans)
	require.Equal(t, 1, b.RejectedTraces)
	require.Equal(t, map[Reason]int{ReasonEndBeforeStart: 1, ReasonTraceTooLarge: 5}, b.Rejected)
	require.Len(t, b.Traces, 1)
	require.Equal(t, traceID(2), b.Traces[0].ID)
	require.Equal(t, ReasonEndBeforeStart, b.FirstRejection.Reason)

	// Without the bad span, the first rejection is the trace's.
	ss.Spans().RemoveIf(func(sp ptrace.Span) bool { return sp.EndTimestamp() == 0 })
	b, err = Split(td, lim)
	require.NoError(t, err)
	require.Equal(t, &Rejection{
		Reason:  ReasonTraceTooLarge,
		TraceID: traceID(1),
		Msg:     "trace 01f92f3577b34da6a3ce929d0e0e4736: " + itoa(size) + " bytes exceeds the per-trace limit of " + itoa(size-1) + " bytes (-ingester.traces.max-bytes-per-trace)",
	}, b.FirstRejection)

	b, err = Split(td, Limits{MaxBytesPerTrace: size})
	require.NoError(t, err)
	require.Zero(t, b.RejectedSpans, "the limit itself is allowed")
	require.Len(t, b.Traces, 2)
}

// TestSplitLimitNameOmitted: without a setting's name, a message ends at
// the limit.
func TestSplitLimitNameOmitted(t *testing.T) {
	td := ptrace.NewTraces()
	addSpan(t, addScope(t, td), 1, 1, 10, "a-long-key", "v")
	b, err := Split(td, Limits{MaxAttributeKeyBytes: 3})
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(b.FirstRejection.Msg, "longer than the limit of 3 bytes"), b.FirstRejection.Msg)
}

func TestSplitProtoErrors(t *testing.T) {
	ok := spanBytes(traceID(1), spanID(1))
	for name, tc := range map[string]struct {
		body []byte
		want string
	}{
		"truncated": {
			body: appendRequest(nil, ok)[:20],
			want: "request: not valid protobuf: field 1: unexpected end",
		},
		"resource_spans varint": {
			body: []byte{0x08, 0x01},
			want: "request: resource_spans (field 1) is varint, not length-delimited",
		},
		"trace ID of 5 bytes": {
			body: appendRequest(nil, withField(ok, 1, bytesField([]byte{1, 2, 3, 4, 5}))),
			want: "resource 0 scope 0 span 0: trace_id of 5 bytes: it is 16 bytes",
		},
		"span ID of 9 bytes": {
			body: appendRequest(nil, withField(ok, 2, bytesField(make([]byte, 9)))),
			want: "resource 0 scope 0 span 0: span_id of 9 bytes: it is 8 bytes",
		},
		"parent span ID of 3 bytes": {
			body: appendRequest(nil, withField(ok, 4, bytesField([]byte{1, 2, 3}))),
			want: "resource 0 scope 0 span 0: parent_span_id of 3 bytes: it is 8 bytes",
		},
		"link span ID": {
			body: appendRequest(nil, withField(ok, 13, bytesField(withField(nil, 2, bytesField([]byte{1}))))),
			want: "resource 0 scope 0 span 0 link 0: span_id of 1 bytes: it is 8 bytes",
		},
		"unknown kind": {
			body: appendRequest(nil, withField(ok, 6, varintField(6))),
			want: "resource 0 scope 0 span 0: kind 6 is not a span kind (0 to 5)",
		},
		"negative kind": {
			body: appendRequest(nil, withField(ok, 6, varintField(math.MaxUint64))),
			want: "resource 0 scope 0 span 0: kind -1 is not a span kind (0 to 5)",
		},
		"unknown status code": {
			body: appendRequest(nil, withField(ok, 15, bytesField(withField(nil, 3, varintField(3))))),
			want: "resource 0 scope 0 span 0: status code 3 is not a status code (0 to 2)",
		},
		"start after 2262": {
			body: appendRequest(nil, withField(ok, 7, fixed64Field(math.MaxInt64+1))),
			want: "resource 0 scope 0 span 0: start_time_unix_nano 9223372036854775808 is after 2262 (Unix nanoseconds in 63 bits)",
		},
		"event time after 2262": {
			body: appendRequest(nil, withField(ok, 11, bytesField(withField(nil, 1, fixed64Field(math.MaxUint64))))),
			want: "resource 0 scope 0 span 0 event 0: time_unix_nano 18446744073709551615 is after 2262 (Unix nanoseconds in 63 bits)",
		},
		"start as varint": {
			body: appendRequest(nil, withField(ok, 7, varintField(5))),
			want: "resource 0 scope 0 span 0: start_time_unix_nano (field 7) is varint, not fixed64",
		},
		"attribute value of the wrong type": {
			body: appendRequest(nil, withField(ok, 9, bytesField(keyValue("k", withField(nil, 3, bytesField(nil)))))),
			want: `resource 0 scope 0 span 0: attribute "k": field 3 of its value is length-delimited, not varint`,
		},
		"values nested too deep": {
			body: appendRequest(nil, withField(ok, 9, bytesField(keyValue("deep", nested(maxValueDepth+1))))),
			want: `resource 0 scope 0 span 0: attribute "deep": its value nests more than 64 deep`,
		},
		"bad group": {
			body: append(appendRequest(nil, ok), 0x0c), // end group 1
			want: "request: not valid protobuf: field 1: end of group without its start",
		},
		"field 0": {
			body: []byte{0x00, 0x00},
			want: "request: not valid protobuf: invalid field number",
		},
		"scope attribute": {
			body: appendRequest(nil, ok, withField(nil, 3, bytesField(keyValue("k", withField(nil, 1, varintField(1)))))),
			want: `resource 0 scope 0: attribute "k": field 1 of its value is varint, not length-delimited`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := SplitProto(tc.body, Limits{})
			require.Nil(t, b)
			var e *Error
			require.True(t, errors.As(err, &e), "%v", err)
			require.Equal(t, tc.want, err.Error())
			_, err = DecodeOTLP(tc.body, ContentTypeProtobuf)
			require.Equal(t, tc.want, err.Error(), "DecodeOTLP says the same")
		})
	}
	// As deep as allowed is fine.
	body := appendRequest(nil, withField(ok, 9, bytesField(keyValue("deep", nested(maxValueDepth)))))
	_, err := SplitProto(body, Limits{})
	require.NoError(t, err)
}

// TestSplitProtoAsPdataReads: unknown fields are kept, fields come in any
// order, and instrumentation_library_spans are read only when there are no
// scope_spans, all as pdata reads them.
func TestSplitProtoAsPdataReads(t *testing.T) {
	span1 := spanBytes(traceID(1), spanID(1))
	span2 := spanBytes(traceID(1), spanID(2))
	unknown := withField(nil, 99, bytesField([]byte("future")))
	attr := keyValue("service.name", withField(nil, valueString, stringField("api")))
	resource := slices.Clip(withField(nil, rsResource, bytesField(withField(nil, resourceAttributes, bytesField(attr)))))
	scope := func(spans ...[]byte) []byte {
		b := withField(nil, 77, varintField(1)) // unknown
		for _, sp := range spans {
			b = withField(b, ssSpans, bytesField(slices.Concat(sp, unknown)))
		}
		return b
	}
	for name, tc := range map[string]struct {
		rs    []byte // a ResourceSpans
		spans []pcommon.SpanID
	}{
		"resource after its scopes": {
			rs:    withField(withField(nil, rsScopeSpans, bytesField(scope(span1))), rsResource, bytesField(nil)),
			spans: []pcommon.SpanID{spanID(1)},
		},
		"old scopes only": {
			rs:    append(withField(resource, rsOldScopeSpans, bytesField(scope(span1))), unknown...),
			spans: []pcommon.SpanID{spanID(1)},
		},
		"old scopes ignored beside new ones": {
			rs:    withField(withField(resource, rsOldScopeSpans, bytesField(scope(span1))), rsScopeSpans, bytesField(scope(span2))),
			spans: []pcommon.SpanID{spanID(2)},
		},
	} {
		t.Run(name, func(t *testing.T) {
			body := withField(slices.Clip(unknown), requestResourceSpans, bytesField(tc.rs))
			want, err := DecodeOTLP(body, ContentTypeProtobuf)
			require.NoError(t, err)
			require.Equal(t, len(tc.spans), want.SpanCount())
			b, err := SplitProto(body, Limits{})
			require.NoError(t, err)
			require.Len(t, b.Traces, 1)
			got := unmarshal(t, b.Traces[0].Data)
			requireTracesEqual(t, want, got)
			for i, id := range tc.spans {
				require.Equal(t, id, got.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(i).SpanID())
			}
			require.Contains(t, string(b.Traces[0].Data), "future", "unknown fields of spans are kept")
		})
	}
}

// TestSplitOwnsItsMemory: the body may be reused once SplitProto returns.
func TestSplitOwnsItsMemory(t *testing.T) {
	td := ptrace.NewTraces()
	addSpan(t, addScope(t, td, "service.name", "api"), 1, 1, 10, "k", "v")
	body := marshal(t, td)
	b, err := SplitProto(body, Limits{})
	require.NoError(t, err)
	want := append([]byte(nil), b.Traces[0].Data...)
	clear(body)
	require.Equal(t, want, b.Traces[0].Data)
}

// BenchmarkSplitByTrace is the push path of OTLP protobuf: 1,000 spans of 5
// services and 200 traces in, 200 pieces out. Bytes are the body's.
func BenchmarkSplitByTrace(b *testing.B) {
	body := marshal(b, benchTraces(b))
	lim := Limits{MaxAttributeKeyBytes: 1024, MaxAttributeValueBytes: 64 << 10, MaxBytesPerTrace: 5_000_000}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		batch, err := SplitProto(body, lim)
		if err != nil || len(batch.Traces) != 200 || batch.Spans != 1000 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "spans/s")
}

// BenchmarkSplitPdata is the push path of OTLP JSON and Zipkin once decoded:
// Split marshals the traces first.
func BenchmarkSplitPdata(b *testing.B) {
	td := benchTraces(b)
	b.ReportAllocs()
	for b.Loop() {
		batch, err := Split(td, Limits{})
		if err != nil || batch.Spans != 1000 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "spans/s")
}
