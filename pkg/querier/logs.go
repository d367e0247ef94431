package querier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/grafana/dskit/ring"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/thanos-io/objstore"

	"github.com/canopy-observability/canopy/pkg/ingester/logsclient"
	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/rpc/logspb"
	"github.com/canopy-observability/canopy/pkg/storage/logblock"
	"github.com/canopy-observability/canopy/pkg/storage/logchunk"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// LogsClientPool returns the client of a logs ingester address.
type LogsClientPool interface {
	Client(addr string) (*logsclient.Client, error)
}

// Logs reads a tenant's logs from the logs ingesters (what they hold in
// memory, for -querier.query-ingesters-within) and from the blocks in the
// bucket, merging streams and dropping the entries replicas and both
// sources hold twice. It implements logql.Source and the Loki API's
// label and series lookups. Safe for concurrent use.
type Logs struct {
	ring           ring.ReadRing
	pool           LogsClientPool
	bkt            objstore.Bucket // nil: no bucket
	ingestersWithn time.Duration
	indexTTL       time.Duration
	maxBytes       int64
	maxBytesFlag   string
	now            func() time.Time

	mu     sync.Mutex
	lists  map[string]blockList          // tenant → its blocks, read at most every indexTTL
	blocks map[ulid.ULID]*logblock.Block // opened blocks (index in memory)
}

type blockList struct {
	metas []logblock.Meta
	at    time.Time
}

// NewLogs returns the logs reader. maxBytes bounds the raw line bytes one
// select holds (0: no bound); maxBytesFlag names the setting.
func NewLogs(r ring.ReadRing, pool LogsClientPool, bkt objstore.Bucket, ingestersWithin, indexTTL time.Duration, maxBytes int64, maxBytesFlag string) *Logs {
	return &Logs{ring: r, pool: pool, bkt: bkt, ingestersWithn: ingestersWithin, indexTTL: indexTTL, maxBytes: maxBytes, maxBytesFlag: maxBytesFlag,
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

// collector gathers entries per stream from every source.
type collector struct {
	mu       sync.Mutex
	streams  map[string]*logql.Stream
	bytes    int64
	maxBytes int64
	flag     string
}

var errLogsBytes = errors.New("too many bytes")

func (c *collector) add(ls labels.Labels, es []logql.Entry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range es {
		c.bytes += int64(len(e.Line))
	}
	if c.maxBytes > 0 && c.bytes > c.maxBytes {
		return fmt.Errorf("%w: the query would read more than %d bytes of log lines (%s); narrow the time range or the stream selector", logql.ErrLimit, c.maxBytes, c.flag)
	}
	key := ls.String()
	s, ok := c.streams[key]
	if !ok {
		s = &logql.Stream{Labels: ls}
		c.streams[key] = s
	}
	s.Entries = append(s.Entries, es...)
	return nil
}

// Select implements logql.Source.
func (l *Logs) Select(ctx context.Context, p logql.SelectParams) (logql.StreamIterator, error) {
	id, err := tenant.ID(ctx)
	if err != nil {
		return nil, err
	}
	c := &collector{streams: map[string]*logql.Stream{}, maxBytes: l.maxBytes, flag: l.maxBytesFlag}
	var (
		wg       sync.WaitGroup
		ingErr   error
		storeErr error
	)
	if l.readsIngesters(p.End) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ingErr = l.selectIngesters(ctx, p, c)
		}()
	}
	if l.bkt != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			storeErr = l.selectBlocks(ctx, id, p, c)
		}()
	}
	wg.Wait()
	if err := errors.Join(ingErr, storeErr); err != nil {
		return nil, err
	}
	out := make([]logql.Stream, 0, len(c.streams))
	for _, s := range c.streams {
		s.Entries = dedupe(s.Entries)
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b logql.Stream) int { return labels.Compare(a.Labels, b.Labels) })
	return &streamsIterator{streams: out, i: -1}, nil
}

