package metrics

import (
	"context"
	"fmt"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote"

	"github.com/canopy-observability/canopy/pkg/ingester/client"
	"github.com/canopy-observability/canopy/pkg/rpc"
	"github.com/canopy-observability/canopy/pkg/util/queryshard"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// readTSDB returns the database of the tenant in ctx for a read, held until
// release (which is never nil); db is nil when the tenant has none.
func (i *Ingester) readTSDB(ctx context.Context) (db *userTSDB, release func(), err error) {
	id, err := tenant.ID(ctx)
	if err != nil {
		return nil, func() {}, err
	}
	return i.acquire(id, false)
}

// QueryStream streams the tenant's series matching q as XOR/histogram chunks
// in Prometheus's streamed remote-read framing.
func (i *Ingester) QueryStream(q *prompb.Query, stream client.FrameSender) error {
	ctx := stream.Context()
	db, release, err := i.readTSDB(ctx)
	defer release()
	if err != nil || db == nil {
		return err
	}
	matchers, err := remote.FromLabelMatchers(q.Matchers)
	if err != nil {
		return fmt.Errorf("query matchers: %w", err)
	}
	cq, err := db.ChunkQuerier(q.StartTimestampMs, q.EndTimestampMs)
	if err != nil {
		return err
	}
	defer cq.Close()
	// Chunks are sent whole: the querier drops samples outside the range as
	// it decodes them. Trimming would re-encode every chunk crossing the
	// range's start, and a re-encoded histogram chunk loses the counter reset
	// hint of its (new) first sample, which PromQL reads.
	hints := &storage.SelectHints{Start: q.StartTimestampMs, End: q.EndTimestampMs, DisableTrimming: true}
	if h := q.Hints; h != nil {
		hints.Step, hints.Func, hints.Grouping, hints.By, hints.Range = h.StepMs, h.Func, h.Grouping, h.By, h.RangeMs
	}
	if matchers, err = queryshard.Extract(matchers, hints); err != nil {
		return err
	}
	css := cq.Select(ctx, true, hints, matchers...)
	return rpc.StreamSeries(stream, css, i.cfg.MaxFrameBytes)
}

// labelQuerier returns a querier of the tenant's database, nil when it has
// none; closing it releases the database.
func (i *Ingester) labelQuerier(ctx context.Context, req *client.LabelsRequest) (storage.Querier, []*labels.Matcher, error) {
	matchers, err := client.ToMatchers(req.Matchers)
	if err != nil {
		return nil, nil, err
	}
	db, release, err := i.readTSDB(ctx)
	if err != nil || db == nil {
		release()
		return nil, nil, err
	}
	q, err := db.Querier(req.Start, req.End)
	if err != nil {
		release()
		return nil, nil, err
	}
	return releasingQuerier{Querier: q, release: release}, matchers, nil
}

// releasingQuerier releases its tenant's database when closed.
type releasingQuerier struct {
	storage.Querier
	release func()
}

func (q releasingQuerier) Close() error {
	defer q.release()
	return q.Querier.Close()
}

// LabelNames returns the tenant's label names.
func (i *Ingester) LabelNames(ctx context.Context, req *client.LabelsRequest) (*client.LabelsResponse, error) {
	q, matchers, err := i.labelQuerier(ctx, req)
	if err != nil || q == nil {
		return &client.LabelsResponse{}, err
	}
	defer q.Close()
	names, annots, err := q.LabelNames(ctx, &storage.LabelHints{Limit: req.Limit}, matchers...)
	if err != nil {
		return nil, err
	}
	return &client.LabelsResponse{Values: names, Warnings: warnings(annots.AsErrors())}, nil
}

// LabelValues returns the tenant's values of one label.
func (i *Ingester) LabelValues(ctx context.Context, req *client.LabelsRequest) (*client.LabelsResponse, error) {
	q, matchers, err := i.labelQuerier(ctx, req)
	if err != nil || q == nil {
		return &client.LabelsResponse{}, err
	}
	defer q.Close()
	values, annots, err := q.LabelValues(ctx, req.Name, &storage.LabelHints{Limit: req.Limit}, matchers...)
	if err != nil {
		return nil, err
	}
	return &client.LabelsResponse{Values: values, Warnings: warnings(annots.AsErrors())}, nil
}

func warnings(errs []error) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

// Exemplars returns the tenant's exemplars.
func (i *Ingester) Exemplars(ctx context.Context, req *client.ExemplarsRequest) (*client.ExemplarsResponse, error) {
	db, release, err := i.readTSDB(ctx)
	defer release()
	if err != nil || db == nil {
		return &client.ExemplarsResponse{}, err
	}
	sets := make([][]*labels.Matcher, 0, len(req.Matchers))
	for _, ms := range req.Matchers {
		m, err := client.ToMatchers(ms)
		if err != nil {
			return nil, err
		}
		sets = append(sets, m)
	}
	eq, err := db.ExemplarQuerier(ctx)
	if err != nil {
		return nil, err
	}
	res, err := eq.Select(req.Start, req.End, sets...)
	if err != nil {
		return nil, err
	}
	return client.FromExemplarResults(res), nil
}

// Metadata returns the tenant's metric metadata.
func (i *Ingester) Metadata(ctx context.Context, req *client.MetadataRequest) (*client.MetadataResponse, error) {
	db, release, err := i.readTSDB(ctx)
	defer release()
	if err != nil || db == nil {
		return &client.MetadataResponse{}, err
	}
	return &client.MetadataResponse{Metadata: db.metadata.get(req.Metric, req.Limit, req.LimitPerMetric)}, nil
}
