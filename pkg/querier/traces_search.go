package querier

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/user"
	"github.com/oklog/ulid/v2"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/canopy-observability/canopy/pkg/ingester/tracesclient"
	"github.com/canopy-observability/canopy/pkg/rpc/tracespb"
	"github.com/canopy-observability/canopy/pkg/storage/traceblock"
	"github.com/canopy-observability/canopy/pkg/tempoapi"
	"github.com/canopy-observability/canopy/pkg/traceql"
)

// defaultTagsWindow is the range tags and tag values look at when a
// request gives none.
const defaultTagsWindow = time.Hour

// candidate is a trace a source matched.
type candidate struct {
	id    [16]byte
	start uint64
}

// traceVisitor is given the traces a scan finds, one at a time, until it
// returns false.
type traceVisitor func(id [16]byte, td ptrace.Traces) bool

// scanIngesters calls fn with every trace the traces ingesters hold in
// [start, end] that query matches as the ingester holds it (every trace
// when query is empty); a trace replicas hold is given once per replica.
func (t *Traces) scanIngesters(ctx context.Context, tenantID string, start, end int64, query string, fn traceVisitor) error {
	rs, err := t.ring.GetReplicationSetForOperation(ring.Read)
	if err != nil {
		return fmt.Errorf("finding traces ingesters to query: %w", err)
	}
	ctx = user.InjectOrgID(ctx, tenantID)
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		stop bool
	)
	for _, inst := range rs.Instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := func() error {
				f, err := t.finder(inst.Addr)
				if err != nil {
					return err
				}
				ctx, cancel := context.WithCancel(ctx)
				defer cancel()
				recv, err := f.Scan(ctx, &tracespb.ScanRequest{StartUnixNano: start, EndUnixNano: end, Query: query})
				if err != nil {
					return err
				}
				var u ptrace.ProtoUnmarshaler
				for {
					b, err := recv()
					if errors.Is(err, io.EOF) {
						return nil
					}
					if err != nil {
						return err
					}
					for _, tr := range b.Traces {
						td, err := u.UnmarshalTraces(tr.Spans)
						if err != nil || len(tr.TraceId) != 16 {
							return fmt.Errorf("a trace that does not decode: %v", err)
						}
						mu.Lock()
						more := !stop && fn([16]byte(tr.TraceId), td)
						stop = stop || !more
						mu.Unlock()
						if !more {
							return nil
						}
					}
				}
			}()
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("traces ingester %s (%s): %w", inst.Id, inst.Addr, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > rs.MaxErrors {
		return errors.Join(errs...)
	}
	return nil
}

// scanBlocks calls fn with every trace of the tenant's blocks meeting
// [start, end] (and matching query, when set and the blocks are read by
// store-gateways; fn gets at least those otherwise), newest block first,
// until fn returns false or done says the blocks left (whose newest span
// ends at the given time) need not be read. With a limit (and a query),
// store-gateways send each block's newest limit matches only.
func (t *Traces) scanBlocks(ctx context.Context, tenantID string, start, end int64, query string, limit int, fn traceVisitor, done func(nextMaxTime int64) bool) (blocks int, err error) {
	if t.bkt == nil {
		return 0, nil
	}
	metas, err := t.blockMetas(ctx, tenantID)
	if err != nil {
		return 0, err
	}
	var flt *traceblock.Filter
	if query != "" && t.gateways == nil {
		q, err := traceql.Parse(query)
		if err == nil {
			flt, err = traceblock.NewFilter(q)
		}
		if err != nil {
			return 0, fmt.Errorf("%w: %v", tempoapi.ErrBadRequest, err)
		}
	}
	metas = slices.Clone(metas)
	slices.SortFunc(metas, func(a, b traceblock.Meta) int { return cmp.Compare(b.MaxTime, a.MaxTime) })
	for _, m := range metas {
		if m.MaxTime < start || m.MinTime > end {
			continue
		}
		if done != nil && done(m.MaxTime) {
			break
		}
		if t.gateways != nil {
			more, err := t.scanGateway(ctx, tenantID, m.ULID, start, end, query, limit, fn)
			if err != nil {
				return blocks, err
			}
			blocks++
			if !more {
				break
			}
			continue
		}
		b, err := t.openBlock(ctx, tenantID, m)
		if err != nil {
			return blocks, err
		}
		blocks++
		more := true
		if err := b.Scan(ctx, start, end, flt, func(id [16]byte, td ptrace.Traces) bool {
			more = fn(id, td)
			return more
		}); err != nil {
			return blocks, err
		}
		if !more {
			break
		}
	}
	return blocks, nil
}

