package distributor

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/kv/consul"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/services"
	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/canopy-observability/canopy/pkg/ingester/client"
	"github.com/canopy-observability/canopy/pkg/util/promtest"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// fakeIngester records what it was sent.
type fakeIngester struct {
	mu     sync.Mutex
	fail   bool
	series map[string][]writev2.Sample
	resp   *client.PushResponse
}

func (f *fakeIngester) Push(_ context.Context, req *writev2.Request) (*client.PushResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return nil, errors.New("ingester down")
	}
	var b labels.ScratchBuilder
	for _, ts := range req.Timeseries {
		l, err := ts.ToLabels(&b, req.Symbols)
		if err != nil {
			return nil, err
		}
		f.series[l.String()] = append(f.series[l.String()], ts.Samples...)
	}
	if f.resp != nil {
		return f.resp, nil
	}
	return &client.PushResponse{}, nil
}

func (f *fakeIngester) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.series)
}

type fakePool map[string]*fakeIngester

func (p fakePool) Pusher(addr string) (IngesterPusher, error) {
	if i, ok := p[addr]; ok {
		return i, nil
	}
	return nil, fmt.Errorf("no ingester at %s", addr)
}

func defaultLimits() validation.Limits {
	var l validation.Limits
	l.RegisterFlags(flag.NewFlagSet("", flag.PanicOnError))
	return l
}

func defaultConfig() Config {
	var c Config
	c.RegisterFlags(flag.NewFlagSet("", flag.PanicOnError))
	return c
}

// newTestDistributor returns a distributor over n fake ingesters in a real
// dskit ring with replication factor rf.
func newTestDistributor(t *testing.T, n, rf int, limits validation.Limits) (*Distributor, []*fakeIngester) {
	t.Helper()
	store, closer := consul.NewInMemoryClient(ring.GetCodec(), log.NewNopLogger(), nil)
	t.Cleanup(func() { _ = closer.Close() })
	desc := ring.NewDesc()
	pool := fakePool{}
	var ings []*fakeIngester
	for i := 0; i < n; i++ {
		tokens := make([]uint32, 0, 64)
		for j := 0; j < 64; j++ {
			tokens = append(tokens, uint32(uint64(j*n+i)*(1<<32)/uint64(64*n)))
		}
		sort.Slice(tokens, func(a, b int) bool { return tokens[a] < tokens[b] })
		addr := fmt.Sprintf("ingester-%d:9095", i)
		desc.AddIngester(fmt.Sprintf("ingester-%d", i), addr, "", tokens, ring.ACTIVE, time.Now(), false, time.Time{}, nil)
		ing := &fakeIngester{series: map[string][]writev2.Sample{}}
		pool[addr] = ing
		ings = append(ings, ing)
	}
	require.NoError(t, store.CAS(context.Background(), "ingester", func(interface{}) (interface{}, bool, error) { return desc, true, nil }))
	r, err := ring.NewWithStoreClientAndStrategy(ring.Config{HeartbeatTimeout: time.Minute, ReplicationFactor: rf}, "ingester", "ingester", store, ring.NewDefaultReplicationStrategy(), nil, log.NewNopLogger())
	require.NoError(t, err)
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), r))
	t.Cleanup(func() { _ = services.StopAndAwaitTerminated(context.Background(), r) })
	require.Eventually(t, func() bool { return r.InstancesCount() == n }, 5*time.Second, 10*time.Millisecond)
	d := New(defaultConfig(), validation.NewStaticOverrides(limits, nil), r, pool, nil, log.NewNopLogger(), prometheus.NewRegistry())
	return d, ings
}

func makeV1(n int, ts int64) *prompb.WriteRequest {
	req := &prompb.WriteRequest{}
	for i := 0; i < n; i++ {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: "test_metric"}, {Name: "i", Value: fmt.Sprint(i)}},
			Samples: []prompb.Sample{{Value: float64(i), Timestamp: ts}},
		})
	}
	return req
}

func TestPushShardsAndReplicates(t *testing.T) {
	now := time.Now().UnixMilli()
	for name, tc := range map[string]struct {
		n, rf, perIngesterMin int
	}{
		"rf1 spreads series":      {n: 3, rf: 1},
		"rf3 copies every series": {n: 3, rf: 3, perIngesterMin: 100},
	} {
		t.Run(name, func(t *testing.T) {
			d, ings := newTestDistributor(t, tc.n, tc.rf, defaultLimits())
			res, err := d.Push(context.Background(), "t1", FromV1(makeV1(100, now)))
			require.NoError(t, err)
			require.Equal(t, 100, res.Samples)
			total := 0
			// Replicas beyond the quorum may finish after Push returns.
			require.Eventually(t, func() bool {
				total = 0
				for _, ing := range ings {
					total += ing.count()
				}
				return total == 100*tc.rf
			}, 5*time.Second, 10*time.Millisecond)
			for _, ing := range ings {
				require.GreaterOrEqual(t, ing.count(), tc.perIngesterMin)
			}
			if tc.rf == 1 {
				for _, ing := range ings {
					require.Greater(t, ing.count(), 0, "every ingester owns some series")
				}
			}
		})
	}
}

