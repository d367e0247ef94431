package logql

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// TestConcurrentMetricQueries: the engine's answers are its callers' own.
// Prometheus's engine gives a closed query's memory back to its pools; an
// answer that shared it was overwritten by the queries running beside it.
func TestConcurrentMetricQueries(t *testing.T) {
	src := &memSource{}
	for s := 0; s < 4; s++ {
		st := Stream{Labels: labels.FromStrings("app", "x", "pod", fmt.Sprint(s))}
		for i := 1; i <= 200; i++ {
			st.Entries = append(st.Entries, Entry{Timestamp: int64(i) * int64(time.Second), Line: fmt.Sprintf("level=%s", []string{"info", "warn"}[i%2])})
		}
		src.streams = append(src.streams, st)
	}
	src = src.clone()
	eng := NewEngine(nil, nil)
	expr, err := Parse(`sum by (pod) (count_over_time({app="x"} |= "info" [1m])) * 2`)
	require.NoError(t, err)
	p := Params{Start: int64(time.Minute), End: int64(4 * time.Minute), Step: time.Minute}
	want, err := eng.Exec(context.Background(), src, expr, p)
	require.NoError(t, err)
	wantText := matrixText(want.Matrix)
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 20; k++ {
				res, err := eng.Exec(context.Background(), src, expr, p)
				if err != nil {
					errs <- err.Error()
					return
				}
				got := matrixText(res.Matrix)
				time.Sleep(time.Millisecond) // let the others reuse pooled memory
				if again := matrixText(res.Matrix); got != wantText || again != wantText {
					errs <- got + " / " + again
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("an answer changed: %s, want %s", e, wantText)
	}
}
