package querier

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	promvalue "github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/util/teststorage"
	"github.com/stretchr/testify/require"
)

// TestFederate: /federate answers the latest sample of each selected
// series with the external labels; series stale or older than the
// lookback are left out; native histograms go out in protobuf.
func TestFederate(t *testing.T) {
	st := teststorage.New(t)
	now := time.UnixMilli(1_700_000_600_000)
	app := st.Appender(context.Background())
	add := func(ls labels.Labels, ts int64, v float64) {
		_, err := app.Append(0, ls, ts, v)
		require.NoError(t, err)
	}
	add(labels.FromStrings("__name__", "up", "job", "a"), now.UnixMilli()-60_000, 0)
	add(labels.FromStrings("__name__", "up", "job", "a"), now.UnixMilli()-15_000, 1)
	add(labels.FromStrings("__name__", "up", "job", "gone"), now.UnixMilli()-30_000, 1)
	add(labels.FromStrings("__name__", "up", "job", "gone"), now.UnixMilli()-15_000, math.Float64frombits(promvalue.StaleNaN))
	add(labels.FromStrings("__name__", "up", "job", "old"), now.UnixMilli()-3_600_000, 1)
	add(labels.FromStrings("__name__", "other", "job", "a"), now.UnixMilli()-15_000, 7)
	h := &histogram.Histogram{Count: 5, Sum: 12.5, Schema: 0, ZeroThreshold: 0.001, ZeroCount: 1, PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}}, PositiveBuckets: []int64{2, 0}}
	_, err := app.AppendHistogram(0, labels.FromStrings("__name__", "lat", "job", "a"), now.UnixMilli()-15_000, h, nil)
	require.NoError(t, err)
	require.NoError(t, app.Commit())

	var ext ExternalLabels
	require.NoError(t, ext.Set("cluster=eu-1"))
	srv := httptest.NewServer(FederateHandler(NewExternalLabelsQueryable(st, ext.Labels()), parser.NewParser(parser.Options{}), 5*time.Minute, func() time.Time { return now }))
	defer srv.Close()

	resp, err := http.Get(srv.URL + `?match[]=up&match[]={__name__="other"}&match[]=lat`)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "# TYPE other untyped\nother{cluster=\"eu-1\",job=\"a\"} 7 1700000585000\n# TYPE up untyped\nup{cluster=\"eu-1\",job=\"a\"} 1 1700000585000\n", string(body))

	req, _ := http.NewRequest(http.MethodGet, srv.URL+`?match[]={cluster="eu-1",__name__="lat"}`, nil)
	req.Header.Set("Accept", `application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited`)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	dec := expfmt.NewDecoder(resp.Body, expfmt.NewFormat(expfmt.TypeProtoDelim))
	var mf dto.MetricFamily
	require.NoError(t, dec.Decode(&mf))
	require.Equal(t, "lat", mf.GetName())
	require.Equal(t, dto.MetricType_HISTOGRAM, mf.GetType())
	got := mf.Metric[0].GetHistogram()
	require.Equal(t, 5.0, got.GetSampleCountFloat())
	require.Equal(t, 12.5, got.GetSampleSum())
	require.Equal(t, []float64{2, 2}, got.GetPositiveCount())
	require.Equal(t, "cluster", mf.Metric[0].Label[0].GetName())

	resp, err = http.Get(srv.URL + `?match[]={cluster="us-1"}`)
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Empty(t, string(body), "another cluster's selector selects nothing here")
	for _, bad := range []string{"", "?match[]=up{", "?match[]={}"} {
		resp, err = http.Get(srv.URL + bad)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, bad)
	}
}
