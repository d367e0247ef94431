package canopy

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/stretchr/testify/require"

	"github.com/canopy-observability/canopy/pkg/distributor"
	"github.com/canopy-observability/canopy/pkg/querier"
)

// skippedScripts are promqltest scripts that cannot pass through Canopy, by
// sub-test name as RunBuiltinTestsWithStorage names them, with the reason.
var skippedScripts = map[string]string{
	// Remote write 2.0 carries start timestamps to the ingesters, but their
	// TSDBs do not store them: Canopy ingests a start timestamp as a zero
	// sample (Prometheus's created-timestamp-zero-ingestion), so rate(),
	// increase(), resets() and start_timestamp() cannot see it. Prometheus
	// runs this script on a TSDB with its experimental st-storage,
	// xor2-encoding and histograms-st-encoding features; with those TSDB
	// options (and without the zero samples) the script passes through Canopy.
	"testdata/start_timestamps.test": "Canopy's ingesters store start timestamps as zero samples, not as start timestamps (no TSDB st-storage)",
}

// TestPromQLScripts runs Prometheus's own PromQL test scripts with their data
// written through Canopy's distributor (remote write 2.0 requests) into its
// ingester and read back through its querier (gRPC query streams), evaluated
// by the engine Canopy runs in production.
func TestPromQLScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Canopy process and runs every PromQL test script")
	}
	c, cfg := startTestCanopy(t)

	engine := querier.NewEngine(cfg.Querier, nil, prometheus.NewRegistry())
	t.Cleanup(func() { _ = engine.Close() })

	var tenants atomic.Int64
	newStorage := func(testing.TB) storage.Storage {
		return &canopyStorage{c: c, tenant: fmt.Sprintf("promqltest-%d", tenants.Add(1))}
	}
	promqltest.RunBuiltinTestsWithStorage(scriptSkipper{T: t, skip: skippedScripts}, engine, newStorage)
}

// scriptSkipper lets RunBuiltinTestsWithStorage run every script but those
// listed, which are reported as skipped with their reason.
type scriptSkipper struct {
	*testing.T
	skip map[string]string
}

