package logs

import (
	"context"
	"slices"
	"sort"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/canopy-observability/canopy/pkg/ingester/logsclient"
	"github.com/canopy-observability/canopy/pkg/rpc/logspb"
	"github.com/canopy-observability/canopy/pkg/storage/logchunk"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// matching returns the tenant's streams whose labels match every matcher.
func (i *Ingester) matching(ctx context.Context, ms []*labels.Matcher) ([]*stream, error) {
	id, err := tenant.ID(ctx)
	if err != nil {
		return nil, err
	}
	in, found := i.base.Instance(id)
	if !found {
		return nil, nil
	}
	var out []*stream
	for _, s := range in.all() {
		ok := true
		for _, m := range ms {
			if !m.Matches(s.labels.Get(m.Name)) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, s)
		}
	}
	return out, nil
}

// hasEntriesIn says whether the stream holds entries in [start, end).
func (s *stream) hasEntriesIn(start, end int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.head) > 0 && s.headMin < end && s.headMax >= start {
		return true
	}
	for _, c := range s.chunks {
		if c.minT < end && c.maxT >= start {
			return true
		}
	}
	return false
}

// Select sends the entries of the matching streams in [start, end), in
// the streams' label order, each stream's in timestamp order, in batches of
// about
// -ingester.logs.select-batch-bytes. Chunks whose token filter rules out a
// needle are not decompressed.
func (i *Ingester) Select(req *logspb.SelectRequest, send logsclient.BatchSender) error {
	ctx := send.Context()
	ms, err := logsclient.ToMatchers(req.Matchers)
	if err != nil {
		return err
	}
	streams, err := i.matching(ctx, ms)
	if err != nil {
		return err
	}
	if req.ShardCount > 1 {
		kept := streams[:0]
		for _, s := range streams {
			if labels.StableHash(s.labels)%req.ShardCount == req.ShardIndex {
				kept = append(kept, s)
			}
		}
		streams = kept
	}
	// In label order: queriers merge replicas' answers stream by stream.
	slices.SortFunc(streams, func(a, b *stream) int { return labels.Compare(a.labels, b.labels) })
	batch := &logspb.SelectBatch{}
	size := 0
	flush := func() error {
		if len(batch.Streams) == 0 {
			return nil
		}
		err := send.Send(batch)
		batch, size = &logspb.SelectBatch{}, 0
		return err
	}
	for _, s := range streams {
		if err := ctx.Err(); err != nil {
			return err
		}
		entries, err := s.read(req.Start, req.End, req.Needles)
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			continue
		}
		ls := logsclient.FromLabels(s.labels)
		for len(entries) > 0 {
			ws := &logspb.Stream{Labels: ls}
			n := 0
			for n < len(entries) && size < i.cfg.SelectBatchBytes {
				e := entries[n]
				ws.Entries = append(ws.Entries, &logspb.Entry{Timestamp: e.Timestamp, Line: e.Line, Metadata: logsclient.FromLabels(e.Metadata)})
				size += len(e.Line) + 16
				n++
			}
			entries = entries[n:]
			batch.Streams = append(batch.Streams, ws)
			if size >= i.cfg.SelectBatchBytes {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// read returns the stream's entries in [start, end) in timestamp order,
// skipping chunks that cannot hold every needle.
func (s *stream) read(start, end int64, needles []string) ([]logchunk.Entry, error) {
	chunks, head := s.snapshot(false)
	var out []logchunk.Entry
	for _, c := range chunks {
		if c.maxT < start || c.minT >= end {
			continue
		}
		skip := false
		for _, n := range needles {
			if !c.chunk.MayContain(n) {
				skip = true
				break
			}
		}
		if skip {
			continue
		}
		err := c.chunk.Iterate(start, end, true, func(e logchunk.Entry) bool {
			out = append(out, logchunk.Entry{Timestamp: e.Timestamp, Line: clone(e.Line), Metadata: e.Metadata.Copy()})
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	for _, e := range head {
		if e.Timestamp >= start && e.Timestamp < end {
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Timestamp < out[b].Timestamp })
	return out, nil
}

func clone(s string) string { return string([]byte(s)) }

// Labels answers label names (req.Name empty) or a label's values among
// the streams matching req.Matchers with entries in [start, end).
func (i *Ingester) Labels(ctx context.Context, req *logspb.LabelsRequest) (*logspb.LabelsResponse, error) {
	ms, err := logsclient.ToMatchers(req.Matchers)
	if err != nil {
		return nil, err
	}
	streams, err := i.matching(ctx, ms)
	if err != nil {
		return nil, err
	}
	seen := map[string]struct{}{}
	for _, s := range streams {
		if !s.hasEntriesIn(req.Start, req.End) {
			continue
		}
		s.labels.Range(func(l labels.Label) {
			switch {
			case req.Name == "":
				seen[l.Name] = struct{}{}
			case l.Name == req.Name:
				seen[l.Value] = struct{}{}
			}
		})
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	return &logspb.LabelsResponse{Values: out}, nil
}

// Series answers the label sets of the streams matching any matcher set.
func (i *Ingester) Series(ctx context.Context, req *logspb.SeriesRequest) (*logspb.SeriesResponse, error) {
	resp := &logspb.SeriesResponse{}
	seen := map[*stream]bool{}
	for _, set := range req.MatcherSets {
		ms, err := logsclient.ToMatchers(set.Matchers)
		if err != nil {
			return nil, err
		}
		streams, err := i.matching(ctx, ms)
		if err != nil {
			return nil, err
		}
		for _, s := range streams {
			if !seen[s] && s.hasEntriesIn(req.Start, req.End) {
				seen[s] = true
				resp.Series = append(resp.Series, &logspb.Stream{Labels: logsclient.FromLabels(s.labels)})
			}
		}
	}
	return resp, nil
}
