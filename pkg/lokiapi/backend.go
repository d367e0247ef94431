// Package lokiapi serves Loki's HTTP query API (/loki/api/v1/…) with the
// exact shapes Grafana's Loki datasource and Logs Drilldown parse, over
// Canopy's LogQL engine and a Backend that reads a tenant's stored logs.
package lokiapi

import (
	"context"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/canopy-observability/canopy/pkg/logql"
)

// Backend is what the API reads of one tenant's logs (the tenant is in
// ctx, as pkg/util/tenant puts it there). Times are Unix nanoseconds,
// end excluded. Implementations are safe for concurrent use.
type Backend interface {
	// Source is what the LogQL engine reads.
	logql.Source
	// Labels returns the sorted label names of the streams matching
	// matchers (all streams when none) with entries in [start, end).
	Labels(ctx context.Context, start, end int64, matchers []*labels.Matcher) ([]string, error)
	// LabelValues returns the sorted values of a label name.
	LabelValues(ctx context.Context, name string, start, end int64, matchers []*labels.Matcher) ([]string, error)
	// Series returns the label sets of the streams matching any of the
	// matcher sets, deduplicated.
	Series(ctx context.Context, start, end int64, matcherSets [][]*labels.Matcher) ([]labels.Labels, error)
}

// IndexStats are the sizes /index/stats reports of the streams matching a
// selector over a time range.
type IndexStats struct {
	Streams, Chunks, Entries, Bytes uint64
}

// IndexStatser is a Backend that knows these sizes from its index, without
// reading the entries. The API reads the entries of Backends that are not
// IndexStatsers, and then counts each batch its iterator returns as a
// chunk.
type IndexStatser interface {
	IndexStats(ctx context.Context, start, end int64, matchers []*labels.Matcher) (IndexStats, error)
}
