package tracepush

import (
	"math"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of OTLP's trace.proto, common.proto and resource.proto
// (opentelemetry.proto.*.v1), as pdata reads them.
const (
	requestResourceSpans = 1 // TracesData / ExportTraceServiceRequest

	rsResource   = 1
	rsScopeSpans = 2
	rsSchemaURL  = 3
	// rsOldScopeSpans is instrumentation_library_spans, which pdata reads
	// as the scope spans when there are none.
	rsOldScopeSpans = 1000

	resourceAttributes = 1
	resourceDropped    = 2
	resourceEntityRefs = 3

	ssScope     = 1
	ssSpans     = 2
	ssSchemaURL = 3

	scopeName       = 1
	scopeVersion    = 2
	scopeAttributes = 3
	scopeDropped    = 4

	spanTraceID      = 1
	spanSpanID       = 2
	spanTraceState   = 3
	spanParentSpanID = 4
	spanNameField    = 5
	spanKind         = 6
	spanStart        = 7
	spanEnd          = 8
	spanAttributes   = 9
	spanDroppedAttrs = 10
	spanEvents       = 11
	spanDroppedEvts  = 12
	spanLinks        = 13
	spanDroppedLinks = 14
	spanStatus       = 15
	spanFlags        = 16

	eventTime       = 1
	eventName       = 2
	eventAttributes = 3
	eventDropped    = 4

	linkTraceID    = 1
	linkSpanID     = 2
	linkTraceState = 3
	linkAttributes = 4
	linkDropped    = 5
	linkFlags      = 6

	statusMessage = 2
	statusCode    = 3

	kvKey         = 1
	kvValue       = 2
	kvKeyStrindex = 3

	valueString         = 1
	valueBool           = 2
	valueInt            = 3
	valueDouble         = 4
	valueArray          = 5
	valueKvlist         = 6
	valueBytes          = 7
	valueStringStrindex = 8

	listValues = 1 // ArrayValue.values, KeyValueList.values

	// maxValueDepth bounds how deep attribute values nest (arrays and maps
	// in arrays and maps). pdata decodes them recursively: a body of
	// values nested a million deep would exhaust a goroutine's stack and
	// crash the process.
	maxValueDepth = 64

	traceIDSize     = 16
	spanIDSize      = 8
	maxSpanKind     = 5 // SPAN_KIND_CONSUMER
	maxStatusCode   = 2 // STATUS_CODE_ERROR
	maxTimeUnixNano = math.MaxInt64
)

// field is one field of a protobuf message.
type field struct {
	num protowire.Number
	typ protowire.Type
	val []byte // a length-delimited field's bytes
	u   uint64 // a varint or fixed field's value
}

// next reads the field at the start of b into f and returns what follows
// it. One-byte tags and lengths, which most are, take a short way.
func (s *splitter) next(b []byte, f *field) ([]byte, error) {
	if c := b[0]; c >= 1<<3 && c < 0x80 {
		f.num, f.typ = protowire.Number(c>>3), protowire.Type(c&7)
		b = b[1:]
	} else {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, s.errorf("not valid protobuf: %s", parseError(n))
		}
		f.num, f.typ = num, typ
		b = b[n:]
	}
	var n int
	switch f.typ {
	case protowire.BytesType:
		if len(b) > 0 && b[0] < 0x80 && int(b[0]) < len(b) {
			l := int(b[0]) + 1
			f.val = b[1:l]
			return b[l:], nil
		}
		f.val, n = protowire.ConsumeBytes(b)
	case protowire.VarintType:
		f.u, n = protowire.ConsumeVarint(b)
	case protowire.Fixed64Type:
		f.u, n = protowire.ConsumeFixed64(b)
	case protowire.Fixed32Type:
		var v uint32
		v, n = protowire.ConsumeFixed32(b)
		f.u = uint64(v)
	default:
		n = protowire.ConsumeFieldValue(f.num, f.typ, b)
	}
	if n < 0 {
		return nil, s.errorf("not valid protobuf: field %d: %s", f.num, parseError(n))
	}
	return b[n:], nil
}

// parseError words protowire's error codes (its own messages vary their
// spaces on purpose, so that nobody matches them).
func parseError(n int) string {
	switch n {
	case -1:
		return "unexpected end"
	case -2:
		return "invalid field number"
	case -3:
		return "varint overflows 64 bits"
	case -4:
		return "reserved wire type"
	case -5:
		return "end of group without its start"
	case -6:
		return "groups nest too deep"
	}
	return "error " + strconv.Itoa(n)
}

var wireTypeNames = [...]string{
	protowire.VarintType:     "varint",
	protowire.Fixed64Type:    "fixed64",
	protowire.BytesType:      "length-delimited",
	protowire.StartGroupType: "group",
	protowire.EndGroupType:   "end of group",
	protowire.Fixed32Type:    "fixed32",
}

func wireTypeName(t protowire.Type) string {
	if int(t) < len(wireTypeNames) && wireTypeNames[t] != "" {
		return wireTypeNames[t]
	}
	return "wire type " + strconv.Itoa(int(t))
}

// want checks that f, a field pdata knows, has the wire type pdata reads.
func (s *splitter) want(f *field, typ protowire.Type, name string) error {
	if f.typ != typ {
		return s.errorf("%s (field %d) is %s, not %s", name, f.num, wireTypeName(f.typ), wireTypeName(typ))
	}
	return nil
}
