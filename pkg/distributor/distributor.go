// Package distributor is the write path's front door: it decodes remote write
// 1.0/2.0 and OTLP, validates series against per-tenant limits, enforces the
// ingestion rate, shards series over the ingester ring and writes each to its
// replicas with a quorum.
package distributor

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/go-kit/log"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/services"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"golang.org/x/time/rate"

	"github.com/canopy-observability/canopy/pkg/ingester/client"
	"github.com/canopy-observability/canopy/pkg/rpc"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// IngesterPusher is what the distributor needs from an ingester, local or
// remote. Implementations are safe for concurrent use.
type IngesterPusher interface {
	Push(ctx context.Context, req *writev2.Request) (*client.PushResponse, error)
}

// sharedPusher is an IngesterPusher that can also send a push marshalled
// once for every replica (a remote ingester).
type sharedPusher interface {
	PushShared(ctx context.Context, req *rpc.Shared) (*client.PushResponse, error)
}

// ClientPool returns the pusher of an ingester address.
type ClientPool interface {
	Pusher(addr string) (IngesterPusher, error)
}

// PoolPushers adapts a client.Pool to ClientPool.
type PoolPushers struct{ *client.Pool }

// Pusher implements ClientPool.
func (p PoolPushers) Pusher(addr string) (IngesterPusher, error) { return p.Client(addr) }

// Distributor is a services.Service. Create it with New.
type Distributor struct {
	services.Service

	cfg     Config
	limits  validation.TenantLimits
	ring    ring.ReadRing
	pool    ClientPool
	local   LocalIngester
	logger  log.Logger
	metrics *metrics
	now     func() time.Time

	limiters tenantLimiters

	inflight *inflight
}

// LocalIngester returns the ingester running in this process and its ring ID,
// or nil. It is asked on every push, so modules may start in any order.
type LocalIngester func() (IngesterPusher, string)

// New returns a distributor writing to the ingesters of ingesterRing. When
// this process also runs an ingester, local lets pushes to it skip the
// network; local may be nil.
func New(cfg Config, limits validation.TenantLimits, ingesterRing ring.ReadRing, pool ClientPool, local LocalIngester, logger log.Logger, reg prometheus.Registerer) *Distributor {
	d := &Distributor{
		cfg:      cfg,
		limits:   limits,
		ring:     ingesterRing,
		pool:     pool,
		local:    local,
		logger:   log.With(logger, "component", "distributor"),
		metrics:  newMetrics(reg),
		now:      time.Now,
		inflight: &inflight{maxRequests: int64(cfg.MaxInflightPushRequests), maxBytes: int64(cfg.MaxInflightPushBytes)},
	}
	d.Service = services.NewTimerService(time.Minute, nil, func(context.Context) error {
		d.dropIdleTenants()
		return nil
	}, nil)
	return d
}

// PushResult says what happened to a request.
type PushResult struct {
	Samples, Histograms, Exemplars int // written
	Dropped                        int // samples not written (invalid or rejected)
	DroppedExemplars               int
	Message                        string // first reason, naming the limit
	LimitHit                       bool   // a per-tenant limit rejected data
}

// Error is an error with the HTTP status a push should answer with.
type Error struct {
	Code int
	Msg  string
	// RetryAfter, when set, is sent as the Retry-After header (seconds).
	RetryAfter string
}

func (e *Error) Error() string { return e.Msg }

// Push validates req, enforces limits and writes it to the ingesters. req is
// modified. It returns an *Error for anything the client caused or can retry.
func (d *Distributor) Push(ctx context.Context, tenantID string, req *writev2.Request) (PushResult, error) {
	return d.push(ctx, tenantID, req, nil)
}

