package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// TestSingleProcess runs one complete Canopy with multi-tenancy on: remote
// write 1.0 and 2.0 in, the Prometheus HTTP API out, tenant isolation, and the
// data surviving a restart (WAL replay).
func TestSingleProcess(t *testing.T) {
	requireIntegration(t)
	logs := logDir(t)
	// Flush on shutdown is off here so that the restart below proves WAL
	// replay (head series, exemplars); flushing is tested with MinIO.
	node := newCanopyNodes(t, logs, 1, "-auth.multitenancy-enabled", "-ingester.replication-factor=1", "-ingester.flush-on-shutdown=false")[0]
	node.start(t)
	node.waitReady(t, 60*time.Second)

	const tenantA, tenantB = "tenant-a", "tenant-b"
	// Whole seconds, a few minutes back: inside the head and the lookback.
	t0 := time.Now().Add(-5 * time.Minute).Truncate(time.Second).UnixMilli()
	t15, t30 := t0+15_000, t0+30_000

	// Remote write 1.0: one gauge with an exemplar and its metadata.
	mustPushV1(t, node.url(), tenantA, &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "it_rw1_metric"}, {Name: "instance", Value: "a"}, {Name: "job", Value: "rw1"}},
			Samples: []prompb.Sample{{Value: 1.5, Timestamp: t0}, {Value: 2.5, Timestamp: t15}, {Value: 3.25, Timestamp: t30}},
			Exemplars: []prompb.Exemplar{{
				Labels: []prompb.Label{{Name: "trace_id", Value: "rw1trace"}}, Value: 3.25, Timestamp: t30,
			}},
		}},
		Metadata: []prompb.MetricMetadata{{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "it_rw1_metric", Help: "RW1 gauge."}},
	})

	// Remote write 2.0: two series of a counter, metadata and an exemplar.
	st := writev2.NewSymbolTable()
	rw2 := &writev2.Request{Timeseries: []writev2.TimeSeries{
		{
			LabelsRefs: []uint32{st.Symbolize("__name__"), st.Symbolize("it_rw2_total"), st.Symbolize("instance"), st.Symbolize("b"), st.Symbolize("job"), st.Symbolize("rw2")},
			Samples:    []writev2.Sample{{Value: 10, Timestamp: t0}, {Value: 20, Timestamp: t15}, {Value: 30.125, Timestamp: t30}},
			Exemplars:  []writev2.Exemplar{{LabelsRefs: []uint32{st.Symbolize("trace_id"), st.Symbolize("rw2trace")}, Value: 30.125, Timestamp: t30}},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: st.Symbolize("RW2 counter.")},
		},
		{
			LabelsRefs: []uint32{st.Symbolize("__name__"), st.Symbolize("it_rw2_total"), st.Symbolize("instance"), st.Symbolize("c"), st.Symbolize("job"), st.Symbolize("rw2")},
			Samples:    []writev2.Sample{{Value: 42, Timestamp: t0}},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: st.Symbolize("RW2 counter.")},
		},
	}}
	rw2.Symbols = st.Symbols()
	r, err := pushV2(node.url(), tenantA, rw2)
	if err != nil {
		t.Fatal(err)
	}
	if r.code != http.StatusNoContent {
		t.Fatalf("remote write 2.0: %s, want 204", r)
	}
	for h, want := range map[string]string{
		"X-Prometheus-Remote-Write-Samples-Written":    "4",
		"X-Prometheus-Remote-Write-Histograms-Written": "0",
		"X-Prometheus-Remote-Write-Exemplars-Written":  "1",
	} {
		if got := r.header.Get(h); got != want {
			t.Errorf("remote write 2.0 answer header %s = %q, want %q", h, got, want)
		}
	}

	// Tenant B: a series with a label name tenant A does not have.
	mustPushV1(t, node.url(), tenantB, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "it_tenant_b_only"}, {Name: "job", Value: "b"}, {Name: "only_b", Value: "x"}},
		Samples: []prompb.Sample{{Value: 7, Timestamp: t30}},
	}}})

	a := api{base: node.url() + "/prometheus", tenant: tenantA}
	b := api{base: node.url() + "/prometheus", tenant: tenantB}
	none := api{base: node.url() + "/prometheus"}

	checkTenantAData := func(t *testing.T) {
		t.Helper()
		rw1Labels := map[string]string{"__name__": "it_rw1_metric", "instance": "a", "job": "rw1"}
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			got, typ, err := a.query(method, "it_rw1_metric", t30)
			if err != nil {
				t.Fatal(err)
			}
			want := []series{{Labels: rw1Labels, Points: []point{{t30, "3.25"}}}}
			if typ != "vector" || !reflect.DeepEqual(got, want) {
				t.Errorf("%s query it_rw1_metric: %s %s, want vector %s", method, typ, fmtSeries(got), fmtSeries(want))
			}

			got, typ, err = a.query(method, "it_rw1_metric[1m]", t30)
			if err != nil {
				t.Fatal(err)
			}
			want = []series{{Labels: rw1Labels, Points: []point{{t0, "1.5"}, {t15, "2.5"}, {t30, "3.25"}}}}
			if typ != "matrix" || !reflect.DeepEqual(got, want) {
				t.Errorf("%s query it_rw1_metric[1m]: %s %s, want matrix %s", method, typ, fmtSeries(got), fmtSeries(want))
			}

			got, err = a.queryRange(method, "it_rw2_total", t0, t30, 15*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			want = []series{
				{Labels: map[string]string{"__name__": "it_rw2_total", "instance": "b", "job": "rw2"}, Points: []point{{t0, "10"}, {t15, "20"}, {t30, "30.125"}}},
				// One sample, carried forward by the lookback.
				{Labels: map[string]string{"__name__": "it_rw2_total", "instance": "c", "job": "rw2"}, Points: []point{{t0, "42"}, {t15, "42"}, {t30, "42"}}},
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s query_range it_rw2_total: %s, want %s", method, fmtSeries(got), fmtSeries(want))
			}
		}

		var ser []map[string]string
		a.get(t, http.MethodGet, "series", url.Values{"match[]": {`{job=~"rw.*"}`}, "start": {msToAPITime(t0)}, "end": {msToAPITime(t30)}}, &ser)
		wantSer := []map[string]string{rw1Labels,
			{"__name__": "it_rw2_total", "instance": "b", "job": "rw2"},
			{"__name__": "it_rw2_total", "instance": "c", "job": "rw2"}}
		if !reflect.DeepEqual(ser, wantSer) {
			t.Errorf("series: %v, want %v", ser, wantSer)
		}

		var names []string
		a.get(t, http.MethodGet, "labels", nil, &names)
		if want := []string{"__name__", "instance", "job"}; !reflect.DeepEqual(names, want) {
			t.Errorf("labels: %v, want %v", names, want)
		}
		a.get(t, http.MethodGet, "label/__name__/values", nil, &names)
		if want := []string{"it_rw1_metric", "it_rw2_total"}; !reflect.DeepEqual(names, want) {
			t.Errorf("label/__name__/values: %v, want %v", names, want)
		}
		a.get(t, http.MethodGet, "label/job/values", nil, &names)
		if want := []string{"rw1", "rw2"}; !reflect.DeepEqual(names, want) {
			t.Errorf("label/job/values: %v, want %v", names, want)
		}

		var ex []struct {
			SeriesLabels map[string]string `json:"seriesLabels"`
			Exemplars    []struct {
				Labels    map[string]string `json:"labels"`
				Value     string            `json:"value"`
				Timestamp json.Number       `json:"timestamp"`
			} `json:"exemplars"`
		}
		a.get(t, http.MethodGet, "query_exemplars", url.Values{"query": {"it_rw1_metric"}, "start": {msToAPITime(t0)}, "end": {msToAPITime(t30 + 1000)}}, &ex)
		if len(ex) != 1 || !reflect.DeepEqual(ex[0].SeriesLabels, rw1Labels) || len(ex[0].Exemplars) != 1 ||
			ex[0].Exemplars[0].Labels["trace_id"] != "rw1trace" || ex[0].Exemplars[0].Value != "3.25" || ex[0].Exemplars[0].Timestamp.String() != msToAPITime(t30) && ex[0].Exemplars[0].Timestamp.String() != fmt.Sprint(t30/1000) {
			t.Errorf("query_exemplars it_rw1_metric: %+v, want one exemplar trace_id=rw1trace value 3.25 at %s", ex, msToAPITime(t30))
		}
		a.get(t, http.MethodPost, "query_exemplars", url.Values{"query": {"it_rw2_total"}, "start": {msToAPITime(t0)}, "end": {msToAPITime(t30 + 1000)}}, &ex)
		if len(ex) != 1 || ex[0].SeriesLabels["instance"] != "b" || len(ex[0].Exemplars) != 1 || ex[0].Exemplars[0].Labels["trace_id"] != "rw2trace" || ex[0].Exemplars[0].Value != "30.125" {
			t.Errorf("query_exemplars it_rw2_total: %+v, want one exemplar trace_id=rw2trace value 30.125 on instance b", ex)
		}
	}

	t.Run("read back", checkTenantAData)

	t.Run("metadata", func(t *testing.T) {
		var md map[string][]map[string]string
		a.get(t, http.MethodGet, "metadata", nil, &md)
		want := map[string][]map[string]string{
			"it_rw1_metric": {{"type": "gauge", "help": "RW1 gauge.", "unit": ""}},
			"it_rw2_total":  {{"type": "counter", "help": "RW2 counter.", "unit": ""}},
		}
		if !reflect.DeepEqual(md, want) {
			t.Errorf("metadata: %v, want %v", md, want)
		}
		md = nil // json.Unmarshal merges into a non-nil map
		a.get(t, http.MethodGet, "metadata", url.Values{"metric": {"it_rw2_total"}}, &md)
		if !reflect.DeepEqual(md, map[string][]map[string]string{"it_rw2_total": want["it_rw2_total"]}) {
			t.Errorf("metadata?metric=it_rw2_total: %v", md)
		}
		md = nil
		b.get(t, http.MethodGet, "metadata", nil, &md)
		if len(md) != 0 {
			t.Errorf("tenant B sees metadata %v, want none", md)
		}
	})

	t.Run("format parse buildinfo", func(t *testing.T) {
		var s string
		a.get(t, http.MethodGet, "format_query", url.Values{"query": {`sum(rate(foo{bar="baz"}[5m]))by(job)`}}, &s)
		if want := `sum by (job) (rate(foo{bar="baz"}[5m]))`; s != want {
			t.Errorf("format_query: %q, want %q", s, want)
		}
		var ast map[string]any
		a.get(t, http.MethodPost, "parse_query", url.Values{"query": {"up + 1"}}, &ast)
		if ast["type"] != "binaryExpr" || ast["op"] != "+" {
			t.Errorf("parse_query up + 1: %v, want a binaryExpr with op +", ast)
		}
		// The ruler in this process: Grafana's ruler features too.
		var bi struct {
			Version, GoVersion string
			Features           map[string]string
		}
		a.get(t, http.MethodGet, "status/buildinfo", nil, &bi)
		if bi.Version == "" || !strings.HasPrefix(bi.GoVersion, "go") || bi.Features["ruler_config_api"] != "true" {
			t.Errorf("status/buildinfo: %+v, want a version, goVersion and ruler_config_api", bi)
		}
	})

	t.Run("grafana health check", func(t *testing.T) {
		// Exactly what Grafana's Prometheus data source sends on "Save & test".
		r, err := do(http.MethodPost, node.url()+"/prometheus/api/v1/query", tenantA, "application/x-www-form-urlencoded", []byte("query=1%2B1&time=4"), nil)
		if err != nil {
			t.Fatal(err)
		}
		want := `{"status":"success","data":{"resultType":"scalar","result":[4,"2"]}}`
		if r.code != http.StatusOK || strings.TrimSpace(string(r.body)) != want {
			t.Errorf("Grafana health check: %s, want 200 %s", r, want)
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Grafana health check Content-Type %q, want application/json", ct)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, c := range []struct{ method, path string }{{http.MethodGet, "query"}, {http.MethodPost, "query"}, {http.MethodPost, "query_range"}} {
			form := url.Values{"query": {"sum(rate(foo[5m]"}, "time": {msToAPITime(t30)}}
			if c.path == "query_range" {
				form = url.Values{"query": {"sum(rate(foo[5m]"}, "start": {msToAPITime(t0)}, "end": {msToAPITime(t30)}, "step": {"15"}}
			}
			r, err := a.call(c.method, c.path, form)
			if err != nil {
				t.Fatal(err)
			}
			var pr promResponse
			if err := json.Unmarshal(r.body, &pr); err != nil || r.code != http.StatusBadRequest || pr.Status != "error" || pr.ErrorType != "bad_data" || pr.Error == "" {
				t.Errorf("%s %s with bad PromQL: %s, want 400 {status:error, errorType:bad_data, error:...}", c.method, c.path, r)
			}
		}
	})

	t.Run("tenancy", func(t *testing.T) {
		r, err := pushV1(node.url(), "", &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels: []prompb.Label{{Name: "__name__", Value: "it_no_tenant"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: t30}},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		if r.code != http.StatusUnauthorized {
			t.Errorf("push without X-Scope-OrgID: %s, want 401", r)
		}
		for _, path := range []string{"query", "query_range", "series", "labels", "label/__name__/values", "metadata"} {
			r, err := none.call(http.MethodGet, path, url.Values{"query": {"up"}, "time": {msToAPITime(t30)}, "start": {msToAPITime(t0)}, "end": {msToAPITime(t30)}, "step": {"15"}, "match[]": {"up"}})
			if err != nil {
				t.Fatal(err)
			}
			if r.code != http.StatusUnauthorized {
				t.Errorf("GET %s without X-Scope-OrgID: %s, want 401", path, r)
			}
		}

		// Tenant B sees only its own series.
		got, _, err := b.query(http.MethodGet, "it_rw1_metric", t30)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("tenant B query it_rw1_metric: %s, want nothing", fmtSeries(got))
		}
		got, _, err = b.query(http.MethodPost, `{__name__=~".+"}`, t30)
		if err != nil {
			t.Fatal(err)
		}
		wantB := []series{{Labels: map[string]string{"__name__": "it_tenant_b_only", "job": "b", "only_b": "x"}, Points: []point{{t30, "7"}}}}
		if !reflect.DeepEqual(got, wantB) {
			t.Errorf("tenant B query everything: %s, want %s", fmtSeries(got), fmtSeries(wantB))
		}
		var ser []map[string]string
		b.get(t, http.MethodGet, "series", url.Values{"match[]": {`{__name__=~".+"}`}}, &ser)
		if !reflect.DeepEqual(ser, []map[string]string{wantB[0].Labels}) {
			t.Errorf("tenant B series: %v, want only %v", ser, wantB[0].Labels)
		}
		var names []string
		b.get(t, http.MethodGet, "labels", nil, &names)
		if want := []string{"__name__", "job", "only_b"}; !reflect.DeepEqual(names, want) {
			t.Errorf("tenant B labels: %v, want %v", names, want)
		}
		b.get(t, http.MethodGet, "label/__name__/values", nil, &names)
		if want := []string{"it_tenant_b_only"}; !reflect.DeepEqual(names, want) {
			t.Errorf("tenant B label/__name__/values: %v, want %v", names, want)
		}
		b.get(t, http.MethodGet, "label/job/values", nil, &names)
		if want := []string{"b"}; !reflect.DeepEqual(names, want) {
			t.Errorf("tenant B label/job/values: %v, want %v", names, want)
		}
		// And tenant A does not see B's label.
		a.get(t, http.MethodGet, "label/only_b/values", nil, &names)
		if len(names) != 0 {
			t.Errorf("tenant A label/only_b/values: %v, want none", names)
		}
	})
	t.Run("many series in one query stream", func(t *testing.T) {
		// Many series make many frames on the ingester -> querier stream;
		// frames sent while gRPC still held an earlier one's (pooled)
		// buffer once arrived corrupted ("checksum mismatch").
		const nSeries, nSamples = 400, 30
		req := &prompb.WriteRequest{}
		for i := 0; i < nSeries; i++ {
			ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "it_many"}, {Name: "i", Value: fmt.Sprintf("%04d", i)}}}
			for j := 0; j < nSamples; j++ {
				ts.Samples = append(ts.Samples, prompb.Sample{Value: float64(i*nSamples+j) + 0.5, Timestamp: t0 + int64(j)*1000})
			}
			req.Timeseries = append(req.Timeseries, ts)
		}
		const tenantC = "tenant-c"
		mustPushV1(t, node.url(), tenantC, req)
		c := api{base: node.url() + "/prometheus", tenant: tenantC}
		check := func(round int) error {
			got, _, err := c.query(http.MethodGet, "it_many[1h]", t30)
			if err != nil {
				return fmt.Errorf("round %d: %w", round, err)
			}
			if len(got) != nSeries {
				return fmt.Errorf("round %d: %d series, want %d", round, len(got), nSeries)
			}
			for i, s := range got {
				if len(s.Points) != nSamples {
					return fmt.Errorf("round %d: %s has %d samples, want %d", round, s.key(), len(s.Points), nSamples)
				}
				for j, p := range s.Points {
					if want := (point{t0 + int64(j)*1000, fmt.Sprint(float64(i*nSamples+j) + 0.5)}); p != want {
						return fmt.Errorf("round %d: %s sample %d = %v, want %v", round, s.key(), j, p, want)
					}
				}
			}
			return nil
		}
		// A few concurrent readers make the race more likely.
		var wg sync.WaitGroup
		errs := make(chan error, 4*5)
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for round := 0; round < 5; round++ {
					if err := check(round); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("restart replays WAL", func(t *testing.T) {
		// Graceful shutdown normally takes well under a second.
		node.terminate(t, 20*time.Second)
		node.start(t)
		node.waitReady(t, 60*time.Second)

		_, body, err := httpGet(node.url()+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		for tenant, want := range map[string]float64{tenantA: 3, tenantB: 1} {
			if got, ok := metricValue(body, "canopy_ingester_head_series", map[string]string{"tenant": tenant}); !ok || got != want {
				t.Errorf("after restart canopy_ingester_head_series{tenant=%q} = %v (found %v), want %v", tenant, got, ok, want)
			}
		}
		checkTenantAData(t)
		got, _, err := b.query(http.MethodGet, `{__name__=~".+"}`, t30)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Labels["__name__"] != "it_tenant_b_only" {
			t.Errorf("tenant B after restart: %s", fmtSeries(got))
		}
		var md map[string][]map[string]string
		a.get(t, http.MethodGet, "metadata", nil, &md)
		t.Logf("metadata after restart (kept in memory only, re-sent by senders): %v", md)
	})
}
