package distributor

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/go-kit/log"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/time/rate"

	"github.com/canopy-observability/canopy/pkg/ingester/logsclient"
	"github.com/canopy-observability/canopy/pkg/logpush"
	"github.com/canopy-observability/canopy/pkg/rpc/logspb"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// LogsPusher is what the logs write path needs of a logs ingester, local
// or remote. Implementations are safe for concurrent use.
type LogsPusher interface {
	Push(ctx context.Context, req *logspb.PushRequest) (*logspb.PushResponse, error)
}

// LogsClientPool returns the pusher of a logs ingester address.
type LogsClientPool interface {
	LogsPusher(addr string) (LogsPusher, error)
}

// LogsPoolPushers adapts a logsclient.Pool to LogsClientPool.
type LogsPoolPushers struct{ *logsclient.Pool }

// LogsPusher implements LogsClientPool.
func (p LogsPoolPushers) LogsPusher(addr string) (LogsPusher, error) { return p.Client(addr) }

// LocalLogsIngester returns the logs ingester running in this process and
// its ring ID, or nil; asked on every push.
type LocalLogsIngester func() (LogsPusher, string)

// Logs is the logs half of the distributor: it validates streams against
// the tenant's logs limits, enforces the ingestion rate in bytes, shards
// streams by their labels over the logs ingester ring and writes each to
// its replicas with a quorum. It shares the distributor's body limits and
// in-flight budget. It is a services.Service (dropping idle tenants' rate
// limiters).
type Logs struct {
	services.Service

	d       *Distributor
	ring    ring.ReadRing
	pool    LogsClientPool
	local   LocalLogsIngester
	logger  log.Logger
	metrics *logsMetrics

	limiters tenantLimiters
}

// NewLogs returns the logs write path of d, writing to the ingesters of
// logsRing.
func NewLogs(d *Distributor, logsRing ring.ReadRing, pool LogsClientPool, local LocalLogsIngester, logger log.Logger, reg prometheus.Registerer) *Logs {
	l := &Logs{d: d, ring: logsRing, pool: pool, local: local, logger: log.With(logger, "component", "distributor"), metrics: newLogsMetrics(reg)}
	l.Service = services.NewTimerService(time.Minute, nil, func(context.Context) error {
		l.dropIdleTenants()
		return nil
	}, nil)
	return l
}

type logsMetrics struct {
	receivedBytes    *prometheus.CounterVec
	receivedEntries  *prometheus.CounterVec
	discardedEntries *prometheus.CounterVec
	discardedBytes   *prometheus.CounterVec
	requests         *prometheus.CounterVec
}

func newLogsMetrics(reg prometheus.Registerer) *logsMetrics {
	f := promauto.With(reg)
	return &logsMetrics{
		receivedBytes:    f.NewCounterVec(prometheus.CounterOpts{Name: "canopy_distributor_logs_received_bytes_total", Help: "Raw bytes of log lines received, before validation."}, []string{"tenant"}),
		receivedEntries:  f.NewCounterVec(prometheus.CounterOpts{Name: "canopy_distributor_logs_received_entries_total", Help: "Log entries received, before validation."}, []string{"tenant"}),
		discardedEntries: f.NewCounterVec(prometheus.CounterOpts{Name: "canopy_discarded_log_entries_total", Help: "Log entries dropped by the distributor or rejected by ingesters, by reason."}, []string{"tenant", "reason"}),
		discardedBytes:   f.NewCounterVec(prometheus.CounterOpts{Name: "canopy_discarded_log_bytes_total", Help: "Raw line bytes of the log entries dropped, by reason."}, []string{"tenant", "reason"}),
		requests:         f.NewCounterVec(prometheus.CounterOpts{Name: "canopy_distributor_logs_requests_total", Help: "Log push requests, by protocol and status code."}, []string{"protocol", "code"}),
	}
}

// LogsResult says what happened to a log push.
type LogsResult struct {
	Entries, Bytes int // written with a quorum
	Rejected       int
	Message        string // the first rejection, naming the limit
}