// scanGateway scans one block through a store-gateway owning it; it says
// whether fn wants more.
func (t *Traces) scanGateway(ctx context.Context, tenantID string, block ulid.ULID, start, end int64, query string, limit int, fn traceVisitor) (bool, error) {
	ctx = user.InjectOrgID(ctx, tenantID)
	more := true
	err := forBlockOwners(ctx, t.gateways.Ring, "trace", []ulid.ULID{block}, func(ctx context.Context, inst ring.InstanceDesc, ids []string) error {
		req := &tracespb.ScanRequest{StartUnixNano: start, EndUnixNano: end, Query: query, BlockIds: ids, Limit: uint32(limit)}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var u ptrace.ProtoUnmarshaler
		visit := func(b *tracespb.ScanBatch) error {
			for _, tr := range b.Traces {
				td, err := u.UnmarshalTraces(tr.Spans)
				if err != nil || len(tr.TraceId) != 16 {
					return fmt.Errorf("a trace that does not decode: %v", err)
				}
				if more = fn([16]byte(tr.TraceId), td); !more {
					return errStopScan
				}
			}
			return nil
		}
		var err error
		if local := t.gatewayLocal(inst); local != nil {
			err = local.Scan(req, localBatches{ctx, visit})
		} else {
			var c *tracesclient.Client
			if c, err = t.gateways.Client(inst.Addr); err != nil {
				return err
			}
			var recv func() (*tracespb.ScanBatch, error)
			if recv, err = c.Scan(ctx, req); err != nil {
				return err
			}
			for err == nil {
				var b *tracespb.ScanBatch
				if b, err = recv(); err == nil {
					err = visit(b)
				}
			}
			if errors.Is(err, io.EOF) {
				err = nil
			}
		}
		if errors.Is(err, errStopScan) {
			return nil
		}
		return err
	})
	return more, err
}

// errStopScan ends a scan the visitor has had enough of.
var errStopScan = errors.New("scan stopped")

// localBatches hands the batches of an in-process store-gateway's scan to
// visit.
type localBatches struct {
	ctx   context.Context
	visit func(*tracespb.ScanBatch) error
}

func (l localBatches) Context() context.Context         { return l.ctx }
func (l localBatches) Send(b *tracespb.ScanBatch) error { return l.visit(b) }

// timeRange is a request's range in Unix ns; zero times are the last
// window before now.
func (t *Traces) timeRange(start, end time.Time, window time.Duration) (int64, int64) {
	if start.IsZero() || end.IsZero() {
		now := t.now()
		return now.Add(-window).UnixNano(), now.UnixNano()
	}
	return start.UnixNano(), end.UnixNano()
}

// searchWindow is how far back a search without a range looks.
const searchWindow = 24 * time.Hour