func TestPushQuorum(t *testing.T) {
	now := time.Now().UnixMilli()
	d, ings := newTestDistributor(t, 3, 3, defaultLimits())
	ings[2].fail = true
	_, err := d.Push(context.Background(), "t1", FromV1(makeV1(10, now)))
	require.NoError(t, err, "one of three replicas down still has a quorum")

	ings[1].fail = true
	_, err = d.Push(context.Background(), "t1", FromV1(makeV1(10, now+1)))
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, http.StatusServiceUnavailable, e.Code, "two of three down is retryable, not a client error")
}

func snappyProto(t testing.TB, m interface{ Marshal() ([]byte, error) }) []byte {
	b, err := m.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, b)
}

func post(t *testing.T, h http.Handler, body []byte, header map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/api/v1/push", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestRemoteWriteBadInput(t *testing.T) {
	d, ings := newTestDistributor(t, 1, 1, defaultLimits())
	d.cfg.MaxRecvMsgSize = 1 << 20
	d.cfg.MaxDecompressedSize = 4 << 20
	h := d.RemoteWriteHandler(tenant.Resolver{})

	now := time.Now().UnixMilli()
	valid := snappyProto(t, makeV1(1, now))
	// A bomb: 16 MiB of zeros compress to well under the body limit.
	bomb := snappy.Encode(nil, make([]byte, 16<<20))
	require.Less(t, len(bomb), 1<<20)
	badUTF8 := makeV1(1, now)
	badUTF8.Timeseries[0].Labels[1].Value = "\xff\xfe"

	for name, tc := range map[string]struct {
		body   []byte
		header map[string]string
		code   int
		msg    string
	}{
		"garbage body":             {body: []byte("this is not a remote write request"), code: 400, msg: "snappy"},
		"snappy of garbage":        {body: snappy.Encode(nil, []byte{0xff, 0xff, 0xff, 0xff, 0x0f}), code: 400, msg: "decoding remote write 1.0"},
		"truncated snappy":         {body: valid[:len(valid)-3], code: 400, msg: "snappy"},
		"decompression bomb":       {body: bomb, code: 413, msg: "-distributor.max-decompressed-size"},
		"oversized body":           {body: make([]byte, 2<<20), code: 413, msg: "-distributor.max-recv-msg-size"},
		"wrong content type":       {body: valid, header: map[string]string{"Content-Type": "application/json"}, code: 415, msg: "Content-Type"},
		"unknown proto message":    {body: valid, header: map[string]string{"Content-Type": "application/x-protobuf;proto=foo.Bar"}, code: 415, msg: "foo.Bar"},
		"gzip encoding":            {body: valid, header: map[string]string{"Content-Encoding": "gzip"}, code: 415, msg: "Content-Encoding"},
		"invalid utf8 label value": {body: snappyProto(t, badUTF8), code: 400, msg: "not valid UTF-8"},
		"v2 with v1 body":          {body: snappyProto(t, &writev2.Request{Symbols: []string{"x"}}), header: map[string]string{"Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request"}, code: 400, msg: "first symbol"},
	} {
		t.Run(name, func(t *testing.T) {
			rec := post(t, h, tc.body, tc.header)
			require.Equal(t, tc.code, rec.Code, rec.Body.String())
			require.Contains(t, rec.Body.String(), tc.msg)
		})
	}
	require.Equal(t, 0, ings[0].count(), "nothing from a rejected request reached the ingester")

	rec := post(t, h, valid, nil)
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())

	get := httptest.NewRecorder()
	h.ServeHTTP(get, httptest.NewRequest(http.MethodGet, "/api/v1/push", nil))
	require.Equal(t, http.StatusMethodNotAllowed, get.Code)

	unauth := d.RemoteWriteHandler(tenant.Resolver{Enabled: true})
	require.Equal(t, http.StatusUnauthorized, post(t, unauth, valid, nil).Code)
}