// dedupe sorts entries by time and drops exact repeats (the same time and
// line: replicas, or a chunk in both an ingester and the bucket).
func dedupe(es []logql.Entry) []logql.Entry {
	slices.SortStableFunc(es, func(a, b logql.Entry) int {
		if a.Timestamp != b.Timestamp {
			if a.Timestamp < b.Timestamp {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Line, b.Line)
	})
	out := es[:0]
	for i, e := range es {
		if i > 0 && e.Timestamp == es[i-1].Timestamp && e.Line == es[i-1].Line {
			continue
		}
		out = append(out, e)
	}
	return out
}

func (l *Logs) selectIngesters(ctx context.Context, p logql.SelectParams, c *collector) error {
	req := &logspb.SelectRequest{Matchers: logsclient.FromMatchers(p.Matchers), Start: p.Start, End: p.End, Needles: p.Needles}
	return l.forEachIngester(ctx, func(ctx context.Context, cl *logsclient.Client) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		recv, err := cl.Select(ctx, req)
		if err != nil {
			return err
		}
		var sb labels.ScratchBuilder
		for {
			b, err := recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			for _, s := range b.Streams {
				if err := c.add(logsclient.ToLabels(s.Labels, &sb), logsclient.ToEntries(s.Entries, &sb)); err != nil {
					return err
				}
			}
		}
	})
}

func (l *Logs) selectBlocks(ctx context.Context, tenantID string, p logql.SelectParams, c *collector) error {
	blocks, err := l.blocksFor(ctx, tenantID, p.Start, p.End)
	if err != nil {
		return err
	}
	for _, b := range blocks {
		_, err := b.Select(ctx, p.Matchers, p.Start, p.End, p.Needles, func(ls labels.Labels, es []logchunk.Entry) error {
			out := make([]logql.Entry, len(es))
			for i, e := range es {
				out[i] = logql.Entry{Timestamp: e.Timestamp, Line: e.Line, Metadata: e.Metadata}
			}
			return c.add(ls, out)
		})
		if err != nil {
			return fmt.Errorf("reading log block %s: %w", b.Meta.ULID, err)
		}
	}
	return nil
}

// blocksFor returns the opened blocks of a tenant overlapping [start, end).
func (l *Logs) blocksFor(ctx context.Context, tenantID string, start, end int64) ([]*logblock.Block, error) {
	l.mu.Lock()
	list, ok := l.lists[tenantID]
	l.mu.Unlock()
	if !ok || l.now().Sub(list.at) > l.indexTTL {
		metas, err := logblock.ListBlocks(ctx, l.bkt, tenantID)
		if err != nil {
			return nil, fmt.Errorf("listing log blocks: %w", err)
		}
		list = blockList{metas: metas, at: l.now()}
		l.mu.Lock()
		l.lists[tenantID] = list
		l.mu.Unlock()
	}
	var out []*logblock.Block
	for _, m := range list.metas {
		if m.MaxTime < start || m.MinTime >= end {
			continue
		}
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
	if l.readsIngesters(end) {
		req := &logspb.SeriesRequest{Start: start, End: end}
		for _, ms := range sets {
			req.MatcherSets = append(req.MatcherSets, &logspb.MatcherSet{Matchers: logsclient.FromMatchers(ms)})
		}
		err := l.forEachIngester(ctx, func(ctx context.Context, c *logsclient.Client) error {
			resp, err := c.Series(ctx, req)
			if err != nil {
				return err
			}
			var sb labels.ScratchBuilder
			for _, s := range resp.Series {
				add(logsclient.ToLabels(s.Labels, &sb))
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if l.bkt != nil {
		blocks, err := l.blocksFor(ctx, id, start, end)
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
	}
	out := make([]labels.Labels, 0, len(seen))
	for _, ls := range seen {
		out = append(out, ls)
	}
	slices.SortFunc(out, labels.Compare)
	return out, nil
}

// streamsIterator iterates collected streams, one batch each.
type streamsIterator struct {
	streams []logql.Stream
	i       int
}

func (it *streamsIterator) Next() bool             { it.i++; return it.i < len(it.streams) }
func (it *streamsIterator) Labels() labels.Labels  { return it.streams[it.i].Labels }
func (it *streamsIterator) Entries() []logql.Entry { return it.streams[it.i].Entries }
func (it *streamsIterator) Err() error             { return nil }
func (it *streamsIterator) Close() error           { return nil }
