// Package tempoapi serves Tempo's HTTP query API (/tempo/api/…) with the
// exact shapes Grafana's Tempo datasource parses, over a Backend that reads
// a tenant's stored traces. Tempo's documentation and Grafana's parsers are
// the reference; no Tempo code is used.
package tempoapi

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Backend is what the API reads of one tenant's traces. The handlers parse
// and check every parameter before calling it, so requests are well formed
// (times ordered, limits positive); they shape, sort and truncate the
// answers, so a Backend returns plain data in any order.
//
// Implementations are safe for concurrent use. Every method must return
// when ctx is done (the API bounds requests with -querier.traces.query-timeout).
// Requests and what they hold belong to the caller and must not be kept
// after the call; answers belong to the API once returned, which may
// reorder and truncate their slices in place.
//
// Errors: wrap ErrBadRequest for what the request caused (a TraceQL query
// that does not parse or cannot run, an exceeded limit); the API answers
// those with 400 and the error's message. Any other error is the store's
// fault and is answered with 500.
type Backend interface {
	// TraceByID returns the whole trace with the 16-byte id, merged from
	// wherever its spans are stored, and whether any span was found. start
	// and end, when not zero, bound where to look: only blocks and
	// ingesters holding data in [start, end] need be read (both are zero
	// or neither; the trace may then be anywhere in retention).
	TraceByID(ctx context.Context, tenant string, id []byte, start, end time.Time) (ptrace.Traces, bool, error)
	// Search returns the traces matching req.Query, at most req.Limit.
	Search(ctx context.Context, tenant string, req SearchRequest) (SearchResponse, error)
	// SearchTags returns the attribute names seen in the tenant's spans, by
	// scope.
	SearchTags(ctx context.Context, tenant string, req TagsRequest) (TagsResponse, error)
	// TagValues returns the values one attribute or intrinsic takes.
	TagValues(ctx context.Context, tenant string, req TagValuesRequest) (TagValuesResponse, error)
	// MetricsQueryRange evaluates a TraceQL metrics query at steps over a
	// range.
	MetricsQueryRange(ctx context.Context, tenant string, req MetricsRequest) (MetricsRangeResponse, error)
	// MetricsQueryInstant evaluates a TraceQL metrics query once over a
	// whole range (req.Step is zero).
	MetricsQueryInstant(ctx context.Context, tenant string, req MetricsRequest) (MetricsInstantResponse, error)
}

// ErrBadRequest marks a Backend's error as the request's fault: the API
// answers 400 with the error's message. Wrap it with the reason, e.g.
// fmt.Errorf("%w: parsing the query: unexpected }", tempoapi.ErrBadRequest).
var ErrBadRequest = errors.New("bad request")

// SearchRequest is a search of /api/search.
type SearchRequest struct {
	// Query is a TraceQL query, never empty: the request's q, or its legacy
	// tags converted by TagsToTraceQL, or "{}" (every trace) when it has
	// neither.
	Query string
	// MinDuration and MaxDuration, when positive, bound the duration of the
	// traces returned (the legacy minDuration and maxDuration parameters,
	// which apply whatever form the query has).
	MinDuration, MaxDuration time.Duration
	// Limit is the most traces to return, at least 1.
	Limit int
	// SpansPerSpanSet is the most spans each span set lists (their count
	// is in Matched); 0 lists them all.
	SpansPerSpanSet int
	// Start and End bound where to look: traces with spans in [Start,
	// End]. Both are zero or neither; zero means recent data only, as
	// Tempo does (what ingesters hold), which is what a search without a
	// time range asks.
	Start, End time.Time
}

// SearchResponse is what a search found. The API sorts Traces newest
// first, then by trace ID, truncates them to the request's limit, and
// truncates each span set to the request's spans per span set.
type SearchResponse struct {
	Traces  []TraceSearchMetadata
	Metrics SearchMetrics
}

// TraceSearchMetadata is one trace a search found.
type TraceSearchMetadata struct {
	// TraceID is the trace's ID (16 bytes); it is written as hex without
	// leading zeros, as Tempo writes it.
	TraceID []byte
	// RootServiceName and RootTraceName are the service and name of the
	// trace's root span (Tempo writes "<root span not yet received>" as
	// the service when it has none).
	RootServiceName, RootTraceName string
	// StartTimeUnixNano is the start of the trace's earliest span.
	StartTimeUnixNano uint64
	// DurationMs is the trace's duration in milliseconds.
	DurationMs uint32
	// SpanSets are the sets of spans that matched the query, each listing
	// at most the request's spans per span set.
	SpanSets []SpanSet
}

// SpanSet is a set of spans that matched a query.
type SpanSet struct {
	Spans []Span
	// Matched is how many spans matched, which may be more than Spans
	// lists.
	Matched uint32
	// Attributes are the span set's own values: by() groups, count()
	// and other aggregates.
	Attributes []KeyValue
}

// Span is a span of a span set.
type Span struct {
	// SpanID is the span's ID (8 bytes), written as 16 hex digits.
	SpanID            []byte
	Name              string
	StartTimeUnixNano uint64
	DurationNanos     uint64
	// Attributes are the span's values that the query named or selected.
	Attributes []KeyValue
}

// SearchMetrics say how much a query read; the zero value is fine. The
// API writes only the fields Grafana's strict decoder knows.
type SearchMetrics struct {
	InspectedTraces uint32
	InspectedBytes  uint64
	TotalBlocks     uint32
	CompletedJobs   uint32
	TotalJobs       uint32
	TotalBlockBytes uint64
}

