package distributor

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

func testMetrics(now time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	rm.Resource().Attributes().PutStr("service.instance.id", "pod-1")
	rm.Resource().Attributes().PutStr("k8s.cluster.name", "eu-1")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	ts := pcommon.NewTimestampFromTime(now)

	sum := ms.AppendEmpty()
	sum.SetName("http.server.requests")
	sum.SetUnit("1")
	sum.SetEmptySum().SetIsMonotonic(true)
	sum.Sum().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := sum.Sum().DataPoints().AppendEmpty()
	dp.SetIntValue(7)
	dp.SetTimestamp(ts)
	dp.Attributes().PutStr("method", "GET")

	g := ms.AppendEmpty()
	g.SetName("queue.depth")
	gp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	gp.SetDoubleValue(3.5)
	gp.SetTimestamp(ts)

	h := ms.AppendEmpty()
	h.SetName("latency")
	h.SetUnit("s")
	h.SetEmptyHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hp := h.Histogram().DataPoints().AppendEmpty()
	hp.SetTimestamp(ts)
	hp.SetCount(3)
	hp.SetSum(1.5)
	hp.ExplicitBounds().FromRaw([]float64{0.1, 1})
	hp.BucketCounts().FromRaw([]uint64{1, 1, 1})

	e := ms.AppendEmpty()
	e.SetName("size")
	e.SetEmptyExponentialHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	ep := e.ExponentialHistogram().DataPoints().AppendEmpty()
	ep.SetTimestamp(ts)
	ep.SetScale(0)
	ep.SetCount(2)
	ep.SetSum(6)
	ep.Positive().SetOffset(1)
	ep.Positive().BucketCounts().FromRaw([]uint64{1, 1})
	return md
}

func TestOTLPHTTP(t *testing.T) {
	now := time.Now()
	req := pmetricotlp.NewExportRequestFromMetrics(testMetrics(now))
	pb, err := req.MarshalProto()
	require.NoError(t, err)
	js, err := req.MarshalJSON()
	require.NoError(t, err)
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	_, _ = w.Write(pb)
	require.NoError(t, w.Close())

	for name, tc := range map[string]struct {
		body     []byte
		ct, enc  string
		wantCode int
	}{
		"protobuf":      {pb, "application/x-protobuf", "", 200},
		"json":          {js, "application/json", "", 200},
		"gzip protobuf": {gz.Bytes(), "application/x-protobuf", "gzip", 200},
		"bad gzip":      {pb, "application/x-protobuf", "gzip", 400},
		"garbage":       {[]byte("nope"), "application/x-protobuf", "", 400},
		"bad json":      {[]byte("{"), "application/json", "", 400},
		"text plain":    {pb, "text/plain", "", 415},
		"brotli":        {pb, "application/x-protobuf", "br", 415},
	} {
		t.Run(name, func(t *testing.T) {
			d, ings := newTestDistributor(t, 1, 1, defaultLimits())
			r := httptest.NewRequest(http.MethodPost, "/otlp/v1/metrics", bytes.NewReader(tc.body))
			r.Header.Set("Content-Type", tc.ct)
			if tc.enc != "" {
				r.Header.Set("Content-Encoding", tc.enc)
			}
			rec := httptest.NewRecorder()
			d.OTLPHandler(tenant.Resolver{}).ServeHTTP(rec, r)
			require.Equal(t, tc.wantCode, rec.Code, rec.Body.String())
			if tc.wantCode != 200 {
				require.Equal(t, 0, ings[0].count())
				return
			}
			var names []string
			for s := range ings[0].series {
				names = append(names, s)
			}
			sort.Strings(names)
			require.Contains(t, names, `{__name__="http_server_requests_total", instance="pod-1", job="checkout", method="GET"}`)
			require.Contains(t, names, `{__name__="queue_depth", instance="pod-1", job="checkout"}`)
			require.Contains(t, names, `{__name__="latency_seconds_bucket", instance="pod-1", job="checkout", le="+Inf"}`)
			require.Contains(t, names, `{__name__="target_info", instance="pod-1", job="checkout", k8s_cluster_name="eu-1"}`)
			require.Contains(t, names, `{__name__="size", instance="pod-1", job="checkout"}`, "exponential histograms become native histograms")
		})
	}
}

func TestOTLPPromotedResourceAttributes(t *testing.T) {
	d, ings := newTestDistributor(t, 1, 1, defaultLimits())
	d.cfg.OTLPPromoteResourceAttr = []string{"k8s.cluster.name"}
	pb, err := pmetricotlp.NewExportRequestFromMetrics(testMetrics(time.Now())).MarshalProto()
	require.NoError(t, err)
	r := httptest.NewRequest(http.MethodPost, "/otlp/v1/metrics", bytes.NewReader(pb))
	r.Header.Set("Content-Type", "application/x-protobuf")
	rec := httptest.NewRecorder()
	d.OTLPHandler(tenant.Resolver{}).ServeHTTP(rec, r)
	require.Equal(t, 200, rec.Code, rec.Body.String())
	require.Contains(t, ings[0].series, `{__name__="queue_depth", instance="pod-1", job="checkout", k8s_cluster_name="eu-1"}`)
}

// TestOTLPHistogramOutOfRange: an exponential histogram whose buckets lie
// beyond float64 (scale 20, offsets ±2e9) is refused with a message naming
// the problem, and the rest of the batch is kept.
func TestOTLPHistogramOutOfRange(t *testing.T) {
	d, ings := newTestDistributor(t, 1, 1, defaultLimits())
	now := time.Now()
	md := testMetrics(now)
	ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	e := ms.AppendEmpty()
	e.SetName("absurd")
	e.SetEmptyExponentialHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	ep := e.ExponentialHistogram().DataPoints().AppendEmpty()
	ep.SetTimestamp(pcommon.NewTimestampFromTime(now))
	ep.SetScale(20)
	ep.SetCount(2)
	ep.SetSum(1)
	ep.Positive().SetOffset(2_000_000_000)
	ep.Positive().BucketCounts().FromRaw([]uint64{1})
	ep.Negative().SetOffset(-2_000_000_000)
	ep.Negative().BucketCounts().FromRaw([]uint64{1})

	pb, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	require.NoError(t, err)
	r := httptest.NewRequest(http.MethodPost, "/otlp/v1/metrics", bytes.NewReader(pb))
	r.Header.Set("Content-Type", "application/x-protobuf")
	rec := httptest.NewRecorder()
	d.OTLPHandler(tenant.Resolver{}).ServeHTTP(rec, r)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	resp := pmetricotlp.NewExportResponse()
	require.NoError(t, resp.UnmarshalProto(rec.Body.Bytes()))
	require.Equal(t, int64(1), resp.PartialSuccess().RejectedDataPoints())
	require.Contains(t, resp.PartialSuccess().ErrorMessage(), "finite bucket bounds")
	ings[0].mu.Lock()
	defer ings[0].mu.Unlock()
	for name := range ings[0].series {
		require.NotContains(t, name, "absurd")
	}
	require.NotEmpty(t, ings[0].series, "the rest of the batch is written")
}
