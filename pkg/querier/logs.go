package querier

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/grafana/dskit/ring"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/thanos-io/objstore"
	"google.golang.org/protobuf/proto"

	"github.com/canopy-observability/canopy/pkg/ingester/logsclient"
	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/querier/logmerge"
	"github.com/canopy-observability/canopy/pkg/rpc/logspb"
	"github.com/canopy-observability/canopy/pkg/storage/logblock"
	"github.com/canopy-observability/canopy/pkg/storegateway"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// LogsClientPool returns the client of a logs ingester address.
type LogsClientPool interface {
	Client(addr string) (*logsclient.Client, error)
}

// Logs reads a tenant's logs from the logs ingesters (what they hold in
// memory, for -querier.query-ingesters-within) and from the blocks in the
// bucket, merging streams and dropping the entries replicas and both
// sources hold twice, one stream at a time. It implements logql.Source and the Loki API's
// label and series lookups. Safe for concurrent use.
type Logs struct {
	ring           ring.ReadRing
	pool           LogsClientPool
	bkt            objstore.Bucket // nil: no bucket
	ingestersWithn time.Duration
	indexTTL       time.Duration
	now            func() time.Time

	// gateways, when set, serve the blocks; otherwise the querier opens
	// them from the bucket itself.
	gateways *LogsGateways
	// deletes, when set, are the deletion requests whose entries queries
	// leave out until the compactor has deleted them.
	deletes *logDeletes

	mu     sync.Mutex
	lists  map[string]blockList          // tenant → its blocks, read at most every indexTTL
	blocks map[ulid.ULID]*logblock.Block // opened blocks (index in memory), without gateways
}

// LogsGateways are the store-gateways that serve log blocks: the ring that
// says which own a block, and their clients.
type LogsGateways struct {
	Ring   ring.ReadRing
	Client func(addr string) (*logsclient.Client, error)
	// Local, when not nil, returns the logs unit of the store-gateway
	// instance id if it runs in this process (else nil): its blocks are
	// read directly, without encoding them for a call.
	Local func(id string) *storegateway.Logs
}

// local is the in-process logs unit of store-gateway inst, or nil.
func (g *LogsGateways) local(inst ring.InstanceDesc) *storegateway.Logs {
	if g.Local == nil {
		return nil
	}
	return g.Local(inst.Id)
}

// UseStoreGateways makes the querier read blocks through the
// store-gateways that own them instead of from the bucket.
func (l *Logs) UseStoreGateways(g *LogsGateways) { l.gateways = g }

// forGateways calls call once per store-gateway with the IDs of the
// blocks it is to read (forBlockOwners).
func (l *Logs) forGateways(ctx context.Context, metas []logblock.Meta, call func(ctx context.Context, inst ring.InstanceDesc, ids []string) error) error {
	ids := make([]ulid.ULID, len(metas))
	for i, m := range metas {
		ids[i] = m.ULID
	}
	return forBlockOwners(ctx, l.gateways.Ring, "log", ids, call)
}

