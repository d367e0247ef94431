package logs

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/go-kit/log/level"
	"github.com/oklog/ulid/v2"

	"github.com/canopy-observability/canopy/pkg/storage/logblock"
)

// ship uploads every tenant's cut chunks not yet in the bucket, one block
// per tenant, and marks them shipped. It returns the blocks uploaded and
// one error per tenant that failed (its chunks are retried next time).
func (i *Ingester) ship(ctx context.Context) (int, error) {
	i.shipMu.Lock()
	defer i.shipMu.Unlock()
	var (
		errs    []error
		shipped int
	)
	for _, in := range i.instancesSnapshot() {
		ok, err := i.shipTenant(ctx, in)
		if err != nil {
			i.metrics.shipFailures.Inc()
			errs = append(errs, fmt.Errorf("tenant %s: %w", in.tenant, err))
		}
		if ok {
			shipped++
		}
	}
	return shipped, errors.Join(errs...)
}

func (i *Ingester) shipTenant(ctx context.Context, in *instance) (bool, error) {
	type picked struct {
		s      *stream
		chunks []*memChunk
	}
	var (
		picks   []picked
		streams []logblock.Stream
	)
	for _, s := range in.all() {
		cs, _ := s.snapshot(true)
		if len(cs) == 0 {
			continue
		}
		st := logblock.Stream{Labels: s.labels}
		for _, c := range cs {
			st.Chunks = append(st.Chunks, c.data)
		}
		picks = append(picks, picked{s, cs})
		streams = append(streams, st)
	}
	if len(streams) == 0 {
		return false, nil
	}
	began := i.now()
	id := ulid.MustNew(ulid.Timestamp(began), rand.Reader)
	tmp := filepath.Join(i.dir, "ship")
	defer os.RemoveAll(filepath.Join(tmp, id.String()))
	meta, err := logblock.Write(tmp, id, streams, "ingester", i.lifecycler.ID)
	if err != nil {
		return false, err
	}
	if err := logblock.Upload(ctx, i.bkt, in.tenant, tmp, id); err != nil {
		return false, err
	}
	now := i.now()
	for _, p := range picks {
		p.s.mu.Lock()
		for _, c := range p.chunks {
			c.shipped = now
			i.unshipped.Add(-int64(len(c.data)))
		}
		p.s.mu.Unlock()
	}
	i.metrics.shippedBlks.Inc()
	level.Info(i.logger).Log("msg", "shipped a log block", "tenant", in.tenant, "block", id, "streams", meta.Stats.Streams, "chunks", meta.Stats.Chunks, "entries", meta.Stats.Entries, "raw_bytes", meta.Stats.RawBytes, "bytes", meta.Stats.Bytes, "duration", now.Sub(began))
	return true, nil
}