// Search runs a TraceQL search: every trace of the range the query
// matches, newest first (by the trace's start), at most req.Limit. Each
// source's traces are evaluated as that source holds them; the traces
// kept are then read whole (TraceByID) and evaluated again, so that
// spansets and root names see every span.
func (t *Traces) Search(ctx context.Context, tenantID string, req tempoapi.SearchRequest) (tempoapi.SearchResponse, error) {
	q, err := traceql.Parse(req.Query)
	if err != nil {
		return tempoapi.SearchResponse{}, fmt.Errorf("%w: %v", tempoapi.ErrBadRequest, err)
	}
	if q.IsMetrics() {
		return tempoapi.SearchResponse{}, fmt.Errorf("%w: %q is a metrics query: send it to /api/metrics/query_range", tempoapi.ErrBadRequest, req.Query)
	}
	ev, err := traceql.NewEvaluator(q)
	if err != nil {
		return tempoapi.SearchResponse{}, fmt.Errorf("%w: %v", tempoapi.ErrBadRequest, err)
	}
	start, end := t.timeRange(req.Start, req.End, searchWindow)
	limit := max(req.Limit, 1)
	var (
		resp  tempoapi.SearchResponse
		found = map[[16]byte]uint64{} // trace → start
	)
	match := func(id [16]byte, td ptrace.Traces) bool {
		resp.Metrics.InspectedTraces++
		for _, tr := range traceql.FromPdata(td) {
			s, e := tr.StartEnd()
			if !durationIn(e-s, req.MinDuration, req.MaxDuration) || len(ev.Eval(&tr)) == 0 {
				continue
			}
			if old, ok := found[id]; !ok || s < old {
				found[id] = s
			}
		}
		return true
	}
	if err := t.scanIngesters(ctx, tenantID, start, end, req.Query, match); err != nil {
		return resp, err
	}
	// Blocks newest first, until the next block cannot hold a trace newer
	// than the limit-th newest found.
	// Each block's newest limit matches are enough, unless the trace
	// duration bounds, tested here, drop some of them.
	blockLimit := limit
	if req.MinDuration != 0 || req.MaxDuration != 0 {
		blockLimit = 0
	}
	blocks, err := t.scanBlocks(ctx, tenantID, start, end, req.Query, blockLimit, match, func(next int64) bool {
		if len(found) < limit {
			return false
		}
		starts := make([]uint64, 0, len(found))
		for _, s := range found {
			starts = append(starts, s)
		}
		slices.Sort(starts)
		return uint64(next) < starts[len(starts)-limit]
	})
	if err != nil {
		return resp, err
	}
	resp.Metrics.TotalBlocks = uint32(blocks)
	cands := make([]candidate, 0, len(found))
	for id, s := range found {
		cands = append(cands, candidate{id, s})
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(b.start, a.start), bytes.Compare(a.id[:], b.id[:]))
	})
	for _, c := range cands {
		if len(resp.Traces) == limit {
			break
		}
		td, ok, err := t.TraceByID(ctx, tenantID, c.id[:], time.Time{}, time.Time{})
		if err != nil {
			return resp, err
		}
		if !ok {
			continue
		}
		trs := traceql.FromPdata(td)
		if len(trs) != 1 {
			continue
		}
		tr := &trs[0]
		sets := ev.Eval(tr)
		s, e := tr.StartEnd()
		if len(sets) == 0 || !durationIn(e-s, req.MinDuration, req.MaxDuration) {
			continue // matched a piece, not the whole trace
		}
		resp.Traces = append(resp.Traces, searchMetadata(c.id, tr, sets))
	}
	return resp, nil
}

func durationIn(d uint64, lo, hi time.Duration) bool {
	return (lo <= 0 || d >= uint64(lo)) && (hi <= 0 || d <= uint64(hi))
}

// searchMetadata is a search result of a trace.
func searchMetadata(id [16]byte, tr *traceql.Trace, sets []traceql.Spanset) tempoapi.TraceSearchMetadata {
	s, e := tr.StartEnd()
	md := tempoapi.TraceSearchMetadata{TraceID: id[:], StartTimeUnixNano: s, DurationMs: uint32(min((e-s)/1e6, math.MaxUint32))}
	if root := tr.Root(); root != nil {
		md.RootTraceName = root.Name
	}
	md.RootServiceName, _ = tr.RootServiceName()
	for _, set := range sets {
		ss := tempoapi.SpanSet{Matched: uint32(len(set.Spans)), Attributes: keyValues(set.Attributes)}
		for _, sp := range set.Spans {
			ss.Spans = append(ss.Spans, tempoapi.Span{SpanID: sp.SpanID, Name: sp.Name, StartTimeUnixNano: sp.StartUnixNano, DurationNanos: sp.DurationNanos, Attributes: keyValues(sp.Attributes)})
		}
		md.SpanSets = append(md.SpanSets, ss)
	}
	return md
}

