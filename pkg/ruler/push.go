package ruler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"

	"github.com/canopy-observability/canopy/pkg/util/promjson"
)

// Pusher writes a tenant's samples: the distributor.
type Pusher func(ctx context.Context, tenant string, req *writev2.Request) error

// pushAppendable is the rules manager's storage: each group's evaluation
// (recording rules, ALERTS, ALERTS_FOR_STATE) is one push of the tenant's
// samples through the distributor, at Commit.
type pushAppendable struct {
	push   Pusher
	tenant string
}

func (a pushAppendable) Appender(ctx context.Context) storage.Appender {
	return &pushAppender{ctx: ctx, push: a.push, tenant: a.tenant, st: writev2.NewSymbolTable()}
}

type pushAppender struct {
	ctx    context.Context
	push   Pusher
	tenant string
	st     writev2.SymbolsTable
	series []writev2.TimeSeries
}

func (a *pushAppender) Append(_ storage.SeriesRef, l labels.Labels, t int64, v float64) (storage.SeriesRef, error) {
	a.series = append(a.series, writev2.TimeSeries{LabelsRefs: a.st.SymbolizeLabels(l, nil), Samples: []writev2.Sample{{Value: v, Timestamp: t}}})
	return 0, nil
}

func (a *pushAppender) AppendHistogram(_ storage.SeriesRef, l labels.Labels, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	ts := writev2.TimeSeries{LabelsRefs: a.st.SymbolizeLabels(l, nil)}
	if h != nil {
		ts.Histograms = []writev2.Histogram{writev2.FromIntHistogram(0, t, h)}
	} else {
		ts.Histograms = []writev2.Histogram{writev2.FromFloatHistogram(0, t, fh)}
	}
	a.series = append(a.series, ts)
	return 0, nil
}

func (a *pushAppender) Commit() error {
	if len(a.series) == 0 {
		return nil
	}
	req := &writev2.Request{Symbols: a.st.Symbols(), Timeseries: a.series}
	a.series = nil
	return a.push(a.ctx, a.tenant, req)
}

func (a *pushAppender) Rollback() error { a.series = nil; return nil }

func (*pushAppender) SetOptions(*storage.AppendOptions) {}

func (*pushAppender) AppendExemplar(storage.SeriesRef, labels.Labels, exemplar.Exemplar) (storage.SeriesRef, error) {
	return 0, nil
}

func (*pushAppender) AppendHistogramSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, nil
}

func (*pushAppender) UpdateMetadata(storage.SeriesRef, labels.Labels, metadata.Metadata) (storage.SeriesRef, error) {
	return 0, nil
}

func (*pushAppender) AppendSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64) (storage.SeriesRef, error) {
	return 0, nil
}

// HTTPQuery returns the rule query function of a tenant that asks a
// Prometheus HTTP API: handler() in this process (a query-frontend or
// querier; nil when there is none yet), or base's over HTTP when base is
// set. Rules go through the query-frontend's path: split, sharded and
// cached as any query.
func HTTPQuery(base string, client *http.Client, handler func() http.Handler) func(tenant string) rules.QueryFunc {
	return func(tenant string) rules.QueryFunc {
		return func(ctx context.Context, q string, t time.Time) (promql.Vector, error) {
			form := url.Values{"query": {q}, "time": {strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64)}}
			code, body, err := ask(ctx, base, "/prometheus/api/v1/query", tenant, form, client, handler)
			if err != nil {
				return nil, err
			}
			var env promjson.Response
			if err := json.Unmarshal(body, &env); err != nil {
				return nil, fmt.Errorf("HTTP %d from the query path: %.200s", code, body)
			}
			if env.Status != "success" {
				return nil, fmt.Errorf("%s: %s", env.ErrorType, env.Error)
			}
			return promjson.DecodeInstant(env.Data)
		}
	}
}

// ask POSTs form to path of the query path as tenant: to base over HTTP,
// or, with no base, to handler() in this process.
func ask(ctx context.Context, base, path, tenant string, form url.Values, client *http.Client, handler func() http.Handler) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+path, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Scope-OrgID", tenant)
	if base == "" {
		h := handler()
		if h == nil {
			return 0, nil, errors.New("no query path in this process: run a querier or query-frontend beside the ruler, or set -ruler.query-frontend-url")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.Bytes(), nil
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	return resp.StatusCode, body, err
}
