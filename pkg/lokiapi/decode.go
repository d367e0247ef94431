package lokiapi

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	promparser "github.com/prometheus/prometheus/promql/parser"

	"github.com/canopy-observability/canopy/pkg/logql"
)

// Reading the Loki API's query answers back into the engine's results: the
// query-frontend merges its parts' and shards' answers, the federator its
// children's.

// lokiAnswer is a query or query_range answer.
type lokiAnswer struct {
	Warnings []string `json:"warnings"`
	Data     struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
		Stats      struct {
			Summary struct {
				TotalBytesProcessed  int64   `json:"totalBytesProcessed"`
				TotalLinesProcessed  int64   `json:"totalLinesProcessed"`
				TotalEntriesReturned int64   `json:"totalEntriesReturned"`
				ExecTime             float64 `json:"execTime"`
			} `json:"summary"`
		} `json:"stats"`
	} `json:"data"`
}

type lokiStream struct {
	Stream map[string]string `json:"stream"`
	Values []lokiValue       `json:"values"`
}

// lokiValue is an entry: ["<ns>","<line>"], categorized with a third
// element {"structuredMetadata":{…},"parsed":{…}}.
type lokiValue struct {
	ts, line string
	cat      *lokiCategories
}

func (v *lokiValue) UnmarshalJSON(b []byte) error {
	var raw []any
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	ok := len(raw) == 2 || len(raw) == 3
	if ok {
		v.ts, ok = raw[0].(string)
	}
	if ok {
		v.line, ok = raw[1].(string)
	}
	if ok && len(raw) == 3 {
		var m map[string]any
		if m, ok = raw[2].(map[string]any); ok {
			v.cat = &lokiCategories{}
			v.cat.StructuredMetadata, ok = stringMap(m["structuredMetadata"])
			if ok {
				v.cat.Parsed, ok = stringMap(m["parsed"])
			}
		}
	}
	if !ok {
		return fmt.Errorf("an entry is not [\"<ns>\",\"<line>\"(,{…})]: %.100s", b)
	}
	return nil
}

// stringMap reads a JSON object of strings; nil is an empty one.
func stringMap(v any) (map[string]string, bool) {
	if v == nil {
		return nil, true
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	out := make(map[string]string, len(m))
	for k, x := range m {
		s, ok := x.(string)
		if !ok {
			return nil, false
		}
		out[k] = s
	}
	return out, true
}

// lokiCategories is the third element of a categorized entry.
type lokiCategories struct {
	StructuredMetadata map[string]string
	Parsed             map[string]string
}

type lokiSeries struct {
	Metric map[string]string    `json:"metric"`
	Values [][2]json.RawMessage `json:"values"`
}

type lokiSample struct {
	Metric map[string]string  `json:"metric"`
	Value  [2]json.RawMessage `json:"value"`
}

// DecodeQueryResult reads a successful answer of query or query_range.
// Categorized entries keep their metadata and parsed labels apart, as the
// engine gives them for a categorized query.
func DecodeQueryResult(body []byte) (*logql.Result, error) {
	var a lokiAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, fmt.Errorf("decoding a Loki answer: %w", err)
	}
	sum := a.Data.Stats.Summary
	res := &logql.Result{
		Type:     promparser.ValueType(a.Data.ResultType),
		Warnings: a.Warnings,
		Stats: logql.Stats{
			BytesProcessed:  sum.TotalBytesProcessed,
			LinesProcessed:  sum.TotalLinesProcessed,
			EntriesReturned: sum.TotalEntriesReturned,
			ExecTime:        time.Duration(sum.ExecTime * float64(time.Second)),
		},
	}
	var err error
	switch res.Type {
	case logql.ValueTypeStreams:
		res.Streams, err = decodeStreams(a.Data.Result)
	case promparser.ValueTypeMatrix:
		res.Matrix, err = decodeMatrix(a.Data.Result)
	case promparser.ValueTypeVector:
		res.Vector, err = decodeVector(a.Data.Result)
	case promparser.ValueTypeScalar:
		var p [2]json.RawMessage
		if err = json.Unmarshal(a.Data.Result, &p); err == nil {
			res.Scalar.T, res.Scalar.V, err = decodePoint(p)
		}
	default:
		return nil, fmt.Errorf("a Loki answer of result type %q", res.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("decoding a Loki answer's %s: %w", res.Type, err)
	}
	return res, nil
}

func decodeStreams(raw json.RawMessage) ([]logql.Stream, error) {
	var in []lokiStream
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, err
	}
	out := make([]logql.Stream, len(in))
	for i, s := range in {
		out[i] = logql.Stream{Labels: labels.FromMap(s.Stream), Entries: make([]logql.Entry, len(s.Values))}
		for j, v := range s.Values {
			n, err := strconv.ParseInt(v.ts, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("an entry's timestamp: %w", err)
			}
			e := logql.Entry{Timestamp: n, Line: v.line}
			if v.cat != nil {
				e.Metadata, e.Parsed = labels.FromMap(v.cat.StructuredMetadata), labels.FromMap(v.cat.Parsed)
			}
			out[i].Entries[j] = e
		}
	}
	return out, nil
}

func decodeMatrix(raw json.RawMessage) (promql.Matrix, error) {
	var in []lokiSeries
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, err
	}
	out := make(promql.Matrix, len(in))
	for i, s := range in {
		out[i] = promql.Series{Metric: labels.FromMap(s.Metric), Floats: make([]promql.FPoint, len(s.Values))}
		for j, p := range s.Values {
			t, v, err := decodePoint(p)
			if err != nil {
				return nil, err
			}
			out[i].Floats[j] = promql.FPoint{T: t, F: v}
		}
	}
	return out, nil
}

func decodeVector(raw json.RawMessage) (promql.Vector, error) {
	var in []lokiSample
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, err
	}
	out := make(promql.Vector, len(in))
	for i, s := range in {
		t, v, err := decodePoint(s.Value)
		if err != nil {
			return nil, err
		}
		out[i] = promql.Sample{Metric: labels.FromMap(s.Metric), T: t, F: v}
	}
	return out, nil
}

// decodePoint reads [<seconds>,"<value>"] into milliseconds and a value.
func decodePoint(p [2]json.RawMessage) (int64, float64, error) {
	t, err := parseSeconds(string(p[0]))
	if err != nil {
		return 0, 0, err
	}
	var s string
	if err := json.Unmarshal(p[1], &s); err != nil {
		return 0, 0, err
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, 0, err
	}
	return t, v, nil
}

// parseSeconds reads a sample's time, seconds as a JSON number, into
// milliseconds.
func parseSeconds(s string) (int64, error) {
	t, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(t) || math.IsInf(t, 0) || math.Abs(t) > 1e15 {
		return 0, fmt.Errorf("cannot parse %q to a valid timestamp", s)
	}
	return int64(math.Round(t * 1000)), nil
}