func keyValues(attrs []traceql.Attr) []tempoapi.KeyValue {
	out := make([]tempoapi.KeyValue, 0, len(attrs))
	for _, a := range attrs {
		out = append(out, tempoapi.KeyValue{Key: a.Key, Value: apiValue(a.Value)})
	}
	return out
}

// apiValue is a TraceQL value as the API writes attributes: numbers and
// booleans typed, everything else as its text.
func apiValue(v traceql.Value) tempoapi.Value {
	switch v.Type {
	case traceql.TypeString:
		return tempoapi.StringValue(v.Str)
	case traceql.TypeInt:
		return tempoapi.IntValue(v.Num)
	case traceql.TypeFloat:
		return tempoapi.DoubleValue(v.Float)
	case traceql.TypeBool:
		return tempoapi.BoolValue(v.Bool())
	}
	return tempoapi.StringValue(v.Text())
}

// tagTypes is the type the tag values API names for a TraceQL value.
func tagValue(v traceql.Value) tempoapi.TagValue {
	switch v.Type {
	case traceql.TypeString:
		return tempoapi.TagValue{Type: "string", Value: v.Str}
	case traceql.TypeInt:
		return tempoapi.TagValue{Type: "int", Value: strconv.FormatInt(v.Num, 10)}
	case traceql.TypeFloat:
		return tempoapi.TagValue{Type: "float", Value: strconv.FormatFloat(v.Float, 'g', -1, 64)}
	case traceql.TypeBool:
		return tempoapi.TagValue{Type: "bool", Value: strconv.FormatBool(v.Bool())}
	case traceql.TypeDuration:
		return tempoapi.TagValue{Type: "duration", Value: v.Text()}
	case traceql.TypeStatus:
		return tempoapi.TagValue{Type: "keyword", Value: v.Text()}
	case traceql.TypeKind:
		return tempoapi.TagValue{Type: "keyword", Value: v.Text()}
	}
	return tempoapi.TagValue{Type: "string", Value: v.Text()}
}

// intrinsicTags are the intrinsics the tags API lists.
var intrinsicTags = []string{"duration", "event:name", "event:timeSinceStart", "instrumentation:name", "instrumentation:version", "kind", "link:spanID", "link:traceID", "name", "rootName", "rootServiceName", "span:id", "span:parentID", "status", "statusMessage", "trace:id", "traceDuration"}

// forTraces scans the traces of a tags request's range that match its
// query (every trace when it has none), ingesters first, then blocks
// newest first, until fn returns false.
func (t *Traces) forTraces(ctx context.Context, tenantID, query string, start, end time.Time, fn func(tr *traceql.Trace) bool) error {
	var ev *traceql.Evaluator
	if query != "" && query != "{}" {
		q, err := traceql.Parse(query)
		if err != nil {
			return fmt.Errorf("%w: %v", tempoapi.ErrBadRequest, err)
		}
		if ev, err = traceql.NewEvaluator(q); err != nil {
			return fmt.Errorf("%w: %v", tempoapi.ErrBadRequest, err)
		}
	}
	s, e := t.timeRange(start, end, defaultTagsWindow)
	visit := func(_ [16]byte, td ptrace.Traces) bool {
		for _, tr := range traceql.FromPdata(td) {
			if ev != nil && len(ev.Eval(&tr)) == 0 {
				continue
			}
			if !fn(&tr) {
				return false
			}
		}
		return true
	}
	if ev == nil {
		query = "" // every trace: the ingesters need not evaluate one
	}
	if err := t.scanIngesters(ctx, tenantID, s, e, query, visit); err != nil {
		return err
	}
	_, err := t.scanBlocks(ctx, tenantID, s, e, query, 0, visit, nil)
	return err
}

