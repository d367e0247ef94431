package querier

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafana/dskit/flagext"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"

	httpapi "github.com/canopy-observability/canopy/pkg/api"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// limitsAPI is the querier's HTTP API over a block of 10 series with a
// sample every 15s in [base, base+2h), under the tenant's limits lim.
func limitsAPI(t *testing.T, lim validation.Limits, now time.Time) *API {
	t.Helper()
	b := openTestBlock(t, testSeries(10, base, base+2*hour, nil))
	var defaults validation.Limits
	flagext.DefaultValues(&defaults)
	lq := NewLimitedQueryable(storage.QueryableFunc(func(mint, maxt int64) (storage.Querier, error) {
		return tsdb.NewBlockQuerier(b, mint, maxt)
	}), validation.NewStaticOverrides(defaults, map[string]*validation.Limits{tenantID: &lim}))
	lq.now = func() time.Time { return now }
	var cfg Config
	flagext.DefaultValues(&cfg)
	reg := prometheus.NewRegistry()
	return NewAPI(cfg, NewEngine(cfg, promslog.NewNopLogger(), reg), lq, nil, nil, validation.NewStaticOverrides(defaults, map[string]*validation.Limits{tenantID: &lim}), promslog.NewNopLogger(), reg, reg)
}

type apiResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
		} `json:"result"`
	} `json:"data"`
}

// queryRange asks api for query over [start, end] (milliseconds) at step.
func queryRange(t *testing.T, api *API, query string, start, end int64, step time.Duration) (*httptest.ResponseRecorder, apiResponse) {
	t.Helper()
	params := url.Values{
		"query": {query},
		"start": {strconv.FormatInt(start/1000, 10)},
		"end":   {strconv.FormatInt(end/1000, 10)},
		"step":  {strconv.Itoa(int(step.Seconds()))},
	}
	req := httptest.NewRequest(http.MethodGet, httpapi.PrefixPrometheusV1+"query_range?"+params.Encode(), nil)
	req = req.WithContext(user.InjectOrgID(context.Background(), tenantID))
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, req)
	var res apiResponse
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &res), rec.Body.String())
	return rec, res
}

// TestFetchedLimits checks that a query reading more series or samples
// than the tenant's limits fails with 422 and an error naming the limit and
// its flag, and that one within them answers and reports what it read.
func TestFetchedLimits(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxSeries  int
		maxSamples int
		query      string
		wantErr    string
		// The fetched headers of an answer; samples are counted only under
		// a sample limit.
		wantSeries, wantSamples string
	}{
		{
			name: "no limits", query: "up", wantSeries: "10",
		},
		{
			name: "within both limits", maxSeries: 10, maxSamples: 10 * 480, query: "up",
			wantSeries: "10", wantSamples: "4800",
		},
		{
			name: "more series than max_fetched_series_per_query", maxSeries: 5, query: "up",
			wantErr: "the query read more than 5 series, the tenant's limit max_fetched_series_per_query (-querier.max-fetched-series-per-query)",
		},
		{
			name: "a narrower selector within max_fetched_series_per_query", maxSeries: 5, query: `up{i=~"[1-5]"}`,
			wantSeries: "5",
		},
		{
			name: "more samples than max_fetched_samples_per_query", maxSamples: 1000, query: "up",
			wantErr: "the query read more than 1000 samples, the tenant's limit max_fetched_samples_per_query (-querier.max-fetched-samples-per-query)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var lim validation.Limits
			flagext.DefaultValues(&lim)
			lim.MaxFetchedSeriesPerQuery, lim.MaxFetchedSamplesPerQuery = tc.maxSeries, tc.maxSamples
			api := limitsAPI(t, lim, time.UnixMilli(base+2*hour))
			rec, res := queryRange(t, api, tc.query, base, base+2*hour, time.Minute)
			if tc.wantErr != "" {
				require.Equal(t, http.StatusUnprocessableEntity, rec.Code, rec.Body.String())
				require.Equal(t, "execution", res.ErrorType)
				require.Contains(t, res.Error, tc.wantErr)
				return
			}
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			require.Equal(t, tc.wantSeries, rec.Header().Get(FetchedSeriesHeader))
			require.Len(t, res.Data.Result, mustAtoi(t, tc.wantSeries))
			require.Equal(t, tc.wantSamples, rec.Header().Get(FetchedSamplesHeader))
		})
	}
}

