package ruler

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/grafana/dskit/ring"
)

// Who evaluates a group is decided per evaluation, for the evaluation's
// timestamp, from what the ring says: not from each ruler's clock reading
// of the ring's health. A group's evaluation timestamps are the same on
// every ruler (Prometheus aligns them to the interval, offset by the
// group's hash), so rulers that hold the same ring agree on the one owner
// of every evaluation:
//
//   - a ruler counts from its registration timestamp plus the handover
//     delay: the rulers that owned its groups until then keep them until
//     that very evaluation, and the ring change has reached them by then;
//   - a ruler whose last heartbeat is older than the heartbeat timeout at
//     an evaluation's timestamp no longer counts (killed, or cut off): its
//     groups move to the next ruler in the ring, and every ruler computes
//     the same moment from the same heartbeat;
//   - a ruler that is not ACTIVE (joining, or leaving on shutdown) counts
//     for none.
//
// A ruler may turn ACTIVE well after it registered (a slow start), and
// one that restarts under its old name keeps its registration timestamp:
// so a ruler also evaluates nothing for the handover delay after it sees
// itself ACTIVE, while the others learn of it.

// member is what ownership uses of one ruler in the ring.
type member struct {
	id         string
	active     bool
	registered int64 // unix seconds
	heartbeat  int64 // unix seconds
	tokens     []uint32
	sum        uint32 // hash of tokens: a ruler back under its name may own others
}

// owners is a ring snapshot and the token rings of the latest eligible
// sets. A set's name (ids and token hashes) fixes its token ring, so the
// rings outlive the snapshots: heartbeats replace the snapshot without
// changing who is eligible.
type owners struct {
	mu      sync.Mutex
	members []member
	rings   map[string]tokenRing // by the name of an eligible set
}

type tokenRing struct {
	tokens []uint32 // sorted
	owner  []string // the id owning each token
}

// set replaces the snapshot with the ring desc d.
func (o *owners) set(d *ring.Desc) {
	var ms []member
	if d != nil {
		for id, in := range d.Ingesters {
			h := fnv.New32a()
			for _, t := range in.Tokens {
				_, _ = h.Write([]byte{byte(t), byte(t >> 8), byte(t >> 16), byte(t >> 24)})
			}
			ms = append(ms, member{id: id, active: in.State == ring.ACTIVE, registered: in.RegisteredTimestamp, heartbeat: in.Timestamp, tokens: slices.Clone(in.Tokens), sum: h.Sum32()})
		}
	}
	slices.SortFunc(ms, func(a, b member) int { return strings.Compare(a.id, b.id) })
	o.mu.Lock()
	defer o.mu.Unlock()
	o.members = ms
}

// eligible names the members that own groups at ts: ACTIVE, registered
// at least handover before, and heard from within timeout. The name is
// their ids with the hashes of their tokens.
func (o *owners) eligible(ts time.Time, handover, timeout time.Duration) (string, []int) {
	sec := ts.Unix()
	// The ring keeps whole seconds: a second more covers the truncation.
	wait := int64((handover+time.Second-1)/time.Second) + 1
	var idx []int
	var b strings.Builder
	for i, m := range o.members {
		if !m.active || m.registered == 0 || m.registered+wait > sec || m.heartbeat+int64(timeout/time.Second) < sec || len(m.tokens) == 0 {
			continue
		}
		idx = append(idx, i)
		b.WriteString(m.id + "/" + strconv.FormatUint(uint64(m.sum), 16) + ",")
	}
	return b.String(), idx
}

// at returns the id of the ruler owning hash at ts ("" when none does).
func (o *owners) at(hash uint32, ts time.Time, handover, timeout time.Duration) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	key, idx := o.eligible(ts, handover, timeout)
	if len(idx) == 0 {
		return ""
	}
	tr, ok := o.rings[key]
	if !ok {
		type tok struct {
			t uint32
			m int
		}
		var all []tok
		for _, i := range idx {
			for _, t := range o.members[i].tokens {
				all = append(all, tok{t, i})
			}
		}
		slices.SortFunc(all, func(a, b tok) int {
			if a.t != b.t {
				if a.t < b.t {
					return -1
				}
				return 1
			}
			return strings.Compare(o.members[a.m].id, o.members[b.m].id)
		})
		tr = tokenRing{tokens: make([]uint32, len(all)), owner: make([]string, len(all))}
		for i, t := range all {
			tr.tokens[i], tr.owner[i] = t.t, o.members[t.m].id
		}
		if o.rings == nil || len(o.rings) >= 4 {
			o.rings = map[string]tokenRing{}
		}
		o.rings[key] = tr
	}
	i, _ := slices.BinarySearch(tr.tokens, hash)
	if i == len(tr.tokens) {
		i = 0
	}
	return tr.owner[i]
}