// push is Push of a request whose memory release (if not nil) gives back,
// once nothing uses req any more: writes to slow replicas go on after Push
// has returned.
func (d *Distributor) push(ctx context.Context, tenantID string, req *writev2.Request, release func()) (PushResult, error) {
	if release == nil {
		release = func() {}
	}
	sent := false
	defer func() {
		if !sent {
			release()
		}
	}()
	l := d.limits.ByTenant(tenantID)
	now := d.now()
	lim := d.limiter(tenantID, l, now) // also marks the tenant active
	received := 0
	for i := range req.Timeseries {
		received += len(req.Timeseries[i].Samples) + len(req.Timeseries[i].Histograms)
	}
	d.metrics.receivedSamples.WithLabelValues(tenantID).Add(float64(received))

	vr := validateRequest(req, l, now.UnixMilli())
	for reason, n := range vr.reasons {
		d.metrics.discardedSamples.WithLabelValues(tenantID, reason).Add(float64(n))
	}
	var res PushResult
	res.Dropped = vr.droppedSamples
	res.DroppedExemplars = vr.droppedExemplars
	res.Message = vr.firstError

	samples, histograms, exemplars := 0, 0, 0
	for i := range req.Timeseries {
		samples += len(req.Timeseries[i].Samples)
		histograms += len(req.Timeseries[i].Histograms)
		exemplars += len(req.Timeseries[i].Exemplars)
	}
	total := samples + histograms + exemplars
	if total > 0 && !lim.AllowN(now, total) {
		d.metrics.discardedSamples.WithLabelValues(tenantID, "rate_limited").Add(float64(samples + histograms))
		return res, &Error{Code: http.StatusTooManyRequests, Msg: fmt.Sprintf(
			"ingestion rate limit of %g samples/s (burst %d) exceeded by tenant %s while writing %d samples and exemplars; raise -distributor.ingestion-rate-limit / -distributor.ingestion-burst-size or ingestion_rate / ingestion_burst_size in the runtime overrides file",
			l.IngestionRate, l.IngestionBurstSize, tenantID, total)}
	}
	if len(req.Timeseries) == 0 {
		return res, nil
	}

	sent = true
	resp, err := d.send(ctx, tenantID, req, release)
	if err != nil {
		return res, err
	}
	rejected := 0
	for _, n := range resp.Rejected {
		rejected += n
	}
	// Rejections are proportionally attributed: the ingesters do not say
	// which kind of sample they refused.
	res.Samples, res.Histograms, res.Exemplars = samples, histograms, exemplars-resp.RejectedExemplars
	if rejected > 0 {
		if rejected > samples+histograms {
			rejected = samples + histograms
		}
		fromHist := rejected * histograms / max(samples+histograms, 1)
		res.Histograms -= fromHist
		res.Samples -= rejected - fromHist
		res.Dropped += rejected
		if res.Message == "" {
			res.Message = resp.FirstError
		}
		res.LimitHit = res.LimitHit || resp.LimitError
	}
	res.DroppedExemplars += resp.RejectedExemplars
	d.metrics.writtenSamples.WithLabelValues(tenantID).Add(float64(res.Samples + res.Histograms))
	return res, nil
}

func (d *Distributor) limiter(tenantID string, l *validation.Limits, now time.Time) *rate.Limiter {
	return d.limiters.get(tenantID, rate.Limit(l.IngestionRate), l.IngestionBurstSize, now)
}

// dropIdleTenants forgets the rate limiter and the per-tenant metric series
// of tenants that pushed nothing for -distributor.idle-tenant-timeout.
func (d *Distributor) dropIdleTenants() {
	d.limiters.dropIdle(d.now().Add(-d.cfg.IdleTenantTimeout), d.metrics.forgetTenant)
}

// shardKey hashes tenant and labels into a ring token. Labels are sorted by
// validation, so equal series always map to the same token.
func shardKey(tenantID string, ts *writev2.TimeSeries, symbols []string) uint32 {
	h := xxhash.New()
	_, _ = h.WriteString(tenantID)
	for _, r := range ts.LabelsRefs {
		_, _ = h.Write(sep)
		_, _ = h.WriteString(symbols[r])
	}
	s := h.Sum64()
	return uint32(s ^ (s >> 32))
}

var sep = []byte{0xff}

