package tempoapi

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// The messages Grafana's Tempo datasource decodes the JSON answers into
// (tempopb, by its protobuf JSON mapping), written from tempo.proto's
// field list. Decoding with unknown fields refused checks that the answers
// hold nothing Grafana's strict decoder would reject.

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

type pbSearchTagsResponse struct {
	TagNames []string `json:"tagNames"`
}

type pbSearchTagsV2Response struct {
	Scopes []struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	} `json:"scopes"`
}

type pbSearchTagValuesResponse struct {
	TagValues []string `json:"tagValues"`
}

type pbSearchTagValuesV2Response struct {
	TagValues []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"tagValues"`
}

type pbQueryRangeResponse struct {
	Series []struct {
		Labels  []pbKeyValue `json:"labels"`
		Samples []struct {
			TimestampMs int64    `json:"timestampMs,string"`
			Value       pbDouble `json:"value"`
		} `json:"samples"`
		PromLabels string `json:"promLabels"`
		Exemplars  []struct {
			Labels      []pbKeyValue `json:"labels"`
			Value       pbDouble     `json:"value"`
			TimestampMs int64        `json:"timestampMs,string"`
		} `json:"exemplars"`
	} `json:"series"`
	Metrics *pbSearchMetrics `json:"metrics"`
	Status  string           `json:"status"`
	Message string           `json:"message"`
}

type pbQueryInstantResponse struct {
	Series []struct {
		Labels     []pbKeyValue `json:"labels"`
		Value      pbDouble     `json:"value"`
		PromLabels string       `json:"promLabels"`
	} `json:"series"`
	Metrics *pbSearchMetrics `json:"metrics"`
	Status  string           `json:"status"`
	Message string           `json:"message"`
}

type pbBuildInfo struct {
	Version       string `json:"version"`
	Revision      string `json:"revision"`
	Branch        string `json:"branch"`
	BuildDate     string `json:"buildDate"`
	BuildUser     string `json:"buildUser"`
	GoVersion     string `json:"goVersion"`
	CanopyVersion string `json:"canopyVersion"`
}
