// Package blockstest builds real Prometheus TSDB blocks for tests of the
// components that ship, compact and read them.
package blockstest

import (
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
	for _, s := range series {
		cs := make([]chunks.Sample, len(s.Samples))
		for i, smp := range s.Samples {
			cs[i] = smp
		}
		ss = append(ss, storage.NewListSeries(s.Labels, cs))
	}
	d, err := tsdb.CreateBlock(ss, dir, 0, promslog.NewNopLogger())
	if err != nil {
		t.Fatalf("creating test block: %v", err)
	}
	return d
}
