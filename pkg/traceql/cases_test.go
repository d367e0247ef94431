package traceql

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The TraceQL case files (testdata/cases/*.txt) pin the engine's
// semantics as data. Their format is Canopy's own; data lines are
// `keyword field…`, fields `key=value` with values written as TraceQL
// literals ("string", 1, 1.5, true, [1, "a"]), times as durations after
// the epoch:
//
//	# a comment
//	trace 1                              a trace; IDs are hex, zero-padded
//	resource service.name="api"          resource of the spans that follow
//	scope "grpc" version="1.2" lang="go" instrumentation scope likewise
//	span 01 parent=00 name="GET /" kind=server status=error message="m"
//	     start=0s end=10ms http.method="GET"   (dur= instead of end=)
//	event "exception" at=5ms exception.message="boom"   of the last span
//	link 2 0a ref_type="child_of"        link of the last span
//
//	query <TraceQL>                      then, indented, the expected result:
//	  none                               no trace matches
//	  error <substring>                  the query does not parse
//	  <trace> {k=v, …}                   a spanset of a trace, its attributes
//	    <span> {k=v, …}                  a span of it, its attributes
//	range <start> <end> <step>           (metrics, after query; default 0s 60s 10s)
//	  {label=value, …} v v v …           a series, one value per step, _ for NaN
//
// Traces accumulate through a file: a query runs over every trace above
// it. IDs in results are written as in the trace lines.

func TestCaseFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/cases/*.txt")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { runCaseFile(t, f) })
	}
}

type caseQuery struct {
	line   int
	query  string
	rng    MetricsRequest
	expect []string
}

type caseFile struct {
	traces []Trace
	names  map[string]string // padded hex ID → ID as written
	// the resource and scope of the spans that follow
	resource []Attr
	scope    InstrumentationScope
}

func runCaseFile(t *testing.T, path string) {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer func() { require.NoError(t, f.Close()) }()
	cf := &caseFile{names: map[string]string{}}
	var cur *caseQuery
	run := func() {
		if cur == nil {
			return
		}
		q := *cur
		traces := append([]Trace(nil), cf.traces...)
		t.Run(fmt.Sprintf("line %d", q.line), func(t *testing.T) { checkCase(t, cf, traces, q) })
		cur = nil
	}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t")
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
			continue
		case line[0] == ' ' || line[0] == '\t':
			require.NotNil(t, cur, "%s:%d: an expected result without a query", path, n)
			cur.expect = append(cur.expect, line)
			continue
		}
		keyword, rest, _ := strings.Cut(trimmed, " ")
		rest = strings.TrimSpace(rest)
		if keyword == "range" {
			require.NotNil(t, cur, "%s:%d: range without a query", path, n)
			fields := strings.Fields(rest)
			require.Len(t, fields, 3, "%s:%d: range <start> <end> <step>", path, n)
			cur.rng = MetricsRequest{Start: caseDuration(t, fields[0]), End: caseDuration(t, fields[1]), Step: caseDuration(t, fields[2])}
			continue
		}
		run()
		if keyword == "query" {
			cur = &caseQuery{line: n, query: rest, rng: MetricsRequest{Start: 0, End: uint64(time.Minute), Step: uint64(10 * time.Second)}}
			continue
		}
		require.NoError(t, cf.dataLine(keyword, rest), "%s:%d", path, n)
	}
	require.NoError(t, sc.Err())
	run()
}

func caseDuration(t *testing.T, s string) uint64 {
	d, err := time.ParseDuration(s)
	require.NoError(t, err)
	return uint64(d)
}

func (cf *caseFile) id(s string, size int) ([]byte, error) {
	padded := strings.Repeat("0", max(0, 2*size-len(s))) + s
	b, err := hex.DecodeString(padded)
	if err != nil || len(b) != size {
		return nil, fmt.Errorf("bad ID %q", s)
	}
	cf.names[padded] = s
	return b, nil
}

func (cf *caseFile) name(id []byte) string {
	if n, ok := cf.names[hex.EncodeToString(id)]; ok {
		return n
	}
	return hex.EncodeToString(id)
}

func (cf *caseFile) dataLine(keyword, rest string) error {
	fields, err := splitFields(rest)
	if err != nil {
		return err
	}
	var tr *Trace
	var sp *Span
	if len(cf.traces) > 0 {
		tr = &cf.traces[len(cf.traces)-1]
		if len(tr.Spans) > 0 {
			sp = &tr.Spans[len(tr.Spans)-1]
		}
	}
	switch keyword {
	case "trace":
		if len(fields) != 1 {
			return errors.New("trace <id>")
		}
		id, err := cf.id(fields[0], 16)
		if err != nil {
			return err
		}
		cf.traces = append(cf.traces, Trace{ID: id})
		cf.resource, cf.scope = nil, InstrumentationScope{}
		return nil
	case "resource":
		cf.resource, err = caseAttrs(fields)
		return err
	case "scope":
		if len(fields) == 0 {
			return errors.New("scope <name> [version=…] [attributes]")
		}
		name, err := caseValue(fields[0])
		if err != nil {
			return err
		}
		cf.scope = InstrumentationScope{Name: name.Text()}
		var attrs []Attr
		if attrs, err = caseAttrs(fields[1:]); err != nil {
			return err
		}
		for _, a := range attrs {
			if a.Key == "version" {
				cf.scope.Version = a.Value.Text()
			} else {
				cf.scope.Attrs = append(cf.scope.Attrs, a)
			}
		}
		return nil
	case "span":
		if tr == nil || len(fields) == 0 {
			return errors.New("span <id> … after a trace line")
		}
		return cf.span(tr, fields)
	case "event":
		if sp == nil || len(fields) == 0 {
			return errors.New(`event "name" at=… after a span line`)
		}
		name, err := caseValue(fields[0])
		if err != nil {
			return err
		}
		attrs, err := caseAttrs(fields[1:])
		if err != nil {
			return err
		}
		ev := Event{Name: name.Text()}
		for _, a := range attrs {
			if a.Key == "at" {
				d, err := time.ParseDuration(a.Value.Text())
				if err != nil {
					return err
				}
				ev.Time = uint64(d)
			} else {
				ev.Attrs = append(ev.Attrs, a)
			}
		}
		sp.Events = append(sp.Events, ev)
		return nil
	case "link":
		if sp == nil || len(fields) < 2 {
			return errors.New("link <trace> <span> … after a span line")
		}
		tid, err := cf.id(fields[0], 16)
		if err != nil {
			return err
		}
		sid, err := cf.id(fields[1], 8)
		if err != nil {
			return err
		}
		attrs, err := caseAttrs(fields[2:])
		if err != nil {
			return err
		}
		sp.Links = append(sp.Links, Link{TraceID: tid, SpanID: sid, Attrs: attrs})
		return nil
	}
	return fmt.Errorf("unknown line %q", keyword)
}

var caseStatus = map[string]Status{"unset": StatusUnset, "ok": StatusOk, "error": StatusError}
var caseKind = map[string]Kind{
	"unspecified": KindUnspecified, "internal": KindInternal, "server": KindServer,
	"client": KindClient, "producer": KindProducer, "consumer": KindConsumer,
}

func (cf *caseFile) span(tr *Trace, fields []string) error {
	id, err := cf.id(fields[0], 8)
	if err != nil {
		return err
	}
	s := Span{ID: id, Resource: cf.resource, Scope: cf.scope}
	var dur *uint64
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return fmt.Errorf("%q is not key=value", f)
		}
		switch k {
		case "parent":
			if s.ParentID, err = cf.id(v, 8); err != nil {
				return err
			}
		case "kind":
			if s.Kind, ok = caseKind[v]; !ok {
				return fmt.Errorf("unknown kind %q", v)
			}
		case "status":
			if s.StatusCode, ok = caseStatus[v]; !ok {
				return fmt.Errorf("unknown status %q", v)
			}
		case "start", "end", "dur":
			d, err := time.ParseDuration(v)
			if err != nil {
				return err
			}
			switch k {
			case "start":
				s.Start = uint64(d)
			case "end":
				s.End = uint64(d)
			default:
				x := uint64(d)
				dur = &x
			}
		case "name", "message":
			val, err := caseValue(v)
			if err != nil {
				return err
			}
			if k == "name" {
				s.Name = val.Text()
			} else {
				s.StatusMessage = val.Text()
			}
		default:
			attrs, err := caseAttrs([]string{f})
			if err != nil {
				return err
			}
			s.Attrs = append(s.Attrs, attrs...)
		}
	}
	if dur != nil {
		s.End = s.Start + *dur
	}
	tr.Spans = append(tr.Spans, s)
	return nil
}

// splitFields splits at spaces outside quotes and brackets.
func splitFields(s string) ([]string, error) {
	var out []string
	start, depth := -1, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if start < 0 {
			if c == ' ' || c == '\t' {
				continue
			}
			start = i
		}
		switch c {
		case '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++
				}
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated string in %q", s)
			}
		case '[':
			depth++
		case ']':
			depth--
		case ' ', '\t':
			if depth == 0 {
				out = append(out, s[start:i])
				start = -1
			}
		}
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out, nil
}

func caseAttrs(fields []string) ([]Attr, error) {
	var attrs []Attr
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not key=value", f)
		}
		if strings.HasPrefix(k, `"`) {
			uq, err := strconv.Unquote(k)
			if err != nil {
				return nil, err
			}
			k = uq
		}
		val, err := caseValue(v)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, Attr{Key: k, Value: val})
	}
	return attrs, nil
}

// caseValue parses a TraceQL literal, or an array of them in brackets.
func caseValue(s string) (Value, error) {
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		var elems []Value
		inner := strings.TrimSpace(s[1 : len(s)-1])
		if inner == "" {
			return ArrayValue(), nil
		}
		parts, err := splitFields(strings.ReplaceAll(inner, ",", " "))
		if err != nil {
			return Value{}, err
		}
		for _, p := range parts {
			v, err := caseValue(p)
			if err != nil {
				return Value{}, err
			}
			elems = append(elems, v)
		}
		return ArrayValue(elems...), nil
	}
	q, err := Parse("{ .x = " + s + " }")
	if err != nil {
		return Value{}, fmt.Errorf("value %q: %w", s, err)
	}
	st, ok := q.Expr.(*SpansetFilter).Expr.(*BinaryExpr).RHS.(*Static)
	if !ok {
		return Value{}, fmt.Errorf("value %q is not a literal", s)
	}
	return st.Value, nil
}

func checkCase(t *testing.T, cf *caseFile, traces []Trace, q caseQuery) {
	want := strings.Join(q.expect, "\n")
	parsed, err := Parse(q.query)
	if len(q.expect) == 1 && strings.HasPrefix(strings.TrimSpace(q.expect[0]), "error ") {
		require.Error(t, err, "query %s", q.query)
		require.Contains(t, err.Error(), strings.TrimPrefix(strings.TrimSpace(q.expect[0]), "error "))
		return
	}
	require.NoError(t, err, "query %s", q.query)
	var got []string
	if parsed.IsMetrics() {
		me, err := NewMetricsEvaluator(parsed, q.rng)
		require.NoError(t, err)
		for i := range traces {
			me.Observe(&traces[i])
		}
		for _, s := range me.Series() {
			got = append(got, "  "+renderSeries(s))
		}
	} else {
		ev, err := NewEvaluator(parsed)
		require.NoError(t, err)
		for i := range traces {
			for _, ss := range ev.Eval(&traces[i]) {
				got = append(got, "  "+cf.name(traces[i].ID)+renderAttrs(ss.Attributes))
				for _, sp := range ss.Spans {
					got = append(got, "    "+cf.name(sp.SpanID)+renderAttrs(sp.Attributes))
				}
			}
		}
	}
	if len(got) == 0 {
		got = []string{"  none"}
	}
	require.Equal(t, want, strings.Join(got, "\n"), "query %s", q.query)
}

func renderAttrs(attrs []Attr) string {
	if len(attrs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(" {")
	for i, a := range attrs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.Key)
		b.WriteByte('=')
		b.WriteString(a.Value.String())
	}
	b.WriteByte('}')
	return b.String()
}

func renderSeries(s Series) string {
	var b strings.Builder
	b.WriteString(s.String())
	for _, v := range s.Values {
		b.WriteByte(' ')
		if math.IsNaN(v) {
			b.WriteByte('_')
		} else {
			b.WriteString(strconv.FormatFloat(v, 'g', 6, 64))
		}
	}
	return b.String()
}
