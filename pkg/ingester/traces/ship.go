package traces

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"

	"github.com/go-kit/log/level"
	"github.com/oklog/ulid/v2"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/canopy-observability/canopy/pkg/storage/traceblock"
)

// shipTenant uploads the tenant's cut traces not yet in the bucket as one
// block and marks them shipped (unit.Hooks.Ship).
func (i *Ingester) shipTenant(ctx context.Context, in *instance) (bool, error) {
	ts := in.unshipped()
	if len(ts) == 0 {
		return false, nil
	}
	began := i.base.Now()
	id := ulid.MustNew(ulid.Timestamp(began), rand.Reader)
	tmp := filepath.Join(i.base.Dir(), "ship")
	defer os.RemoveAll(filepath.Join(tmp, id.String()))
	w, err := traceblock.NewWriter(tmp, traceblock.Meta{ULID: id, Source: "ingester", Ingester: i.Lifecycler().ID})
	if err != nil {
		return false, err
	}
	defer w.Close()
	var (
		batches []ptrace.Traces
		bytes   int
		u       ptrace.ProtoUnmarshaler
	)
	for k := 0; k < len(ts); {
		// A trace cut twice (late spans) goes into the block once.
		batches = batches[:0]
		n := k
		for ; n < len(ts) && ts[n].id == ts[k].id; n++ {
			bytes += ts[n].bytes
			for _, p := range ts[n].pieces {
				td, err := u.UnmarshalTraces(p)
				if err != nil {
					// Validated by the distributor: a piece that does not
					// decode is left out rather than blocking every other.
					level.Error(i.base.Logger()).Log("msg", "dropping a piece of a trace that does not decode", "tenant", in.tenant, "trace_id", fmt.Sprintf("%x", ts[k].id), "err", err)
					continue
				}
				batches = append(batches, td)
			}
		}
		if err := w.Add(ts[k].id, batches...); err != nil {
			return false, err
		}
		k = n
	}
	meta, err := w.Finish()
	if err != nil {
		return false, err
	}
	if err := traceblock.Upload(ctx, i.base.Bucket(), in.tenant, tmp, id); err != nil {
		return false, err
	}
	now := i.base.Now()
	in.markShipped(ts, now)
	i.base.AddUnshipped(-bytes)
	level.Info(i.base.Logger()).Log("msg", "shipped a trace block", "tenant", in.tenant, "block", id, "traces", meta.Stats.Traces, "spans", meta.Stats.Spans, "bytes", meta.Stats.DataBytes, "duration", now.Sub(began))
	return true, nil
}