func (s scriptSkipper) Run(name string, f func(*testing.T)) bool {
	if reason, ok := s.skip[name]; ok {
		return s.T.Run(name, func(t *testing.T) { t.Skip(reason) })
	}
	return s.T.Run(name, f)
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago. The
// ingester registers its gRPC port in the ring before the server could tell
// which port 0 became, so the port is chosen up front.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

// startTestCanopy starts one single-process Canopy (every target) on
// loopback, with limits that accept 1970-era, out-of-order test data.
func startTestCanopy(t *testing.T) (*Canopy, Config) {
	var cfg Config
	fs := flag.NewFlagSet("canopy", flag.PanicOnError)
	cfg.RegisterFlags(fs)

	cfg.DataDir = t.TempDir()
	cfg.MultitenancyEnabled = true
	cfg.Server.HTTPListenAddress = "127.0.0.1"
	cfg.Server.HTTPListenPort = 0
	cfg.Server.GRPCListenAddress = "127.0.0.1"
	cfg.Server.GRPCListenPort = freePort(t)
	cfg.Server.ServerGracefulShutdownTimeout = time.Second
	cfg.MemberlistKV.TCPTransport.BindAddrs = []string{"127.0.0.1"}
	cfg.MemberlistKV.TCPTransport.BindPort = 0
	cfg.MemberlistKV.AdvertiseAddr = "127.0.0.1"
	cfg.Instance.ID = "promqltest-ingester"
	cfg.Ingester.Metrics.Ring.MinReadyDuration = 0
	cfg.Ingester.Metrics.Ring.HeartbeatPeriod = time.Second
	// Every script (and every "clear" in it) gets a tenant, so some 250 TSDBs
	// stay open: small lock stripes keep their memory down.
	cfg.Ingester.Metrics.StripeSize = 1024
	// Prometheus's test storage has no retention (Canopy's is relative to a
	// tenant's newest block, so long scripts could lose their oldest data).
	cfg.Ingester.Metrics.Retention = 100 * 365 * 24 * time.Hour
	cfg.Distributor.OTLPGRPCListenAddress = ""
	cfg.Distributor.OTLPHTTPListenAddress = ""
	// Scripts write around 1970: every query must reach the ingesters.
	cfg.Querier.QueryIngestersWithin = 0

	const century = model.Duration(100 * 365 * 24 * time.Hour)
	cfg.Limits.IngestionRate = 1e9
	cfg.Limits.IngestionBurstSize = 1e9
	cfg.Limits.PastGracePeriod = 0
	cfg.Limits.CreationGracePeriod = century  // Whatever time a script writes at is accepted.
	cfg.Limits.OutOfOrderTimeWindow = century // A later load may write before an earlier one's head.
	cfg.Limits.MaxLabelNamesPerSeries = 1000
	cfg.Limits.MaxLabelValueLength = 1 << 20
	cfg.Limits.MaxGlobalSeriesPerTenant = 0
	cfg.Limits.MaxExemplarsPerSeries = 1000
	cfg.Limits.MaxQueryLookback = 0

	c := startTarget(t, cfg)

	require.Eventually(t, func() bool {
		if c.Ingester.CheckReady(context.Background()) != nil {
			return false
		}
		rs, err := c.IngesterRing.GetReplicationSetForOperation(ring.Write)
		return err == nil && len(rs.Instances) == 1
	}, 30*time.Second, 50*time.Millisecond, "the ingester never became ACTIVE in the ring")
	return c, cfg
}

// canopyStorage is the storage.Storage promqltest writes to and queries: one
// Canopy tenant. Appends become remote write 2.0 pushes to the distributor;
// queries go through Canopy's ingester queryable.
type canopyStorage struct {
	c      *Canopy
	tenant string
}

func (s *canopyStorage) ctx(ctx context.Context) context.Context {
	return user.InjectOrgID(ctx, s.tenant)
}

func (s *canopyStorage) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := s.c.Queryable.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return tenantQuerier{Querier: q, s: s}, nil
}

func (s *canopyStorage) ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error) {
	q, err := s.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return chunkQuerier{Querier: q}, nil
}

func (s *canopyStorage) AppenderV2(ctx context.Context) storage.AppenderV2 {
	return &pushAppender{s: s, ctx: ctx, b: distributor.NewRequestBuilder()}
}

func (s *canopyStorage) Appender(ctx context.Context) storage.Appender {
	return v1Appender{app: s.AppenderV2(ctx)}
}

func (*canopyStorage) StartTime() (int64, error) { return math.MinInt64, nil }

// Close leaves the tenant's data in the ingester: the next storage of the
// script uses a new tenant.
func (*canopyStorage) Close() error { return nil }

// tenantQuerier puts the tenant in the context of every read, as Canopy's
// HTTP API does from X-Scope-OrgID.
type tenantQuerier struct {
	storage.Querier
	s *canopyStorage
}

func (q tenantQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, matchers ...*labels.Matcher) storage.SeriesSet {
	return q.Querier.Select(q.s.ctx(ctx), sortSeries, hints, matchers...)
}

func (q tenantQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return q.Querier.LabelValues(q.s.ctx(ctx), name, hints, matchers...)
}

func (q tenantQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return q.Querier.LabelNames(q.s.ctx(ctx), hints, matchers...)
}

type chunkQuerier struct{ storage.Querier }

func (q chunkQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, matchers ...*labels.Matcher) storage.ChunkSeriesSet {
	return storage.NewSeriesSetToChunkSet(q.Querier.Select(ctx, sortSeries, hints, matchers...))
}

// pushAppender builds a remote write 2.0 request from what is appended and
// pushes it through the distributor on Commit. Anything the distributor or
// the ingester does not write fails the Commit: a script's data must arrive
// whole.
type pushAppender struct {
	s   *canopyStorage
	ctx context.Context
	b   *distributor.RequestBuilder
}

