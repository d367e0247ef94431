package logql

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	promparser "github.com/prometheus/prometheus/promql/parser"
)

// Direction orders the entries of a log query.
type Direction int

// Directions: backward (newest first, Loki's default) and forward.
const (
	Backward Direction = iota
	Forward
)

// Entry is one log line, as the store gives it and as a result holds it.
type Entry struct {
	// Timestamp is in Unix nanoseconds.
	Timestamp int64
	Line      string
	// Metadata is the entry's structured metadata. In a result it is set
	// only when the query asked for categorized labels.
	Metadata labels.Labels
	// Parsed are the labels the pipeline added (result entries, categorized
	// queries only).
	Parsed labels.Labels
}

// Stream is a label set and its entries.
type Stream struct {
	Labels  labels.Labels
	Entries []Entry
}

// Source is the stored logs of one tenant, as the engine reads them.
type Source interface {
	// Select returns the entries of the streams matching p.Matchers with
	// timestamps in [p.Start, p.End).
	Select(ctx context.Context, p SelectParams) (StreamIterator, error)
}

// SelectParams says what a query reads.
type SelectParams struct {
	Matchers []*labels.Matcher
	// Start and End bound the entries' timestamps (Unix ns), end excluded.
	Start, End int64
	// Needles are substrings every line the query keeps contains (its
	// leading |= filters): a store may skip data that holds none of them.
	Needles []string
	// Direction is the order the query wants; a store may use it to stop
	// early but need not.
	Direction Direction
	// With ShardCount above 1, only the streams whose
	// labels.StableHash(labels) % ShardCount is ShardIndex are wanted (a
	// shard of a query split by the query-frontend): a store may skip the
	// others without reading them.
	ShardIndex, ShardCount uint64
}

// SkipCounter is implemented by a StreamIterator whose store leaves out
// the lines that lack one of SelectParams.Needles instead of handing them
// over: Skipped returns how many lines it left out so far and their bytes.
// The query's stats and byte limit count them as processed, as if the
// engine's line filter had dropped them.
type SkipCounter interface {
	Skipped() (lines, bytes int64)
}

// Skipped is what it has left out so far, if it counts that: what an
// iterator wrapping another returns from its own Skipped.
func Skipped(it StreamIterator) (lines, bytes int64) {
	if sc, ok := it.(SkipCounter); ok {
		return sc.Skipped()
	}
	return 0, 0
}

// StreamIterator walks the selected entries in batches. A batch holds
// entries of one stream in timestamp order; a stream may come in several
// batches, in timestamp order, and batches of streams may interleave.
// Entries() is valid until the next call to Next; the engine copies what
// it keeps.
type StreamIterator interface {
	Next() bool
	Labels() labels.Labels
	Entries() []Entry
	Err() error
	Close() error
}

// Params is one query's evaluation request.
type Params struct {
	// Start and End are Unix ns. A log query returns entries in [Start,
	// End); a metric range query evaluates at Start, Start+Step, … ≤ End;
	// an instant query (Instant) evaluates at End.
	Start, End int64
	Step       time.Duration
	Instant    bool
	// Limit is the most entries a log query returns; Direction their order.
	Limit     int
	Direction Direction
	// Interval, for log queries, keeps at most one entry per Interval of
	// each stream.
	Interval time.Duration
	// Categorize asks for entries' structured metadata and parsed labels
	// apart from their stream labels (X-Loki-Response-Encoding-Flags:
	// categorize-labels): result streams are then grouped by their stream
	// labels only, and each entry carries its Metadata and Parsed labels.
	Categorize bool
	Limits     Limits
}

// Limits bound what one query may use; zero means no bound. What the
// error says names the setting that raises the bound.
type Limits struct {
	// MaxSeries bounds the series of a metric query and the streams of a
	// log query's result.
	MaxSeries int
	// MaxBytesRead bounds the raw line bytes a query reads.
	MaxBytesRead int64
	// MaxSamples bounds the samples an unwrapped range aggregation holds.
	MaxSamples int
	// Names of the settings, for the errors.
	MaxSeriesFlag, MaxBytesReadFlag, MaxSamplesFlag string
}

