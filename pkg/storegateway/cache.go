package storegateway

import (
	"container/list"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/thanos-io/objstore"
)

// pageCache holds fixed-size pages of bucket objects, least recently used
// first out, bounded in bytes. Pages are never modified or reused once
// loaded, so a slice handed out stays valid after its page is evicted.
type pageCache struct {
	max int64

	mu      sync.Mutex
	size    int64
	lru     *list.List // of *page, most recent at the front
	pages   map[pageKey]*list.Element
	loading map[pageKey]*load

	hits, misses, evictions prometheus.Counter
	shared                  prometheus.Counter
	bytes                   prometheus.Gauge
	fetched                 prometheus.Counter
}

type pageKey struct {
	object string
	page   int64
}

type page struct {
	key  pageKey
	data []byte
}

type load struct {
	done chan struct{}
	data []byte
	err  error
	// abandoned is set when the load failed because its caller's context
	// ended: the error is that caller's, not the page's.
	abandoned bool
}

func newPageCache(maxBytes int64, reg prometheus.Registerer) *pageCache {
	return &pageCache{
		max:     maxBytes,
		lru:     list.New(),
		pages:   map[pageKey]*list.Element{},
		loading: map[pageKey]*load{},
		hits: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "canopy_store_gateway_cache_hits_total", Help: "Page reads served by the store-gateway's bucket cache.",
		}),
		misses: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "canopy_store_gateway_cache_misses_total", Help: "Page reads that went to the bucket.",
		}),
		shared: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "canopy_store_gateway_cache_shared_loads_total", Help: "Page reads that waited for another read's load of the same page instead of reading the bucket.",
		}),
		evictions: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "canopy_store_gateway_cache_evictions_total", Help: "Pages evicted to keep the cache within -store-gateway.cache-size.",
		}),
		bytes: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "canopy_store_gateway_cache_bytes", Help: "Bytes held by the store-gateway's bucket cache.",
		}),
		fetched: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "canopy_store_gateway_bucket_read_bytes_total", Help: "Bytes the store-gateway read from the bucket.",
		}),
	}
}

