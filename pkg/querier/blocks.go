package querier

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/grafana/dskit/ring"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/thanos-io/objstore"

	"github.com/canopy-observability/canopy/pkg/ingester/client"
	"github.com/canopy-observability/canopy/pkg/storage/layout"
	"github.com/canopy-observability/canopy/pkg/storage/metricsblocks"
	"github.com/canopy-observability/canopy/pkg/storegateway"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// BlocksQueryable reads the blocks in the bucket through the store-gateways.
// Which blocks cover a range comes from the tenant's bucket index (so the
// query path never lists the bucket), and every one of them must be read by
// some store-gateway replica owning it: a block no replica could read fails
// the query instead of leaving a silent gap.
type BlocksQueryable struct {
	bkt           objstore.Bucket
	ring          ring.ReadRing
	pool          StoreGatewayPool
	maxFrameBytes uint64
	indexTTL      time.Duration

	mu      sync.Mutex
	indexes map[string]*tenantIndex
}

type tenantIndex struct {
	mu       sync.Mutex
	index    *layout.BucketIndex // nil: the tenant has none yet
	loadedAt time.Time
}

// StoreGatewayPool returns the client of a store-gateway address
// (storegateway.Pool, apart from the ingesters' pool).
type StoreGatewayPool interface {
	Client(addr string) (*storegateway.Client, error)
}

// NewBlocksQueryable returns a queryable over bkt's blocks, served by the
// store-gateways of r. Bucket indexes are reloaded when older than indexTTL.
func NewBlocksQueryable(bkt objstore.Bucket, r ring.ReadRing, pool StoreGatewayPool, maxFrameBytes uint64, indexTTL time.Duration) *BlocksQueryable {
	return &BlocksQueryable{bkt: bkt, ring: r, pool: pool, maxFrameBytes: maxFrameBytes, indexTTL: indexTTL, indexes: map[string]*tenantIndex{}}
}

// Querier implements storage.Queryable.
func (q *BlocksQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	return &blocksQuerier{q: q, mint: mint, maxt: maxt}, nil
}

// index returns the tenant's bucket index, nil when it has none.
func (q *BlocksQueryable) index(ctx context.Context, id string) (*layout.BucketIndex, error) {
	q.mu.Lock()
	ti, ok := q.indexes[id]
	if !ok {
		ti = &tenantIndex{}
		q.indexes[id] = ti
	}
	q.mu.Unlock()
	ti.mu.Lock()
	defer ti.mu.Unlock()
	if !ti.loadedAt.IsZero() && time.Since(ti.loadedAt) < q.indexTTL {
		return ti.index, nil
	}
	idx, err := layout.ReadBucketIndex(ctx, metricsblocks.TenantBucket(q.bkt, id))
	if errors.Is(err, layout.ErrNoBucketIndex) {
		idx, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the bucket index of tenant %s: %w", id, err)
	}
	ti.index, ti.loadedAt = idx, time.Now()
	return idx, nil
}

// blocksFor returns the IDs of the tenant's blocks overlapping [mint, maxt]
// that are not marked for deletion (a marked block's data is in the block
// that replaced it, or past retention).
func (q *BlocksQueryable) blocksFor(ctx context.Context, mint, maxt int64) (string, []ulid.ULID, error) {
	id, err := tenant.ID(ctx)
	if err != nil {
		return "", nil, err
	}
	idx, err := q.index(ctx, id)
	if err != nil || idx == nil {
		return id, nil, err
	}
	marked := idx.DeletionMarked()
	var out []ulid.ULID
	for _, b := range idx.Blocks {
		if _, ok := marked[b.ID]; !ok && b.Within(mint, maxt) {
			out = append(out, b.ID)
		}
	}
	return id, out, nil
}

// maxAttempts bounds the rounds of asking other replicas for blocks.
const maxAttempts = 5