// gatewaySources opens a select stream on the store-gateways owning the
// blocks, each moved to its first stream. all are every stream opened,
// for their counts of lines left out.
func (l *Logs) gatewaySources(ctx context.Context, metas []logblock.Meta, p logql.SelectParams) (primed []logmerge.Source, all []logql.SkipCounter, cancels []func(), err error) {
	req := &logspb.SelectRequest{Matchers: logsclient.FromMatchers(p.Matchers), Start: p.Start, End: p.End, Needles: p.Needles, ShardIndex: p.ShardIndex, ShardCount: p.ShardCount}
	var mu sync.Mutex
	err = l.forGateways(ctx, metas, func(ctx context.Context, inst ring.InstanceDesc, ids []string) error {
		if g := l.gateways.local(inst); g != nil {
			blocks, err := g.OpenBlocks(ctx, ids)
			if err != nil {
				return err
			}
			srcs, read, err := logmerge.SelectBlocks(ctx, blocks, p)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			primed = append(primed, srcs...)
			all = append(all, logmerge.Counters(read)...)
			return nil
		}
		c, err := l.gateways.Client(inst.Addr)
		if err != nil {
			return err
		}
		r := proto.Clone(req).(*logspb.SelectRequest)
		r.BlockIds = ids
		sctx, cancel := context.WithCancel(ctx)
		recv, err := c.Select(sctx, r)
		if err != nil {
			cancel()
			return err
		}
		src := logmerge.NewRemoteSource(recv)
		ok := src.Next()
		if err := src.Err(); err != nil {
			cancel()
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		cancels = append(cancels, cancel)
		all = append(all, src)
		if ok {
			primed = append(primed, src)
		}
		return nil
	})
	return primed, all, cancels, err
}

type blockList struct {
	metas []logblock.Meta
	at    time.Time
}

// NewLogs returns the logs reader; it reads a tenant's list of blocks at
// most every indexTTL.
func NewLogs(r ring.ReadRing, pool LogsClientPool, bkt objstore.Bucket, ingestersWithin, indexTTL time.Duration) *Logs {
	return &Logs{ring: r, pool: pool, bkt: bkt, ingestersWithn: ingestersWithin, indexTTL: indexTTL,
		now: time.Now, lists: map[string]blockList{}, blocks: map[ulid.ULID]*logblock.Block{}}
}

// forEachIngester calls f for every logs ingester of the read replication
// set in parallel, tolerating as many failures as the set allows.
func (l *Logs) forEachIngester(ctx context.Context, f func(context.Context, *logsclient.Client) error) error {
	rs, err := l.ring.GetReplicationSetForOperation(ring.Read)
	if err != nil {
		return fmt.Errorf("finding logs ingesters to query: %w", err)
	}
	errs := make([]error, len(rs.Instances))
	var wg sync.WaitGroup
	for i, inst := range rs.Instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := l.pool.Client(inst.Addr)
			if err == nil {
				err = f(ctx, c)
			}
			if err != nil {
				errs[i] = fmt.Errorf("logs ingester %s (%s): %w", inst.Id, inst.Addr, err)
			}
		}()
	}
	wg.Wait()
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) > rs.MaxErrors {
		return errors.Join(failed...)
	}
	return nil
}

// readsIngesters says whether [start, end) reaches into what ingesters hold.
func (l *Logs) readsIngesters(end int64) bool {
	return l.ingestersWithn == 0 || end > l.now().Add(-l.ingestersWithn).UnixNano()
}

// Select implements logql.Source: the matching streams of every logs
// ingester of the read set (as many may fail as the replication factor
// allows) and of every block overlapping the range, through the
// store-gateways that own them (or read from the bucket directly without
// store-gateways), merged stream by stream (see package logmerge).
func (l *Logs) Select(ctx context.Context, p logql.SelectParams) (logql.StreamIterator, error) {
	id, err := tenant.ID(ctx)
	if err != nil {
		return nil, err
	}
	var (
		primed  []logmerge.Source
		counted []logql.SkipCounter
		closers []func()
	)
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	if l.readsIngesters(p.End) {
		srcs, cancels, err := l.ingesterSources(ctx, p)
		closers = append(closers, cancels...)
		if err != nil {
			closeAll()
			return nil, err
		}
		primed = append(primed, srcs...)
	}
	if l.bkt != nil {
		metas, err := l.blockMetas(ctx, id, p.Start, p.End)
		if err != nil {
			closeAll()
			return nil, err
		}
		if l.gateways != nil {
			srcs, all, cancels, err := l.gatewaySources(ctx, metas, p)
			closers = append(closers, cancels...)
			if err != nil {
				closeAll()
				return nil, err
			}
			primed = append(primed, srcs...)
			counted = append(counted, all...)
		} else {
			blocks, err := l.openBlocks(ctx, id, metas)
			if err != nil {
				closeAll()
				return nil, err
			}
			srcs, all, err := logmerge.SelectBlocks(ctx, blocks, p)
			if err != nil {
				closeAll()
				return nil, err
			}
			primed = append(primed, srcs...)
			counted = append(counted, logmerge.Counters(all)...)
		}
	}
	it := logmerge.New(primed, closers)
	it.Count(counted...)
	if l.deletes != nil {
		filters, err := l.deletes.pending(ctx, id, p.Start, p.End)
		if err != nil {
			it.Close()
			return nil, err
		}
		if len(filters) > 0 {
			return &deletedIterator{StreamIterator: it, filters: filters}, nil
		}
	}
	return it, nil
}

