package logql

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/stretchr/testify/require"
)

// The LogQL case files (testdata/cases/*.txt) pin the engine's semantics
// as data. Their format is Canopy's own:
//
//	# a comment
//	stream {app="api", env="prod"}      a stream and its entries, one per line:
//	  10s level=info msg=hi              <time> <line>, time as a duration after 0
//	  20s @{trace_id="a1"} msg=x         @{…} before the line: structured metadata
//
//	query <LogQL>                        then any of:
//	range <start> <end> [step <step>]    a range query (default: 0s 10m, step 1m)
//	at <time>                            an instant query
//	limit <n>  direction <forward|backward>  interval <d>
//	expect streams                       then "  {labels}" lines, each followed
//	                                     by "    <time> <line>" lines
//	expect matrix                        then "  {labels} <t>:<v> <t>:<v> …"
//	expect vector                        then "  {labels} <v>"
//	expect scalar <v>
//	expect error <substring of the message>
//
// Streams accumulate through a file; a query sees every stream above it.

func TestCaseFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/cases/*.txt")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	eng := NewEngine(nil, nil)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			runCaseFile(t, eng, f)
		})
	}
}

type caseQuery struct {
	line    int
	query   string
	params  Params
	expect  string // streams, matrix, vector, scalar, error
	errText string
	scalar  float64
	streams []Stream
	matrix  promql.Matrix
	vector  promql.Vector
}

func runCaseFile(t *testing.T, eng *Engine, path string) {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	src := &memSource{}
	var cur *caseQuery
	var curStream *Stream
	run := func() {
		if cur != nil {
			q := *cur
			s := src.clone()
			t.Run(fmt.Sprintf("line %d", q.line), func(t *testing.T) { checkCase(t, eng, s, q) })
		}
		cur = nil
	}
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fail := func(format string, args ...any) {
			t.Fatalf("%s:%d: %s", path, n, fmt.Sprintf(format, args...))
		}
		indented := raw[0] == ' ' || raw[0] == '\t'
		word, rest, _ := strings.Cut(line, " ")
		switch {
		case !indented && word == "stream":
			run()
			ls, err := parseCaseLabels(rest)
			if err != nil {
				fail("%v", err)
			}
			src.streams = append(src.streams, Stream{Labels: ls})
			curStream = &src.streams[len(src.streams)-1]
		case indented && cur == nil && curStream != nil:
			ts, text, err := parseCaseEntry(line)
			if err != nil {
				fail("%v", err)
			}
			en := Entry{Timestamp: ts, Line: text}
			if strings.HasPrefix(text, "@{") {
				end := strings.Index(text, "} ")
				if end < 0 {
					fail("metadata without a closing brace")
				}
				if en.Metadata, err = parseCaseLabels(text[1 : end+1]); err != nil {
					fail("%v", err)
				}
				en.Line = text[end+2:]
			}
			curStream.Entries = append(curStream.Entries, en)
		case !indented && word == "query":
			run()
			curStream = nil
			cur = &caseQuery{line: n, query: rest, params: Params{Start: 0, End: int64(10 * time.Minute), Step: time.Minute, Limit: 100}}
		case cur == nil:
			fail("%q outside a query", line)
		case !indented && word == "range":
			f := strings.Fields(rest)
			if len(f) != 2 && len(f) != 4 {
				fail("range <start> <end> [step <step>]")
			}
			cur.params.Start, cur.params.End = mustDur(t, f[0]), mustDur(t, f[1])
			if len(f) == 4 {
				cur.params.Step = time.Duration(mustDur(t, f[3]))
			}
		case !indented && word == "at":
			cur.params.Instant, cur.params.End = true, mustDur(t, rest)
		case !indented && word == "limit":
			cur.params.Limit, err = strconv.Atoi(rest)
			require.NoError(t, err)
		case !indented && word == "interval":
			cur.params.Interval = time.Duration(mustDur(t, rest))
		case !indented && word == "direction":
			cur.params.Direction = map[string]Direction{"forward": Forward, "backward": Backward}[rest]
		case !indented && word == "expect":
			kind, arg, _ := strings.Cut(rest, " ")
			cur.expect = kind
			switch kind {
			case "error":
				cur.errText = arg
			case "scalar":
				cur.scalar = mustFloat(t, arg)
			case "streams", "matrix", "vector":
			default:
				fail("unknown expectation %q", kind)
			}
		case indented && cur.expect == "streams" && strings.HasPrefix(line, "{"):
			ls, err := parseCaseLabels(line)
			if err != nil {
				fail("%v", err)
			}
			cur.streams = append(cur.streams, Stream{Labels: ls})
		case indented && cur.expect == "streams":
			if len(cur.streams) == 0 {
				fail("an entry before its stream's labels")
			}
			ts, text, err := parseCaseEntry(line)
			if err != nil {
				fail("%v", err)
			}
			s := &cur.streams[len(cur.streams)-1]
			s.Entries = append(s.Entries, Entry{Timestamp: ts, Line: text})
		case indented && (cur.expect == "matrix" || cur.expect == "vector"):
			end := strings.LastIndex(line, "}")
			if end < 0 {
				fail("a series needs {labels}")
			}
			ls, err := parseCaseLabels(line[:end+1])
			if err != nil {
				fail("%v", err)
			}
			vals := strings.Fields(line[end+1:])
			if cur.expect == "vector" {
				if len(vals) != 1 {
					fail("a vector sample is {labels} <value>")
				}
				cur.vector = append(cur.vector, promql.Sample{Metric: ls, F: mustFloat(t, vals[0])})
				continue
			}
			s := promql.Series{Metric: ls}
			for _, tv := range vals {
				ts, v, ok := strings.Cut(tv, ":")
				if !ok {
					fail("a matrix point is <time>:<value>, not %q", tv)
				}
				s.Floats = append(s.Floats, promql.FPoint{T: mustDur(t, ts) / 1e6, F: mustFloat(t, v)})
			}
			cur.matrix = append(cur.matrix, s)
		default:
			fail("cannot read %q", line)
		}
	}
	require.NoError(t, sc.Err())
	run()
}

func checkCase(t *testing.T, eng *Engine, src *memSource, q caseQuery) {
	expr, err := Parse(q.query)
	if err == nil {
		// The canonical form parses to the same canonical form.
		again, err2 := Parse(expr.String())
		require.NoError(t, err2, "canonical form %s", expr)
		require.Equal(t, expr.String(), again.String())
	}
	var res *Result
	if err == nil {
		res, err = eng.Exec(context.Background(), src, expr, q.params)
	}
	if q.expect == "error" {
		require.Error(t, err, q.query)
		require.Contains(t, err.Error(), q.errText)
		return
	}
	require.NoError(t, err, q.query)
	// A store that leaves out the lines without a needle changes neither
	// the answer nor the stats.
	dropping := &memSource{streams: src.streams, dropNeedles: true}
	res2, err := eng.Exec(context.Background(), dropping, expr, q.params)
	require.NoError(t, err, q.query)
	require.Equal(t, res.Stats.LinesProcessed, res2.Stats.LinesProcessed, "lines processed with needles left out by the store: %s", q.query)
	require.Equal(t, res.Stats.BytesProcessed, res2.Stats.BytesProcessed, "bytes processed with needles left out by the store: %s", q.query)
	res2.Stats, res.Stats = Stats{}, Stats{}
	require.Equal(t, res, res2, "the answer with needles left out by the store: %s", q.query)
	// Parsers setting only the labels a range aggregation by labels needs
	// change no answer either.
	labelHints = false
	res3, err := eng.Exec(context.Background(), src, expr, q.params)
	labelHints = true
	require.NoError(t, err, q.query)
	res3.Stats = Stats{}
	require.Equal(t, res, res3, "the answer without label hints: %s", q.query)
	switch q.expect {
	case "streams":
		require.Equal(t, ValueTypeStreams, res.Type)
		require.Equal(t, streamsText(q.streams), streamsText(res.Streams), q.query)
	case "matrix":
		require.Equal(t, "matrix", string(res.Type), q.query)
		require.Equal(t, matrixText(q.matrix), matrixText(res.Matrix), q.query)
	case "vector":
		require.Equal(t, "vector", string(res.Type), q.query)
		require.Equal(t, vectorText(q.vector), vectorText(res.Vector), q.query)
	case "scalar":
		require.Equal(t, "scalar", string(res.Type), q.query)
		require.Equal(t, formatCaseFloat(q.scalar), formatCaseFloat(res.Scalar.V), q.query)
	default:
		t.Fatalf("query at line %d has no expectation", q.line)
	}
}

// streamsText writes streams in the order of their labels (Loki leaves
// the order of streams open), entries in their order.
func streamsText(ss []Stream) string {
	blocks := make([]string, len(ss))
	for i, s := range ss {
		var b strings.Builder
		b.WriteString(s.Labels.String() + "\n")
		for _, e := range s.Entries {
			fmt.Fprintf(&b, "  %s %s\n", time.Duration(e.Timestamp), e.Line)
		}
		blocks[i] = b.String()
	}
	slices.Sort(blocks)
	return strings.Join(blocks, "")
}

func matrixText(m promql.Matrix) string {
	var lines []string
	for _, s := range m {
		var b strings.Builder
		b.WriteString(s.Metric.String())
		for _, p := range s.Floats {
			fmt.Fprintf(&b, " %s:%s", time.Duration(p.T)*time.Millisecond, formatCaseFloat(p.F))
		}
		lines = append(lines, b.String())
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func vectorText(v promql.Vector) string {
	var lines []string
	for _, s := range v {
		lines = append(lines, s.Metric.String()+" "+formatCaseFloat(s.F))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// formatCaseFloat rounds to 10 significant digits so that case files need
// not spell out float noise.
func formatCaseFloat(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', 10, 64)
}

func parseCaseEntry(line string) (int64, string, error) {
	ts, text, ok := strings.Cut(line, " ")
	if !ok {
		return 0, "", fmt.Errorf("an entry is <time> <line>: %q", line)
	}
	d, err := ParseDuration(ts)
	return int64(d), text, err
}

func parseCaseLabels(s string) (labels.Labels, error) {
	s = strings.TrimSpace(s)
	if s == "{}" {
		return labels.EmptyLabels(), nil
	}
	expr, err := Parse(s)
	if err != nil {
		return labels.EmptyLabels(), fmt.Errorf("labels %s: %w", s, err)
	}
	le, ok := expr.(*LogExpr)
	if !ok {
		return labels.EmptyLabels(), fmt.Errorf("labels %s: not a selector", s)
	}
	var sb labels.ScratchBuilder
	for _, m := range le.Matchers {
		sb.Add(m.Name, m.Value)
	}
	sb.Sort()
	return sb.Labels(), nil
}

func mustDur(t *testing.T, s string) int64 {
	neg := strings.HasPrefix(s, "-")
	d, err := ParseDuration(strings.TrimPrefix(s, "-"))
	require.NoError(t, err)
	if neg {
		d = -d
	}
	return int64(d)
}

func mustFloat(t *testing.T, s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err)
	return f
}

// memSource is a Source over streams held in memory; it hands out each
// stream in batches of two entries to exercise batching.
type memSource struct {
	streams []Stream
	// dropNeedles makes it leave out the lines without a needle, as the
	// querier's stores do, counting them (SkipCounter).
	dropNeedles bool
}

func (m *memSource) clone() *memSource {
	c := &memSource{streams: make([]Stream, len(m.streams))}
	for i, s := range m.streams {
		c.streams[i] = Stream{Labels: s.Labels, Entries: slices.Clone(s.Entries)}
		slices.SortStableFunc(c.streams[i].Entries, func(a, b Entry) int { return int(a.Timestamp - b.Timestamp) })
	}
	return c
}

func (m *memSource) Select(_ context.Context, p SelectParams) (StreamIterator, error) {
	it := &memIterator{}
	for _, s := range m.streams {
		ok := true
		for _, mt := range p.Matchers {
			ok = ok && mt.Matches(s.Labels.Get(mt.Name))
		}
		if !ok {
			continue
		}
		var in []Entry
	entries:
		for _, e := range s.Entries {
			if e.Timestamp >= p.Start && e.Timestamp < p.End {
				for _, nd := range p.Needles {
					if m.dropNeedles && !strings.Contains(e.Line, nd) {
						it.skippedLines++
						it.skippedBytes += int64(len(e.Line))
						continue entries
					}
				}
				in = append(in, e)
			}
		}
		for i := 0; i < len(in); i += 2 {
			it.batches = append(it.batches, Stream{Labels: s.Labels, Entries: in[i:min(i+2, len(in))]})
		}
	}
	it.i = -1
	return it, nil
}

type memIterator struct {
	batches                    []Stream
	i                          int
	skippedLines, skippedBytes int64
}

func (it *memIterator) Skipped() (lines, bytes int64) { return it.skippedLines, it.skippedBytes }

func (it *memIterator) Next() bool            { it.i++; return it.i < len(it.batches) }
func (it *memIterator) Labels() labels.Labels { return it.batches[it.i].Labels }
func (it *memIterator) Entries() []Entry      { return it.batches[it.i].Entries }
func (it *memIterator) Err() error            { return nil }
func (it *memIterator) Close() error          { return nil }
