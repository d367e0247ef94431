package tempoapi

import (
	"bytes"
	"cmp"
	"net/http"
	"slices"
)

// serveSearch is /api/search: q (TraceQL) or tags (legacy logfmt),
// minDuration, maxDuration, limit, spss, start, end. The answer lists the
// newest traces first (ties by trace ID), so that the same data gives the
// same answer; Tempo's own order is whatever its parallel scan finds
// first.
func (a *API) serveSearch(w http.ResponseWriter, r *http.Request, tenant string) error {
	req, err := a.parseSearch(r)
	if err != nil {
		return err
	}
	res, err := a.b.Search(r.Context(), tenant, req)
	if err != nil {
		return err
	}
	sortSearch(&res, req.Limit, req.SpansPerSpanSet)
	b, err := appendSearch(make([]byte, 0, searchSizeHint(res)), res)
	if err != nil {
		return err
	}
	writeRawJSON(w, "", b, "")
	return nil
}

// parseSearch reads the parameters of a search.
func (a *API) parseSearch(r *http.Request) (SearchRequest, error) {
	var req SearchRequest
	q, tags := r.Form.Get("q"), r.Form.Get("tags")
	switch {
	case q != "" && tags != "":
		return req, badf("invalid parameters \"q\" and \"tags\": give one of them, not both")
	case q != "":
		req.Query = q
	default:
		var err error
		if req.Query, err = TagsToTraceQL(tags); err != nil {
			return req, badParam("tags", err)
		}
	}
	var err error
	if req.MinDuration, err = durationParam(r, "minDuration"); err != nil {
		return req, err
	}
	if req.MaxDuration, err = durationParam(r, "maxDuration"); err != nil {
		return req, err
	}
	if req.MaxDuration > 0 && req.MaxDuration < req.MinDuration {
		return req, badf("invalid parameter \"maxDuration\": %s is below minDuration %s", req.MaxDuration, req.MinDuration)
	}
	if req.Limit, err = intParam(r, "limit", a.cfg.DefaultResultLimit); err != nil {
		return req, err
	}
	switch {
	case req.Limit == 0:
		return req, badf("invalid parameter \"limit\": it must be positive")
	case a.cfg.MaxResultLimit > 0 && req.Limit > a.cfg.MaxResultLimit:
		return req, badf("invalid parameter \"limit\": %d is above the most traces a search may return (%d, %s)", req.Limit, a.cfg.MaxResultLimit, FlagMaxResultLimit)
	}
	if req.SpansPerSpanSet, err = intParam(r, "spss", defaultSpansPerSpanSet); err != nil {
		return req, err
	}
	if m := a.cfg.MaxSpansPerSpanSet; m > 0 {
		switch {
		case req.SpansPerSpanSet == 0:
			return req, badf("invalid parameter \"spss\": 0 asks for every span of a span set, and a span set may list at most %d (%s)", m, FlagMaxSpansPerSpanSet)
		case req.SpansPerSpanSet > m:
			return req, badf("invalid parameter \"spss\": %d is above the most spans a span set may list (%d, %s)", req.SpansPerSpanSet, m, FlagMaxSpansPerSpanSet)
		}
	}
	if req.Start, req.End, err = optionalRange(r); err != nil {
		return req, err
	}
	return req, nil
}

// sortSearch orders the traces newest first, then by trace ID, and keeps
// limit of them; in each span set it orders the spans by start time, then
// span ID, and keeps spss of them (all when spss is 0).
func sortSearch(res *SearchResponse, limit, spss int) {
	slices.SortStableFunc(res.Traces, func(x, y TraceSearchMetadata) int {
		if c := cmp.Compare(y.StartTimeUnixNano, x.StartTimeUnixNano); c != 0 {
			return c
		}
		return bytes.Compare(x.TraceID, y.TraceID)
	})
	if len(res.Traces) > limit {
		res.Traces = res.Traces[:limit]
	}
	for _, t := range res.Traces {
		for i := range t.SpanSets {
			ss := &t.SpanSets[i]
			slices.SortStableFunc(ss.Spans, func(x, y Span) int {
				if c := cmp.Compare(x.StartTimeUnixNano, y.StartTimeUnixNano); c != 0 {
					return c
				}
				return bytes.Compare(x.SpanID, y.SpanID)
			})
			if spss > 0 && len(ss.Spans) > spss {
				ss.Spans = ss.Spans[:spss]
			}
		}
	}
}

// searchSizeHint guesses the bytes of a search answer, to grow its buffer
// once: about 200 bytes a trace and 150 a span and an attribute (the
// first span set is written twice).
func searchSizeHint(res SearchResponse) int {
	n := 256
	for _, t := range res.Traces {
		n += 200
		for i, ss := range t.SpanSets {
			k := 100
			for _, sp := range ss.Spans {
				k += 150 + 150*len(sp.Attributes)
			}
			if i == 0 {
				k *= 2
			}
			n += k
		}
	}
	return n
}
