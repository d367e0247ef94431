package unit

import (
	"fmt"
	"maps"

	"github.com/go-kit/log/level"

	"github.com/canopy-observability/canopy/pkg/ingester/unitwal"
)

// Append runs one push of tenant's: apply appends what it accepts to the
// tenant's instance (created if need be) and returns the WAL records of
// what it appended, which are in the WAL when Append returns nil (the WAL
// copies them). An error of apply's is returned as is, with nothing
// written. Pushes run concurrently with each other but never with a
// checkpoint's snapshot: each holds the push lock shared from its append
// to its WAL write. Once the unit is stopping, Append refuses the push
// without calling apply.
func (b *Base[I]) Append(tenant string, apply func(in I) ([][]byte, error)) error {
	b.pushMu.RLock()
	defer b.pushMu.RUnlock()
	if b.wal == nil || b.isClosing() {
		return b.errStopping
	}
	recs, err := apply(b.getOrCreate(tenant))
	if err != nil {
		return err
	}
	if len(recs) > 0 {
		if err := b.wal.Log(recs...); err != nil {
			level.Error(b.logger).Log("msg", "writing the "+b.cfg.Signal+" WAL", "tenant", tenant, "err", err)
			return fmt.Errorf("writing the %s WAL: %w", b.cfg.Signal, err)
		}
	}
	return nil
}

// Checkpoint writes what the unit holds that is not in the bucket into a
// checkpoint (Hooks.Snapshot) and deletes the WAL segments it replaces.
func (b *Base[I]) Checkpoint() error {
	b.pushMu.Lock()
	if b.wal == nil {
		b.pushMu.Unlock()
		return nil
	}
	seg, err := b.wal.NextSegmentSync()
	if err != nil {
		b.pushMu.Unlock()
		return err
	}
	var snaps []Records
	for _, in := range b.Instances() {
		if r := b.hooks.Snapshot(in); r != nil {
			snaps = append(snaps, r)
		}
	}
	b.pushMu.Unlock()
	err = unitwal.WriteCheckpoint(b.wal, WALDir(b.cfg.Dir), seg, func(emit func([]byte) error) error {
		for _, r := range snaps {
			if err := r(emit); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		b.metrics.checkpoints.Inc()
	}
	return err
}

func (b *Base[I]) isClosing() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.closing
}

// Instance returns tenant's instance, if it has one.
func (b *Base[I]) Instance(tenant string) (I, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	in, ok := b.instances[tenant]
	return in, ok
}

func (b *Base[I]) getOrCreate(tenant string) I {
	if in, ok := b.Instance(tenant); ok {
		return in
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	in, ok := b.instances[tenant]
	if !ok {
		in = b.hooks.NewInstance(tenant)
		b.instances[tenant] = in
	}
	return in
}

// Instances returns every tenant's instance.
func (b *Base[I]) Instances() []I {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]I, 0, len(b.instances))
	for _, in := range b.instances {
		out = append(out, in)
	}
	return out
}

// snapshot returns the instances by tenant.
func (b *Base[I]) snapshot() map[string]I {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return maps.Clone(b.instances)
}

// tenants is the number of tenants.
func (b *Base[I]) tenants() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.instances)
}