// fetch has every block of ids read by a store-gateway owning it: call asks
// one store-gateway for some blocks and returns those it read. Blocks a
// store-gateway did not read (or whose call failed) are asked of another
// replica, until every block is read or no replica is left to ask.
func (q *BlocksQueryable) fetch(ctx context.Context, user string, ids []ulid.ULID, call func(ctx context.Context, c *storegateway.Client, ids []string) ([]string, map[string]string, error)) error {
	remaining := make(map[ulid.ULID]bool, len(ids))
	for _, id := range ids {
		remaining[id] = true
	}
	tried := map[ulid.ULID]map[string]bool{}
	var (
		mu      sync.Mutex
		errs    []error
		reasons = map[string][]string{} // block -> why each store-gateway could not read it
	)
	for attempt := 0; len(remaining) > 0 && attempt < maxAttempts; attempt++ {
		byAddr := map[string][]string{}
		for id := range remaining {
			rs, err := q.ring.Get(storegateway.BlockToken(id), storegateway.ReadOp, nil, nil, nil)
			if err != nil {
				return fmt.Errorf("finding the store-gateways of block %s: %w", id, err)
			}
			insts := rs.Instances
			rand.Shuffle(len(insts), func(i, j int) { insts[i], insts[j] = insts[j], insts[i] })
			for _, in := range insts {
				if !tried[id][in.Addr] {
					if tried[id] == nil {
						tried[id] = map[string]bool{}
					}
					tried[id][in.Addr] = true
					byAddr[in.Addr] = append(byAddr[in.Addr], id.String())
					break
				}
			}
		}
		if len(byAddr) == 0 {
			break
		}
		var wg sync.WaitGroup
		for addr, want := range byAddr {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var (
					got    []string
					failed map[string]string
				)
				c, err := q.pool.Client(addr)
				if err == nil {
					got, failed, err = call(ctx, c, want)
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, fmt.Errorf("store-gateway %s: %w", addr, err))
					return
				}
				for id, why := range failed {
					reasons[id] = append(reasons[id], addr+": "+why)
				}
				for _, s := range got {
					if id, err := ulid.ParseStrict(s); err == nil {
						delete(remaining, id)
					}
				}
			}()
		}
		wg.Wait()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if len(remaining) == 0 {
		return nil
	}
	missing := make([]string, 0, len(remaining))
	for id := range remaining {
		s := id.String()
		if why := reasons[s]; len(why) > 0 {
			s += " (" + strings.Join(why, "; ") + ")"
		}
		missing = append(missing, s)
	}
	sort.Strings(missing)
	msg := fmt.Sprintf("consistency check failed: %d of tenant %s's blocks in the queried range could not be read by any store-gateway: %s", len(missing), user, strings.Join(missing, ", "))
	// A server-side failure (the API answers 500), not a bad query.
	if len(errs) > 0 {
		return promql.ErrStorage{Err: fmt.Errorf("%s: %w", msg, errors.Join(errs...))}
	}
	return promql.ErrStorage{Err: errors.New(msg)}
}

type blocksQuerier struct {
	q          *BlocksQueryable
	mint, maxt int64
	streams    closers
}

func (bq *blocksQuerier) Select(ctx context.Context, _ bool, hints *storage.SelectHints, matchers ...*labels.Matcher) storage.SeriesSet {
	mint, maxt := bq.mint, bq.maxt
	if hints != nil {
		mint, maxt = max(mint, hints.Start), min(maxt, hints.End)
	}
	user, ids, err := bq.q.blocksFor(ctx, mint, maxt)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	if len(ids) == 0 {
		return storage.EmptySeriesSet()
	}
	var (
		mu   sync.Mutex
		sets []storage.SeriesSet
	)
	err = bq.q.fetch(ctx, user, ids, func(ctx context.Context, c *storegateway.Client, ids []string) ([]string, map[string]string, error) {
		got, failed, rc, err := c.Series(ctx, &storegateway.SeriesRequest{Start: mint, End: maxt, Matchers: client.FromMatchers(matchers), BlockIDs: ids})
		if err != nil {
			return nil, nil, err
		}
		set := remote.NewChunkedSeriesSet(remote.NewChunkedReader(rc, bq.q.maxFrameBytes, nil), rc, mint, maxt, func(error) {})
		mu.Lock()
		sets = append(sets, set)
		mu.Unlock()
		bq.streams.add(rc)
		return got, failed, nil
	})
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	if len(sets) == 1 {
		return sets[0]
	}
	// Blocks of one range from several replicas (not compacted yet), read
	// by different store-gateways, hold the same samples.
	return storage.NewMergeSeriesSet(sets, 0, storage.ChainedSeriesMerge)
}

