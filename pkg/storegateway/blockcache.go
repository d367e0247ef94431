package storegateway

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// openBlocks holds the blocks of one signal a store-gateway has open: a
// block is opened on first use by open (concurrent first uses open it
// once) and let go once no request has used it for idle (0: kept). A block
// that fails to open is not kept: the next request tries again. Safe for
// concurrent use.
type openBlocks[B any] struct {
	signal string // in errors: "log", "trace"
	idle   time.Duration
	now    func() time.Time
	open   func(ctx context.Context, tenant string, id ulid.ULID) (B, error)
	opened func() // counts a block opened

	mu     sync.Mutex
	blocks map[blockKey]*cachedBlock[B]
}

type cachedBlock[B any] struct {
	once     sync.Once
	block    B
	err      error
	lastUsed time.Time // under openBlocks.mu
}

func newOpenBlocks[B any](signal string, idle time.Duration, open func(context.Context, string, ulid.ULID) (B, error), opened func()) *openBlocks[B] {
	return &openBlocks[B]{signal: signal, idle: idle, now: time.Now, open: open, opened: opened, blocks: map[blockKey]*cachedBlock[B]{}}
}

// get returns block id of tenant t, opening it on first use.
func (o *openBlocks[B]) get(ctx context.Context, t string, id ulid.ULID) (B, error) {
	k := blockKey{t, id}
	o.mu.Lock()
	now := o.now()
	if o.idle > 0 {
		for key, e := range o.blocks {
			if now.Sub(e.lastUsed) > o.idle {
				delete(o.blocks, key) // requests holding it finish with it
			}
		}
	}
	e, ok := o.blocks[k]
	if !ok {
		e = &cachedBlock[B]{}
		o.blocks[k] = e
	}
	e.lastUsed = now
	o.mu.Unlock()
	e.once.Do(func() {
		e.block, e.err = o.open(ctx, t, id)
		if e.err == nil && o.opened != nil {
			o.opened()
		}
	})
	if e.err != nil {
		// Not cached: a block deleted or not yet complete, or a bucket
		// that failed, is tried again by the next request.
		o.mu.Lock()
		if o.blocks[k] == e {
			delete(o.blocks, k)
		}
		o.mu.Unlock()
		var zero B
		return zero, fmt.Errorf("opening %s block %s: %w", o.signal, id, e.err)
	}
	return e.block, nil
}
