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
	id     [16]byte
	pieces [][]byte
	bytes  int
	// start and end bound the spans' times (Unix ns) when every piece
	// said them; 0 when one did not.
	start, end int64
	first      time.Time // of the first piece
	last       time.Time // of the latest piece
	shipped    time.Time // zero until in the bucket
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
func (in *instance) append(id [16]byte, piece []byte, start, end int64, now time.Time, maxLive, maxBytes int) (appendResult, int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	t, ok := in.live[id]
	if !ok {
		if maxLive > 0 && len(in.live) >= maxLive {
			return tooManyLive, len(in.live)
		}
		t = &trace{id: id, first: now, start: start, end: end}
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
	switch {
	case t.start == 0 || start == 0:
		t.start, t.end = 0, 0
	default:
		t.start, t.end = min(t.start, start), max(t.end, end)
	}
	t.last = now
	return appended, 0
}

// cutDue cuts the live traces idle for idle or live for maxLive (every
// one, force) and returns them. Their pieces are not changed once cut.
func (in *instance) cutDue(now time.Time, idle, maxLive time.Duration, force bool) []*trace {
	in.mu.Lock()
	defer in.mu.Unlock()
	var cut []*trace
	for id, t := range in.live {
		if force || now.Sub(t.last) >= idle || now.Sub(t.first) >= maxLive {
			delete(in.live, id)
			in.cut = append(in.cut, t)
			in.cutByID[id] = append(in.cutByID[id], t)
			cut = append(cut, t)
		}
	}
	return cut
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

// scan returns the traces (one per trace ID, every piece) with a span in
// [start, end], or whose times are not known; both 0: every trace.
func (in *instance) scan(start, end int64) []*trace {
	in.mu.Lock()
	defer in.mu.Unlock()
	byID := map[[16]byte]*trace{}
	var out []*trace
	add := func(t *trace) {
		if (start != 0 || end != 0) && t.start != 0 && (t.end < start || t.start > end) {
			return
		}
		if o, ok := byID[t.id]; ok {
			o.pieces = append(o.pieces, t.pieces...)
			return
		}
		c := &trace{id: t.id, pieces: slices.Clone(t.pieces)}
		byID[t.id] = c
		out = append(out, c)
	}
	for _, t := range in.cut {
		add(t)
	}
	for _, t := range in.live {
		add(t)
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
			out = append(out, &trace{id: t.id, pieces: slices.Clone(t.pieces), start: t.start, end: t.end})
		}
	}
	for _, t := range in.live {
		out = append(out, &trace{id: t.id, pieces: slices.Clone(t.pieces), start: t.start, end: t.end})
	}
	return out
}