// Push validates streams, enforces the rate limit and writes them. The
// accepted part of a batch is written even when some entries are
// rejected; the result says which and why.
func (l *Logs) Push(ctx context.Context, tenantID string, streams []logpush.Stream) (LogsResult, error) {
	lim := l.d.limits.ByTenant(tenantID)
	now := l.d.now()
	var res LogsResult
	received, receivedBytes := 0, 0
	for _, s := range streams {
		received += len(s.Entries)
		for _, e := range s.Entries {
			receivedBytes += len(e.Line)
		}
	}
	l.metrics.receivedEntries.WithLabelValues(tenantID).Add(float64(received))
	l.metrics.receivedBytes.WithLabelValues(tenantID).Add(float64(receivedBytes))

	req, vr := validateLogs(streams, lim, now.UnixNano())
	for reason, n := range vr.reasons {
		l.metrics.discardedEntries.WithLabelValues(tenantID, reason).Add(float64(n))
	}
	res.Rejected, res.Message = vr.rejected, vr.firstError
	if len(req.Streams) == 0 {
		return res, nil
	}
	if !l.limiter(tenantID, lim, now).AllowN(now, vr.bytes) {
		l.metrics.discardedEntries.WithLabelValues(tenantID, "rate_limited").Add(float64(vr.entries))
		l.metrics.discardedBytes.WithLabelValues(tenantID, "rate_limited").Add(float64(vr.bytes))
		return res, &Error{Code: http.StatusTooManyRequests, Msg: fmt.Sprintf(
			"log ingestion rate limit of %g MB/s (burst %g MB) exceeded by tenant %s while writing %d bytes; raise -distributor.logs.ingestion-rate-limit-mb / -distributor.logs.ingestion-burst-size-mb or logs_ingestion_rate_mb / logs_ingestion_burst_size_mb in the runtime overrides file",
			lim.LogsIngestionRateMB, lim.LogsIngestionBurstSizeMB, tenantID, vr.bytes)}
	}
	resp, err := l.send(ctx, tenantID, req)
	if err != nil {
		return res, err
	}
	rejected := 0
	for reason, n := range resp.Rejected {
		rejected += int(n)
		l.metrics.discardedEntries.WithLabelValues(tenantID, reason).Add(float64(n))
	}
	res.Entries, res.Bytes = vr.entries-rejected, vr.bytes
	res.Rejected += rejected
	if res.Message == "" {
		res.Message = resp.FirstError
	}
	return res, nil
}

func (l *Logs) limiter(tenantID string, lim *validation.Limits, now time.Time) *rate.Limiter {
	return l.limiters.get(tenantID, rate.Limit(lim.LogsIngestionRateMB*1e6), int(lim.LogsIngestionBurstSizeMB*1e6), now)
}

func (l *Logs) dropIdleTenants() {
	l.limiters.dropIdle(l.d.now().Add(-l.d.cfg.IdleTenantTimeout), func(id string) {
		l.metrics.receivedBytes.DeleteLabelValues(id)
		l.metrics.receivedEntries.DeleteLabelValues(id)
		l.metrics.discardedEntries.DeletePartialMatch(prometheus.Labels{"tenant": id})
		l.metrics.discardedBytes.DeletePartialMatch(prometheus.Labels{"tenant": id})
	})
}

// streamKey hashes tenant and stream labels into a ring token.
func streamKey(tenantID string, s *logspb.Stream) uint32 {
	h := xxhash.New()
	_, _ = h.WriteString(tenantID)
	for _, p := range s.Labels {
		_, _ = h.Write(sep)
		_, _ = h.WriteString(p.Name)
		_, _ = h.Write(sep)
		_, _ = h.WriteString(p.Value)
	}
	v := h.Sum64()
	return uint32(v ^ (v >> 32))
}

// send shards streams over the logs ring and waits for a write quorum of
// each stream.
func (l *Logs) send(ctx context.Context, tenantID string, req *logspb.PushRequest) (*logspb.PushResponse, error) {
	keys := make([]uint32, len(req.Streams))
	for i, s := range req.Streams {
		keys[i] = streamKey(tenantID, s)
	}
	var (
		local   LogsPusher
		localID string
	)
	if l.local != nil {
		local, localID = l.local()
	}
	merged := &logspb.PushResponse{}
	var out *logspb.PushResponse
	err := quorumWrite[LogsPusher, *logspb.PushResponse]{
		signal: "logs",
		ring:   l.ring,
		keys:   keys,
		pusher: localOr(local, localID, l.pool.LogsPusher),
		push: func(ctx context.Context, p LogsPusher, idx []int) (*logspb.PushResponse, error) {
			sub := req
			if len(idx) != len(req.Streams) {
				sub = &logspb.PushRequest{Streams: make([]*logspb.Stream, len(idx))}
				for j, i := range idx {
					sub.Streams[j] = req.Streams[i]
				}
			}
			return p.Push(ctx, sub)
		},
		merge: func(resp *logspb.PushResponse) {
			for reason, n := range resp.Rejected {
				if merged.Rejected == nil {
					merged.Rejected = map[string]int64{}
				}
				merged.Rejected[reason] = max(merged.Rejected[reason], n)
			}
			if merged.FirstError == "" {
				merged.FirstError = resp.FirstError
			}
			merged.LimitError = merged.LimitError || resp.LimitError
		},
		result: func() {
			out = &logspb.PushResponse{Rejected: maps.Clone(merged.Rejected), FirstError: merged.FirstError, LimitError: merged.LimitError}
		},
	}.run(ctx, l.d, tenantID)
	return out, err
}

// partialLogsMessage answers a push of which some entries were rejected.
func partialLogsMessage(res LogsResult) string {
	return fmt.Sprintf("%d log entries written, %d rejected; first rejection: %s", res.Entries, res.Rejected, res.Message)
}
