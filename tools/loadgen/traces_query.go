package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// tracesQuery (loadgen traces-query) looks up a random sample of the trace
// IDs traces-ingest wrote (-ids), one request at a time, and reports the
// latency percentiles and how many were found whole (two spans); then it
// runs one search -runs times and reports the best. Against Tempo's API
// (Canopy: GET /tempo/api/traces/<id>, /tempo/api/search?q=<TraceQL>) or
// Jaeger's (GET /api/traces/<id>, /api/traces?service=&tags=).
func tracesQuery(args []string) error {
	fs := flag.NewFlagSet("traces-query", flag.ExitOnError)
	base := fs.String("url", "http://127.0.0.1:9009", "Base URL of the receiver's query API.")
	api := fs.String("api", "tempo", "tempo (Canopy: /tempo/api/…) or jaeger (/api/…).")
	name := fs.String("name", "", "Name of the receiver in the report (default: -url).")
	idsFile := fs.String("ids", "", "Trace IDs to look up (traces-ingest -ids); empty skips the lookups.")
	lookups := fs.Int("lookups", 1000, "Lookups by ID, of IDs drawn from -ids without repetition (all of them if fewer).")
	spans := fs.Int("spans-per-trace", 2, "Spans a trace found whole has.")
	query := fs.String("query", `{ resource.service.name = "loadgen" && span.http.status_code = 500 }`, "Tempo: the TraceQL search; empty skips the search.")
	service := fs.String("service", tracesService, "Jaeger: the search's service.")
	tags := fs.String("tags", `{"http.status_code":"500"}`, "Jaeger: the search's tags (JSON object); with -service empty the search is skipped.")
	since := fs.Duration("since", time.Hour, "The search covers this long before now.")
	limit := fs.Int("limit", 20, "Traces a search returns at most.")
	runs := fs.Int("runs", 3, "Search runs; the best counts.")
	tenant := fs.String("tenant", "", "X-Scope-OrgID header.")
	pid := fs.Int("pid", 0, "PID of the receiver, for its CPU seconds.")
	seed := fs.Uint64("seed", 2, "Seed of the lookup sample.")
	jsonOut := fs.Bool("json", false, "Print the report as JSON.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *api != "tempo" && *api != "jaeger" {
		return fmt.Errorf("-api %q: tempo or jaeger", *api)
	}
	if *name == "" {
		*name = *base
	}
	q := &traceQuerier{api: *api, base: strings.TrimSuffix(*base, "/"), tenant: *tenant, pid: *pid,
		client: &http.Client{Timeout: 5 * time.Minute}}
	rep := &tracesQueryReport{Name: *name, API: *api, URL: q.base}
	if *idsFile != "" {
		ids, err := readTraceIDs(*idsFile)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return fmt.Errorf("%s holds no trace IDs", *idsFile)
		}
		r := rand.New(rand.NewPCG(*seed, 0))
		r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		ids = ids[:min(*lookups, len(ids))]
		if err := q.lookups(rep, ids, *spans); err != nil {
			return err
		}
	}
	end := time.Now()
	start := end.Add(-*since)
	switch {
	case *api == "tempo" && *query != "":
		v := url.Values{"q": {*query}, "start": {strconv.FormatInt(start.Unix(), 10)}, "end": {strconv.FormatInt(end.Unix()+1, 10)}, "limit": {strconv.Itoa(*limit)}}
		rep.Search = *query
		if err := q.search(rep, "/tempo/api/search?"+v.Encode(), *runs); err != nil {
			return err
		}
	case *api == "jaeger" && *service != "":
		v := url.Values{"service": {*service}, "start": {strconv.FormatInt(start.UnixMicro(), 10)}, "end": {strconv.FormatInt(end.UnixMicro()+1e6, 10)}, "limit": {strconv.Itoa(*limit)}}
		if *tags != "" {
			v.Set("tags", *tags)
		}
		rep.Search = "service=" + *service + " tags=" + *tags
		if err := q.search(rep, "/api/traces?"+v.Encode(), *runs); err != nil {
			return err
		}
	}
	if *jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.print()
	return nil
}

type tracesQueryReport struct {
	Name string `json:"name"`
	API  string `json:"api"`
	URL  string `json:"url"`

	Lookups          int     `json:"lookups"`
	Found            int     `json:"found_whole"` // with -spans-per-trace spans
	Partial          int     `json:"found_partial,omitempty"`
	NotFound         int     `json:"not_found"`
	LookupErrors     int     `json:"lookup_errors,omitempty"`
	FirstError       string  `json:"first_error,omitempty"`
	LookupP50Ms      float64 `json:"lookup_p50_ms"`
	LookupP90Ms      float64 `json:"lookup_p90_ms"`
	LookupP99Ms      float64 `json:"lookup_p99_ms"`
	LookupMaxMs      float64 `json:"lookup_max_ms"`
	LookupCPUSeconds float64 `json:"lookup_receiver_cpu_seconds,omitempty"`

	Search            string    `json:"search,omitempty"`
	SearchSeconds     []float64 `json:"search_seconds,omitempty"`
	SearchBestSeconds float64   `json:"search_best_seconds,omitempty"`
	SearchTraces      int       `json:"search_traces,omitempty"` // returned by the best run
	SearchCPUSeconds  float64   `json:"search_receiver_cpu_seconds,omitempty"`
}

