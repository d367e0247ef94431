package metrics

import (
	"context"
	"errors"
	"fmt"
	"github.com/go-kit/log/level"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/storage"

	"github.com/canopy-observability/canopy/pkg/ingester/client"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// Rejection reasons reported to distributors and counted in metrics.
const (
	ReasonOutOfOrder  = "out_of_order"
	ReasonTooOld      = "too_old"
	ReasonDuplicate   = "duplicate_timestamp"
	ReasonSeriesLimit = "series_limit"
	ReasonInvalid     = "invalid"
)

// Push appends a request's series to the tenant's TSDB. Samples the TSDB
// rejects are counted and described in the response; the rest are committed.
func (i *Ingester) Push(ctx context.Context, req *writev2.Request) (*client.PushResponse, error) {
	i.metrics.pushes.Inc()
	id, err := tenant.ID(ctx)
	if err != nil {
		return nil, err
	}
	db, release, err := i.acquire(id, true)
	if err != nil {
		i.metrics.pushErrors.Inc()
		return nil, i.internalError("opening the TSDB", id, err)
	}
	defer release()
	db.lastPush.Store(i.now().UnixNano())
	resp := &client.PushResponse{}
	reject := func(reason string, err error, lbls labels.Labels) {
		if resp.Rejected == nil {
			resp.Rejected = map[string]int{}
		}
		resp.Rejected[reason]++
		if resp.FirstError == "" {
			resp.FirstError = describe(reason, err, lbls)
		}
		if reason == ReasonSeriesLimit {
			resp.LimitError = true
		}
	}

	app := db.AppenderV2(ctx)
	var (
		b         labels.ScratchBuilder
		appended  int
		exemplars int
		exBuf     []exemplar.Exemplar
	)
	for idx := range req.Timeseries {
		ts := &req.Timeseries[idx]
		// A series the head has is appended by reference, with the head's
		// own labels; only a new one has its labels built.
		key, inRange := hashRefs(ts.LabelsRefs, req.Symbols)
		lbls, ref, cached := labels.EmptyLabels(), storage.SeriesRef(0), false
		if inRange {
			lbls, ref, cached = db.refs.get(key, ts.LabelsRefs, req.Symbols)
		}
		if !cached {
			if lbls, err = ts.ToLabels(&b, req.Symbols); err != nil {
				reject(ReasonInvalid, err, labels.EmptyLabels())
				continue
			}
		}
		known := ref
		// md's strings are the request's: the head keeps none of them (its
		// metadata WAL records are off), the metadata store copies them.
		md, err := ts.ToMetadata(req.Symbols)
		if err == nil && (md.Type != "" && md.Type != "unknown" || md.Help != "" || md.Unit != "") {
			db.metadata.add(lbls.Get(labels.MetricName), md)
		}
		exBuf = exBuf[:0]
		for _, e := range ts.Exemplars {
			ex, err := e.ToExemplar(&b, req.Symbols)
			if err != nil {
				resp.RejectedExemplars++
				continue
			}
			exBuf = append(exBuf, ex)
		}
		// Exemplars ride on the last sample of the series in this request.
		last := len(ts.Samples) + len(ts.Histograms) - 1
		n := 0
		opts := func() storage.AppendV2Options {
			o := storage.AppendV2Options{Metadata: md}
			if n == last && len(exBuf) > 0 {
				o.Exemplars = exBuf
			}
			n++
			return o
		}
		for _, s := range ts.Samples {
			o := opts()
			r, err := app.Append(ref, lbls, s.StartTimestamp, s.Timestamp, s.Value, nil, nil, o)
			exemplars += i.handleAppend(err, &ref, r, lbls, len(o.Exemplars), resp, reject, &appended)
		}
		for _, h := range ts.Histograms {
			o := opts()
			var r storage.SeriesRef
			if h.IsFloatHistogram() {
				r, err = app.Append(ref, lbls, h.StartTimestamp, h.Timestamp, 0, nil, h.ToFloatHistogram(), o)
			} else {
				r, err = app.Append(ref, lbls, h.StartTimestamp, h.Timestamp, 0, h.ToIntHistogram(), nil, o)
			}
			exemplars += i.handleAppend(err, &ref, r, lbls, len(o.Exemplars), resp, reject, &appended)
		}
		if ref != known && inRange {
			db.refs.put(key, lbls, ref)
		}
	}
	if err := app.Commit(); err != nil {
		i.metrics.pushErrors.Inc()
		return nil, i.internalError("committing to the TSDB", id, err)
	}
	i.metrics.appendedSamples.WithLabelValues(id).Add(float64(appended))
	i.metrics.appendedExemplars.WithLabelValues(id).Add(float64(exemplars))
	for reason, n := range resp.Rejected {
		i.metrics.rejectedSamples.WithLabelValues(id, reason).Add(float64(n))
	}
	return resp, nil
}

// handleAppend records the outcome of one Append and returns how many
// exemplars were stored with it.
func (i *Ingester) handleAppend(err error, ref *storage.SeriesRef, r storage.SeriesRef, lbls labels.Labels, nEx int, resp *client.PushResponse, reject func(string, error, labels.Labels), appended *int) int {
	if err != nil {
		// Declared here: errors.As takes its address, which would put it on
		// the heap on every append, failed or not.
		var partial *storage.AppendPartialError
		if !errors.As(err, &partial) {
			reject(reason(err), err, lbls)
			return 0
		}
		resp.RejectedExemplars += len(partial.ExemplarErrors)
		nEx -= len(partial.ExemplarErrors)
	}
	*ref = r
	*appended++
	return nEx
}

func reason(err error) string {
	var limit errSeriesLimit
	switch {
	case errors.As(err, &limit):
		return ReasonSeriesLimit
	case errors.Is(err, storage.ErrOutOfOrderSample):
		return ReasonOutOfOrder
	case errors.Is(err, storage.ErrOutOfBounds), errors.Is(err, storage.ErrTooOldSample):
		return ReasonTooOld
	case errors.Is(err, storage.ErrDuplicateSampleForTimestamp):
		return ReasonDuplicate
	}
	return ReasonInvalid
}

func describe(reason string, err error, lbls labels.Labels) string {
	series := lbls.String()
	switch reason {
	case ReasonOutOfOrder:
		return fmt.Sprintf("sample out of order for series %s: older than the series' newest sample by more than the out-of-order window (raise -ingester.out-of-order-time-window)", series)
	case ReasonTooOld:
		return fmt.Sprintf("sample too old for series %s: before the oldest time the ingester still accepts (raise -ingester.out-of-order-time-window)", series)
	case ReasonDuplicate:
		return fmt.Sprintf("sample for series %s has the timestamp of an existing sample with a different value", series)
	case ReasonSeriesLimit:
		return fmt.Sprintf("series %s not created: %v", series, err)
	}
	return fmt.Sprintf("series %s: %v", series, err)
}

// internalError logs what failed with its details (paths of this server
// among them) and returns an error for the client that names the tenant and
// the step only: a server's file system layout is none of its business.
func (i *Ingester) internalError(step, tenantID string, err error) error {
	level.Error(i.logger).Log("msg", step+" failed", "tenant", tenantID, "err", err)
	return fmt.Errorf("ingester %s: %s of tenant %s failed; the ingester's log has the details", i.lifecycler.ID, step, tenantID)
}