// get returns the page of key, loading it (and, when fetch covers more
// pages, those after it) with fetch on a miss. Concurrent misses on one page
// load it once: the first caller fetches, the others wait. Whoever waits
// stops waiting when its own ctx ends. A load whose caller's ctx ended is
// not kept (nothing is cached on error), and the callers that were waiting
// for it, whose contexts still hold, load the page again themselves: one
// query's cancellation never fails another's read. fetch must use ctx.
func (c *pageCache) get(ctx context.Context, key pageKey, fetch func() ([][]byte, error)) ([]byte, error) {
	for {
		c.mu.Lock()
		if e, ok := c.pages[key]; ok {
			c.lru.MoveToFront(e)
			c.mu.Unlock()
			c.hits.Inc()
			return e.Value.(*page).data, nil
		}
		if l, ok := c.loading[key]; ok {
			c.mu.Unlock()
			c.shared.Inc()
			select {
			case <-l.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if l.abandoned {
				continue
			}
			return l.data, l.err
		}
		l := &load{done: make(chan struct{})}
		c.loading[key] = l
		c.mu.Unlock()
		c.misses.Inc()

		pages, err := fetch()
		c.mu.Lock()
		delete(c.loading, key)
		if err == nil {
			l.data = pages[0]
			for i, data := range pages {
				k := pageKey{key.object, key.page + int64(i)}
				if _, ok := c.pages[k]; ok {
					continue
				}
				c.fetched.Add(float64(len(data)))
				c.pages[k] = c.lru.PushFront(&page{key: k, data: data})
				c.size += int64(len(data))
			}
			for c.size > c.max && c.lru.Len() > 1 {
				e := c.lru.Back()
				p := e.Value.(*page)
				c.lru.Remove(e)
				delete(c.pages, p.key)
				c.size -= int64(len(p.data))
				c.evictions.Inc()
			}
			c.bytes.Set(float64(c.size))
		}
		l.err = err
		l.abandoned = err != nil && ctx.Err() != nil
		c.mu.Unlock()
		close(l.done)
		return l.data, err
	}
}

// cached reports whether the page of key is in the cache.
func (c *pageCache) cached(key pageKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pages[key]
	return ok
}

// readError is what byteSlice panics with when the bucket fails: the
// tsdb index and chunk readers read through an interface that cannot return
// errors. Every entry point that reads blocks recovers it (see recoverRead).
type readError struct{ err error }

func (e readError) Error() string { return e.err.Error() }

// recoverRead turns a readError panic into *err. Other panics go on.
func recoverRead(err *error) {
	if r := recover(); r != nil {
		re, ok := r.(readError)
		if !ok {
			panic(r)
		}
		*err = re.err
	}
}

// objectReader reads byte ranges of one bucket object through the page
// cache. It is shared by the queries of a block; every read takes the
// context of the query (or of the opening of the block) it is made for.
type objectReader struct {
	bkt      objstore.BucketReader
	name     string // in bkt
	key      string // in the cache: unique across tenants
	size     int64  // -1 when unknown (chunk segments): reads stop at the end
	pageSize int64
	// readAhead is how many pages one bucket request fetches on a miss.
	readAhead int64
	cache     *pageCache
	// pinned is a section held in memory (see pinSection).
	pinned      []byte
	pinnedStart int64
}

// pinSection reads a length-prefixed section at off (4-byte length, data,
// 4-byte CRC) into memory: reads inside it need no cache lookup and no
// copy. limit bounds where the section may end.
func (o *objectReader) pinSection(ctx context.Context, off, limit int64) error {
	if off+4 > limit || limit > o.size {
		return fmt.Errorf("section at %d is outside the index (%d bytes)", off, o.size)
	}
	l, err := o.read(ctx, off, off+4)
	if err != nil {
		return err
	}
	end := off + 4 + int64(binary.BigEndian.Uint32(l)) + 4
	if end > limit {
		return fmt.Errorf("section at %d of %d bytes runs past %d", off, end-off, limit)
	}
	b, err := o.read(ctx, off, end)
	if err != nil {
		return err
	}
	o.pinned, o.pinnedStart = slices.Clone(b), off
	return nil
}

// with returns o as the tsdb index package's ByteSlice, reading with ctx.
func (o *objectReader) with(ctx context.Context) *byteSlice { return &byteSlice{o: o, ctx: ctx} }

// byteSlice is an objectReader read with one context: the tsdb index
// package's ByteSlice, whose Range can neither take a context nor return an
// error. A bucket failure (the context's end included) panics with
// readError.
type byteSlice struct {
	o   *objectReader
	ctx context.Context
}

// Len implements index.ByteSlice.
func (b *byteSlice) Len() int { return int(b.o.size) }

// Range implements index.ByteSlice.
func (b *byteSlice) Range(start, end int) []byte {
	r, err := b.o.read(b.ctx, int64(start), int64(end))
	if err != nil {
		panic(readError{err})
	}
	return r
}

// read returns bytes [start, end) of the object; fewer when the object ends
// first. A range inside one page is a subslice of the cached page, so no
// copy is made. Pages missing from the cache are read from the bucket with
// ctx.
func (o *objectReader) read(ctx context.Context, start, end int64) ([]byte, error) {
	if start < 0 || end < start || (o.size >= 0 && end > o.size) {
		return nil, fmt.Errorf("read of %s: range [%d, %d) outside the object (%d bytes)", o.name, start, end, o.size)
	}
	first, last := start/o.pageSize, (end-1)/o.pageSize
	if end == start {
		return []byte{}, nil
	}
	if p := o.pinned; start >= o.pinnedStart && end <= o.pinnedStart+int64(len(p)) {
		return p[start-o.pinnedStart : end-o.pinnedStart], nil
	}
	if first == last {
		p, err := o.page(ctx, first, last)
		if err != nil {
			return nil, err
		}
		lo, hi := start-first*o.pageSize, end-first*o.pageSize
		if hi > int64(len(p)) {
			hi = int64(len(p))
		}
		if lo > hi {
			return nil, fmt.Errorf("read of %s: offset %d is past the end of the object", o.name, start)
		}
		return p[lo:hi], nil
	}
	out := make([]byte, 0, min(end-start, 4<<20)) // a bad length must not allocate it all
	for n := first; n <= last; n++ {
		p, err := o.page(ctx, n, last)
		if err != nil {
			return nil, err
		}
		lo, hi := int64(0), int64(len(p))
		if n == first {
			lo = start - n*o.pageSize
		}
		if n == last && end-n*o.pageSize < hi {
			hi = end - n*o.pageSize
		}
		if lo > hi {
			break
		}
		out = append(out, p[lo:hi]...)
		if int64(len(p)) < o.pageSize { // the object ended
			break
		}
	}
	return out, nil
}

// page returns page n, fetching on a miss every uncached page up to
// max(last, n+readAhead-1) in one request made with ctx.
func (o *objectReader) page(ctx context.Context, n, last int64) ([]byte, error) {
	key := pageKey{o.key, n}
	return o.cache.get(ctx, key, func() ([][]byte, error) {
		upto := max(last, n+o.readAhead-1)
		if o.size >= 0 {
			upto = min(upto, (o.size-1)/o.pageSize)
		}
		for k := n + 1; k <= upto; k++ { // stop before the next cached page
			if o.cache.cached(pageKey{o.key, k}) {
				upto = k - 1
				break
			}
		}
		off, length := n*o.pageSize, (upto-n+1)*o.pageSize
		if o.size >= 0 {
			length = min(length, o.size-off)
		}
		data, err := getRange(ctx, o.bkt, o.name, off, length)
		if err != nil {
			return nil, err
		}
		var pages [][]byte
		for len(data) > 0 || len(pages) == 0 {
			k := min(int64(len(data)), o.pageSize)
			pages = append(pages, data[:k:k])
			data = data[k:]
		}
		return pages, nil
	})
}

// getRange reads [off, off+length) of name, retrying transient failures
// while ctx holds.
func getRange(ctx context.Context, bkt objstore.BucketReader, name string, off, length int64) ([]byte, error) {
	lastErr := ctx.Err()
	for attempt := 0; attempt < 3 && ctx.Err() == nil; attempt++ {
		rc, err := bkt.GetRange(ctx, name, off, length)
		if err == nil {
			buf := make([]byte, 0, length)
			buf, err = readAll(rc, buf)
			_ = rc.Close()
			if err == nil {
				return buf, nil
			}
		}
		if bkt.IsObjNotFoundErr(err) {
			return nil, fmt.Errorf("reading %s: object not found in the bucket", name)
		}
		lastErr = err
	}
	if ctx.Err() != nil {
		lastErr = ctx.Err() // whatever the bucket made of it
	}
	return nil, fmt.Errorf("reading %s bytes %d-%d from the bucket: %w", name, off, off+length, lastErr)
}

func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