// send shards the request over the ring and waits for a write quorum for every
// series. Pushes to slow replicas carry on after the quorum is reached, on a
// context detached from the caller's; release is called once they are all
// done.
func (d *Distributor) send(ctx context.Context, tenantID string, req *writev2.Request, release func()) (*client.PushResponse, error) {
	var keys []uint32
	if d.everyKeyOnEveryInstance() {
		// One key stands for all: the batch is one request to each
		// instance, with the same quorum as any key's.
		keys = []uint32{shardKey(tenantID, &req.Timeseries[0], req.Symbols)}
	} else {
		keys = make([]uint32, len(req.Timeseries))
		for i := range req.Timeseries {
			keys[i] = shardKey(tenantID, &req.Timeseries[i], req.Symbols)
		}
	}
	whole := len(keys) == 1
	// The whole request goes to every remote replica: it is marshalled
	// once, by the first of them, and sent as is to the others.
	var (
		encodeOnce sync.Once
		encoded    *rpc.Shared
		encodeErr  error
	)
	shared := func() (*rpc.Shared, error) {
		encodeOnce.Do(func() { encoded, encodeErr = client.EncodePush(req) })
		return encoded, encodeErr
	}
	merged := &client.PushResponse{}
	var mu sync.Mutex

	var (
		local   IngesterPusher
		localID string
	)
	if d.local != nil {
		local, localID = d.local()
	}
	// The pushes run on pushCtx, canceled by Cleanup once they are all done;
	// DoBatch waits on waitCtx, which has the same deadline but is never
	// canceled before DoBatch returns: canceling the context it waits on
	// would race with its own answer (done and canceled both ready, a 503
	// "context canceled" for a write that reached its quorum).
	deadline := time.Now().Add(d.cfg.RemoteTimeout)
	base := user.InjectOrgID(context.WithoutCancel(ctx), tenantID)
	pushCtx, cancel := context.WithDeadline(base, deadline)
	waitCtx, stopWaiting := context.WithDeadline(base, deadline)
	defer stopWaiting()
	err := ring.DoBatchWithOptions(waitCtx, ring.WriteNoExtend, d.ring, keys, func(inst ring.InstanceDesc, idx []int) error {
		sub := req
		if !whole {
			sub = &writev2.Request{Symbols: req.Symbols, Timeseries: make([]writev2.TimeSeries, len(idx))}
			for j, i := range idx {
				sub.Timeseries[j] = req.Timeseries[i]
			}
		}
		var p IngesterPusher
		if local != nil && inst.Id == localID {
			p = local
		} else {
			var err error
			if p, err = d.pool.Pusher(inst.Addr); err != nil {
				return err
			}
		}
		start := time.Now()
		var resp *client.PushResponse
		var err error
		if sp, ok := p.(sharedPusher); ok && whole {
			var enc *rpc.Shared
			if enc, err = shared(); err == nil {
				resp, err = sp.PushShared(pushCtx, enc)
			}
		} else {
			resp, err = p.Push(pushCtx, sub)
		}
		d.metrics.ingesterPushDuration.Observe(time.Since(start).Seconds())
		if err != nil {
			d.metrics.ingesterPushFailures.WithLabelValues(inst.Id).Inc()
			return fmt.Errorf("pushing to ingester %s (%s): %w", inst.Id, inst.Addr, err)
		}
		mu.Lock()
		mergeResponse(merged, resp)
		mu.Unlock()
		return nil
	}, ring.DoBatchOptions{Cleanup: func() {
		cancel()
		if encoded != nil {
			encoded.Free()
		}
		release()
	}, Go: func(f func()) { go f() }})
	if err != nil {
		// The ring is empty (starting up), too few replicas are live for the
		// quorum, or replicas failed mid-write: the sender should back off
		// and retry, nothing it sent was wrong (ingesters report rejected
		// samples in their answer, not as errors).
		return nil, &Error{Code: http.StatusServiceUnavailable, RetryAfter: "1", Msg: fmt.Sprintf("writing to ingesters with a quorum failed, retry later: %v", err)}
	}
	// Replicas past the quorum may still answer: what they fold into
	// merged is copied out under the lock.
	mu.Lock()
	defer mu.Unlock()
	out := &client.PushResponse{}
	mergeResponse(out, merged)
	return out, nil
}

// everyKeyOnEveryInstance says whether the ingester ring places every key
// on every one of its instances: it has no more of them than the
// replication factor (a single process, three ingesters with replication
// factor 3), and zones cannot make it choose (no zone awareness, or one
// instance per zone). Then sharding a request series by series is work for
// nothing.
func (d *Distributor) everyKeyOnEveryInstance() bool {
	n := d.ring.InstancesCount()
	if n == 0 || n > d.ring.ReplicationFactor() {
		return false
	}
	return !d.cfg.ZoneAwareRing || d.ring.ZonesCount() == n
}

// mergeResponse folds one replica's response into merged. Replicas see the
// same series, so per-reason counts are combined with max, not added.
func mergeResponse(merged, r *client.PushResponse) {
	for reason, n := range r.Rejected {
		if merged.Rejected == nil {
			merged.Rejected = map[string]int{}
		}
		if n > merged.Rejected[reason] {
			merged.Rejected[reason] = n
		}
	}
	merged.RejectedExemplars = max(merged.RejectedExemplars, r.RejectedExemplars)
	if merged.FirstError == "" {
		merged.FirstError = r.FirstError
	}
	merged.LimitError = merged.LimitError || r.LimitError
}
