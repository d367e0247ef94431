package querier

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/canopy-observability/canopy/pkg/storegateway"
	"github.com/grafana/dskit/ring"
	"github.com/oklog/ulid/v2"
)

// forBlockOwners calls call once per store-gateway of r with the IDs of
// the blocks it is to read, all at once: each block goes to a
// store-gateway owning it in the ring. The blocks of a call that fails go
// to their next owner, until every owner of a block has failed. signal
// names the blocks in errors ("log", "trace").
func forBlockOwners(ctx context.Context, r ring.ReadRing, signal string, blocks []ulid.ULID, call func(ctx context.Context, inst ring.InstanceDesc, ids []string) error) error {
	pending := slices.Clone(blocks)
	var errs []error
	for attempt := 0; len(pending) > 0; attempt++ {
		type target struct {
			inst   ring.InstanceDesc
			ids    []string
			blocks []ulid.ULID
		}
		byAddr := map[string]*target{}
		for _, b := range pending {
			rs, err := r.Get(storegateway.BlockToken(b), storegateway.ReadOp, nil, nil, nil)
			if err != nil {
				return fmt.Errorf("finding the store-gateways of %s block %s: %w", signal, b, err)
			}
			if attempt >= len(rs.Instances) {
				return fmt.Errorf("no store-gateway could read %s block %s: %w", signal, b, errors.Join(errs...))
			}
			inst := rs.Instances[attempt]
			t := byAddr[inst.Addr]
			if t == nil {
				t = &target{inst: inst}
				byAddr[inst.Addr] = t
			}
			t.ids = append(t.ids, b.String())
			t.blocks = append(t.blocks, b)
		}
		var (
			mu     sync.Mutex
			failed []ulid.ULID
			wg     sync.WaitGroup
		)
		for _, t := range byAddr {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := call(ctx, t.inst, t.ids); err != nil {
					mu.Lock()
					failed = append(failed, t.blocks...)
					errs = append(errs, fmt.Errorf("store-gateway %s (%s): %w", t.inst.Id, t.inst.Addr, err))
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return err
		}
		pending = failed
	}
	return nil
}
