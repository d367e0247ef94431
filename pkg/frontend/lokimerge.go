package frontend

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	promparser "github.com/prometheus/prometheus/promql/parser"

	"github.com/canopy-observability/canopy/pkg/logql"
)

// Reading the Loki API's query answers back into the engine's results, and
// merging the answers to the parts of a split query.

// lokiAnswer is a query or query_range answer.
type lokiAnswer struct {
	Data struct {
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

// decodeLokiResult reads a successful answer of query or query_range.
// Categorized entries keep their metadata and parsed labels apart, as the
// engine gives them for a categorized query.
func decodeLokiResult(body []byte) (*logql.Result, error) {
	var a lokiAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, fmt.Errorf("decoding a Loki answer: %w", err)
	}
	sum := a.Data.Stats.Summary
	res := &logql.Result{
		Type: promparser.ValueType(a.Data.ResultType),
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
	t, err := parseTime(string(p[0]))
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

// mergeLokiResults joins the answers to the parts of a query, in time
// order: a log query's streams (merged, limited, thinned by interval), a
// metric query's matrices (each series' points in time order); an instant
// query has one part. Statistics add up.
func mergeLokiResults(parts []*logql.Result, st *lokiRequest) (*logql.Result, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("no part to merge")
	}
	out := &logql.Result{Type: parts[0].Type}
	for _, p := range parts {
		if p.Type != out.Type {
			return nil, fmt.Errorf("parts answered a %s and a %s", out.Type, p.Type)
		}
		out.Stats.BytesProcessed += p.Stats.BytesProcessed
		out.Stats.LinesProcessed += p.Stats.LinesProcessed
		out.Stats.ExecTime += p.Stats.ExecTime
	}
	switch out.Type {
	case logql.ValueTypeStreams:
		out.Streams, out.Stats.EntriesReturned = mergeStreams(parts, st)
	case promparser.ValueTypeMatrix:
		out.Matrix = mergeMatrices(parts)
	default:
		if len(parts) != 1 {
			return nil, fmt.Errorf("%d parts answered a %s", len(parts), out.Type)
		}
		out.Vector, out.Scalar, out.Stats.EntriesReturned = parts[0].Vector, parts[0].Scalar, parts[0].Stats.EntriesReturned
	}
	return out, nil
}

// streamEntry is an entry of a merged log answer with its stream.
type streamEntry struct {
	stream labels.Labels
	key    string // stream.String()
	logql.Entry
}

// mergeStreams keeps the limit best entries of all parts — the newest
// (backward) or the oldest (forward), ties broken by line as the engine
// does — once each, and groups them as the engine does: streams in label
// order, entries in the query's direction (ties by line), at most one
// entry per interval of a stream. It returns the streams and how many
// entries were kept before the interval thinned them (the engine's count).
func mergeStreams(parts []*logql.Result, st *lokiRequest) ([]logql.Stream, int64) {
	var all []streamEntry
	seen := map[string]bool{}
	for _, p := range parts {
		for _, s := range p.Streams {
			key := s.Labels.String()
			for _, e := range s.Entries {
				id := strings.Join([]string{key, strconv.FormatInt(e.Timestamp, 10), e.Line, e.Metadata.String(), e.Parsed.String()}, "\x00")
				if seen[id] {
					continue
				}
				seen[id] = true
				all = append(all, streamEntry{stream: s.Labels, key: key, Entry: e})
			}
		}
	}
	forward := st.dir == logql.Forward
	// Best first: the engine keeps, at one timestamp, the smallest lines
	// going forward and the largest going backward.
	slices.SortFunc(all, func(a, b streamEntry) int {
		c := cmp.Or(cmp.Compare(a.Timestamp, b.Timestamp), strings.Compare(a.Line, b.Line))
		if forward {
			return c
		}
		return -c
	})
	if len(all) > st.limit {
		all = all[:st.limit]
	}
	kept := int64(len(all))
	slices.SortFunc(all, func(a, b streamEntry) int {
		if c := labels.Compare(a.stream, b.stream); c != 0 {
			return c
		}
		if a.Timestamp != b.Timestamp {
			if (a.Timestamp < b.Timestamp) == forward {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Line, b.Line)
	})
	var out []logql.Stream
	for i, e := range all {
		if i == 0 || e.key != all[i-1].key {
			out = append(out, logql.Stream{Labels: e.stream})
		}
		s := &out[len(out)-1]
		if st.interval > 0 && len(s.Entries) > 0 {
			d := e.Timestamp - s.Entries[len(s.Entries)-1].Timestamp
			if d < int64(st.interval) && -d < int64(st.interval) {
				continue
			}
		}
		s.Entries = append(s.Entries, e.Entry)
	}
	return out, kept
}

// mergeMatrices joins the series of consecutive parts, in label order.
func mergeMatrices(parts []*logql.Result) promql.Matrix {
	if len(parts) == 1 {
		return parts[0].Matrix
	}
	byKey := map[string]int{}
	var out promql.Matrix
	for _, p := range parts {
		for _, s := range p.Matrix {
			k := s.Metric.String()
			i, ok := byKey[k]
			if !ok {
				i = len(out)
				byKey[k] = i
				out = append(out, promql.Series{Metric: s.Metric})
			}
			out[i].Floats = append(out[i].Floats, s.Floats...)
		}
	}
	slices.SortFunc(out, func(a, b promql.Series) int { return labels.Compare(a.Metric, b.Metric) })
	return out
}
