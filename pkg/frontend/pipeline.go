package frontend

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/canopy-observability/canopy/pkg/util/tenant"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// stages are the steps of the query path every signal shares, and their
// state: one count of outstanding queries per tenant, one fair queue, one
// results cache. They are safe for concurrent use; the Frontend owns them.
type stages struct {
	limits            validation.TenantLimits
	splitInterval     time.Duration
	maxShardedQueries int
	admission         *admission
	queue             *queue
	down              Downstream
	cache             resultsCache // nil: no results cache
	estimates         *seriesEstimates
	now               func() time.Time
	logger            log.Logger
	*metrics
}

// pipeline serves one kind of query of one signal: it runs the shared
// stages around the signal's Codec. It is an http.Handler for requests
// carrying their tenant in the context.
type pipeline[R any] struct {
	*stages
	codec Codec[R]
	kind  string // label of canopy_query_frontend_queries_total
}

func newPipeline[R any](s *stages, c Codec[R], kind string) *pipeline[R] {
	return &pipeline[R]{stages: s, codec: c, kind: kind}
}

// ServeHTTP implements http.Handler.
func (p *pipeline[R]) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, err := tenant.ID(r.Context())
	if err != nil {
		writeResponse(w, p.codec.EncodeError(http.StatusUnauthorized, "bad_data", err.Error()))
		return
	}
	// A query counts once however many parts it is split into.
	if err := p.admission.admit(id); err != nil {
		p.fail(w, err)
		return
	}
	defer p.admission.release(id)
	p.queries.WithLabelValues(p.kind).Inc()
	p.serve(w, r, id)
}

// fail answers err in the codec's error shape.
func (p *pipeline[R]) fail(w http.ResponseWriter, err error) {
	writeResponse(w, p.codec.EncodeError(p.failure(err)))
}

// serve answers one admitted query: decode, check the query length, split,
// answer what it can from the results cache, run the rest (sharded when
// planned), merge, store what is cacheable, encode.
func (p *pipeline[R]) serve(w http.ResponseWriter, r *http.Request, id string) {
	req, err := p.codec.DecodeRequest(r)
	if err != nil {
		p.fail(w, err)
		return
	}
	q := newQueryCalls(r.Context(), req.Budget)
	defer q.cancel()
	if req.Verbatim {
		resp, err := p.send(q, id, p.codec, req)
		if err != nil {
			p.fail(w, err)
			return
		}
		writeResponse(w, resp)
		return
	}
	lim := p.limits.ByTenant(id)
	if err := checkQueryLength(lim, req); err != nil {
		p.fail(w, err)
		return
	}
	parts := splitParts(req, p.splitInterval)
	if req.Step > 0 {
		p.parts.Add(float64(len(parts)))
	}
	keys, bodies := p.cachedParts(r.Context(), id, lim, req, parts)
	if req.Sharding != nil {
		req.seriesKey = estimateKey(id, req)
	}
	responses, errs := p.runParts(q, id, p.codec, req, parts, bodies, p.shardsFor(id, req))
	// The first failure of any call, in time, is the answer: the calls it
	// canceled failed after it.
	if resp, err, failed := q.failure(); failed {
		if err != nil {
			p.fail(w, err)
		} else {
			writeResponse(w, resp)
		}
		return
	}
	store := map[string][]byte{}
	for i := range parts {
		if bodies[i] != nil {
			continue
		}
		if errs[i] != nil {
			p.fail(w, errs[i])
			return
		}
		if responses[i].Status != http.StatusOK {
			writeResponse(w, responses[i])
			return
		}
		bodies[i] = responses[i].Body
		if keys[i] != "" {
			store[keys[i]] = bodies[i]
		}
	}
	resp, err := p.merge(req, parts, bodies)
	var limit errLimit
	if errors.As(err, &limit) {
		// The merged answer is over a per-query limit (Loki's series).
		p.fail(w, err)
		return
	}
	if err != nil {
		level.Error(p.logger).Log("msg", "merging query parts", "err", err)
		writeResponse(w, p.codec.EncodeError(http.StatusInternalServerError, "internal", err.Error()))
		return
	}
	if len(store) > 0 {
		p.cache.set(store)
	}
	writeResponse(w, resp)
}

// merge decodes the answers to the parts of req, joins them and encodes the
// answer to the client.
func (p *pipeline[R]) merge(req *Request, parts []part, bodies [][]byte) (*Response, error) {
	results := make([]R, len(bodies))
	for i, b := range bodies {
		res, err := p.codec.DecodeResponse(withRange(req, parts[i]), b)
		if err != nil {
			return nil, fmt.Errorf("decoding the answer to part %d: %w", i, err)
		}
		results[i] = res
	}
	merged, err := p.codec.MergeResponses(req, results)
	if err != nil {
		return nil, err
	}
	return p.codec.EncodeResponse(req, merged)
}
