package distributor

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/user"
)

// quorumWrite is how a signal's items are written to their replicas: the
// ring token of each item, the pusher of an instance (this process's own
// ingester when inst is it), and the push of the items idx (indexes into
// the keys) to one replica, whose answer merge folds into the result under
// a lock. Replicas past the quorum may answer after quorumWrite returned:
// result must copy what merge built.
type quorumWrite[P any, R any] struct {
	signal string // in errors: "logs", "traces"
	ring   ring.ReadRing
	keys   []uint32
	pusher func(inst ring.InstanceDesc) (P, error)
	push   func(ctx context.Context, p P, idx []int) (R, error)
	merge  func(R)
	result func()
}

// run writes every item to its replicas and waits for a write quorum of
// each, as the metrics path does (Distributor.send): the pushes' context
// is canceled by Cleanup, the one DoBatch waits on only after it
// returned; both end at -distributor.remote-timeout.
func (q quorumWrite[P, R]) run(ctx context.Context, d *Distributor, tenantID string) error {
	var mu sync.Mutex
	deadline := time.Now().Add(d.cfg.RemoteTimeout)
	base := user.InjectOrgID(context.WithoutCancel(ctx), tenantID)
	pushCtx, cancel := context.WithDeadline(base, deadline)
	waitCtx, stopWaiting := context.WithDeadline(base, deadline)
	defer stopWaiting()
	err := ring.DoBatchWithOptions(waitCtx, ring.WriteNoExtend, q.ring, q.keys, func(inst ring.InstanceDesc, idx []int) error {
		p, err := q.pusher(inst)
		if err != nil {
			return err
		}
		resp, err := q.push(pushCtx, p, idx)
		if err != nil {
			return fmt.Errorf("pushing %s to ingester %s (%s): %w", q.signal, inst.Id, inst.Addr, err)
		}
		mu.Lock()
		defer mu.Unlock()
		q.merge(resp)
		return nil
	}, ring.DoBatchOptions{Cleanup: cancel, Go: func(f func()) { go f() }})
	if err != nil {
		return &Error{Code: http.StatusServiceUnavailable, RetryAfter: "1", Msg: fmt.Sprintf("writing %s to ingesters with a quorum failed, retry later: %v", q.signal, err)}
	}
	mu.Lock()
	defer mu.Unlock()
	q.result()
	return nil
}

// localOr returns the pusher of inst: local when inst is this process's
// ingester (localID), else pool's.
func localOr[P comparable](local P, localID string, pool func(addr string) (P, error)) func(ring.InstanceDesc) (P, error) {
	var zero P
	return func(inst ring.InstanceDesc) (P, error) {
		if local != zero && inst.Id == localID {
			return local, nil
		}
		return pool(inst.Addr)
	}
}
