package tempoapi

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// The messages of Tempo's JSON search answer (tempopb, by its protobuf
// JSON mapping), written from tempo.proto's field list: Grafana's Tempo
// datasource decodes them, the tests check Canopy's answers against them
// and a federator reads its children's answers with DecodeSearch.

type pbSearchResponse struct {
	Traces  []pbTraceSearchMetadata `json:"traces"`
	Metrics *pbSearchMetrics        `json:"metrics"`
}

type pbTraceSearchMetadata struct {
	TraceID           string      `json:"traceID"`
	RootServiceName   string      `json:"rootServiceName"`
	RootTraceName     string      `json:"rootTraceName"`
	StartTimeUnixNano uint64      `json:"startTimeUnixNano,string"`
	DurationMs        uint32      `json:"durationMs"`
	SpanSet           *pbSpanSet  `json:"spanSet"`
	SpanSets          []pbSpanSet `json:"spanSets"`
}

type pbSpanSet struct {
	Spans      []pbSpan     `json:"spans"`
	Matched    uint32       `json:"matched"`
	Attributes []pbKeyValue `json:"attributes"`
}

type pbSpan struct {
	SpanID            string       `json:"spanID"`
	Name              string       `json:"name"`
	StartTimeUnixNano uint64       `json:"startTimeUnixNano,string"`
	DurationNanos     uint64       `json:"durationNanos,string"`
	Attributes        []pbKeyValue `json:"attributes"`
}

type pbSearchMetrics struct {
	InspectedTraces uint32 `json:"inspectedTraces"`
	InspectedBytes  uint64 `json:"inspectedBytes,string"`
	TotalBlocks     uint32 `json:"totalBlocks"`
	CompletedJobs   uint32 `json:"completedJobs"`
	TotalJobs       uint32 `json:"totalJobs"`
	TotalBlockBytes uint64 `json:"totalBlockBytes,string"`
}

type pbKeyValue struct {
	Key   string     `json:"key"`
	Value pbAnyValue `json:"value"`
}

type pbAnyValue struct {
	StringValue *string   `json:"stringValue"`
	BoolValue   *bool     `json:"boolValue"`
	IntValue    *string   `json:"intValue"` // int64: a string
	DoubleValue *pbDouble `json:"doubleValue"`
}

// value returns the Value v holds, checking that it holds one at most.
func (v pbAnyValue) value() (Value, error) {
	var out []Value
	if v.StringValue != nil {
		out = append(out, StringValue(*v.StringValue))
	}
	if v.BoolValue != nil {
		out = append(out, BoolValue(*v.BoolValue))
	}
	if v.IntValue != nil {
		n, err := strconv.ParseInt(*v.IntValue, 10, 64)
		if err != nil {
			return Value{}, err
		}
		out = append(out, IntValue(n))
	}
	if v.DoubleValue != nil {
		out = append(out, DoubleValue(float64(*v.DoubleValue)))
	}
	switch len(out) {
	case 0:
		return Value{}, nil
	case 1:
		return out[0], nil
	}
	return Value{}, fmt.Errorf("AnyValue with %d values", len(out))
}

// pbDouble is a double in protobuf JSON: a number, or "NaN", "Infinity",
// "-Infinity".
type pbDouble float64

func (d *pbDouble) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		switch s {
		case "NaN":
			*d = pbDouble(math.NaN())
		case "Infinity":
			*d = pbDouble(math.Inf(1))
		case "-Infinity":
			*d = pbDouble(math.Inf(-1))
		default:
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return err
			}
			*d = pbDouble(f)
		}
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*d = pbDouble(f)
	return nil
}

// DecodeSearch reads a /api/search answer as Tempo and Canopy write it.
func DecodeSearch(b []byte) (SearchResponse, error) {
	var pb pbSearchResponse
	if err := json.Unmarshal(b, &pb); err != nil {
		return SearchResponse{}, err
	}
	var out SearchResponse
	if m := pb.Metrics; m != nil {
		out.Metrics = SearchMetrics{InspectedTraces: m.InspectedTraces, InspectedBytes: m.InspectedBytes, TotalBlocks: m.TotalBlocks,
			CompletedJobs: m.CompletedJobs, TotalJobs: m.TotalJobs, TotalBlockBytes: m.TotalBlockBytes}
	}
	kvs := func(in []pbKeyValue) ([]KeyValue, error) {
		var out []KeyValue
		for _, kv := range in {
			v, err := kv.Value.value()
			if err != nil {
				return nil, fmt.Errorf("attribute %q: %w", kv.Key, err)
			}
			out = append(out, KeyValue{Key: kv.Key, Value: v})
		}
		return out, nil
	}
	for _, t := range pb.Traces {
		id, err := parseTraceIDHex(t.TraceID)
		if err != nil {
			return SearchResponse{}, err
		}
		md := TraceSearchMetadata{TraceID: id, RootServiceName: t.RootServiceName, RootTraceName: t.RootTraceName, StartTimeUnixNano: t.StartTimeUnixNano, DurationMs: t.DurationMs}
		sets := t.SpanSets
		if len(sets) == 0 && t.SpanSet != nil {
			sets = []pbSpanSet{*t.SpanSet}
		}
		for _, ss := range sets {
			set := SpanSet{Matched: ss.Matched}
			if set.Attributes, err = kvs(ss.Attributes); err != nil {
				return SearchResponse{}, err
			}
			for _, sp := range ss.Spans {
				spanID, err := hex.DecodeString(sp.SpanID)
				if err != nil {
					return SearchResponse{}, fmt.Errorf("span ID %q: %w", sp.SpanID, err)
				}
				attrs, err := kvs(sp.Attributes)
				if err != nil {
					return SearchResponse{}, err
				}
				set.Spans = append(set.Spans, Span{SpanID: spanID, Name: sp.Name, StartTimeUnixNano: sp.StartTimeUnixNano, DurationNanos: sp.DurationNanos, Attributes: attrs})
			}
			md.SpanSets = append(md.SpanSets, set)
		}
		out.Traces = append(out.Traces, md)
	}
	return out, nil
}

// parseTraceIDHex reads a trace ID as Tempo writes it: hex, leading
// zeros left out.
func parseTraceIDHex(s string) ([]byte, error) {
	if len(s) > 32 || s == "" {
		return nil, fmt.Errorf("trace ID %q: not 1 to 32 hex digits", s)
	}
	for len(s) < 32 {
		s = "0" + s
	}
	id, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("trace ID %q: %w", s, err)
	}
	return id, nil
}
