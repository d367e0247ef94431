package traceql

// Intrinsic is a field every span has by construction, as opposed to an
// attribute.
type Intrinsic uint8

// Intrinsics.
const (
	IntrinsicNone Intrinsic = iota
	IntrinsicName
	IntrinsicStatus
	IntrinsicStatusMessage
	IntrinsicKind
	IntrinsicDuration
	IntrinsicSpanID
	IntrinsicParentID
	IntrinsicChildCount
	IntrinsicTraceDuration
	IntrinsicTraceRootName
	IntrinsicTraceRootService
	IntrinsicTraceID
	IntrinsicEventName
	IntrinsicEventTimeSinceStart
	IntrinsicLinkTraceID
	IntrinsicLinkSpanID
	IntrinsicInstrumentationName
	IntrinsicInstrumentationVersion
	IntrinsicNestedSetParent
	IntrinsicNestedSetLeft
	IntrinsicNestedSetRight
)

// level is where an intrinsic's value comes from.
type level uint8

const (
	levelSpan level = iota
	levelTrace
	levelEvent
	levelLink
	levelInstrumentation
)

type intrinsicInfo struct {
	text  string    // canonical form
	typ   ValueType // type of its values
	level level
	// key names the intrinsic among a matched span's attributes; empty
	// when it is not reported there (a span's name, duration and ID have
	// fields of their own, trace-level ones belong to the trace).
	key string
}

var intrinsics = [...]intrinsicInfo{
	IntrinsicName:                   {"span:name", TypeString, levelSpan, ""},
	IntrinsicStatus:                 {"span:status", TypeStatus, levelSpan, "status"},
	IntrinsicStatusMessage:          {"span:statusMessage", TypeString, levelSpan, "statusMessage"},
	IntrinsicKind:                   {"span:kind", TypeKind, levelSpan, "kind"},
	IntrinsicDuration:               {"span:duration", TypeDuration, levelSpan, ""},
	IntrinsicSpanID:                 {"span:id", TypeString, levelSpan, ""},
	IntrinsicParentID:               {"span:parentID", TypeString, levelSpan, "span:parentID"},
	IntrinsicChildCount:             {"span:childCount", TypeInt, levelSpan, "span:childCount"},
	IntrinsicTraceDuration:          {"trace:duration", TypeDuration, levelTrace, ""},
	IntrinsicTraceRootName:          {"trace:rootName", TypeString, levelTrace, ""},
	IntrinsicTraceRootService:       {"trace:rootService", TypeString, levelTrace, ""},
	IntrinsicTraceID:                {"trace:id", TypeString, levelTrace, ""},
	IntrinsicEventName:              {"event:name", TypeString, levelEvent, "event:name"},
	IntrinsicEventTimeSinceStart:    {"event:timeSinceStart", TypeDuration, levelEvent, "event:timeSinceStart"},
	IntrinsicLinkTraceID:            {"link:traceID", TypeString, levelLink, "link:traceID"},
	IntrinsicLinkSpanID:             {"link:spanID", TypeString, levelLink, "link:spanID"},
	IntrinsicInstrumentationName:    {"instrumentation:name", TypeString, levelInstrumentation, "instrumentation:name"},
	IntrinsicInstrumentationVersion: {"instrumentation:version", TypeString, levelInstrumentation, "instrumentation:version"},
	IntrinsicNestedSetParent:        {"nestedSetParent", TypeInt, levelSpan, "nestedSetParent"},
	IntrinsicNestedSetLeft:          {"nestedSetLeft", TypeInt, levelSpan, "nestedSetLeft"},
	IntrinsicNestedSetRight:         {"nestedSetRight", TypeInt, levelSpan, "nestedSetRight"},
}

func (i Intrinsic) String() string {
	if i > IntrinsicNone && int(i) < len(intrinsics) {
		return intrinsics[i].text
	}
	return ""
}

// scopedIntrinsics names the intrinsics by `scope:name`.
var scopedIntrinsics = func() map[string]Intrinsic {
	m := map[string]Intrinsic{}
	for i := IntrinsicName; int(i) < len(intrinsics); i++ {
		m[intrinsics[i].text] = i
	}
	delete(m, "nestedSetParent")
	delete(m, "nestedSetLeft")
	delete(m, "nestedSetRight")
	return m
}()

// bareIntrinsics are the intrinsics written without a scope, the legacy
// forms.
var bareIntrinsics = map[string]Intrinsic{
	"name":            IntrinsicName,
	"status":          IntrinsicStatus,
	"statusMessage":   IntrinsicStatusMessage,
	"kind":            IntrinsicKind,
	"duration":        IntrinsicDuration,
	"traceDuration":   IntrinsicTraceDuration,
	"rootName":        IntrinsicTraceRootName,
	"rootServiceName": IntrinsicTraceRootService,
	"nestedSetParent": IntrinsicNestedSetParent,
	"nestedSetLeft":   IntrinsicNestedSetLeft,
	"nestedSetRight":  IntrinsicNestedSetRight,
}

// intrinsicScopes are the words that may stand before `:`.
var intrinsicScopes = map[string]bool{"span": true, "trace": true, "event": true, "link": true, "instrumentation": true}

// attributeScopes are the words that may stand before `.`.
var attributeScopes = map[string]Scope{
	"span": ScopeSpan, "resource": ScopeResource, "event": ScopeEvent, "link": ScopeLink,
	"instrumentation": ScopeInstrumentation,
}