// ingesterSources opens a select stream on every logs ingester of the read
// set and moves each to its first stream; it fails when more ingesters
// fail than the replication set tolerates. The cancel functions end the
// streams.
func (l *Logs) ingesterSources(ctx context.Context, p logql.SelectParams) ([]logmerge.Source, []func(), error) {
	rs, err := l.ring.GetReplicationSetForOperation(ring.Read)
	if err != nil {
		return nil, nil, fmt.Errorf("finding logs ingesters to query: %w", err)
	}
	req := &logspb.SelectRequest{Matchers: logsclient.FromMatchers(p.Matchers), Start: p.Start, End: p.End, Needles: p.Needles, ShardIndex: p.ShardIndex, ShardCount: p.ShardCount}
	type opened struct {
		src    *logmerge.RemoteSource
		cancel func()
		ok     bool
		err    error
	}
	res := make([]opened, len(rs.Instances))
	var wg sync.WaitGroup
	for i, inst := range rs.Instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithCancel(ctx)
			res[i].cancel = cancel
			c, err := l.pool.Client(inst.Addr)
			if err == nil {
				var recv func() (*logspb.SelectBatch, error)
				if recv, err = c.Select(sctx, req); err == nil {
					src := logmerge.NewRemoteSource(recv)
					res[i].ok = src.Next()
					res[i].src, err = src, src.Err()
				}
			}
			if err != nil {
				res[i].err = fmt.Errorf("logs ingester %s (%s): %w", inst.Id, inst.Addr, err)
			}
		}()
	}
	wg.Wait()
	var (
		srcs    []logmerge.Source
		cancels []func()
		failed  []error
	)
	for _, r := range res {
		cancels = append(cancels, r.cancel)
		switch {
		case r.err != nil:
			failed = append(failed, r.err)
		case r.ok:
			srcs = append(srcs, r.src)
		}
	}
	if len(failed) > rs.MaxErrors {
		return nil, cancels, errors.Join(failed...)
	}
	return srcs, cancels, nil
}

// blockMetas returns the metas of a tenant's blocks overlapping
// [start, end), from a list read at most every indexTTL.
func (l *Logs) blockMetas(ctx context.Context, tenantID string, start, end int64) ([]logblock.Meta, error) {
	l.mu.Lock()
	list, ok := l.lists[tenantID]
	l.mu.Unlock()
	if !ok || l.now().Sub(list.at) > l.indexTTL {
		metas, err := logblock.ListBlocks(ctx, l.bkt, tenantID)
		if err != nil {
			return nil, fmt.Errorf("listing log blocks: %w", err)
		}
		list = blockList{metas: metas, at: l.now()}
		listed := make(map[ulid.ULID]struct{}, len(metas))
		for _, m := range metas {
			listed[m.ULID] = struct{}{}
		}
		l.mu.Lock()
		// Blocks no longer listed were replaced by the compactor or are
		// past retention: they go from the bucket after
		// -compactor.deletion-delay, their indexes from memory now.
		for _, m := range l.lists[tenantID].metas {
			if _, ok := listed[m.ULID]; !ok {
				delete(l.blocks, m.ULID)
			}
		}
		l.lists[tenantID] = list
		l.mu.Unlock()
	}
	var out []logblock.Meta
	for _, m := range list.metas {
		if m.MaxTime >= start && m.MinTime < end {
			out = append(out, m)
		}
	}
	return out, nil
}

// openBlocks returns the blocks, opened from the bucket (index in memory)
// on first use.
func (l *Logs) openBlocks(ctx context.Context, tenantID string, metas []logblock.Meta) ([]*logblock.Block, error) {
	var out []*logblock.Block
	for _, m := range metas {
		l.mu.Lock()
		b := l.blocks[m.ULID]
		l.mu.Unlock()
		if b == nil {
			var err error
			if b, err = logblock.OpenBlock(ctx, l.bkt, tenantID, m); err != nil {
				return nil, err
			}
			l.mu.Lock()
			if prev := l.blocks[m.ULID]; prev != nil {
				b.Close()
				b = prev
			} else {
				l.blocks[m.ULID] = b
			}
			l.mu.Unlock()
		}
		out = append(out, b)
	}
	return out, nil
}