// state names the eligible set at now: when it changes, groups have
// moved.
func (o *owners) state(now time.Time, handover, timeout time.Duration) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	a, _ := o.eligible(now, handover, timeout)
	return a
}

// has reports whether id is in the snapshot as ACTIVE.
func (o *owners) has(id string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, m := range o.members {
		if m.id == id {
			return m.active
		}
	}
	return false
}

// stale returns the rulers not heard from for longer than forget at now.
func (o *owners) stale(now time.Time, forget time.Duration) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, m := range o.members {
		if m.heartbeat != 0 && time.Unix(m.heartbeat, 0).Add(forget).Before(now) {
			out = append(out, m.id)
		}
	}
	return out
}

// groupHash is where a group is in the ruler ring.
func groupHash(lang, tenant, namespace, group string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(lang + "\x00" + tenant + "\x00" + namespace + "\x00" + group))
	return h.Sum32()
}

// forgetAfter is how many heartbeat timeouts a silent ruler stays in the
// ring before a live one removes it (its groups moved at the first).
const forgetAfter = 2

// watchRing keeps the snapshot current: every change of the ring (a
// heartbeat, a ruler joining or leaving) as it arrives.
func (r *Ruler) watchRing(ctx context.Context) {
	r.lifecycler.KVStore.WatchKey(ctx, RingKey, func(v any) bool {
		d, _ := v.(*ring.Desc)
		r.owners.set(d)
		return true
	})
}

// readRing reads the snapshot from the ring's store: before the watch has
// sent a change, and every ring check besides the watch, whose changes
// came late now and then with the in-memory store (TestRulersShareGroups
// saw a group evaluated twice at a join).
func (r *Ruler) readRing(ctx context.Context) error {
	v, err := r.lifecycler.KVStore.Get(ctx, RingKey)
	if err != nil {
		return fmt.Errorf("reading the ruler ring: %w", err)
	}
	d, _ := v.(*ring.Desc)
	r.owners.set(d)
	return nil
}

// forgetSilent removes from the ring the rulers the snapshot has not
// heard from for forgetAfter heartbeat timeouts.
func (r *Ruler) forgetSilent(ctx context.Context) error {
	gone := r.owners.stale(time.Now(), forgetAfter*r.cfg.Ring.HeartbeatTimeout)
	if len(gone) == 0 {
		return nil
	}
	var forgot []string
	err := r.lifecycler.KVStore.CAS(ctx, RingKey, func(in any) (any, bool, error) {
		d := ring.GetOrCreateRingDesc(in)
		forgot = forgot[:0]
		for _, id := range gone {
			if m, ok := d.Ingesters[id]; ok && time.Unix(m.Timestamp, 0).Add(forgetAfter*r.cfg.Ring.HeartbeatTimeout).Before(time.Now()) {
				d.RemoveIngester(id)
				forgot = append(forgot, id)
			}
		}
		if len(forgot) == 0 {
			return nil, false, nil
		}
		return d, true, nil
	})
	if err != nil {
		return fmt.Errorf("forgetting silent rulers %v: %w", gone, err)
	}
	if len(forgot) > 0 {
		r.logger.Warn("forgot rulers silent for longer than twice the heartbeat timeout", "component", "ruler", "rulers", strings.Join(forgot, ","))
	}
	return nil
}

// owns reports whether this ruler evaluates a group at ts.
func (r *Ruler) owns(lang, tenant, namespace, group string, ts time.Time) bool {
	if ts.Before(r.activeAt.Add(r.handover())) {
		return false
	}
	return r.owners.at(groupHash(lang, tenant, namespace, group), ts, r.handover(), r.cfg.Ring.HeartbeatTimeout) == r.lifecycler.ID
}

// ringState is what decides which groups this ruler loads at now: the
// eligible rulers, and whether its own start delay is over.
func (r *Ruler) ringState(now time.Time) string {
	return r.owners.state(now, r.handover(), r.cfg.Ring.HeartbeatTimeout) + "|" + strconv.FormatBool(!now.Before(r.activeAt.Add(r.handover())))
}

// handover is how long after a ruler registers (or restarts) it starts
// evaluating: one heartbeat period, time for the ring change to reach
// every ruler.
func (r *Ruler) handover() time.Duration {
	return max(r.cfg.Ring.HeartbeatPeriod, time.Second)
}
