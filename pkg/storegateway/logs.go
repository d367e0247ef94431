package storegateway

import (
	"context"
	"fmt"
	"slices"
	"time"
	"unsafe"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/thanos-io/objstore"
	"golang.org/x/sync/errgroup"

	"github.com/canopy-observability/canopy/pkg/ingester/logsclient"
	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/querier/logmerge"
	"github.com/canopy-observability/canopy/pkg/rpc/logspb"
	"github.com/canopy-observability/canopy/pkg/storage/logblock"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// Logs is the logs unit of a store-gateway: it serves the log blocks a
// querier names in a request (the querier sends each block to a
// store-gateway owning it in the ring, so each block is open in few
// places). A block is opened on first use — its meta, its index and its
// filters directory held in memory, its chunks read by byte range — and
// let go once no request has read it for the idle timeout. Safe for
// concurrent use.
type Logs struct {
	blocks     *openBlocks[*logblock.Block]
	batchBytes int

	loaded, queried prometheus.Counter
}

// logsSelectBatchBytes is about how many line bytes a Select batch holds.
const logsSelectBatchBytes = 1 << 20

// NewLogs returns the logs unit reading bkt; blocks unread for idle are let
// go (0 keeps them).
func NewLogs(bkt objstore.BucketReader, idle time.Duration, reg prometheus.Registerer) *Logs {
	l := &Logs{
		batchBytes: logsSelectBatchBytes,
		loaded: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "canopy_store_gateway_log_blocks_opened_total", Help: "Log blocks opened (meta, index and filters directory read) by the store-gateway.",
		}),
		queried: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "canopy_store_gateway_log_blocks_queried_total", Help: "Log blocks read by select and series calls.",
		}),
	}
	l.blocks = newOpenBlocks("log", idle, func(ctx context.Context, t string, id ulid.ULID) (*logblock.Block, error) {
		m, err := logblock.ReadMeta(ctx, bkt, t, id)
		if err != nil {
			return nil, err
		}
		return logblock.OpenBlock(ctx, bkt, t, m)
	}, l.loaded.Inc)
	return l
}

// OpenBlocks returns the blocks of the context's tenant a request names,
// opening those not open yet: what a querier in the same process reads
// directly, without a call.
func (l *Logs) OpenBlocks(ctx context.Context, ids []string) ([]*logblock.Block, error) {
	t, err := tenant.ID(ctx)
	if err != nil {
		return nil, err
	}
	parsed := make([]ulid.ULID, len(ids))
	for i, s := range ids {
		if parsed[i], err = ulid.ParseStrict(s); err != nil {
			return nil, fmt.Errorf("block ID %q: %w", s, err)
		}
	}
	out := make([]*logblock.Block, len(ids))
	var g errgroup.Group
	g.SetLimit(8)
	for i, id := range parsed {
		g.Go(func() error {
			b, err := l.blocks.get(ctx, t, id)
			out[i] = b
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	l.queried.Add(float64(len(out)))
	return out, nil
}

// Select sends the entries of the named blocks' streams matching req,
// merged over the blocks (logmerge): streams in label order, each whole
// and in timestamp order, in batches of about batchBytes of lines; the
// last batch carries the counts of lines left out for lacking a needle.
func (l *Logs) Select(req *logspb.SelectRequest, send logsclient.BatchSender) error {
	ctx := send.Context()
	ms, err := logsclient.ToMatchers(req.Matchers)
	if err != nil {
		return err
	}
	blocks, err := l.OpenBlocks(ctx, req.BlockIds)
	if err != nil {
		return err
	}
	primed, all, err := logmerge.SelectBlocks(ctx, blocks, logql.SelectParams{
		Matchers: ms, Start: req.Start, End: req.End, Needles: req.Needles, ShardIndex: req.ShardIndex, ShardCount: req.ShardCount,
	})
	if err != nil {
		return err
	}
	it := logmerge.New(primed, nil)
	defer it.Close()
	it.Count(logmerge.Counters(all)...)
	// A stream's lines are valid until the merge moves on: a batch holding
	// several streams keeps copies, in one array per batch.
	batch, size := &logspb.SelectBatch{}, 0
	var arena []byte
	keep := func(line string) string {
		if len(line) == 0 {
			return ""
		}
		if cap(arena)-len(arena) < len(line) {
			arena = make([]byte, 0, max(l.batchBytes, len(line)))
		}
		off := len(arena)
		arena = append(arena, line...)
		return unsafe.String(&arena[off], len(line))
	}
	for it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		ls := logsclient.FromLabels(it.Labels())
		ws := &logspb.Stream{Labels: ls}
		for _, e := range it.Entries() {
			ws.Entries = append(ws.Entries, &logspb.Entry{Timestamp: e.Timestamp, Line: keep(e.Line), Metadata: logsclient.FromLabels(e.Metadata)})
			size += len(e.Line) + 16
			if size >= l.batchBytes {
				batch.Streams = append(batch.Streams, ws)
				batch.SkippedLines, batch.SkippedBytes = it.Skipped()
				if err := send.Send(batch); err != nil {
					return err
				}
				batch, size, arena = &logspb.SelectBatch{}, 0, nil
				ws = &logspb.Stream{Labels: ls}
			}
		}
		if len(ws.Entries) > 0 {
			batch.Streams = append(batch.Streams, ws)
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	batch.SkippedLines, batch.SkippedBytes = it.Skipped()
	return send.Send(batch)
}

// Series returns the label sets of the named blocks' streams matching
// any of req's matcher sets, each once, in label order.
func (l *Logs) Series(ctx context.Context, req *logspb.SeriesRequest) (*logspb.SeriesResponse, error) {
	blocks, err := l.OpenBlocks(ctx, req.BlockIds)
	if err != nil {
		return nil, err
	}
	seen := map[string]labels.Labels{}
	for _, set := range req.MatcherSets {
		ms, err := logsclient.ToMatchers(set.Matchers)
		if err != nil {
			return nil, err
		}
		for _, b := range blocks {
			lss, err := b.Series(ctx, ms, req.Start, req.End)
			if err != nil {
				return nil, err
			}
			for _, ls := range lss {
				seen[ls.String()] = ls
			}
		}
	}
	out := make([]labels.Labels, 0, len(seen))
	for _, ls := range seen {
		out = append(out, ls)
	}
	slices.SortFunc(out, labels.Compare)
	resp := &logspb.SeriesResponse{Series: make([]*logspb.Stream, len(out))}
	for i, ls := range out {
		resp.Series[i] = &logspb.Stream{Labels: logsclient.FromLabels(ls)}
	}
	return resp, nil
}