func TestValidationKeepsTheGoodPart(t *testing.T) {
	limits := defaultLimits()
	limits.MaxLabelNamesPerSeries = 3
	limits.MaxLabelValueLength = 16
	d, ings := newTestDistributor(t, 1, 1, limits)
	h := d.RemoteWriteHandler(tenant.Resolver{})
	now := time.Now()
	good := func(i int) prompb.TimeSeries {
		return prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "ok"}, {Name: "i", Value: fmt.Sprint(i)}}, Samples: []prompb.Sample{{Value: 1, Timestamp: now.UnixMilli()}}}
	}
	for name, tc := range map[string]struct {
		bad prompb.TimeSeries
		msg string
	}{
		"too many labels":   {prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "m"}, {Name: "a", Value: "1"}, {Name: "b", Value: "1"}, {Name: "c", Value: "1"}}, Samples: []prompb.Sample{{Timestamp: now.UnixMilli()}}}, "-validation.max-label-names-per-series"},
		"value too long":    {prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "m"}, {Name: "a", Value: strings.Repeat("x", 17)}}, Samples: []prompb.Sample{{Timestamp: now.UnixMilli()}}}, "-validation.max-length-label-value"},
		"duplicate label":   {prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "m"}, {Name: "a", Value: "1"}, {Name: "a", Value: "2"}}, Samples: []prompb.Sample{{Timestamp: now.UnixMilli()}}}, "more than once"},
		"no metric name":    {prompb.TimeSeries{Labels: []prompb.Label{{Name: "a", Value: "1"}}, Samples: []prompb.Sample{{Timestamp: now.UnixMilli()}}}, "no metric name"},
		"empty label name":  {prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "m"}, {Name: "", Value: "1"}}, Samples: []prompb.Sample{{Timestamp: now.UnixMilli()}}}, "invalid label name"},
		"too far in future": {prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "m"}}, Samples: []prompb.Sample{{Timestamp: now.Add(time.Hour).UnixMilli()}}}, "-validation.create-grace-period"},
	} {
		t.Run(name, func(t *testing.T) {
			ings[0].series = map[string][]writev2.Sample{}
			req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{good(1), tc.bad, good(2)}}
			rec := post(t, h, snappyProto(t, req), nil)
			require.Equal(t, http.StatusBadRequest, rec.Code)
			require.Contains(t, rec.Body.String(), tc.msg)
			require.Contains(t, rec.Body.String(), "2 samples written, 1 samples rejected")
			require.Equal(t, 2, ings[0].count(), "the valid series of the batch were written")
		})
	}
}

func TestRemoteWrite2(t *testing.T) {
	d, ings := newTestDistributor(t, 1, 1, defaultLimits())
	h := d.RemoteWriteHandler(tenant.Resolver{})
	now := time.Now().UnixMilli()
	req := &writev2.Request{
		Symbols: []string{"", "__name__", "rw2_metric", "job", "a", "help text", "trace_id", "abc"},
		Timeseries: []writev2.TimeSeries{{
			LabelsRefs: []uint32{3, 4, 1, 2}, // unsorted on purpose: job before __name__
			Samples:    []writev2.Sample{{Value: 1, Timestamp: now - 1000, StartTimestamp: now - 5000}, {Value: 2, Timestamp: now}},
			Exemplars:  []writev2.Exemplar{{LabelsRefs: []uint32{6, 7}, Value: 2, Timestamp: now}},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: 5},
		}},
	}
	rec := post(t, h, snappyProto(t, req), map[string]string{"Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request"})
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	require.Equal(t, "2", rec.Header().Get(headerSamplesWritten))
	require.Equal(t, "0", rec.Header().Get(headerHistogramsWritten))
	require.Equal(t, "1", rec.Header().Get(headerExemplarsWritten))
	require.Len(t, ings[0].series[`{__name__="rw2_metric", job="a"}`], 2)
}

func TestRateLimit(t *testing.T) {
	limits := defaultLimits()
	limits.IngestionRate = 10
	limits.IngestionBurstSize = 20
	d, _ := newTestDistributor(t, 1, 1, limits)
	h := d.RemoteWriteHandler(tenant.Resolver{})
	now := time.Now().UnixMilli()
	require.Equal(t, http.StatusNoContent, post(t, h, snappyProto(t, makeV1(15, now)), nil).Code)
	rec := post(t, h, snappyProto(t, makeV1(15, now+1)), nil)
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	require.Contains(t, rec.Body.String(), "-distributor.ingestion-rate-limit")
}

