// Package blockstest builds real Prometheus TSDB blocks for tests of the
// components that ship, compact and read them.
package blockstest

import (
	"math"
	"testing"

	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
)

// Sample is a float sample: Ts in milliseconds, value V.
type Sample struct {
	Ts int64
	V  float64
}

var _ chunks.Sample = Sample{}

// T, ST, F, H, FH, Type and Copy implement chunks.Sample.
func (s Sample) T() int64                      { return s.Ts }
func (s Sample) ST() int64                     { return 0 }
func (s Sample) F() float64                    { return s.V }
func (s Sample) H() *histogram.Histogram       { return nil }
func (s Sample) FH() *histogram.FloatHistogram { return nil }
func (s Sample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s Sample) Copy() chunks.Sample           { return s }

// Series is one series of a block to create.
type Series struct {
	Labels  labels.Labels
	Samples []Sample
}

// Create writes a block holding series under dir with Prometheus's own block
// writer and returns the block's directory.
func Create(t testing.TB, dir string, series []Series) string {
	t.Helper()
	ss := make([]storage.Series, 0, len(series))
	mint, maxt := int64(math.MaxInt64), int64(math.MinInt64)
	for _, s := range series {
		if n := len(s.Samples); n > 0 {
			mint, maxt = min(mint, s.Samples[0].Ts), max(maxt, s.Samples[n-1].Ts)
		}
		cs := make([]chunks.Sample, len(s.Samples))
		for i, smp := range s.Samples {
			cs[i] = smp
		}
		ss = append(ss, storage.NewListSeries(s.Labels, cs))
	}
	// The block writer's head takes samples up to half its chunk range
	// behind its newest one and commits every 10,000 samples: a range of
	// twice the data's span (in whole 2h) keeps every sample appendable.
	chunkRange := tsdb.DefaultBlockDuration
	for maxt > mint && chunkRange < 2*(maxt-mint+1) {
		chunkRange += tsdb.DefaultBlockDuration
	}
	d, err := tsdb.CreateBlock(ss, dir, chunkRange, promslog.NewNopLogger())
	if err != nil {
		t.Fatalf("creating test block: %v", err)
	}
	return d
}
