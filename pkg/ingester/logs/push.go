package logs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-kit/log/level"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/canopy-observability/canopy/pkg/ingester/logsclient"
	"github.com/canopy-observability/canopy/pkg/rpc/logspb"
	"github.com/canopy-observability/canopy/pkg/storage/logchunk"
	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// Push appends the entries of req's streams. Entries a limit rejects are
// counted in the response with the first error; the rest are kept and in
// the WAL before Push returns.
func (i *Ingester) Push(ctx context.Context, req *logspb.PushRequest) (*logspb.PushResponse, error) {
	id, err := tenant.ID(ctx)
	if err != nil {
		return nil, err
	}
	lim := i.limits.ByTenant(id)
	window := time.Duration(lim.LogsOutOfOrderWindow)
	streamLimit := 0
	if g := lim.LogsMaxGlobalStreamsPerUser; g > 0 {
		streamLimit = ringconfig.LocalLimit(g, i.cfg.Ring.ReplicationFactor, i.Lifecycler().HealthyInstancesCount())
	}
	resp := &logspb.PushResponse{}
	reject := func(reason string, n int, msg string, limit bool) {
		if n == 0 {
			return
		}
		if resp.Rejected == nil {
			resp.Rejected = map[string]int64{}
		}
		resp.Rejected[reason] += int64(n)
		i.metrics.rejected.WithLabelValues(reason).Add(float64(n))
		if resp.FirstError == "" {
			resp.FirstError = msg
		}
		resp.LimitError = resp.LimitError || limit
	}

	var (
		sb       labels.ScratchBuilder
		walBuf   = getWALBuf()
		accepted int
		bytes    int
	)
	err = i.base.Append(id, func(in *instance) ([][]byte, error) {
		now := i.base.Now()
		var recs [][]byte
		for _, ps := range req.Streams {
			ls := logsclient.ToLabels(ps.Labels, &sb)
			entries := make([]logchunk.Entry, len(ps.Entries))
			for k, e := range ps.Entries {
				entries[k] = logchunk.Entry{Timestamp: e.Timestamp, Line: e.Line, Metadata: logsclient.ToLabels(e.Metadata, &sb)}
			}
			var res appendResult
			for {
				s, _, err := in.getOrCreate(ls, streamLimit)
				var sl errStreamLimit
				if errors.As(err, &sl) {
					sl.global = lim.LogsMaxGlobalStreamsPerUser
					reject(reasonStreamLimit, len(entries), fmt.Sprintf("stream %s: %v", ls, sl), true)
					break
				}
				if err != nil {
					return nil, err
				}
				if res = s.append(entries, window, now); res.removed {
					continue // dropped as empty meanwhile: look it up again
				}
				// Cut at once when due, not at the next check: under heavy
				// ingestion an open chunk would grow well past its target.
				n, err := s.cutIfDue(i.cfg, now, false)
				if err != nil {
					// The entries are in; the periodic cut tries again.
					level.Error(i.base.Logger()).Log("msg", "cutting a chunk", "tenant", id, "stream", s.labels.String(), "err", err)
				}
				i.base.AddUnshipped(n)
				if len(res.accepted) > 0 {
					at := len(walBuf)
					walBuf = encodeEntries(walBuf, id, s.labels, res.accepted)
					recs = append(recs, walBuf[at:len(walBuf):len(walBuf)])
				}
				break
			}
			reject(reasonTooFarBehind, res.tooOld, res.firstError, false)
			if res.duplicates > 0 {
				i.metrics.duplicates.Add(float64(res.duplicates))
			}
			accepted += len(res.accepted)
			for _, e := range res.accepted {
				bytes += len(e.Line)
			}
		}
		return recs, nil
	})
	putWALBuf(walBuf)
	if err != nil {
		return nil, err
	}
	i.metrics.entries.Add(float64(accepted))
	i.metrics.bytes.Add(float64(bytes))
	return resp, nil
}

// walBufs recycles the buffers pushes encode their WAL records into (the
// WAL copies what it is given).
var walBufs = sync.Pool{New: func() any { return new([]byte) }}

func getWALBuf() []byte { return (*walBufs.Get().(*[]byte))[:0] }

func putWALBuf(b []byte) {
	if cap(b) > 8<<20 {
		return // a rare huge push: let it go
	}
	walBufs.Put(&b)
}
