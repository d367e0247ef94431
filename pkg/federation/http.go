package federation

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// StatsHeader carries, in every answer of the federator's API, what each
// child cost the request: name, status, latency and bytes.
const StatsHeader = "X-Canopy-Federation-Children"

// statsRecorder collects a request's evaluations.
type statsRecorder struct {
	mu  sync.Mutex
	evs []*evaluation
}

type statsKey struct{}

func statsFrom(ctx context.Context) *statsRecorder {
	r, _ := ctx.Value(statsKey{}).(*statsRecorder)
	return r
}

func (r *statsRecorder) add(ev *evaluation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
}

// summary merges the evaluations' per-child stats.
func (r *statsRecorder) summary() map[string]*childStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]*childStats{}
	for _, ev := range r.evs {
		ev.mu.Lock()
		for name, s := range ev.stats {
			o := out[name]
			if o == nil {
				o = &childStats{}
				out[name] = o
			}
			o.Requests += s.Requests
			o.Bytes += s.Bytes
			o.Latency = max(o.Latency, s.Latency)
			o.Seconds = o.Latency.Seconds()
			if s.Error != "" {
				o.Error = s.Error
			}
		}
		ev.mu.Unlock()
	}
	return out
}

// Wrap returns api with the federator's request handling around it: the
// partial_response parameter (warn or abort; absent: the configured
// default) and the per-child stats header.
func (f *Federator) Wrap(api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		switch pr := r.FormValue("partial_response"); pr {
		case "":
		case "warn", "true":
			ctx = WithPartialResponse(ctx, true)
		case "abort", "false":
			ctx = WithPartialResponse(ctx, false)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": "bad_data", "error": fmt.Sprintf("partial_response %q is neither warn nor abort", pr)})
			return
		}
		rec := &statsRecorder{}
		ctx = context.WithValue(ctx, statsKey{}, rec)
		r = r.WithContext(ctx)
		if r.FormValue("stats") == "" {
			api.ServeHTTP(&statsWriter{ResponseWriter: w, rec: rec}, r)
			return
		}
		// Asked for stats: the children's go into the answer's too, as
		// data.stats.federation.
		buf := &bufferedWriter{header: http.Header{}, code: http.StatusOK}
		r = r.Clone(ctx)
		r.Header.Del("Accept-Encoding") // an answer to edit, not compressed
		api.ServeHTTP(buf, r)
		body := withChildStats(buf.body.Bytes(), rec.summary())
		for k, v := range buf.header {
			w.Header()[k] = v
		}
		sw := &statsWriter{ResponseWriter: w, rec: rec}
		sw.WriteHeader(buf.code)
		_, _ = sw.Write(body)
	})
}

// bufferedWriter holds an answer in memory.
type bufferedWriter struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header         { return b.header }
func (b *bufferedWriter) WriteHeader(code int)        { b.code = code }
func (b *bufferedWriter) Write(p []byte) (int, error) { return b.body.Write(p) }

// withChildStats adds the children's stats to an answer's data.stats
// (the answer as it is when it has none).
func withChildStats(body []byte, children map[string]*childStats) []byte {
	var env map[string]json.RawMessage
	if json.Unmarshal(body, &env) != nil {
		return body
	}
	var data map[string]json.RawMessage
	if json.Unmarshal(env["data"], &data) != nil {
		return body
	}
	var st map[string]json.RawMessage
	if json.Unmarshal(data["stats"], &st) != nil {
		return body
	}
	fed, err := json.Marshal(map[string]any{"children": children})
	if err != nil {
		return body
	}
	st["federation"] = fed
	if data["stats"], err = json.Marshal(st); err != nil {
		return body
	}
	if env["data"], err = json.Marshal(data); err != nil {
		return body
	}
	out, err := json.Marshal(env)
	if err != nil {
		return body
	}
	return out
}

// statsWriter sets the stats header before the answer's first byte.
type statsWriter struct {
	http.ResponseWriter
	rec  *statsRecorder
	done bool
}

func (s *statsWriter) WriteHeader(code int) {
	if !s.done {
		s.done = true
		var parts []string
		sum := s.rec.summary()
		names := make([]string, 0, len(sum))
		for n := range sum {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			st := sum[n]
			status := "ok"
			if st.Error != "" {
				status = "failed"
			}
			parts = append(parts, fmt.Sprintf("%s;status=%s;requests=%d;seconds=%.3f;bytes=%d", n, status, st.Requests, st.Seconds, st.Bytes))
		}
		if len(parts) > 0 {
			s.Header().Set(StatsHeader, strings.Join(parts, ", "))
		}
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statsWriter) Write(b []byte) (int, error) {
	if !s.done {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(b)
}

func (s *statsWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// series answers /api/v1/series from the children's.
func (ev *evaluation) series(ctx context.Context, mint, maxt int64, ms []*labels.Matcher) storage.SeriesSet {
	type answer struct {
		c    *child
		sets []map[string]string
		err  error
	}
	var asked []*child
	var sels []string
	for _, c := range ev.children {
		s, ok := childQuery(&parser.VectorSelector{LabelMatchers: ms}, c)
		if ok {
			asked = append(asked, c)
			sels = append(sels, s)
		}
	}
	answers := make([]answer, len(asked))
	done := make(chan struct{})
	go func() {
		defer close(done)
		eachChild(asked, func(i int, c *child) {
			form := url.Values{"match[]": {sels[i]}, "start": {formatTime(time.UnixMilli(mint))}, "end": {formatTime(time.UnixMilli(maxt))}}
			sets, err := fetchData[[]map[string]string](ctx, ev, c, "/api/v1/series", form)
			answers[i] = answer{c, sets, err}
		})
	}()
	return &lazySet{wait: func() ([]storage.Series, annotations.Annotations, error) {
		<-done
		var (
			out    []storage.Series
			annots annotations.Annotations
			failed []error
			seen   = map[string]bool{}
		)
		for _, a := range answers {
			if a.err != nil {
				failed = append(failed, a.err)
				continue
			}
			for _, set := range a.sets {
				for k, v := range a.c.external {
					if _, ok := set[k]; !ok {
						set[k] = v
					}
				}
				ls := labels.FromMap(set)
				if key := ls.String(); !seen[key] {
					seen[key] = true
					out = append(out, newSeries(ls, nil))
				}
			}
		}
		if err := ev.settle(failed, &annots); err != nil {
			return nil, annots, err
		}
		slices.SortFunc(out, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
		return out, annots, nil
	}}
}