// Labels returns label names of the streams matching ms.
func (l *Logs) Labels(ctx context.Context, start, end int64, ms []*labels.Matcher) ([]string, error) {
	return l.labelValues(ctx, "", start, end, ms)
}

// LabelValues returns the values of a label name.
func (l *Logs) LabelValues(ctx context.Context, name string, start, end int64, ms []*labels.Matcher) ([]string, error) {
	if name == "" {
		return nil, errors.New("a label name is needed")
	}
	return l.labelValues(ctx, name, start, end, ms)
}

func (l *Logs) labelValues(ctx context.Context, name string, start, end int64, ms []*labels.Matcher) ([]string, error) {
	series, err := l.Series(ctx, start, end, [][]*labels.Matcher{ms})
	if err != nil {
		return nil, err
	}
	seen := map[string]struct{}{}
	for _, ls := range series {
		ls.Range(func(lb labels.Label) {
			switch {
			case name == "":
				seen[lb.Name] = struct{}{}
			case lb.Name == name:
				seen[lb.Value] = struct{}{}
			}
		})
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
}

// Series returns the label sets of the streams matching any matcher set
// (all streams for an empty set).
func (l *Logs) Series(ctx context.Context, start, end int64, sets [][]*labels.Matcher) ([]labels.Labels, error) {
	id, err := tenant.ID(ctx)
	if err != nil {
		return nil, err
	}
	for i, ms := range sets {
		if len(ms) == 0 {
			sets[i] = []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".*")}
		}
	}
	var (
		mu   sync.Mutex
		seen = map[string]labels.Labels{}
	)
	add := func(ls labels.Labels) {
		mu.Lock()
		defer mu.Unlock()
		seen[ls.String()] = ls
	}
	addAll := func(resp *logspb.SeriesResponse) {
		var sb labels.ScratchBuilder
		for _, s := range resp.Series {
			add(logsclient.ToLabels(s.Labels, &sb))
		}
	}
	req := &logspb.SeriesRequest{Start: start, End: end}
	for _, ms := range sets {
		req.MatcherSets = append(req.MatcherSets, &logspb.MatcherSet{Matchers: logsclient.FromMatchers(ms)})
	}
	if l.readsIngesters(end) {
		err := l.forEachIngester(ctx, func(ctx context.Context, c *logsclient.Client) error {
			resp, err := c.Series(ctx, req)
			if err == nil {
				addAll(resp)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	if l.bkt == nil {
		return sortedSeries(seen), nil
	}
	metas, err := l.blockMetas(ctx, id, start, end)
	if err != nil {
		return nil, err
	}
	if l.gateways != nil {
		err := l.forGateways(ctx, metas, func(ctx context.Context, inst ring.InstanceDesc, ids []string) error {
			r := proto.Clone(req).(*logspb.SeriesRequest)
			r.BlockIds = ids
			var (
				resp *logspb.SeriesResponse
				err  error
			)
			if g := l.gateways.local(inst); g != nil {
				resp, err = g.Series(ctx, r)
			} else if c, cerr := l.gateways.Client(inst.Addr); cerr != nil {
				err = cerr
			} else {
				resp, err = c.Series(ctx, r)
			}
			if err == nil {
				addAll(resp)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		return sortedSeries(seen), nil
	}
	blocks, err := l.openBlocks(ctx, id, metas)
	if err != nil {
		return nil, err
	}
	for _, b := range blocks {
		for _, ms := range sets {
			lss, err := b.Series(ctx, ms, start, end)
			if err != nil {
				return nil, err
			}
			for _, ls := range lss {
				add(ls)
			}
		}
	}
	return sortedSeries(seen), nil
}

// sortedSeries returns the label sets of seen in label order.
func sortedSeries(seen map[string]labels.Labels) []labels.Labels {
	out := make([]labels.Labels, 0, len(seen))
	for _, ls := range seen {
		out = append(out, ls)
	}
	slices.SortFunc(out, labels.Compare)
	return out
}
