package logql

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// TestSumPushDown: sum by (…) of a line count after a parser holds one
// series per group, not one per parsed label set, so it stays within the
// series limit that the bare count exceeds; the sums are the same.
func TestSumPushDown(t *testing.T) {
	src := &memSource{}
	s := Stream{Labels: labels.FromStrings("app", "x")}
	for i := 0; i < 600; i++ {
		level := []string{"info", "error"}[i%2]
		s.Entries = append(s.Entries, Entry{Timestamp: int64(i+1) * 1e6, Line: fmt.Sprintf("level=%s id=%d n=%d", level, i, i%3)})
	}
	src.streams = []Stream{s}
	src = src.clone()
	eng := NewEngine(nil, nil)
	p := Params{Instant: true, End: int64(time.Minute), Limits: Limits{MaxSeries: 10, MaxSeriesFlag: "-x"}}
	run := func(q string) (*Result, error) {
		expr, err := Parse(q)
		require.NoError(t, err)
		return eng.Exec(context.Background(), src, expr, p)
	}
	res, err := run(`sum by (level) (count_over_time({app="x"} | logfmt [1m]))`)
	require.NoError(t, err)
	require.Equal(t, `{level="error"} 300`+"\n"+`{level="info"} 300`, vectorText(res.Vector))

	res, err = run(`sum(sum_over_time({app="x"} | logfmt | unwrap n [1m]))`)
	require.NoError(t, err)
	require.Equal(t, `{} 600`, vectorText(res.Vector)) // 200 × (0+1+2)

	res, err = run(`sum without (id, n, level_extracted) (rate({app="x"} | logfmt [1m]))`)
	require.NoError(t, err)
	require.Equal(t, `{app="x", level="error"} 5`+"\n"+`{app="x", level="info"} 5`, vectorText(res.Vector))

	_, err = run(`count_over_time({app="x"} | logfmt [1m])`)
	require.ErrorIs(t, err, ErrLimit, "without an aggregation every parsed label set is a series")
	_, err = run(`max by (level) (count_over_time({app="x"} | logfmt [1m]))`)
	require.ErrorIs(t, err, ErrLimit, "max of counts is not the count of a group: not pushed down")
}