func (r *tracesQueryReport) print() {
	fmt.Printf("%s (%s API, %s)\n", r.Name, r.API, r.URL)
	if r.Lookups > 0 {
		fmt.Printf("by ID    %d lookups: %d whole, %d partial, %d not found, %d errors %s\n", r.Lookups, r.Found, r.Partial, r.NotFound, r.LookupErrors, r.FirstError)
		fmt.Printf("         p50 %.1fms  p90 %.1fms  p99 %.1fms  max %.1fms; receiver CPU %.2fs\n", r.LookupP50Ms, r.LookupP90Ms, r.LookupP99Ms, r.LookupMaxMs, r.LookupCPUSeconds)
	}
	if r.Search != "" {
		fmt.Printf("search   %s: best %.3fs of %v, %d traces, receiver CPU %.2fs\n", r.Search, r.SearchBestSeconds, r.SearchSeconds, r.SearchTraces, r.SearchCPUSeconds)
	}
}

type traceQuerier struct {
	api, base, tenant string
	pid               int
	client            *http.Client
}

// get fetches path and returns the status and body.
func (q *traceQuerier) get(path string) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, q.base+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if q.tenant != "" {
		req.Header.Set("X-Scope-OrgID", q.tenant)
	}
	resp, err := q.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

func (q *traceQuerier) lookups(rep *tracesQueryReport, ids []string, want int) error {
	lat := make([]time.Duration, 0, len(ids))
	before, err := readProcIf(q.pid)
	if err != nil {
		return err
	}
	for _, id := range ids {
		path := "/api/traces/" + id
		if q.api == "tempo" {
			path = "/tempo/api/traces/" + id
		}
		t0 := time.Now()
		code, body, err := q.get(path)
		lat = append(lat, time.Since(t0))
		rep.Lookups++
		switch {
		case err != nil:
			rep.LookupErrors++
			if rep.FirstError == "" {
				rep.FirstError = err.Error()
			}
		case code == http.StatusNotFound:
			rep.NotFound++
		case code != http.StatusOK:
			rep.LookupErrors++
			if rep.FirstError == "" {
				rep.FirstError = fmt.Sprintf("%s: %d %s", path, code, truncate(body, 200))
			}
		default:
			n, err := q.countSpans(body)
			switch {
			case err != nil:
				rep.LookupErrors++
				if rep.FirstError == "" {
					rep.FirstError = fmt.Sprintf("%s: %v", path, err)
				}
			case n == 0:
				rep.NotFound++
			case n == want:
				rep.Found++
			default:
				rep.Partial++
			}
		}
	}
	after, err := readProcIf(q.pid)
	if err != nil {
		return err
	}
	rep.LookupCPUSeconds = (after.cpu - before.cpu).Seconds()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	rep.LookupP50Ms, rep.LookupP90Ms = percentile(lat, 0.5), percentile(lat, 0.9)
	rep.LookupP99Ms, rep.LookupMaxMs = percentile(lat, 0.99), percentile(lat, 1)
	return nil
}

// countSpans counts the spans of a trace-by-ID answer: Tempo's
// {"batches":[ResourceSpans]} or Jaeger's {"data":[{"spans":[…]}]}.
func (q *traceQuerier) countSpans(body []byte) (int, error) {
	n := 0
	if q.api == "tempo" {
		var t struct {
			Batches []struct {
				ScopeSpans []struct {
					Spans []json.RawMessage `json:"spans"`
				} `json:"scopeSpans"`
			} `json:"batches"`
		}
		if err := json.Unmarshal(body, &t); err != nil {
			return 0, err
		}
		for _, b := range t.Batches {
			for _, s := range b.ScopeSpans {
				n += len(s.Spans)
			}
		}
		return n, nil
	}
	var j struct {
		Data []struct {
			Spans []json.RawMessage `json:"spans"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &j); err != nil {
		return 0, err
	}
	for _, t := range j.Data {
		n += len(t.Spans)
	}
	return n, nil
}

// search runs path runs times and keeps the best time and its count of
// traces ({"traces":[…]} from Tempo, {"data":[…]} from Jaeger).
func (q *traceQuerier) search(rep *tracesQueryReport, path string, runs int) error {
	best := time.Duration(-1)
	for i := 0; i < runs; i++ {
		before, err := readProcIf(q.pid)
		if err != nil {
			return err
		}
		t0 := time.Now()
		code, body, err := q.get(path)
		el := time.Since(t0)
		if err != nil {
			return fmt.Errorf("search %s: %w", path, err)
		}
		if code != http.StatusOK {
			return fmt.Errorf("search %s: %d %s", path, code, truncate(body, 300))
		}
		after, err := readProcIf(q.pid)
		if err != nil {
			return err
		}
		var res struct {
			Traces []json.RawMessage `json:"traces"`
			Data   []json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(body, &res); err != nil {
			return fmt.Errorf("search %s: %w", path, err)
		}
		rep.SearchSeconds = append(rep.SearchSeconds, el.Seconds())
		if best < 0 || el < best {
			best = el
			rep.SearchBestSeconds = el.Seconds()
			rep.SearchTraces = len(res.Traces) + len(res.Data)
			rep.SearchCPUSeconds = (after.cpu - before.cpu).Seconds()
		}
	}
	if best < 0 {
		return errors.New("-runs must be positive")
	}
	return nil
}

func truncate(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
