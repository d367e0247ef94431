package logs

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"

	"github.com/go-kit/log/level"
	"github.com/oklog/ulid/v2"

	"github.com/canopy-observability/canopy/pkg/storage/logblock"
)

// shipTenant uploads the tenant's cut chunks not yet in the bucket as one
// block and marks them shipped (unit.Hooks.Ship).
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
	began := i.base.Now()
	id := ulid.MustNew(ulid.Timestamp(began), rand.Reader)
	tmp := filepath.Join(i.base.Dir(), "ship")
	defer os.RemoveAll(filepath.Join(tmp, id.String()))
	meta, err := logblock.Write(tmp, id, streams, "ingester", i.Lifecycler().ID)
	if err != nil {
		return false, err
	}
	if err := logblock.Upload(ctx, i.base.Bucket(), in.tenant, tmp, id); err != nil {
		return false, err
	}
	now := i.base.Now()
	for _, p := range picks {
		p.s.mu.Lock()
		for _, c := range p.chunks {
			c.shipped = now
			i.base.AddUnshipped(-len(c.data))
		}
		p.s.mu.Unlock()
	}
	level.Info(i.base.Logger()).Log("msg", "shipped a log block", "tenant", in.tenant, "block", id, "streams", meta.Stats.Streams, "chunks", meta.Stats.Chunks, "entries", meta.Stats.Entries, "raw_bytes", meta.Stats.RawBytes, "bytes", meta.Stats.Bytes, "duration", now.Sub(began))
	return true, nil
}
