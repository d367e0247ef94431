package logql

import (
	"context"

	"github.com/prometheus/prometheus/promql"
)

// Remote computes parts of queries elsewhere: a federator's children
// answer them, each over the logs it holds. An engine with a Remote asks
// it for every log query and every range aggregation, and reads from its
// Source only the range aggregations the Remote cannot compute.
type Remote interface {
	// Logs answers a log query whole, nil when it cannot.
	Logs(ctx context.Context, e *LogExpr, p Params) (*Result, error)
	// Range returns the series of r at the steps (its Matrix; its Stats
	// and Warnings join the query's), nil when it cannot compute them.
	Range(ctx context.Context, r *RangeAggregation, at Steps, lim Limits) (*Result, error)
}

// Steps are the times a metric query is evaluated at: N of them from
// Start, Step apart (Unix ms). Instant is set for an instant query.
type Steps struct {
	Start, Step int64
	N           int
	Instant     bool
}

// At returns the i-th step.
func (s Steps) At(i int) int64 { return s.Start + int64(i)*s.Step }

// WithRemote returns an engine that asks r for what it can compute; it
// shares e's PromQL engine.
func (e *Engine) WithRemote(r Remote) *Engine {
	c := *e
	c.remote = r
	return &c
}

// rangeOf computes r at the steps: by the Remote if it can, else from src.
func (e *Engine) rangeOf(ctx context.Context, src Source, r *RangeAggregation, st steps, lim Limits, stats *Stats, warnings *[]string) (promql.Matrix, error) {
	if e.remote != nil {
		res, err := e.remote.Range(ctx, r, Steps{Start: st.start, Step: st.step, N: st.n, Instant: st.instant}, lim)
		if err != nil {
			return nil, err
		}
		if res != nil {
			stats.BytesProcessed += res.Stats.BytesProcessed
			stats.LinesProcessed += res.Stats.LinesProcessed
			*warnings = append(*warnings, res.Warnings...)
			return res.Matrix, nil
		}
	}
	return e.evalRange(ctx, src, r, st, lim, stats)
}
