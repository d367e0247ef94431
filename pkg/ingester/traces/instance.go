package traces

import (
	"bytes"
	"slices"
	"sync"
	"time"
)

// trace is the spans an ingester holds of one trace: the pieces (OTLP
// TracesData protobuf, spans of this trace only) pushes brought, in
// arrival order. A live trace takes new pieces; once idle (or too old) it
// is cut: it waits for the next block, is shipped, then kept for
// -ingester.traces.retain-shipped-for. Spans arriving after the cut start
// a new live trace with the same ID.
type trace struct {
	id      [16]byte
	pieces  [][]byte
	bytes   int
	first   time.Time // of the first piece
	last    time.Time // of the latest piece
	shipped time.Time // zero until in the bucket
}

// instance is one tenant's traces. Safe for concurrent use.
type instance struct {
	tenant string

	mu   sync.Mutex
	live map[[16]byte]*trace
	// cut are the traces no longer live, in cut order; cutByID indexes
	// them (a trace cut twice has two).
	cut     []*trace
	cutByID map[[16]byte][]*trace
}

func newInstance(tenant string) *instance {
	return &instance{tenant: tenant, live: map[[16]byte]*trace{}, cutByID: map[[16]byte][]*trace{}}
}

// appendResult says why a piece was not taken.
type appendResult int

const (
	appended appendResult = iota
	tooManyLive
	traceTooLarge
)

// append adds a piece to trace id's live trace, creating it unless the
// tenant has maxLive live traces already (0: no limit); a trace whose
// pieces would pass maxBytes (0: no limit) refuses it. The piece is kept
// as given.
func (in *instance) append(id [16]byte, piece []byte, now time.Time, maxLive, maxBytes int) (appendResult, int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	t, ok := in.live[id]
	if !ok {
		if maxLive > 0 && len(in.live) >= maxLive {
			return tooManyLive, len(in.live)
		}
		t = &trace{id: id, first: now}
		in.live[id] = t
	}
	held := t.bytes
	for _, c := range in.cutByID[id] {
		held += c.bytes
	}
	if maxBytes > 0 && held+len(piece) > maxBytes {
		if len(t.pieces) == 0 {
			delete(in.live, id)
		}
		return traceTooLarge, held
	}
	t.pieces = append(t.pieces, piece)
	t.bytes += len(piece)
	t.last = now
	return appended, 0
}

// cutDue cuts the live traces idle for idle or live for maxLive (every
// one, force) and returns the bytes cut.
func (in *instance) cutDue(now time.Time, idle, maxLive time.Duration, force bool) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := 0
	for id, t := range in.live {
		if force || now.Sub(t.last) >= idle || now.Sub(t.first) >= maxLive {
			delete(in.live, id)
			in.cut = append(in.cut, t)
			in.cutByID[id] = append(in.cutByID[id], t)
			n += t.bytes
		}
	}
	return n
}

// unshipped returns the cut traces not yet in the bucket, in ID order.
func (in *instance) unshipped() []*trace {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []*trace
	for _, t := range in.cut {
		if t.shipped.IsZero() {
			out = append(out, t)
		}
	}
	slices.SortStableFunc(out, func(a, b *trace) int { return bytes.Compare(a.id[:], b.id[:]) })
	return out
}

// markShipped marks ts shipped at now.
func (in *instance) markShipped(ts []*trace, now time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, t := range ts {
		t.shipped = now
	}
}

// dropShipped forgets traces shipped more than retain ago.
func (in *instance) dropShipped(now time.Time, retain time.Duration) {
	in.mu.Lock()
	defer in.mu.Unlock()
	kept := in.cut[:0]
	for _, t := range in.cut {
		if !t.shipped.IsZero() && now.Sub(t.shipped) >= retain {
			rest := slices.DeleteFunc(in.cutByID[t.id], func(c *trace) bool { return c == t })
			if len(rest) == 0 {
				delete(in.cutByID, t.id)
			} else {
				in.cutByID[t.id] = rest
			}
			continue
		}
		kept = append(kept, t)
	}
	clear(in.cut[len(kept):])
	in.cut = kept
}

// find returns the pieces held of trace id.
func (in *instance) find(id [16]byte) [][]byte {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out [][]byte
	for _, t := range in.cutByID[id] {
		out = append(out, t.pieces...)
	}
	if t, ok := in.live[id]; ok {
		out = append(out, t.pieces...)
	}
	return out
}

// liveCount is the number of live traces.
func (in *instance) liveCount() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.live)
}

// snapshot returns the traces not yet in the bucket (live or cut), for a
// checkpoint: their IDs and pieces.
func (in *instance) snapshot() []*trace {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]*trace, 0, len(in.live))
	for _, t := range in.cut {
		if t.shipped.IsZero() {
			out = append(out, &trace{id: t.id, pieces: slices.Clone(t.pieces)})
		}
	}
	for _, t := range in.live {
		out = append(out, &trace{id: t.id, pieces: slices.Clone(t.pieces)})
	}
	return out
}
