package tempoapi

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"unicode/utf8"
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
//     series, tagNames, tagValues, scopes), the metrics object, series
//     labels and sample and series values are always written;
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
func (v Value) MarshalJSON() ([]byte, error) { return appendValue(nil, v), nil }

// appendValue appends v as an OTLP AnyValue.
func appendValue(b []byte, v Value) []byte {
	switch v.Type {
	case ValueString:
		b = appendJSONString(append(b, `{"stringValue":`...), v.Str)
	case ValueInt:
		b = append(strconv.AppendInt(append(b, `{"intValue":"`...), v.Int, 10), '"')
	case ValueDouble:
		b = append(append(b, `{"doubleValue":`...), jsonFloat(v.Double)...)
	case ValueBool:
		b = strconv.AppendBool(append(b, `{"boolValue":`...), v.Bool)
	default:
		b = append(b, '{')
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD, the rest
// (<, >, & included) as is.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
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

// appendSearch appends a search answer as tempopb.SearchResponse,
// {"traces":[…],"metrics":{…}}, by hand: it is the largest JSON answer
// (Traces Drilldown asks for 200 traces of 10 spans per span set), and
// encoding/json spent most of its time reflecting and validating it.
// SpanSet, which Tempo deprecated, is still written (the first span set)
// for Grafana versions that read only it. BenchmarkSearch measures it.
func appendSearch(b []byte, res SearchResponse) ([]byte, error) {
	b = append(b, `{"traces":[`...)
	for i, t := range res.Traces {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"traceID":`...)
		b = appendJSONString(b, traceIDString(t.TraceID))
		if t.RootServiceName != "" {
			b = appendJSONString(append(b, `,"rootServiceName":`...), t.RootServiceName)
		}
		if t.RootTraceName != "" {
			b = appendJSONString(append(b, `,"rootTraceName":`...), t.RootTraceName)
		}
		if t.StartTimeUnixNano != 0 {
			b = appendUint64String(append(b, `,"startTimeUnixNano":`...), t.StartTimeUnixNano)
		}
		if t.DurationMs != 0 {
			b = strconv.AppendUint(append(b, `,"durationMs":`...), uint64(t.DurationMs), 10)
		}
		if len(t.SpanSets) > 0 {
			b = appendSpanSet(append(b, `,"spanSet":`...), t.SpanSets[0])
			b = append(b, `,"spanSets":[`...)
			for j, ss := range t.SpanSets {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendSpanSet(b, ss)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	b = append(b, `],"metrics":`...)
	m, err := json.Marshal(searchMetrics(res.Metrics))
	if err != nil {
		return nil, err
	}
	return append(append(b, m...), '}'), nil
}

// appendSpanSet appends a tempopb.SpanSet.
func appendSpanSet(b []byte, ss SpanSet) []byte {
	b = append(b, '{')
	comma := false
	if len(ss.Spans) > 0 {
		b = append(b, `"spans":[`...)
		for i, sp := range ss.Spans {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendSpan(b, sp)
		}
		b = append(b, ']')
		comma = true
	}
	if ss.Matched != 0 {
		if comma {
			b = append(b, ',')
		}
		b = strconv.AppendUint(append(b, `"matched":`...), uint64(ss.Matched), 10)
		comma = true
	}
	if len(ss.Attributes) > 0 {
		if comma {
			b = append(b, ',')
		}
		b = appendKeyValues(append(b, `"attributes":`...), ss.Attributes)
	}
	return append(b, '}')
}

// appendSpan appends a tempopb.Span.
func appendSpan(b []byte, sp Span) []byte {
	b = append(b, '{')
	comma := false
	field := func(name string) {
		if comma {
			b = append(b, ',')
		}
		b = append(append(append(b, '"'), name...), `":`...)
		comma = true
	}
	if len(sp.SpanID) > 0 {
		field("spanID")
		b = append(hex.AppendEncode(append(b, '"'), sp.SpanID), '"')
	}
	if sp.Name != "" {
		field("name")
		b = appendJSONString(b, sp.Name)
	}
	if sp.StartTimeUnixNano != 0 {
		field("startTimeUnixNano")
		b = appendUint64String(b, sp.StartTimeUnixNano)
	}
	if sp.DurationNanos != 0 {
		field("durationNanos")
		b = appendUint64String(b, sp.DurationNanos)
	}
	if len(sp.Attributes) > 0 {
		field("attributes")
		b = appendKeyValues(b, sp.Attributes)
	}
	return append(b, '}')
}

// appendKeyValues appends OTLP KeyValues.
func appendKeyValues(b []byte, kvs []KeyValue) []byte {
	b = append(b, '[')
	for i, kv := range kvs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(append(b, `{"key":`...), kv.Key)
		b = append(appendValue(append(b, `,"value":`...), kv.Value), '}')
	}
	return append(b, ']')
}

// appendUint64String appends a 64-bit integer as protobuf's JSON mapping
// writes it: a string.
func appendUint64String(b []byte, n uint64) []byte {
	return append(strconv.AppendUint(append(b, '"'), n, 10), '"')
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
