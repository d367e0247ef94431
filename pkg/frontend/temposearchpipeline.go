package frontend

import (
	"context"
	"fmt"
	"net/http"

	"github.com/go-kit/log/level"

	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// searchPipeline serves Tempo's search. It runs the shared stages around
// tempoSearchCodec — admission, the query length limit, the split interval,
// the fair queue — but fans the parts out itself: newest first, at most
// window at once, and it stops once the traces found are the answer. Each
// part answers its limit newest traces, and a trace a part finds started
// before the part's end (it has spans in the part's range); so once the
// parts done hold limit traces that started after the end of every part
// not yet done, the parts left cannot change the answer: they are not
// sent, or are canceled. It is an http.Handler for requests carrying their
// tenant in the context.
type searchPipeline struct {
	*stages
	codec *tempoSearchCodec
	// window is how many parts of one search run at once: the frontend's
	// parallelism, more than which could not run anyway.
	window int
}

// ServeHTTP implements http.Handler.
func (p *searchPipeline) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, err := tenant.ID(r.Context())
	if err != nil {
		writeResponse(w, p.codec.EncodeError(http.StatusUnauthorized, "bad_data", err.Error()))
		return
	}
	if err := p.admission.admit(id); err != nil {
		p.fail(w, err)
		return
	}
	defer p.admission.release(id)
	p.queries.WithLabelValues("traceql_search").Inc()

	req, err := p.codec.DecodeRequest(r)
	if err != nil {
		p.fail(w, err)
		return
	}
	if !req.Verbatim {
		if err := checkQueryLength(p.limits.ByTenant(id), req); err != nil {
			p.fail(w, err)
			return
		}
	}
	var parts []searchPart
	if !req.Verbatim {
		st := req.State.(*tempoSearch)
		parts = searchParts(st.start, st.end, p.splitInterval.Nanoseconds())
	}
	if len(parts) <= 1 {
		// One call: its answer is the querier's for the whole search.
		path, form := p.codec.EncodeRequest(req)
		resp, err := p.run(r.Context(), id, p.codec.Prefix()+path, form, req.Header)
		if err != nil {
			p.fail(w, err)
			return
		}
		writeResponse(w, resp)
		return
	}
	p.parts.Add(float64(len(parts)))
	answers, failed, err := p.runParts(r.Context(), id, req, parts)
	switch {
	case err != nil:
		p.fail(w, err)
		return
	case failed != nil:
		writeResponse(w, failed)
		return
	}
	merged, err := p.codec.MergeResponses(req, answers)
	var resp *Response
	if err == nil {
		resp, err = p.codec.EncodeResponse(req, merged)
	}
	if err != nil {
		level.Error(p.logger).Log("msg", "merging search parts", "err", err)
		writeResponse(w, p.codec.EncodeError(http.StatusInternalServerError, "internal", err.Error()))
		return
	}
	writeResponse(w, resp)
}

// fail answers err in Tempo's error shape.
func (p *searchPipeline) fail(w http.ResponseWriter, err error) {
	writeResponse(w, p.codec.EncodeError(p.failure(err)))
}

// runParts runs the parts of req (newest first) through the queue, window
// at a time, until they are all answered or those answered decide the
// search. It returns the answers of the parts run, newest first; or the
// first failure: an error, or a downstream answer other than 200.
func (p *searchPipeline) runParts(ctx context.Context, id string, req *Request, parts []searchPart) ([]*tempoSearchAnswer, *Response, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		i    int
		resp *Response
		err  error
	}
	results := make(chan result)
	next, running := 0, 0
	start := func() {
		i := next
		next++
		running++
		go func() {
			path, form := p.codec.EncodeRequest(withSearchPart(req, parts[i]))
			resp, err := p.run(ctx, id, p.codec.Prefix()+path, form, req.Header)
			results <- result{i, resp, err}
		}()
	}
	for next < len(parts) && running < max(p.window, 1) {
		start()
	}
	var (
		answers = make([]*tempoSearchAnswer, len(parts))
		found   = newSearchProgress(req.State.(*tempoSearch).limit)
		failed  *Response
		err     error
		stopped bool
	)
	// Every part started is waited for: once stopped, the others end with
	// the canceled context.
	for running > 0 {
		res := <-results
		running--
		if stopped {
			continue
		}
		switch {
		case res.err != nil:
			err = res.err
		case res.resp.Status != http.StatusOK:
			failed = res.resp
		default:
			answers[res.i], err = p.codec.DecodeResponse(req, res.resp.Body)
			if err != nil {
				err = fmt.Errorf("decoding the answer to part %d: %w", res.i, err)
				level.Error(p.logger).Log("msg", "reading a search part", "err", err)
			}
		}
		if err != nil || failed != nil {
			stopped = true
			cancel()
			continue
		}
		found.add(answers[res.i])
		if found.decided(parts, answers) {
			stopped = true
			cancel()
			continue
		}
		if next < len(parts) {
			start()
		}
	}
	if err != nil || failed != nil {
		return nil, failed, err
	}
	var done []*tempoSearchAnswer
	for _, a := range answers {
		if a != nil {
			done = append(done, a)
		}
	}
	return done, nil, nil
}

// searchProgress follows the traces the parts of a search found, to tell
// when they decide its answer. One goroutine uses it.
type searchProgress struct {
	limit int
	// started is the earliest start seen of each trace.
	started map[string]uint64
}

func newSearchProgress(limit int) *searchProgress {
	return &searchProgress{limit: limit, started: map[string]uint64{}}
}

func (s *searchProgress) add(a *tempoSearchAnswer) {
	for _, t := range a.Traces {
		id := normalTraceID(t.TraceID)
		if old, ok := s.started[id]; !ok || t.StartTimeUnixNano < old {
			s.started[id] = t.StartTimeUnixNano
		}
	}
}

// decided tells whether limit traces found started after the end of every
// part not answered yet (answers[i] nil): those can only find traces that
// started before their end, which are not among the limit newest.
func (s *searchProgress) decided(parts []searchPart, answers []*tempoSearchAnswer) bool {
	if len(s.started) < s.limit {
		return false
	}
	// Parts are newest first: the first not answered ends last.
	i := 0
	for i < len(parts) && answers[i] != nil {
		i++
	}
	if i == len(parts) {
		return true
	}
	after := parts[i].end
	if after < 0 {
		return false
	}
	n := 0
	for _, start := range s.started {
		if start > uint64(after) {
			n++
		}
	}
	return n >= s.limit
}
