package lokiapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/canopy-observability/canopy/pkg/logql"
)

// Logs Drilldown's endpoints answer bare objects, without the
// {"status","data"} envelope:
//
//	detected_labels             {"detectedLabels":[{"label":"app","cardinality":3},…]}
//	detected_fields             {"fields":[{"label":"status","type":"int","cardinality":4,
//	                              "parsers":["logfmt"]},…],"limit":1000}
//	detected_field/<n>/values   {"values":["200","404"],"limit":1000}
//
// Fields are found in a sample of the query's most recent lines
// (line_limit, default 1000): structured metadata (parsers null), and the
// fields of JSON lines (parsers ["json"], with jsonPath, the keys from the
// root) or else of logfmt lines (parsers ["logfmt"]). Names are the labels
// the json and logfmt stages would give (sanitised, _extracted when a
// stream label has the name). Cardinalities are exact over the sample.

const (
	defaultDetectedLimit = 1000
	defaultLineLimit     = 1000
)

// staticLabels are always detected labels, whatever their cardinality.
var staticLabels = []string{"cluster", "namespace", "pod", "service_name"}

// serveDetectedLabels is /detected_labels: the stream label names of the
// selector's streams (every stream without one) with their number of
// values; a label with one value says nothing about the streams and is
// left out, unless it is one of the static labels.
func (a *API) serveDetectedLabels(w http.ResponseWriter, r *http.Request) error {
	start, end, err := a.metaBounds(r)
	if err != nil {
		return err
	}
	ms, err := parseSelector("query", r.Form.Get("query"))
	if err != nil {
		return err
	}
	card := map[string]int{}
	if ms == nil {
		names, err := a.b.Labels(r.Context(), start, end, nil)
		if err != nil {
			return &storeError{err: err}
		}
		for _, n := range names {
			vs, err := a.b.LabelValues(r.Context(), n, start, end, nil)
			if err != nil {
				return &storeError{err: err}
			}
			card[n] = len(vs)
		}
	} else {
		series, err := a.b.Series(r.Context(), start, end, [][]*labels.Matcher{ms})
		if err != nil {
			return &storeError{err: err}
		}
		values := map[string]map[string]struct{}{}
		for _, s := range series {
			s.Range(func(l labels.Label) {
				if values[l.Name] == nil {
					values[l.Name] = map[string]struct{}{}
				}
				values[l.Name][l.Value] = struct{}{}
			})
		}
		for n, vs := range values {
			card[n] = len(vs)
		}
	}
	names := make([]string, 0, len(card))
	for n, c := range card {
		if strings.HasPrefix(n, "__") || (c < 2 && !slices.Contains(staticLabels, n)) {
			continue
		}
		names = append(names, n)
	}
	slices.Sort(names)
	out := &jw{}
	out.raw(`{"detectedLabels":[`)
	for i, n := range names {
		if i > 0 {
			out.byte(',')
		}
		out.raw(`{"label":`)
		out.str(n)
		out.raw(`,"cardinality":`)
		out.int(int64(card[n]))
		out.byte('}')
	}
	out.raw("]}")
	writeJSON(w, out.b)
	return nil
}

// field is one detected field.
type field struct {
	name     string
	typ      string
	parsers  []string // "json", "logfmt"; none for structured metadata
	jsonPath []string
	values   map[string]struct{}
}

// detectFields samples the query's most recent lines and returns their
// fields by name.
func (a *API) detectFields(r *http.Request) (map[string]*field, error) {
	start, end, err := a.metaBounds(r)
	if err != nil {
		return nil, err
	}
	q, expr, err := parseQuery(r)
	if err != nil {
		return nil, err
	}
	if _, ok := expr.(*logql.LogExpr); !ok {
		return nil, badf("invalid parameter \"query\": fields are detected in a log query such as {app=\"x\"}, not in a metric query")
	}
	lines, err := positiveInt(r, "line_limit", defaultLineLimit)
	if err != nil {
		return nil, err
	}
	lines = min(lines, a.cfg.MaxEntriesLimitPerQuery)
	res, err := a.exec(r.Context(), q, expr, logql.Params{Start: start, End: end, Limit: lines, Direction: logql.Backward, Categorize: true})
	if err != nil {
		return nil, err
	}
	fields := map[string]*field{}
	add := func(name, parser, value string, path []string) {
		f := fields[name]
		if f == nil {
			f = &field{name: name, values: map[string]struct{}{}}
			fields[name] = f
		}
		if parser != "" && !slices.Contains(f.parsers, parser) {
			f.parsers = append(f.parsers, parser)
		}
		if f.jsonPath == nil {
			f.jsonPath = path
		}
		f.typ = unifyTypes(f.typ, valueType(value))
		f.values[value] = struct{}{}
	}
	var pairs []logql.LogfmtPair
	for _, s := range res.Streams {
		for _, e := range s.Entries {
			stream := streamLabels(s.Labels, e)
			name := func(key string) string {
				n := logql.SanitizeLabelName(key)
				if stream.Has(n) {
					n += "_extracted"
				}
				return n
			}
			e.Metadata.Range(func(l labels.Label) { add(l.Name, "", l.Value, nil) })
			if line := strings.TrimSpace(e.Line); strings.HasPrefix(line, "{") {
				_ = jsonFields(line, func(path []string, value string) {
					add(name(strings.Join(path, "_")), "json", value, path)
				})
				continue
			}
			pairs, _ = logql.ParseLogfmt(e.Line, false, false, pairs[:0])
			for _, p := range pairs {
				add(name(p.Key), "logfmt", p.Value, nil)
			}
		}
	}
	return fields, nil
}

