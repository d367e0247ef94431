package tracepush

import (
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Limits are what Split holds spans and traces to; a limit of 0 is no
// limit. It is plain data, filled from the tenant's limits.
type Limits struct {
	// MaxAttributeKeyBytes bounds every attribute key: of a span, of its
	// events and links, of its resource and scope, and the keys of map
	// values within them.
	MaxAttributeKeyBytes int
	// MaxAttributeValueBytes bounds every string and bytes value of those
	// attributes, wherever it is (also inside array and map values).
	MaxAttributeValueBytes int
	// MaxBytesPerTrace bounds one trace's piece of this body: the length
	// of its Trace.Data.
	MaxBytesPerTrace int
	// Names name the settings that change the limits in rejection
	// messages.
	Names LimitNames
}

// LimitNames say what a rejection message names as the setting to change,
// e.g. "-validation.traces.max-attribute-value-bytes"; an empty name is
// left out of the message.
type LimitNames struct {
	MaxAttributeKeyBytes   string
	MaxAttributeValueBytes string
	MaxBytesPerTrace       string
}

// Reason is why spans were rejected; its values are stable, for metric
// labels.
type Reason string

// Reasons spans are rejected.
const (
	// ReasonInvalidTraceID: a span has no trace ID, or one of zeros.
	ReasonInvalidTraceID Reason = "invalid_trace_id"
	// ReasonInvalidSpanID: a span has no span ID, or one of zeros.
	ReasonInvalidSpanID Reason = "invalid_span_id"
	// ReasonEndBeforeStart: a span ends before it starts.
	ReasonEndBeforeStart Reason = "end_before_start"
	// ReasonAttributeTooLarge: an attribute key or value of the span, its
	// events, links, resource or scope is over a limit.
	ReasonAttributeTooLarge Reason = "attribute_too_large"
	// ReasonTraceTooLarge: the spans of a trace make a piece over
	// MaxBytesPerTrace; all of the trace's spans in the body are rejected.
	ReasonTraceTooLarge Reason = "trace_too_large"
)

// Trace is one trace's piece of a body.
type Trace struct {
	ID pcommon.TraceID
	// Spans is how many spans Data holds.
	Spans int
	// Start and End are the earliest start and the latest end of its
	// spans in Unix nanoseconds; Start counts only spans that have one, and
	// both are 0 when none has.
	Start, End uint64
	// Data is an OTLP TracesData protobuf (the same bytes as an
	// ExportTraceServiceRequest) holding the trace's spans: for each
	// resource and scope its spans came under, in the body's order, the
	// resource and scope (their fields copied as sent) and the spans
	// (copied as sent). It shares an array with the other Traces of its
	// Batch but not with the body; do not append to it.
	Data []byte
}

// Rejection is the first thing Split rejected.
type Rejection struct {
	Reason Reason
	// TraceID is the rejected trace's, or the rejected span's if it has
	// one.
	TraceID pcommon.TraceID
	// Msg says what was wrong, which span or trace, and the limit and its
	// setting when a limit was broken.
	Msg string
}

func (r *Rejection) Error() string { return r.Msg }

// Batch is a body cut into traces: the traces of the spans kept, and an
// account of the spans rejected. A Batch is not changed once returned.
type Batch struct {
	// Traces are the traces kept, in the order their first span came.
	Traces []Trace
	// Spans and Bytes total the Traces' Spans and len(Data).
	Spans, Bytes int
	// RejectedSpans counts the spans rejected, and Rejected counts them by
	// reason (nil when none was).
	RejectedSpans int
	Rejected      map[Reason]int
	// RejectedTraces counts the traces rejected whole for their size.
	RejectedTraces int
	// FirstRejection is nil when nothing was rejected.
	FirstRejection *Rejection
}

// Split checks td's spans against the limits and cuts td into traces: it
// is SplitProto of td's protobuf encoding.
func Split(td ptrace.Traces, lim Limits) (*Batch, error) {
	var m ptrace.ProtoMarshaler
	body, err := m.MarshalTraces(td)
	if err != nil {
		return nil, fmt.Errorf("encoding traces: %w", err)
	}
	return SplitProto(body, lim)
}

// SplitProto checks the spans of an OTLP ExportTraceServiceRequest (or
// TracesData) protobuf against the limits, and cuts what passes into one
// piece per trace ID. A body that is not a valid request is an *Error and
// nothing is kept: what SplitProto accepts, and every piece it makes,
// decodes with pdata. A span that breaks a rule is rejected alone, a trace
// over MaxBytesPerTrace whole; the rest is kept. The Batch does not share
// memory with body.
func SplitProto(body []byte, lim Limits) (*Batch, error) {
	s := newSplitter(lim, false)
	if err := s.walk(body); err != nil {
		return nil, err
	}
	return s.cut(), nil
}

// reject counts a rejected span and, if it is the first rejection, keeps
// its message.
func (b *Batch) reject(r Reason, n int, first func() *Rejection) {
	if b.Rejected == nil {
		b.Rejected = map[Reason]int{}
	}
	b.Rejected[r] += n
	b.RejectedSpans += n
	if b.FirstRejection == nil {
		b.FirstRejection = first()
	}
}

// limitName formats a limit's setting for a message: " (name)", or "".
func limitName(name string) string {
	if name == "" {
		return ""
	}
	return " (" + name + ")"
}