// SearchTags lists the attribute names of the range's spans by scope.
func (t *Traces) SearchTags(ctx context.Context, tenantID string, req tempoapi.TagsRequest) (tempoapi.TagsResponse, error) {
	seen := map[string]map[string]struct{}{}
	count := 0
	add := func(scope string, attrs []traceql.Attr) {
		m := seen[scope]
		if m == nil {
			m = map[string]struct{}{}
			seen[scope] = m
		}
		for _, a := range attrs {
			if _, ok := m[a.Key]; !ok {
				m[a.Key] = struct{}{}
				count++
			}
		}
	}
	err := t.forTraces(ctx, tenantID, req.Query, req.Start, req.End, func(tr *traceql.Trace) bool {
		for i := range tr.Spans {
			sp := &tr.Spans[i]
			add(tempoapi.ScopeSpan, sp.Attrs)
			add(tempoapi.ScopeResource, sp.Resource)
			add(tempoapi.ScopeInstrumentation, sp.Scope.Attrs)
			for _, ev := range sp.Events {
				add(tempoapi.ScopeEvent, ev.Attrs)
			}
			for _, l := range sp.Links {
				add(tempoapi.ScopeLink, l.Attrs)
			}
		}
		return req.Limit <= 0 || count < req.Limit
	})
	if err != nil {
		return tempoapi.TagsResponse{}, err
	}
	var resp tempoapi.TagsResponse
	for _, scope := range []string{tempoapi.ScopeSpan, tempoapi.ScopeResource, tempoapi.ScopeEvent, tempoapi.ScopeLink, tempoapi.ScopeInstrumentation} {
		if req.Scope != "" && req.Scope != "all" && req.Scope != scope {
			continue
		}
		tags := make([]string, 0, len(seen[scope]))
		for k := range seen[scope] {
			tags = append(tags, k)
		}
		slices.Sort(tags)
		resp.Scopes = append(resp.Scopes, tempoapi.TagScope{Name: scope, Tags: tags})
	}
	if req.Scope == "" || req.Scope == "all" || req.Scope == tempoapi.ScopeIntrinsic {
		resp.Scopes = append(resp.Scopes, tempoapi.TagScope{Name: tempoapi.ScopeIntrinsic, Tags: slices.Clone(intrinsicTags)})
	}
	return resp, nil
}

// TagValues lists the values one attribute or intrinsic takes in the
// range's spans (of the traces the request's query matches).
func (t *Traces) TagValues(ctx context.Context, tenantID string, req tempoapi.TagValuesRequest) (tempoapi.TagValuesResponse, error) {
	get, err := tagGetter(req.Tag)
	if err != nil {
		return tempoapi.TagValuesResponse{}, fmt.Errorf("%w: %v", tempoapi.ErrBadRequest, err)
	}
	seen := map[tempoapi.TagValue]struct{}{}
	var resp tempoapi.TagValuesResponse
	err = t.forTraces(ctx, tenantID, req.Query, req.Start, req.End, func(tr *traceql.Trace) bool {
		for i := range tr.Spans {
			for _, v := range get(tr, &tr.Spans[i]) {
				tv := tagValue(v)
				if _, ok := seen[tv]; !ok {
					seen[tv] = struct{}{}
					resp.Values = append(resp.Values, tv)
				}
			}
		}
		return req.Limit <= 0 || len(resp.Values) < req.Limit
	})
	if err != nil {
		return resp, err
	}
	slices.SortFunc(resp.Values, func(a, b tempoapi.TagValue) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Value, b.Value))
	})
	if req.Limit > 0 && len(resp.Values) > req.Limit {
		resp.Values = resp.Values[:req.Limit]
	}
	return resp, nil
}