func (bq *blocksQuerier) labels(ctx context.Context, name string, hints *storage.LabelHints, matchers []*labels.Matcher, get func(*storegateway.Client, context.Context, *storegateway.LabelsRequest) (*storegateway.LabelsResponse, error)) ([]string, annotations.Annotations, error) {
	user, ids, err := bq.q.blocksFor(ctx, bq.mint, bq.maxt)
	if err != nil || len(ids) == 0 {
		return nil, nil, err
	}
	req := client.LabelsRequest{Start: bq.mint, End: bq.maxt, Name: name, Matchers: client.FromMatchers(matchers)}
	if hints != nil {
		req.Limit = hints.Limit
	}
	var (
		mu  sync.Mutex
		res []*client.LabelsResponse
	)
	err = bq.q.fetch(ctx, user, ids, func(ctx context.Context, c *storegateway.Client, ids []string) ([]string, map[string]string, error) {
		r, err := get(c, ctx, &storegateway.LabelsRequest{LabelsRequest: req, BlockIDs: ids})
		if err != nil {
			return nil, nil, err
		}
		mu.Lock()
		res = append(res, &client.LabelsResponse{Values: r.Values})
		mu.Unlock()
		return r.QueriedBlocks, r.BlockErrors, nil
	})
	return mergeLabels(res, req.Limit, err)
}

func (bq *blocksQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return bq.labels(ctx, name, hints, matchers, (*storegateway.Client).LabelValues)
}

func (bq *blocksQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return bq.labels(ctx, "", hints, matchers, (*storegateway.Client).LabelNames)
}

func (bq *blocksQuerier) Close() error { return bq.streams.Close() }

// Queryable reads recent data from ingesters and older data from the
// blocks in the bucket, and merges them: where both hold a sample (the
// windows overlap) it is returned once.
type Queryable struct {
	ingesters            storage.Queryable
	blocks               storage.Queryable // nil: ingesters only
	queryIngestersWithin time.Duration
	queryStoreAfter      time.Duration
	now                  func() time.Time
}

// NewQueryable returns the querier's storage: ingesters for the last
// queryIngestersWithin (0: always), blocks for data older than
// queryStoreAfter (0: always).
func NewQueryable(ingesters, blocks storage.Queryable, queryIngestersWithin, queryStoreAfter time.Duration) *Queryable {
	return &Queryable{ingesters: ingesters, blocks: blocks, queryIngestersWithin: queryIngestersWithin, queryStoreAfter: queryStoreAfter, now: time.Now}
}

// Querier implements storage.Queryable.
func (q *Queryable) Querier(mint, maxt int64) (storage.Querier, error) {
	now := q.now().UnixMilli()
	var qs []storage.Querier
	if q.queryIngestersWithin == 0 || maxt >= now-q.queryIngestersWithin.Milliseconds() {
		iq, err := q.ingesters.Querier(mint, maxt)
		if err != nil {
			return nil, err
		}
		qs = append(qs, iq)
	}
	if q.blocks != nil && (q.queryStoreAfter == 0 || mint <= now-q.queryStoreAfter.Milliseconds()) {
		storeMaxt := maxt
		if q.queryStoreAfter > 0 {
			storeMaxt = min(maxt, now-q.queryStoreAfter.Milliseconds())
		}
		bq, err := q.blocks.Querier(mint, storeMaxt)
		if err != nil {
			return nil, err
		}
		qs = append(qs, bq)
	}
	switch len(qs) {
	case 0:
		return storage.NoopQuerier(), nil
	case 1:
		return qs[0], nil
	}
	// Both are primaries: a failure of either fails the query.
	return storage.NewMergeQuerier(qs, nil, storage.ChainedSeriesMerge), nil
}
