package tracepush

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// traceID and spanID make IDs that differ in their first byte.
func traceID(n byte) pcommon.TraceID {
	return pcommon.TraceID{n, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
}

func spanID(n byte) pcommon.SpanID {
	return pcommon.SpanID{n, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
}

// putAttrs sets attributes in order from name, value pairs; values are what
// pcommon.Value.FromRaw takes.
func putTestAttrs(t testing.TB, m pcommon.Map, kv ...any) {
	t.Helper()
	require.Zero(t, len(kv)%2, "name, value pairs")
	for i := 0; i < len(kv); i += 2 {
		require.NoError(t, m.PutEmpty(kv[i].(string)).FromRaw(kv[i+1]))
	}
}

// addScope appends a resource with attributes and returns its one scope.
func addScope(t testing.TB, td ptrace.Traces, attrs ...any) ptrace.ScopeSpans {
	rs := td.ResourceSpans().AppendEmpty()
	putTestAttrs(t, rs.Resource().Attributes(), attrs...)
	return rs.ScopeSpans().AppendEmpty()
}

// addSpan appends a span of trace tr with ID n, starting at start ns and
// lasting a millisecond.
func addSpan(t testing.TB, ss ptrace.ScopeSpans, tr, n byte, start uint64, attrs ...any) ptrace.Span {
	sp := ss.Spans().AppendEmpty()
	sp.SetTraceID(traceID(tr))
	sp.SetSpanID(spanID(n))
	sp.SetName("span-" + string('a'+rune(n%26)))
	sp.SetStartTimestamp(pcommon.Timestamp(start))
	sp.SetEndTimestamp(pcommon.Timestamp(start + 1_000_000))
	putTestAttrs(t, sp.Attributes(), attrs...)
	return sp
}

func marshal(t testing.TB, td ptrace.Traces) []byte {
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	require.NoError(t, err)
	return b
}

// unmarshal decodes a piece as the ingester does.
func unmarshal(t testing.TB, b []byte) ptrace.Traces {
	t.Helper()
	var u ptrace.ProtoUnmarshaler
	td, err := u.UnmarshalTraces(b)
	require.NoError(t, err)
	return td
}

// requireTracesEqual compares as OTLP JSON, which shows where they differ.
func requireTracesEqual(t testing.TB, want, got ptrace.Traces) {
	t.Helper()
	var m ptrace.JSONMarshaler
	w, err := m.MarshalTraces(want)
	require.NoError(t, err)
	g, err := m.MarshalTraces(got)
	require.NoError(t, err)
	require.JSONEq(t, string(w), string(g))
}