// Result is a query's answer: streams for a log query, a matrix for a
// metric range query, a vector (or a scalar) for an instant one.
type Result struct {
	Type    promparser.ValueType // "streams" for log queries
	Streams []Stream
	Matrix  promql.Matrix
	Vector  promql.Vector
	Scalar  promql.Scalar
	Stats   Stats
	// Warnings say what the answer may lack (a federator's child that
	// failed under partial_response=warn).
	Warnings []string
}

// ValueTypeStreams is a log query's result type.
const ValueTypeStreams promparser.ValueType = "streams"

// Stats count what a query did.
type Stats struct {
	BytesProcessed  int64
	LinesProcessed  int64
	EntriesReturned int64
	ExecTime        time.Duration
}

// ErrLimit is wrapped by the errors of exceeded query limits.
var ErrLimit = errors.New("query limit exceeded")

// Engine evaluates LogQL. It is safe for concurrent use.
type Engine struct {
	prom   *promql.Engine
	remote Remote
}

// NewEngine returns an engine; reg receives the metrics of the PromQL
// engine that evaluates the operators above range aggregations (nil for
// none).
func NewEngine(logger *slog.Logger, reg prometheus.Registerer) *Engine {
	return &Engine{prom: promql.NewEngine(promql.EngineOpts{
		Logger:               logger,
		Reg:                  reg,
		MaxSamples:           50_000_000,
		Timeout:              time.Hour, // the caller's context bounds the query
		LookbackDelta:        time.Millisecond,
		EnableNegativeOffset: true,
		Parser:               promparser.NewParser(promparser.Options{}),
	})}
}

// Exec evaluates a parsed query over src.
func (e *Engine) Exec(ctx context.Context, src Source, expr Expr, p Params) (*Result, error) {
	began := time.Now()
	var res *Result
	var err error
	if le, ok := expr.(*LogExpr); ok {
		if p.Instant {
			return nil, errors.New("log queries are not supported as an instant query type: make the query a range query, or a metric query such as count_over_time")
		}
		if e.remote != nil {
			res, err = e.remote.Logs(ctx, le, p)
		}
		if res == nil && err == nil {
			res, err = e.execLogs(ctx, src, le, p)
		}
	} else {
		res, err = e.execMetric(ctx, src, expr, p)
	}
	if err != nil {
		return nil, err
	}
	res.Stats.ExecTime = time.Since(began)
	return res, nil
}

// needles returns the substrings every kept line contains: the values of
// the single-valued |= filters before any stage that changes the line.
func needles(stages []Stage) []string {
	var out []string
	for _, s := range stages {
		switch s := s.(type) {
		case *LineFilter:
			if s.Op == "|=" && len(s.Values) == 1 && !s.Values[0].IP && s.Values[0].Value != "" {
				out = append(out, s.Values[0].Value)
			}
		case *LineFormat, *Decolorize, *Parser:
			if p, ok := s.(*Parser); ok && p.Kind != "unpack" {
				continue // parsers leave the line as it is
			}
			return out
		}
	}
	return out
}

// selected is one entry a log query keeps, in its heap.
type selected struct {
	ts       int64
	line     string
	labels   labels.Labels
	meta     labels.Labels
	parsed   labels.Labels
	streamID int
}

// topEntries keeps the limit best entries: the newest (backward) or the
// oldest (forward). Its root is the worst kept entry.
type topEntries struct {
	items   []selected
	forward bool
}

func (h *topEntries) Len() int { return len(h.items) }
func (h *topEntries) Less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	if a.ts != b.ts {
		return (a.ts > b.ts) == h.forward // the worst first
	}
	return (a.line > b.line) == h.forward
}
func (h *topEntries) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *topEntries) Push(x any)    { h.items = append(h.items, x.(selected)) }
func (h *topEntries) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}

// better says whether an entry at ts would displace the worst kept one.
func (h *topEntries) better(ts int64, line string) bool {
	w := h.items[0]
	if ts != w.ts {
		return (ts < w.ts) == h.forward
	}
	return (line < w.line) == h.forward
}