func (a *pushAppender) Append(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AppendV2Options) (storage.SeriesRef, error) {
	if a.b == nil {
		return 0, errors.New("append after Commit or Rollback")
	}
	return a.b.Append(ref, ls, st, t, v, h, fh, opts)
}

// maxSamplesPerPush bounds one push, as a remote write sender's batching does.
const maxSamplesPerPush = 50_000

func (a *pushAppender) Commit() error {
	if a.b == nil {
		return errors.New("Commit after Commit or Rollback")
	}
	req := a.b.Request()
	a.b = nil
	for start := 0; start < len(req.Timeseries); {
		end, n := start, 0
		for end < len(req.Timeseries) && (end == start || n+seriesSamples(&req.Timeseries[end]) <= maxSamplesPerPush) {
			n += seriesSamples(&req.Timeseries[end])
			end++
		}
		if err := a.push(&writev2.Request{Symbols: req.Symbols, Timeseries: req.Timeseries[start:end]}); err != nil {
			return err
		}
		start = end
	}
	return nil
}

func seriesSamples(ts *writev2.TimeSeries) int {
	return len(ts.Samples) + len(ts.Histograms) + len(ts.Exemplars)
}

func (a *pushAppender) push(req *writev2.Request) error {
	var samples, histograms, exemplars int
	for i := range req.Timeseries {
		samples += len(req.Timeseries[i].Samples)
		histograms += len(req.Timeseries[i].Histograms)
		exemplars += len(req.Timeseries[i].Exemplars)
	}
	res, err := a.s.c.Distributor.Push(a.s.ctx(a.ctx), a.s.tenant, req)
	if err != nil {
		return fmt.Errorf("Canopy push of tenant %s failed: %w", a.s.tenant, err)
	}
	if res.Dropped > 0 || res.DroppedExemplars > 0 || res.Samples != samples || res.Histograms != histograms || res.Exemplars != exemplars {
		return fmt.Errorf("Canopy did not write all of a push of tenant %s: sent %d samples, %d histograms, %d exemplars; written %d, %d, %d; dropped %d samples, %d exemplars: %s",
			a.s.tenant, samples, histograms, exemplars, res.Samples, res.Histograms, res.Exemplars, res.Dropped, res.DroppedExemplars, res.Message)
	}
	return nil
}

func (a *pushAppender) Rollback() error {
	a.b = nil
	return nil
}

// v1Appender is the storage.Appender of canopyStorage (promqltest only uses
// AppenderV2; this completes storage.Storage).
type v1Appender struct{ app storage.AppenderV2 }

func (a v1Appender) Append(ref storage.SeriesRef, l labels.Labels, t int64, v float64) (storage.SeriesRef, error) {
	return a.app.Append(ref, l, 0, t, v, nil, nil, storage.AppendV2Options{})
}

func (a v1Appender) AppendHistogram(ref storage.SeriesRef, l labels.Labels, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return a.app.Append(ref, l, 0, t, 0, h, fh, storage.AppendV2Options{})
}

func (v1Appender) AppendExemplar(storage.SeriesRef, labels.Labels, exemplar.Exemplar) (storage.SeriesRef, error) {
	return 0, errors.New("exemplars are appended with AppenderV2")
}

func (v1Appender) AppendHistogramSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, errors.New("start timestamps are appended with AppenderV2")
}

func (v1Appender) AppendSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64) (storage.SeriesRef, error) {
	return 0, errors.New("start timestamps are appended with AppenderV2")
}

func (v1Appender) UpdateMetadata(ref storage.SeriesRef, _ labels.Labels, _ metadata.Metadata) (storage.SeriesRef, error) {
	return ref, nil
}

func (v1Appender) SetOptions(*storage.AppendOptions) {}

func (a v1Appender) Commit() error   { return a.app.Commit() }
func (a v1Appender) Rollback() error { return a.app.Rollback() }