// tagGetter returns the values tag (a TraceQL attribute such as
// ".http.method", "resource.service.name", or an intrinsic) has on a span.
func tagGetter(tag string) (func(tr *traceql.Trace, sp *traceql.Span) []traceql.Value, error) {
	attr := func(sel func(sp *traceql.Span) [][]traceql.Attr, key string) func(*traceql.Trace, *traceql.Span) []traceql.Value {
		return func(_ *traceql.Trace, sp *traceql.Span) []traceql.Value {
			var out []traceql.Value
			for _, attrs := range sel(sp) {
				for _, a := range attrs {
					if a.Key == key {
						out = append(out, a.Value)
					}
				}
			}
			return out
		}
	}
	one := func(f func(tr *traceql.Trace, sp *traceql.Span) traceql.Value) func(*traceql.Trace, *traceql.Span) []traceql.Value {
		return func(tr *traceql.Trace, sp *traceql.Span) []traceql.Value { return []traceql.Value{f(tr, sp)} }
	}
	switch tag {
	case "name", "span:name":
		return one(func(_ *traceql.Trace, sp *traceql.Span) traceql.Value { return traceql.StringValue(sp.Name) }), nil
	case "status", "span:status":
		return one(func(_ *traceql.Trace, sp *traceql.Span) traceql.Value { return traceql.StatusValue(sp.StatusCode) }), nil
	case "kind", "span:kind":
		return one(func(_ *traceql.Trace, sp *traceql.Span) traceql.Value { return traceql.KindValue(sp.Kind) }), nil
	case "statusMessage", "span:statusMessage":
		return one(func(_ *traceql.Trace, sp *traceql.Span) traceql.Value { return traceql.StringValue(sp.StatusMessage) }), nil
	case "rootServiceName", "trace:rootService":
		return func(tr *traceql.Trace, sp *traceql.Span) []traceql.Value {
			if s, ok := tr.RootServiceName(); ok && len(sp.ParentID) == 0 {
				return []traceql.Value{traceql.StringValue(s)}
			}
			return nil
		}, nil
	case "rootName", "trace:rootName":
		return func(tr *traceql.Trace, sp *traceql.Span) []traceql.Value {
			if len(sp.ParentID) == 0 {
				return []traceql.Value{traceql.StringValue(sp.Name)}
			}
			return nil
		}, nil
	case "event:name":
		return func(_ *traceql.Trace, sp *traceql.Span) []traceql.Value {
			var out []traceql.Value
			for _, e := range sp.Events {
				out = append(out, traceql.StringValue(e.Name))
			}
			return out
		}, nil
	case "instrumentation:name":
		return one(func(_ *traceql.Trace, sp *traceql.Span) traceql.Value { return traceql.StringValue(sp.Scope.Name) }), nil
	case "instrumentation:version":
		return one(func(_ *traceql.Trace, sp *traceql.Span) traceql.Value { return traceql.StringValue(sp.Scope.Version) }), nil
	}
	scope, key, ok := strings.Cut(tag, ".")
	if !ok || key == "" {
		return nil, fmt.Errorf("tag %q is neither an attribute (span.x, resource.x, .x, …) nor an intrinsic this API lists values of", tag)
	}
	key = strings.Trim(key, `"`)
	switch scope {
	case "":
		return attr(func(sp *traceql.Span) [][]traceql.Attr { return [][]traceql.Attr{sp.Attrs, sp.Resource} }, key), nil
	case "span":
		return attr(func(sp *traceql.Span) [][]traceql.Attr { return [][]traceql.Attr{sp.Attrs} }, key), nil
	case "resource":
		return attr(func(sp *traceql.Span) [][]traceql.Attr { return [][]traceql.Attr{sp.Resource} }, key), nil
	case "instrumentation":
		return attr(func(sp *traceql.Span) [][]traceql.Attr { return [][]traceql.Attr{sp.Scope.Attrs} }, key), nil
	case "event":
		return attr(func(sp *traceql.Span) [][]traceql.Attr {
			out := make([][]traceql.Attr, len(sp.Events))
			for i, e := range sp.Events {
				out[i] = e.Attrs
			}
			return out
		}, key), nil
	case "link":
		return attr(func(sp *traceql.Span) [][]traceql.Attr {
			out := make([][]traceql.Attr, len(sp.Links))
			for i, l := range sp.Links {
				out[i] = l.Attrs
			}
			return out
		}, key), nil
	}
	return nil, fmt.Errorf("tag %q has an unknown scope %q: span, resource, event, link, instrumentation, or none (.x)", tag, scope)
}