// TestMaxQueryLookback checks that no data older than max_query_lookback
// is read: a query older than it answers nothing, one across it only from
// it on.
func TestMaxQueryLookback(t *testing.T) {
	now := base + 2*hour
	for _, tc := range []struct {
		name       string
		lookback   time.Duration
		start, end int64
		// wantFirst and wantPoints describe the answer at a 5m step: the
		// first point's time, how many there are (0: none).
		wantFirst  int64
		wantPoints int
	}{
		{name: "no limit", start: base, end: now, wantFirst: base, wantPoints: 25},
		{name: "across max_query_lookback", lookback: time.Hour, start: base, end: now, wantFirst: now - hour, wantPoints: 13},
		{name: "older than max_query_lookback", lookback: time.Hour, start: base, end: base + 30*60_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var lim validation.Limits
			flagext.DefaultValues(&lim)
			lim.MaxQueryLookback = model.Duration(tc.lookback)
			api := limitsAPI(t, lim, time.UnixMilli(now))
			rec, res := queryRange(t, api, `up{i="3"}`, tc.start, tc.end, 5*time.Minute)
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			if tc.wantPoints == 0 {
				require.Empty(t, res.Data.Result)
				return
			}
			require.Len(t, res.Data.Result, 1)
			values := res.Data.Result[0].Values
			require.Len(t, values, tc.wantPoints)
			require.Equal(t, float64(tc.wantFirst)/1000, values[0][0])
		})
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}

// TestQueryExpressionBounds: an expression too long or too deeply nested is
// refused with 400 naming the limit before Prometheus's parser sees it (the
// 3 MiB of minus signs and the million parentheses of an attacker), also
// when sent as a huge POST body.
func TestQueryExpressionBounds(t *testing.T) {
	var lim validation.Limits
	flagext.DefaultValues(&lim)
	api := limitsAPI(t, lim, time.UnixMilli(base+2*hour))
	for name, tc := range map[string]struct {
		query string
		code  int
		msg   string
	}{
		"ordinary":       {"sum(x)", http.StatusOK, ""},
		"3 MiB of minus": {strings.Repeat("-", 3<<20) + "1", http.StatusBadRequest, "max_query_expression_size_bytes"},
		"deep nesting":   {strings.Repeat("(", 100_000) + "1" + strings.Repeat(")", 100_000), http.StatusBadRequest, "max_query_expression_size_bytes"},
		"nesting, small": {strings.Repeat("(", 300) + "1" + strings.Repeat(")", 300), http.StatusBadRequest, "max_query_expression_depth"},
		"unary run":      {strings.Repeat("-", 300) + "1", http.StatusBadRequest, "max_query_expression_depth"},
	} {
		t.Run(name, func(t *testing.T) {
			form := url.Values{"query": {tc.query}, "start": {strconv.FormatInt(base/1000, 10)}, "end": {strconv.FormatInt((base+hour)/1000, 10)}, "step": {"60"}}
			req := httptest.NewRequest(http.MethodPost, httpapi.PrefixPrometheusV1+"query_range", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req = req.WithContext(user.InjectOrgID(context.Background(), tenantID))
			rec := httptest.NewRecorder()
			api.ServeHTTP(rec, req)
			require.Equal(t, tc.code, rec.Code, rec.Body.String()[:min(200, rec.Body.Len())])
			require.Contains(t, rec.Body.String(), tc.msg)
		})
	}
}

// TestTSDBEndpointsAreNotImplemented: Prometheus's single-TSDB status and
// admin endpoints answer 501 saying so, not 500 "not supported".
func TestTSDBEndpointsAreNotImplemented(t *testing.T) {
	var lim validation.Limits
	flagext.DefaultValues(&lim)
	api := limitsAPI(t, lim, time.UnixMilli(base+2*hour))
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "status/tsdb"},
		{http.MethodPost, "admin/tsdb/snapshot"},
		{http.MethodPost, "admin/tsdb/delete_series"},
		{http.MethodPost, "admin/tsdb/clean_tombstones"},
	} {
		req := httptest.NewRequest(tc.method, httpapi.PrefixPrometheusV1+tc.path, nil)
		req = req.WithContext(user.InjectOrgID(context.Background(), tenantID))
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		require.Equal(t, http.StatusNotImplemented, rec.Code, tc.path)
		require.Contains(t, rec.Body.String(), "not implemented by Canopy", tc.path)
	}
}