// Scopes of attribute names, as the tags endpoints name them.
const (
	ScopeSpan            = "span"
	ScopeResource        = "resource"
	ScopeEvent           = "event"
	ScopeLink            = "link"
	ScopeInstrumentation = "instrumentation"
	ScopeIntrinsic       = "intrinsic"
)

// TagsRequest asks for attribute names.
type TagsRequest struct {
	// Scope is one of the Scope constants, or "" for every scope.
	Scope string
	// Query, when not empty, is a TraceQL filter: only the names seen on
	// spans it matches are wanted. It may be incomplete (Grafana sends
	// what the user has typed so far); a Backend that cannot use it
	// answers as if it were empty rather than failing.
	Query string
	// Start and End bound the spans' times, both zero (recent data only)
	// or neither.
	Start, End time.Time
	// Limit is the most names per scope, 0 for no limit.
	Limit int
}

// TagsResponse holds attribute names by scope.
type TagsResponse struct {
	// Scopes hold the names of each scope (unscoped: "http.method", not
	// "span.http.method"), in any order; a scope may appear twice. The
	// API merges, sorts and truncates them. When the request's scope is
	// "" or "intrinsic" and the Backend returns no intrinsic scope, the
	// API lists TraceQL's intrinsics (duration, name, status, span:kind,
	// trace:rootService, …), which Grafana's query builder offers.
	Scopes []TagScope
}

// TagScope is the attribute names of one scope.
type TagScope struct {
	Name string
	Tags []string
}

// TagValuesRequest asks for the values of one attribute or intrinsic.
type TagValuesRequest struct {
	// Tag is a TraceQL identifier: "resource.service.name",
	// "span.http.status_code", ".service.name" (span or resource),
	// "status", "span:kind", ".\"name with space\"". The v1 endpoint's bare
	// names are converted: "http.url" → ".http.url", "status.code" →
	// "status".
	Tag string
	// Query filters as TagsRequest.Query does, and may be incomplete too.
	Query string
	// Start and End bound the spans' times, both zero (recent data only)
	// or neither.
	Start, End time.Time
	// Limit is the most values, 0 for no limit.
	Limit int
}

// TagValuesResponse holds the values of a tag, in any order; the API
// removes duplicates, sorts and truncates them.
type TagValuesResponse struct {
	Values []TagValue
}

// TagValue is a typed value. Type is TraceQL's name of the value's type:
// "string", "int", "float", "bool", "duration", "status" or "kind" (an
// empty Type is written as "string"). Value is its text as TraceQL would
// write it without quotes: "frontend", "200", "1.5", "true", "10ms",
// "error", "server".
type TagValue struct {
	Type, Value string
}

// MetricsRequest is a TraceQL metrics query.
type MetricsRequest struct {
	// Query is a TraceQL metrics query ({…} | rate() by (…) …).
	Query string
	// Start and End are the query's range, Start before End (defaults:
	// the hour before now).
	Start, End time.Time
	// Step is the distance between the samples of a range query, positive
	// (the request's step, or a 240th of the range rounded down to a round
	// duration); zero for an instant query. Aligning samples to it is the
	// Backend's business.
	Step time.Duration
	// Exemplars is the most exemplars the answer may carry; 0 is the
	// Backend's default (Tempo's is 100). Instant queries ask for none.
	Exemplars int
}

// MetricsRangeResponse is the answer to a range query. The API sorts the
// series by their labels and each series' samples and exemplars by time.
type MetricsRangeResponse struct {
	Series  []TimeSeries
	Metrics SearchMetrics
}

// TimeSeries is one series of a range query.
type TimeSeries struct {
	// Labels identify the series: the by() values, "p" for a quantile,
	// "__bucket" for a histogram bucket, "__meta_type" for compare().
	Labels    []KeyValue
	Samples   []Sample
	Exemplars []Exemplar
}

// Sample is a value at a time (Unix milliseconds).
type Sample struct {
	TimestampMs int64
	Value       float64
}

// Exemplar is a span behind a sample: its labels carry its trace ID as
// "trace:id" (Grafana links it to the trace view).
type Exemplar struct {
	Labels      []KeyValue
	Value       float64
	TimestampMs int64
}

// MetricsInstantResponse is the answer to an instant query; the API sorts
// its series by their labels.
type MetricsInstantResponse struct {
	Series  []InstantSeries
	Metrics SearchMetrics
}

// InstantSeries is one series of an instant query: one value over the
// whole range.
type InstantSeries struct {
	Labels []KeyValue
	Value  float64
}

// KeyValue is a named value, written as OTLP JSON writes an attribute:
// {"key":"http.method","value":{"stringValue":"GET"}}.
type KeyValue struct {
	Key   string
	Value Value
}

// ValueType is the type of a Value.
type ValueType uint8

// Value types. The zero Value is empty and is written {}.
const (
	ValueEmpty ValueType = iota
	ValueString
	ValueInt
	ValueDouble
	ValueBool
)

// Value is a typed scalar value: the field its Type names holds it.
type Value struct {
	Type   ValueType
	Str    string
	Int    int64
	Double float64
	Bool   bool
}

// StringValue returns a string Value.
func StringValue(s string) Value { return Value{Type: ValueString, Str: s} }

// IntValue returns an integer Value.
func IntValue(n int64) Value { return Value{Type: ValueInt, Int: n} }

// DoubleValue returns a floating-point Value.
func DoubleValue(f float64) Value { return Value{Type: ValueDouble, Double: f} }

// BoolValue returns a boolean Value.
func BoolValue(b bool) Value { return Value{Type: ValueBool, Bool: b} }
