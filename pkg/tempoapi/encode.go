package tempoapi

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
)

// The JSON answers are written as Tempo writes them, with protobuf's JSON
// mapping of its messages (gogo jsonpb, default options), because
// Grafana decodes them with that mapping — strictly for search and
// instant metrics, where any unknown field is an error:
//
//   - field names are lowerCamelCase;
//   - 64-bit integers are strings ("startTimeUnixNano":"1700000000000000000"),
//     32-bit ones numbers ("durationMs":12);
//   - zero values are left out, except that the top-level lists (traces,
//     series, tagNames, tagValues, scopes) are always written, empty or not,
//     and sample and series values are always written;
//   - doubles that JSON cannot hold are the strings "NaN", "Infinity" and
//     "-Infinity";
//   - attributes are OTLP KeyValues: {"key":k,"value":{"stringValue":v}},
//     intValue a string, doubleValue a number, boolValue a boolean.
//
// Only the fields Grafana's decoders know are written.

// keyValueJSON is an OTLP KeyValue.
type keyValueJSON struct {
	Key   string `json:"key"`
	Value Value  `json:"value"`
}

// MarshalJSON writes v as an OTLP AnyValue: {"stringValue":"x"},
// {"intValue":"42"}, {"doubleValue":1.5}, {"boolValue":true}, or {} when
// empty.
func (v Value) MarshalJSON() ([]byte, error) {
	switch v.Type {
	case ValueString:
		var b bytes.Buffer
		b.WriteString(`{"stringValue":`)
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v.Str); err != nil {
			return nil, err
		}
		return append(bytes.TrimSuffix(b.Bytes(), []byte("\n")), '}'), nil
	case ValueInt:
		return []byte(`{"intValue":"` + strconv.FormatInt(v.Int, 10) + `"}`), nil
	case ValueDouble:
		b := append([]byte(`{"doubleValue":`), jsonFloat(v.Double)...)
		return append(b, '}'), nil
	case ValueBool:
		return []byte(`{"boolValue":` + strconv.FormatBool(v.Bool) + `}`), nil
	}
	return []byte(`{}`), nil
}

// float64JSON is a double as protobuf's JSON mapping writes it.
type float64JSON float64

func (f float64JSON) MarshalJSON() ([]byte, error) { return jsonFloat(float64(f)), nil }

// jsonFloat writes a double: a number, or "NaN", "Infinity", "-Infinity".
func jsonFloat(f float64) []byte {
	switch {
	case math.IsNaN(f):
		return []byte(`"NaN"`)
	case math.IsInf(f, 1):
		return []byte(`"Infinity"`)
	case math.IsInf(f, -1):
		return []byte(`"-Infinity"`)
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64)
}

func keyValues(kvs []KeyValue) []keyValueJSON {
	if len(kvs) == 0 {
		return nil
	}
	out := make([]keyValueJSON, len(kvs))
	for i, kv := range kvs {
		out[i] = keyValueJSON(kv)
	}
	return out
}

// searchMetricsJSON is tempopb.SearchMetrics.
type searchMetricsJSON struct {
	InspectedTraces uint32 `json:"inspectedTraces,omitempty"`
	InspectedBytes  uint64 `json:"inspectedBytes,omitempty,string"`
	TotalBlocks     uint32 `json:"totalBlocks,omitempty"`
	CompletedJobs   uint32 `json:"completedJobs,omitempty"`
	TotalJobs       uint32 `json:"totalJobs,omitempty"`
	TotalBlockBytes uint64 `json:"totalBlockBytes,omitempty,string"`
}

func searchMetrics(m SearchMetrics) *searchMetricsJSON {
	out := searchMetricsJSON(m)
	return &out
}

// searchResponseJSON is tempopb.SearchResponse.
type searchResponseJSON struct {
	Traces  []traceSearchMetadataJSON `json:"traces"`
	Metrics *searchMetricsJSON        `json:"metrics"`
}

// traceSearchMetadataJSON is tempopb.TraceSearchMetadata. SpanSet, which
// Tempo deprecated, is still written (the first span set) for Grafana
// versions that read only it.
type traceSearchMetadataJSON struct {
	TraceID           string        `json:"traceID"`
	RootServiceName   string        `json:"rootServiceName,omitempty"`
	RootTraceName     string        `json:"rootTraceName,omitempty"`
	StartTimeUnixNano uint64        `json:"startTimeUnixNano,omitempty,string"`
	DurationMs        uint32        `json:"durationMs,omitempty"`
	SpanSet           *spanSetJSON  `json:"spanSet,omitempty"`
	SpanSets          []spanSetJSON `json:"spanSets,omitempty"`
}

// spanSetJSON is tempopb.SpanSet.
type spanSetJSON struct {
	Spans      []spanJSON     `json:"spans,omitempty"`
	Matched    uint32         `json:"matched,omitempty"`
	Attributes []keyValueJSON `json:"attributes,omitempty"`
}

// spanJSON is tempopb.Span.
type spanJSON struct {
	SpanID            string         `json:"spanID,omitempty"`
	Name              string         `json:"name,omitempty"`
	StartTimeUnixNano uint64         `json:"startTimeUnixNano,omitempty,string"`
	DurationNanos     uint64         `json:"durationNanos,omitempty,string"`
	Attributes        []keyValueJSON `json:"attributes,omitempty"`
}

