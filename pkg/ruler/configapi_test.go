package ruler

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/grafana/dskit/user"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"go.yaml.in/yaml/v3"
)

const goodGroup = `name: api
interval: 30s
rules:
  - record: job:http_requests:rate5m
    expr: sum by (job) (rate(http_requests_total[5m]))
  - alert: HighErrorRate
    expr: job:http_requests:rate5m{code=~"5.."} > 0.1
    for: 10m
    labels:
      severity: page
    annotations:
      summary: "{{ $labels.job }} fails"
`

// newConfigAPI serves the API over an in-memory bucket; the tenant is
// the request's X-Scope-OrgID, as Canopy's resolver puts it.
func newConfigAPI(t *testing.T) (*httptest.Server, objstore.Bucket) {
	bkt := objstore.NewInMemBucket()
	api := NewConfigAPI(NewStore(bkt), "/prometheus/config/v1/rules", PromQLGroups(parser.NewParser(parser.Options{})), nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if org := r.Header.Get("X-Scope-OrgID"); org != "" {
			r = r.WithContext(user.InjectOrgID(r.Context(), org))
		}
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, bkt
}

func call(t *testing.T, srv *httptest.Server, method, path, tenant, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if tenant != "" {
		req.Header.Set("X-Scope-OrgID", tenant)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/yaml")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestConfigAPIRoundTrip(t *testing.T) {
	srv, bkt := newConfigAPI(t)
	ns := url.PathEscape("team/a") // a namespace with a slash, as mimirtool sends it
	code, body := call(t, srv, http.MethodPost, "/prometheus/config/v1/rules/"+ns, "t1", goodGroup)
	require.Equal(t, http.StatusAccepted, code, body)
	require.JSONEq(t, `{"status":"success","data":null,"errorType":"","error":""}`, body)
	exists, err := bkt.Exists(t.Context(), "t1/rules/team%2Fa/api")
	require.NoError(t, err)
	require.True(t, exists, "the group is one object in the bucket under the tenant")

	var want rulefmt.RuleGroup
	require.NoError(t, yaml.Unmarshal([]byte(goodGroup), &want))
	code, body = call(t, srv, http.MethodGet, "/prometheus/config/v1/rules/"+ns+"/api", "t1", "")
	require.Equal(t, http.StatusOK, code, body)
	var got rulefmt.RuleGroup
	require.NoError(t, yaml.Unmarshal([]byte(body), &got))
	require.Equal(t, want, got)

	for _, path := range []string{"/prometheus/config/v1/rules", "/prometheus/config/v1/rules/" + ns} {
		code, body = call(t, srv, http.MethodGet, path, "t1", "")
		require.Equal(t, http.StatusOK, code, body)
		var all map[string][]rulefmt.RuleGroup
		require.NoError(t, yaml.Unmarshal([]byte(body), &all))
		require.Equal(t, map[string][]rulefmt.RuleGroup{"team/a": {want}}, all, path)
	}
	// Another tenant sees none: an empty map, as Mimir answers.
	code, body = call(t, srv, http.MethodGet, "/prometheus/config/v1/rules", "t2", "")
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "{}\n", body)
	code, _ = call(t, srv, http.MethodGet, "/prometheus/config/v1/rules/"+ns, "t2", "")
	require.Equal(t, http.StatusNotFound, code)
	code, _ = call(t, srv, http.MethodGet, "/prometheus/config/v1/rules", "", "")
	require.Equal(t, http.StatusUnauthorized, code)

	// Replaced, then deleted.
	code, body = call(t, srv, http.MethodPost, "/prometheus/config/v1/rules/"+ns, "t1", strings.Replace(goodGroup, "30s", "1m", 1))
	require.Equal(t, http.StatusAccepted, code, body)
	_, body = call(t, srv, http.MethodGet, "/prometheus/config/v1/rules/"+ns+"/api", "t1", "")
	require.Contains(t, body, "interval: 1m")
	code, body = call(t, srv, http.MethodDelete, "/prometheus/config/v1/rules/"+ns+"/api", "t1", "")
	require.Equal(t, http.StatusAccepted, code, body)
	code, _ = call(t, srv, http.MethodGet, "/prometheus/config/v1/rules/"+ns+"/api", "t1", "")
	require.Equal(t, http.StatusNotFound, code)
	code, _ = call(t, srv, http.MethodDelete, "/prometheus/config/v1/rules/"+ns+"/api", "t1", "")
	require.Equal(t, http.StatusNotFound, code)

	// A namespace deleted whole.
	for _, g := range []string{"a", "b"} {
		code, body = call(t, srv, http.MethodPost, "/prometheus/config/v1/rules/ops", "t1", strings.Replace(goodGroup, "name: api", "name: "+g, 1))
		require.Equal(t, http.StatusAccepted, code, body)
	}
	code, body = call(t, srv, http.MethodDelete, "/prometheus/config/v1/rules/ops", "t1", "")
	require.Equal(t, http.StatusAccepted, code, body)
	_, body = call(t, srv, http.MethodGet, "/prometheus/config/v1/rules", "t1", "")
	require.Equal(t, "{}\n", body)
}

// TestConfigAPIRejects: what promtool check rules rejects is refused with
// 400, naming the line and column, the group and the rule; nothing is
// stored.
func TestConfigAPIRejects(t *testing.T) {
	srv, bkt := newConfigAPI(t)
	for _, tc := range []struct {
		name, body string
		want       *regexp.Regexp
	}{
		{"bad PromQL", strings.Replace(goodGroup, `> 0.1`, `> > 0.1`, 1), regexp.MustCompile(`^7:11: group "api", rule 2, "HighErrorRate": could not parse expression: `)},
		{"bad template", strings.Replace(goodGroup, `{{ $labels.job }}`, `{{ $labels.job `, 1), regexp.MustCompile(`^group "api", rule 2, "HighErrorRate": annotation "summary": template: `)},
		{"record and alert", strings.Replace(goodGroup, "  - alert: HighErrorRate", "  - alert: HighErrorRate\n    record: x", 1), regexp.MustCompile(`only one of 'record' and 'alert' must be set`)},
		{"invalid record name", strings.Replace(goodGroup, "job:http_requests:rate5m\n", "\"\"\n", 1), regexp.MustCompile(`group "api", rule 1, "": .*one of 'record' or 'alert' must be set`)},
		{"unknown field", goodGroup + "evaluation: 5m\n", regexp.MustCompile(`field evaluation not found`)},
		{"no name", strings.Replace(goodGroup, "name: api", "name: \"\"", 1), regexp.MustCompile(`Groupname must not be empty`)},
		{"not YAML", "name: [unclosed\n", regexp.MustCompile(`yaml: line`)},
		{"empty", "", regexp.MustCompile(`no rule group`)},
	} {
		code, body := call(t, srv, http.MethodPost, "/prometheus/config/v1/rules/ns", "t1", tc.body)
		require.Equal(t, http.StatusBadRequest, code, "%s: %s", tc.name, body)
		var env struct{ Status, ErrorType, Error string }
		require.NoError(t, json.Unmarshal([]byte(body), &env), tc.name)
		require.Equal(t, "error", env.Status, tc.name)
		require.Equal(t, "bad_data", env.ErrorType, tc.name)
		require.Regexp(t, tc.want, env.Error, tc.name)
	}
	code, body := call(t, srv, http.MethodPost, "/prometheus/config/v1/rules/ns", "t1", goodGroup+"# "+strings.Repeat("x", MaxGroupBytes)+"\n")
	require.Equal(t, http.StatusRequestEntityTooLarge, code, body)
	n := 0
	require.NoError(t, bkt.Iter(t.Context(), "", func(string) error { n++; return nil }, objstore.WithRecursiveIter()))
	require.Zero(t, n, "nothing refused is stored")
}

func FuzzParseGroup(f *testing.F) {
	f.Add([]byte(goodGroup))
	f.Add([]byte("name: x\nrules:\n- alert: A\n  expr: up == 0\n  for: 5m\n"))
	f.Add([]byte("name: x\nrules: [{record: r, expr: 'sum(', labels: {a: '{{'}}]\n"))
	p := parser.NewParser(parser.Options{})
	f.Fuzz(func(t *testing.T, body []byte) {
		g, errs := ParseGroup(body, p)
		if len(errs) == 0 && g.Name == "" {
			t.Fatalf("a group without a name passed: %q", body)
		}
	})
}