// streamLabels returns an entry's stream labels: the labels less its
// structured metadata and parsed labels.
func streamLabels(ls labels.Labels, e logql.Entry) labels.Labels {
	if e.Metadata.IsEmpty() && e.Parsed.IsEmpty() {
		return ls
	}
	b := labels.NewBuilder(ls)
	e.Metadata.Range(func(l labels.Label) { b.Del(l.Name) })
	e.Parsed.Range(func(l labels.Label) { b.Del(l.Name) })
	return b.Labels()
}

// serveDetectedFields is /detected_fields.
func (a *API) serveDetectedFields(w http.ResponseWriter, r *http.Request) error {
	limit, err := detectedLimit(r)
	if err != nil {
		return err
	}
	fields, err := a.detectFields(r)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(names) > limit {
		names = names[:limit]
	}
	out := &jw{}
	out.raw(`{"fields":[`)
	for i, n := range names {
		f := fields[n]
		if i > 0 {
			out.byte(',')
		}
		out.raw(`{"label":`)
		out.str(f.name)
		out.raw(`,"type":`)
		out.str(f.typ)
		out.raw(`,"cardinality":`)
		out.int(int64(len(f.values)))
		out.raw(`,"parsers":`)
		if f.parsers == nil {
			out.raw("null")
		} else {
			out.strings(f.parsers)
		}
		if f.jsonPath != nil {
			out.raw(`,"jsonPath":`)
			out.strings(f.jsonPath)
		}
		out.byte('}')
	}
	out.raw(`],"limit":`)
	out.int(int64(limit))
	out.byte('}')
	writeJSON(w, out.b)
	return nil
}

// serveDetectedFieldValues is /detected_field/<name>/values: the values of
// one field in the sample, sorted.
func (a *API) serveDetectedFieldValues(w http.ResponseWriter, r *http.Request) error {
	limit, err := detectedLimit(r)
	if err != nil {
		return err
	}
	fields, err := a.detectFields(r)
	if err != nil {
		return err
	}
	var values []string
	if f := fields[r.PathValue("name")]; f != nil {
		for v := range f.values {
			values = append(values, v)
		}
	}
	slices.Sort(values)
	if len(values) > limit {
		values = values[:limit]
	}
	out := &jw{}
	out.raw(`{"values":`)
	out.strings(values)
	out.raw(`,"limit":`)
	out.int(int64(limit))
	out.byte('}')
	writeJSON(w, out.b)
	return nil
}

// detectedLimit reads limit (or field_limit, its older name).
func detectedLimit(r *http.Request) (int, error) {
	if r.Form.Get("limit") == "" && r.Form.Get("field_limit") != "" {
		return positiveInt(r, "field_limit", defaultDetectedLimit)
	}
	return positiveInt(r, "limit", defaultDetectedLimit)
}

// Field types, as Drilldown names them.
const (
	typeString   = "string"
	typeInt      = "int"
	typeFloat    = "float"
	typeBoolean  = "boolean"
	typeDuration = "duration"
	typeBytes    = "bytes"
)

// valueType guesses the type of a value.
func valueType(v string) string {
	if _, err := strconv.ParseInt(v, 10, 64); err == nil {
		return typeInt
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil {
		return typeFloat
	}
	if v == "true" || v == "false" {
		return typeBoolean
	}
	if v != "" && (v[0] >= '0' && v[0] <= '9' || v[0] == '-' || v[0] == '.') {
		if _, err := logql.ParseDuration(v); err == nil {
			return typeDuration
		}
		if _, err := logql.ParseBytes(v); err == nil {
			return typeBytes
		}
	}
	return typeString
}

// unifyTypes is the type of a field whose values have types a and b: an
// int and a float make a float, any other mix a string.
func unifyTypes(a, b string) string {
	switch {
	case a == "" || a == b:
		return b
	case a == typeInt && b == typeFloat, a == typeFloat && b == typeInt:
		return typeFloat
	}
	return typeString
}

// jsonFields calls emit with the path and value of every scalar of a JSON
// object line, as the json stage reads it: objects are descended, arrays
// skipped, nulls dropped, strings unquoted, numbers and booleans as written.
func jsonFields(line string, emit func(path []string, value string)) error {
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return errors.New("not a JSON object")
	}
	return jsonObject(dec, nil, emit)
}

// maxJSONFieldDepth bounds how deep jsonFields descends.
const maxJSONFieldDepth = 64

func jsonObject(dec *json.Decoder, path []string, emit func([]string, string)) error {
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := t.(string)
		p := append(slices.Clip(path), key)
		t, err = dec.Token()
		if err != nil {
			return err
		}
		switch v := t.(type) {
		case json.Delim:
			if v == '{' && len(p) < maxJSONFieldDepth {
				if err := jsonObject(dec, p, emit); err != nil {
					return err
				}
				continue
			}
			if err := skipJSON(dec); err != nil {
				return err
			}
		case string:
			emit(p, v)
		case json.Number:
			emit(p, v.String())
		case bool:
			emit(p, strconv.FormatBool(v))
		}
	}
	_, err := dec.Token() // the closing brace
	return err
}

// skipJSON skips the rest of an array or object whose opening token was
// just read.
func skipJSON(dec *json.Decoder) error {
	for depth := 1; depth > 0; {
		t, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		if d, ok := t.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
	}
	return nil
}