func encodeSearch(res SearchResponse) searchResponseJSON {
	out := searchResponseJSON{Traces: make([]traceSearchMetadataJSON, len(res.Traces)), Metrics: searchMetrics(res.Metrics)}
	for i, t := range res.Traces {
		o := traceSearchMetadataJSON{
			TraceID:           traceIDString(t.TraceID),
			RootServiceName:   t.RootServiceName,
			RootTraceName:     t.RootTraceName,
			StartTimeUnixNano: t.StartTimeUnixNano,
			DurationMs:        t.DurationMs,
		}
		for _, ss := range t.SpanSets {
			o.SpanSets = append(o.SpanSets, encodeSpanSet(ss))
		}
		if len(o.SpanSets) > 0 {
			first := o.SpanSets[0]
			o.SpanSet = &first
		}
		out.Traces[i] = o
	}
	return out
}

func encodeSpanSet(ss SpanSet) spanSetJSON {
	o := spanSetJSON{Matched: ss.Matched, Attributes: keyValues(ss.Attributes)}
	for _, sp := range ss.Spans {
		o.Spans = append(o.Spans, spanJSON{
			SpanID:            hex.EncodeToString(sp.SpanID),
			Name:              sp.Name,
			StartTimeUnixNano: sp.StartTimeUnixNano,
			DurationNanos:     sp.DurationNanos,
			Attributes:        keyValues(sp.Attributes),
		})
	}
	return o
}

// tagNamesJSON is tempopb.SearchTagsResponse (v1).
type tagNamesJSON struct {
	TagNames []string `json:"tagNames"`
}

// tagScopesJSON is tempopb.SearchTagsV2Response.
type tagScopesJSON struct {
	Scopes []tagScopeJSON `json:"scopes"`
}

type tagScopeJSON struct {
	Name string   `json:"name"`
	Tags []string `json:"tags"`
}

// tagValuesJSON is tempopb.SearchTagValuesResponse (v1).
type tagValuesJSON struct {
	TagValues []string `json:"tagValues"`
}

// typedTagValuesJSON is tempopb.SearchTagValuesV2Response.
type typedTagValuesJSON struct {
	TagValues []typedTagValueJSON `json:"tagValues"`
}

type typedTagValueJSON struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// queryRangeJSON is tempopb.QueryRangeResponse.
type queryRangeJSON struct {
	Series  []timeSeriesJSON   `json:"series"`
	Metrics *searchMetricsJSON `json:"metrics"`
}

type timeSeriesJSON struct {
	Labels    []keyValueJSON `json:"labels"`
	Samples   []sampleJSON   `json:"samples"`
	Exemplars []exemplarJSON `json:"exemplars,omitempty"`
}

type sampleJSON struct {
	TimestampMs int64       `json:"timestampMs,string"`
	Value       float64JSON `json:"value"`
}

type exemplarJSON struct {
	Labels      []keyValueJSON `json:"labels"`
	Value       float64JSON    `json:"value"`
	TimestampMs int64          `json:"timestampMs,string"`
}

// queryInstantJSON is tempopb.QueryInstantResponse.
type queryInstantJSON struct {
	Series  []instantSeriesJSON `json:"series"`
	Metrics *searchMetricsJSON  `json:"metrics"`
}

type instantSeriesJSON struct {
	Labels []keyValueJSON `json:"labels"`
	Value  float64JSON    `json:"value"`
}

// labelsJSON writes labels, [] when none (a series without labels is the
// query's only one).
func labelsJSON(kvs []KeyValue) []keyValueJSON {
	if out := keyValues(kvs); out != nil {
		return out
	}
	return []keyValueJSON{}
}

func encodeQueryRange(res MetricsRangeResponse) queryRangeJSON {
	out := queryRangeJSON{Series: make([]timeSeriesJSON, len(res.Series)), Metrics: searchMetrics(res.Metrics)}
	for i, s := range res.Series {
		o := timeSeriesJSON{Labels: labelsJSON(s.Labels), Samples: make([]sampleJSON, len(s.Samples))}
		for j, p := range s.Samples {
			o.Samples[j] = sampleJSON{TimestampMs: p.TimestampMs, Value: float64JSON(p.Value)}
		}
		for _, e := range s.Exemplars {
			o.Exemplars = append(o.Exemplars, exemplarJSON{Labels: labelsJSON(e.Labels), Value: float64JSON(e.Value), TimestampMs: e.TimestampMs})
		}
		out.Series[i] = o
	}
	return out
}

func encodeQueryInstant(res MetricsInstantResponse) queryInstantJSON {
	out := queryInstantJSON{Series: make([]instantSeriesJSON, len(res.Series)), Metrics: searchMetrics(res.Metrics)}
	for i, s := range res.Series {
		out.Series[i] = instantSeriesJSON{Labels: labelsJSON(s.Labels), Value: float64JSON(s.Value)}
	}
	return out
}

// writeJSON answers 200 with v as JSON (<, > and & as such, as jsonpb
// writes them).
func writeJSON(w http.ResponseWriter, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
	return nil
}
