package tracepush

import (
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"google.golang.org/protobuf/encoding/protowire"
)

// Protobuf written by hand, for what pdata would not write.

type fieldValue struct {
	typ protowire.Type
	b   []byte
	u   uint64
}

func bytesField(b []byte) fieldValue   { return fieldValue{typ: protowire.BytesType, b: b} }
func varintField(u uint64) fieldValue  { return fieldValue{typ: protowire.VarintType, u: u} }
func fixed64Field(u uint64) fieldValue { return fieldValue{typ: protowire.Fixed64Type, u: u} }
func stringField(s string) fieldValue  { return bytesField([]byte(s)) }
func itoa(n int) string                { return strconv.Itoa(n) }

// withField appends a field to a message.
func withField(dst []byte, num protowire.Number, v fieldValue) []byte {
	dst = protowire.AppendTag(dst, num, v.typ)
	switch v.typ {
	case protowire.BytesType:
		return protowire.AppendBytes(dst, v.b)
	case protowire.Fixed64Type:
		return protowire.AppendFixed64(dst, v.u)
	default:
		return protowire.AppendVarint(dst, v.u)
	}
}

// spanBytes is a Span with IDs, a name and times.
func spanBytes(tr pcommon.TraceID, sp pcommon.SpanID) []byte {
	b := withField(nil, spanTraceID, bytesField(tr[:]))
	b = withField(b, spanSpanID, bytesField(sp[:]))
	b = withField(b, spanNameField, stringField("op"))
	b = withField(b, spanStart, fixed64Field(1))
	return withField(b, spanEnd, fixed64Field(2))
}

// appendRequest appends a resource_spans of one scope holding span; scope,
// if given, is its InstrumentationScope.
func appendRequest(dst, span []byte, scope ...[]byte) []byte {
	var ss []byte
	for _, s := range scope {
		ss = withField(ss, ssScope, bytesField(s))
	}
	ss = withField(ss, ssSpans, bytesField(span))
	rs := withField(nil, rsScopeSpans, bytesField(ss))
	return withField(dst, requestResourceSpans, bytesField(rs))
}

// keyValue is a KeyValue of a key and an AnyValue.
func keyValue(key string, value []byte) []byte {
	return withField(withField(nil, kvKey, stringField(key)), kvValue, bytesField(value))
}

// nested is an AnyValue of depth arrays in one another around a bool.
func nested(depth int) []byte {
	v := withField(nil, valueBool, varintField(1))
	for range depth {
		v = withField(nil, valueArray, bytesField(withField(nil, listValues, bytesField(v))))
	}
	return v
}
