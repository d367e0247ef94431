package metrics

import (
	"context"
	"flag"
	"strconv"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/services"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// TestReloadedLimitsReachOpenTenants: a runtime override of
// out_of_order_time_window and of the exemplar limit takes effect for a
// tenant whose TSDB is already open.
func TestReloadedLimitsReachOpenTenants(t *testing.T) {
	defaults := defaultLimits()
	teamA := defaults
	teamA.OutOfOrderTimeWindow = 0
	teamA.MaxGlobalExemplars = 10
	overrides := validation.NewStaticOverrides(defaults, map[string]*validation.Limits{"team-a": &teamA})

	var cfg Config
	cfg.RegisterFlags(flag.NewFlagSet("", flag.PanicOnError))
	cfg.Ring.Store = ringconfig.StoreInMemory
	cfg.Ring.HeartbeatPeriod = 100 * time.Millisecond
	dir := t.TempDir()
	i, err := New(cfg, dir, dir+".tokens", ringconfig.Instance{ID: "limits-test", Addr: "127.0.0.1", Port: 9095}, overrides, nil, nil, log.NewNopLogger(), nil)
	require.NoError(t, err)
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), i))
	defer func() { require.NoError(t, services.StopAndAwaitTerminated(context.Background(), i)) }()

	ctx := user.InjectOrgID(context.Background(), "team-a")
	now := time.Now().UnixMilli()
	_, err = i.Push(ctx, request(now, "x"))
	require.NoError(t, err)
	resp, err := i.Push(ctx, request(now-time.Minute.Milliseconds(), "x"))
	require.NoError(t, err)
	require.Equal(t, map[string]int{ReasonOutOfOrder: 1}, resp.Rejected, "no out-of-order window yet")
	require.Equal(t, 10, pushExemplars(t, i, ctx, now, 20), "the exemplar store holds 10")

	// The overrides file is reloaded with a window and more exemplars.
	teamA.OutOfOrderTimeWindow = model.Duration(time.Hour)
	teamA.MaxGlobalExemplars = 500
	i.applyLimits()

	resp, err = i.Push(ctx, request(now-2*time.Minute.Milliseconds(), "x"))
	require.NoError(t, err)
	require.Empty(t, resp.Rejected, "the reloaded window applies to the open tenant")
	require.Equal(t, 30, pushExemplars(t, i, ctx, now+1000, 20), "the store grew to 500: the 10 kept and 20 new")
}

// pushExemplars pushes one exemplar on each of n new series at ts and
// returns how many exemplars the tenant's store holds.
func pushExemplars(t *testing.T, i *Ingester, ctx context.Context, ts int64, n int) int {
	t.Helper()
	st := writev2.NewSymbolTable()
	req := &writev2.Request{}
	for k := 0; k < n; k++ {
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "ex", "k", strconv.Itoa(k), "ts", strconv.FormatInt(ts, 10)), nil),
			Samples:    []writev2.Sample{{Value: 1, Timestamp: ts}},
			Exemplars:  []writev2.Exemplar{{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("trace_id", "t"+strconv.Itoa(k)), nil), Value: 1, Timestamp: ts}},
		})
	}
	req.Symbols = st.Symbols()
	_, err := i.Push(ctx, req)
	require.NoError(t, err)
	q, err := i.getTSDB("team-a").ExemplarQuerier(ctx)
	require.NoError(t, err)
	res, err := q.Select(0, ts+1, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "ex")})
	require.NoError(t, err)
	total := 0
	for _, r := range res {
		total += len(r.Exemplars)
	}
	return total
}
