package logql

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// streamEntry is an entry of a merged log answer with its stream.
type streamEntry struct {
	stream labels.Labels
	key    string // stream.String()
	Entry
}

// MergeStreams merges the log answers to the parts of one query (its time
// splits, or a federator's children): it keeps the limit best entries of
// all parts — the newest (backward) or the oldest (forward), ties broken
// by line as the engine does — once each, and groups them as the engine does: streams in label
// order, entries in the query's direction (ties by line), at most one
// entry per interval of a stream. It returns the streams and how many
// entries were kept before the interval thinned them (the engine's count).
func MergeStreams(parts []*Result, limit int, dir Direction, interval time.Duration) ([]Stream, int64) {
	var all []streamEntry
	seen := map[string]bool{}
	for _, p := range parts {
		for _, s := range p.Streams {
			key := s.Labels.String()
			for _, e := range s.Entries {
				id := strings.Join([]string{key, strconv.FormatInt(e.Timestamp, 10), e.Line, e.Metadata.String(), e.Parsed.String()}, "\x00")
				if seen[id] {
					continue
				}
				seen[id] = true
				all = append(all, streamEntry{stream: s.Labels, key: key, Entry: e})
			}
		}
	}
	forward := dir == Forward
	// Best first: the engine keeps, at one timestamp, the smallest lines
	// going forward and the largest going backward.
	slices.SortFunc(all, func(a, b streamEntry) int {
		c := cmp.Or(cmp.Compare(a.Timestamp, b.Timestamp), strings.Compare(a.Line, b.Line))
		if forward {
			return c
		}
		return -c
	})
	if len(all) > limit {
		all = all[:limit]
	}
	kept := int64(len(all))
	slices.SortFunc(all, func(a, b streamEntry) int {
		if c := labels.Compare(a.stream, b.stream); c != 0 {
			return c
		}
		if a.Timestamp != b.Timestamp {
			if (a.Timestamp < b.Timestamp) == forward {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Line, b.Line)
	})
	var out []Stream
	for i, e := range all {
		if i == 0 || e.key != all[i-1].key {
			out = append(out, Stream{Labels: e.stream})
		}
		s := &out[len(out)-1]
		if interval > 0 && len(s.Entries) > 0 {
			d := e.Timestamp - s.Entries[len(s.Entries)-1].Timestamp
			if d < int64(interval) && -d < int64(interval) {
				continue
			}
		}
		s.Entries = append(s.Entries, e.Entry)
	}
	return out, kept
}