func TestIngesterRejectionsAreReported(t *testing.T) {
	d, ings := newTestDistributor(t, 1, 1, defaultLimits())
	ings[0].resp = &client.PushResponse{Rejected: map[string]int{"series_limit": 1}, FirstError: "per-tenant series limit of 1 reached (-ingester.max-global-series-per-tenant)", LimitError: true}
	rec := post(t, d.RemoteWriteHandler(tenant.Resolver{}), snappyProto(t, makeV1(2, time.Now().UnixMilli())), nil)
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), "-ingester.max-global-series-per-tenant")
	require.Contains(t, rec.Body.String(), "1 samples written, 1 samples rejected")
}

// TestIdleTenantStateIsDropped: a tenant that stopped pushing loses its rate
// limiter and per-tenant metric series after -distributor.idle-tenant-timeout;
// an active tenant keeps them.
func TestIdleTenantStateIsDropped(t *testing.T) {
	d, _ := newTestDistributor(t, 1, 1, defaultLimits())
	reg := prometheus.NewRegistry()
	d.metrics = newMetrics(reg)
	clock := time.Now()
	d.now = func() time.Time { return clock }
	h := d.RemoteWriteHandler(tenant.Resolver{Enabled: true})
	push := func(id string) {
		rec := post(t, h, snappyProto(t, makeV1(2, clock.UnixMilli())), map[string]string{tenant.Header: id})
		require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	}
	series := func(id string) int { return promtest.SeriesWithLabel(reg, "tenant", id) }
	push("team-a")
	clock = clock.Add(15 * time.Minute)
	push("team-b")
	require.Positive(t, series("team-a"))

	clock = clock.Add(10 * time.Minute) // team-a idle 25m, team-b 10m
	d.dropIdleTenants()
	require.Zero(t, series("team-a"))
	require.Positive(t, series("team-b"))
	d.limiters.mu.Lock()
	_, a := d.limiters.m["team-a"]
	_, b := d.limiters.m["team-b"]
	d.limiters.mu.Unlock()
	require.False(t, a, "team-a's limiter dropped")
	require.True(t, b, "team-b's limiter kept")
}

// TestShardingPlacesEachSeriesOnItsReplicas: with more ingesters than the
// replication factor, each series reaches exactly its ring replicas; with as
// many (the one-batch-per-instance path), every ingester gets every series.
func TestShardingPlacesEachSeriesOnItsReplicas(t *testing.T) {
	now := time.Now().UnixMilli()
	for _, tc := range []struct{ n, rf, perSeries int }{{3, 1, 1}, {4, 2, 2}, {3, 3, 3}, {2, 3, 2}} {
		t.Run(fmt.Sprintf("%d ingesters rf %d", tc.n, tc.rf), func(t *testing.T) {
			d, ings := newTestDistributor(t, tc.n, tc.rf, defaultLimits())
			require.Equal(t, tc.n <= tc.rf, d.everyKeyOnEveryInstance())
			_, err := d.Push(context.Background(), "t1", FromV1(makeV1(200, now)))
			require.NoError(t, err)
			// The push returns at the quorum; the last replica may still be
			// writing.
			require.Eventually(t, func() bool {
				copies := map[string]int{}
				for _, ing := range ings {
					ing.mu.Lock()
					for s := range ing.series {
						copies[s]++
					}
					ing.mu.Unlock()
				}
				for _, n := range copies {
					if n != tc.perSeries {
						return false
					}
				}
				return len(copies) == 200
			}, 5*time.Second, 10*time.Millisecond, "every series on exactly %d ingesters", tc.perSeries)
			if tc.n > tc.rf {
				for i, ing := range ings {
					ing.mu.Lock()
					defer ing.mu.Unlock()
					require.NotEmpty(t, ing.series, "ingester %d got none: the series were not spread", i)
					require.Less(t, len(ing.series), 200, "ingester %d got every series", i)
				}
			}
		})
	}
}

// TestPushNeverAnswersCanceledAfterQuorum: with replicas that answer at
// once, the pushes are done (and their context canceled by the batch's
// cleanup) before DoBatch looks at its context; a write that reached its
// quorum must still succeed. Sharing one context for both made some of
// these pushes a 503 "context canceled".
func TestPushNeverAnswersCanceledAfterQuorum(t *testing.T) {
	now := time.Now().UnixMilli()
	d, ings := newTestDistributor(t, 3, 3, defaultLimits())
	ings[2].fail = true // one replica down: the other two make the quorum
	for k := 0; k < 500; k++ {
		_, err := d.Push(context.Background(), "t1", FromV1(makeV1(1, now+int64(k))))
		require.NoError(t, err, "push %d", k)
	}
}