// MetricsQueryRange evaluates a TraceQL metrics query over the range.
func (t *Traces) MetricsQueryRange(ctx context.Context, tenantID string, req tempoapi.MetricsRequest) (tempoapi.MetricsRangeResponse, error) {
	series, inspected, err := t.metrics(ctx, tenantID, req)
	if err != nil {
		return tempoapi.MetricsRangeResponse{}, err
	}
	resp := tempoapi.MetricsRangeResponse{Metrics: tempoapi.SearchMetrics{InspectedTraces: inspected}}
	step := req.Step
	if step <= 0 {
		step = req.End.Sub(req.Start)
	}
	for _, s := range series {
		ts := tempoapi.TimeSeries{Labels: seriesLabels(s.Labels)}
		for i, v := range s.Values {
			if math.IsNaN(v) {
				continue
			}
			ts.Samples = append(ts.Samples, tempoapi.Sample{TimestampMs: req.Start.Add(time.Duration(i) * step).UnixMilli(), Value: v})
		}
		for _, ex := range s.Exemplars {
			ts.Exemplars = append(ts.Exemplars, tempoapi.Exemplar{
				Labels:      []tempoapi.KeyValue{{Key: "trace:id", Value: tempoapi.StringValue(fmt.Sprintf("%x", ex.TraceID))}, {Key: "span:id", Value: tempoapi.StringValue(fmt.Sprintf("%x", ex.SpanID))}},
				Value:       ex.Value,
				TimestampMs: int64(ex.TimeUnixNano / 1e6),
			})
		}
		resp.Series = append(resp.Series, ts)
	}
	return resp, nil
}

// MetricsQueryInstant evaluates a TraceQL metrics query once over the
// whole range.
func (t *Traces) MetricsQueryInstant(ctx context.Context, tenantID string, req tempoapi.MetricsRequest) (tempoapi.MetricsInstantResponse, error) {
	req.Step = req.End.Sub(req.Start)
	series, inspected, err := t.metrics(ctx, tenantID, req)
	if err != nil {
		return tempoapi.MetricsInstantResponse{}, err
	}
	resp := tempoapi.MetricsInstantResponse{Metrics: tempoapi.SearchMetrics{InspectedTraces: inspected}}
	for _, s := range series {
		v := math.NaN()
		if len(s.Values) > 0 {
			v = s.Values[0]
		}
		resp.Series = append(resp.Series, tempoapi.InstantSeries{Labels: seriesLabels(s.Labels), Value: v})
	}
	return resp, nil
}

func (t *Traces) metrics(ctx context.Context, tenantID string, req tempoapi.MetricsRequest) ([]traceql.Series, uint32, error) {
	q, err := traceql.Parse(req.Query)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", tempoapi.ErrBadRequest, err)
	}
	if !q.IsMetrics() {
		return nil, 0, fmt.Errorf("%w: %q is not a metrics query: it needs a metrics function such as | rate()", tempoapi.ErrBadRequest, req.Query)
	}
	if req.Start.IsZero() || req.End.IsZero() || !req.End.After(req.Start) || req.Step <= 0 {
		return nil, 0, fmt.Errorf("%w: a metrics query needs start < end and a positive step", tempoapi.ErrBadRequest)
	}
	me, err := traceql.NewMetricsEvaluator(q, traceql.MetricsRequest{Start: uint64(req.Start.UnixNano()), End: uint64(req.End.UnixNano()), Step: uint64(req.Step), Exemplars: req.Exemplars})
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", tempoapi.ErrBadRequest, err)
	}
	// Each trace once: a trace in several sources is merged first.
	pieces := map[[16]byte][]ptrace.Traces{}
	collect := func(id [16]byte, td ptrace.Traces) bool {
		pieces[id] = append(pieces[id], td)
		return true
	}
	start, end := req.Start.UnixNano(), req.End.UnixNano()
	if err := t.scanIngesters(ctx, tenantID, start, end, "", collect); err != nil {
		return nil, 0, err
	}
	if _, err := t.scanBlocks(ctx, tenantID, start, end, "", 0, collect, nil); err != nil {
		return nil, 0, err
	}
	for _, ps := range pieces {
		for _, tr := range traceql.FromPdata(MergeTraces(ps)) {
			me.Observe(&tr)
		}
	}
	return me.Series(), uint32(len(pieces)), nil
}

func seriesLabels(ls []traceql.Label) []tempoapi.KeyValue {
	out := make([]tempoapi.KeyValue, 0, len(ls))
	for _, l := range ls {
		out = append(out, tempoapi.KeyValue{Key: l.Name, Value: apiValue(l.Value)})
	}
	return out
}
