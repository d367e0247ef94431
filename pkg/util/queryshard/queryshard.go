// Package queryshard carries a query shard from the query-frontend to the
// ingesters and store-gateways. The frontend adds the matcher
// __query_shard__="<i>_of_<n>" (i counted from 1) to every selector of a
// sharded query; the querier passes it on like any matcher, and the
// components holding series remove it and ask their TSDB for the series of
// that shard only (Prometheus's SelectHints.ShardIndex and ShardCount: series
// are sharded by the stable hash of their labels).
package queryshard

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// Label is the name of the shard matcher's label.
const Label = "__query_shard__"

// MaxShards bounds the shard count a matcher may ask for.
const MaxShards = 1024

// Format renders shard index (from 0) of count as the matcher's value.
func Format(index, count int) string {
	return strconv.Itoa(index+1) + "_of_" + strconv.Itoa(count)
}

// Matcher returns the matcher selecting shard index (from 0) of count.
func Matcher(index, count int) *labels.Matcher {
	return labels.MustNewMatcher(labels.MatchEqual, Label, Format(index, count))
}

// Parse reads a matcher value "<i>_of_<n>" into index (from 0) and count.
func Parse(v string) (index, count uint64, err error) {
	a, b, ok := strings.Cut(v, "_of_")
	i, err1 := strconv.ParseUint(a, 10, 64)
	n, err2 := strconv.ParseUint(b, 10, 64)
	if !ok || err1 != nil || err2 != nil || n == 0 || n > MaxShards || i == 0 || i > n {
		return 0, 0, fmt.Errorf("%s=%q: want <shard>_of_<count> with 1 <= shard <= count <= %d", Label, v, MaxShards)
	}
	return i - 1, n, nil
}

// Extract removes the shard matcher from ms and, if there was one, sets the
// shard in hints (which must not be nil). Only an equality matcher is a
// shard; a second one, or one with another operator, is an error.
func Extract(ms []*labels.Matcher, hints *storage.SelectHints) ([]*labels.Matcher, error) {
	out := ms[:0:0]
	found := false
	for _, m := range ms {
		if m.Name != Label {
			out = append(out, m)
			continue
		}
		if m.Type != labels.MatchEqual {
			return nil, fmt.Errorf("%s: only the = operator selects a shard, got %s", Label, m)
		}
		if found {
			return nil, fmt.Errorf("%s: a selector may name one shard, got two", Label)
		}
		i, n, err := Parse(m.Value)
		if err != nil {
			return nil, err
		}
		found = true
		hints.ShardIndex, hints.ShardCount = i, n
	}
	if !found {
		return ms, nil
	}
	return out, nil
}
