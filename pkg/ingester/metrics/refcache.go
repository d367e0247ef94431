package metrics

import (
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunks"
)

// refCache maps a series, as a push names it (label references into the
// request's symbols), to the head's labels and reference of that series, so
// that a push of an existing series neither builds its labels nor has the
// head hash and look them up: it hashes the pushed strings, compares them
// with the cached labels, and appends by reference.
//
// Entries are made when the head creates a series (also while replaying
// the WAL), holding the head's own labels — no second copy — and learn the
// reference on the series' first push; they go when the head deletes the
// series. Safe for concurrent use.
type refCache struct {
	stripes [refCacheStripes]refStripe
}

const refCacheStripes = 64

type refStripe struct {
	mu sync.Mutex
	m  map[uint64]refEntry
	// collided holds the series whose hash is another's in m: two series
	// of one tenant with the same 64-bit hash are rare enough not to cost
	// every entry a slice.
	collided map[uint64][]refEntry
	_        [40]byte // one stripe a cache line
}

type refEntry struct {
	lbls labels.Labels
	ref  storage.SeriesRef // 0 until the series' first push
}

func newRefCache() *refCache {
	c := &refCache{}
	for i := range c.stripes {
		c.stripes[i].m = map[uint64]refEntry{}
		c.stripes[i].collided = map[uint64][]refEntry{}
	}
	return c
}

// hashRefs hashes a pushed series' labels, false if a reference is out of
// range; hashLabels hashes the same series' labels.Labels to the same value.
// Each string is hashed on its own (xxhash's one-shot path, quick for the
// short strings labels are) and the hashes are folded together.
func hashRefs(refs []uint32, symbols []string) (uint64, bool) {
	h := uint64(hashSeed)
	for _, r := range refs {
		if int(r) >= len(symbols) {
			return 0, false
		}
		h = fold(h, xxhash.Sum64String(symbols[r]))
	}
	return h, true
}

func hashLabels(ls labels.Labels) uint64 {
	h := uint64(hashSeed)
	ls.Range(func(l labels.Label) {
		h = fold(fold(h, xxhash.Sum64String(l.Name)), xxhash.Sum64String(l.Value))
	})
	return h
}

const hashSeed = 0xcbf29ce484222325

// fold mixes x into h; the order of the strings matters.
func fold(h, x uint64) uint64 {
	h ^= x
	h *= 0x9e3779b97f4a7c15
	return h ^ h>>29
}

// sameLabels says whether ls are the labels refs name (both sorted).
func sameLabels(ls labels.Labels, refs []uint32, symbols []string) bool {
	i, same := 0, true
	ls.Range(func(l labels.Label) {
		if !same || i+1 >= len(refs) || symbols[refs[i]] != l.Name || symbols[refs[i+1]] != l.Value {
			same = false
		}
		i += 2
	})
	return same && i == len(refs)
}

func (c *refCache) stripe(h uint64) *refStripe { return &c.stripes[h%refCacheStripes] }

// get returns the cached labels and reference (0 if not known yet) of the
// pushed series with hash h, or false.
func (c *refCache) get(h uint64, refs []uint32, symbols []string) (labels.Labels, storage.SeriesRef, bool) {
	s := c.stripe(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[h]; ok && sameLabels(e.lbls, refs, symbols) {
		return e.lbls, e.ref, true
	}
	for _, e := range s.collided[h] {
		if sameLabels(e.lbls, refs, symbols) {
			return e.lbls, e.ref, true
		}
	}
	return labels.EmptyLabels(), 0, false
}

// put records the series with hash h and labels ls, and its reference when
// ref is not 0.
func (c *refCache) put(h uint64, ls labels.Labels, ref storage.SeriesRef) {
	s := c.stripe(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[h]
	switch {
	case !ok:
		s.m[h] = refEntry{lbls: ls, ref: ref}
		return
	case labels.Equal(e.lbls, ls):
		if ref != 0 {
			e.ref = ref
			s.m[h] = e
		}
		return
	}
	es := s.collided[h]
	for i := range es {
		if labels.Equal(es[i].lbls, ls) {
			if ref != 0 {
				es[i].ref = ref
			}
			return
		}
	}
	s.collided[h] = append(es, refEntry{lbls: ls, ref: ref})
}

// created is the head's PostCreation: the series' labels, as the head keeps
// them.
func (c *refCache) created(ls labels.Labels) { c.put(hashLabels(ls), ls, 0) }

// deleted is the head's PostDeletion.
func (c *refCache) deleted(series map[chunks.HeadSeriesRef]labels.Labels) {
	for _, ls := range series {
		h := hashLabels(ls)
		s := c.stripe(h)
		s.mu.Lock()
		es := s.collided[h]
		if e, ok := s.m[h]; ok && labels.Equal(e.lbls, ls) {
			delete(s.m, h)
			if len(es) > 0 { // the next of the same hash takes its place
				s.m[h], es = es[0], es[1:]
			}
		} else {
			for i := range es {
				if labels.Equal(es[i].lbls, ls) {
					es = append(es[:i], es[i+1:]...)
					break
				}
			}
		}
		if len(es) == 0 {
			delete(s.collided, h)
		} else {
			s.collided[h] = es
		}
		s.mu.Unlock()
	}
}

// len is the number of cached series.
func (c *refCache) len() int {
	n := 0
	for i := range c.stripes {
		s := &c.stripes[i]
		s.mu.Lock()
		n += len(s.m)
		for _, es := range s.collided {
			n += len(es)
		}
		s.mu.Unlock()
	}
	return n
}