func (e *Engine) execLogs(ctx context.Context, src Source, le *LogExpr, p Params) (*Result, error) {
	pl, err := CompilePipeline(le.Pipeline)
	if err != nil {
		return nil, err
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	it, err := src.Select(ctx, SelectParams{Matchers: le.Matchers, Start: p.Start, End: p.End, Needles: needles(le.Pipeline), Direction: p.Direction})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	proc := pl.NewProcessor()
	top := &topEntries{forward: p.Direction == Forward}
	var stats Stats
	for it.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		proc.SetStream(it.Labels())
		for _, en := range it.Entries() {
			if en.Timestamp < p.Start || en.Timestamp >= p.End {
				continue
			}
			stats.LinesProcessed++
			stats.BytesProcessed += int64(len(en.Line))
			// An entry that cannot displace the worst kept one is skipped
			// before its pipeline runs; ties are ordered by the resulting
			// line, so only when the pipeline keeps lines.
			if top.Len() == limit && pl.KeepsLine() && !top.better(en.Timestamp, en.Line) {
				continue
			}
			line, ok := proc.Process(en.Timestamp, en.Line, en.Metadata)
			if !ok {
				continue
			}
			if top.Len() == limit && !top.better(en.Timestamp, line) {
				continue
			}
			s := selected{ts: en.Timestamp, line: strings.Clone(line)}
			if p.Categorize {
				s.labels, s.meta, s.parsed = proc.Categorized()
			} else {
				s.labels = proc.Labels()
			}
			if top.Len() == limit {
				top.items[0] = s
				heap.Fix(top, 0)
			} else {
				heap.Push(top, s)
			}
		}
		if _, b := Skipped(it); p.Limits.MaxBytesRead > 0 && stats.BytesProcessed+b > p.Limits.MaxBytesRead {
			return nil, bytesLimitError(p.Limits)
		}
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	l, b := Skipped(it)
	stats.LinesProcessed += l
	stats.BytesProcessed += b
	streams, err := groupStreams(top.items, p)
	if err != nil {
		return nil, err
	}
	stats.EntriesReturned = int64(len(top.items))
	return &Result{Type: ValueTypeStreams, Streams: streams, Stats: stats}, nil
}

func bytesLimitError(l Limits) error {
	return fmt.Errorf("%w: the query would read more than %d bytes of log lines (%s); narrow the time range or the stream selector", ErrLimit, l.MaxBytesRead, l.MaxBytesReadFlag)
}

// groupStreams puts the kept entries into streams by their labels, entries
// in the query's direction, streams sorted by labels.
func groupStreams(items []selected, p Params) ([]Stream, error) {
	forward := p.Direction == Forward
	slices.SortFunc(items, func(a, b selected) int {
		if c := labels.Compare(a.labels, b.labels); c != 0 {
			return c
		}
		if a.ts != b.ts {
			if (a.ts < b.ts) == forward {
				return -1
			}
			return 1
		}
		return strings.Compare(a.line, b.line)
	})
	var out []Stream
	for i, s := range items {
		if i == 0 || labels.Compare(s.labels, items[i-1].labels) != 0 {
			if p.Limits.MaxSeries > 0 && len(out) == p.Limits.MaxSeries {
				return nil, fmt.Errorf("%w: the result has more than %d streams (%s); narrow the query", ErrLimit, p.Limits.MaxSeries, p.Limits.MaxSeriesFlag)
			}
			out = append(out, Stream{Labels: s.labels})
		}
		st := &out[len(out)-1]
		if p.Interval > 0 && len(st.Entries) > 0 {
			last := st.Entries[len(st.Entries)-1].Timestamp
			if d := s.ts - last; d < int64(p.Interval) && -d < int64(p.Interval) {
				continue
			}
		}
		st.Entries = append(st.Entries, Entry{Timestamp: s.ts, Line: s.line, Metadata: s.meta, Parsed: s.parsed})
	}
	return out, nil
}
