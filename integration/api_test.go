package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

const (
	contentTypeRW1 = "application/x-protobuf"
	contentTypeRW2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
	tenantHeader   = "X-Scope-OrgID"
)

// response is one HTTP answer.
type response struct {
	code   int
	header http.Header
	body   []byte
}

func (r response) String() string {
	return fmt.Sprintf("%d %s", r.code, strings.TrimSpace(string(r.body)))
}

// do sends one request. tenant "" sends no X-Scope-OrgID.
func do(method, u, tenant, contentType string, body []byte, hdr map[string]string) (response, error) {
	return doTimeout(10*time.Second, method, u, tenant, contentType, body, hdr)
}

// doTimeout is do with a chosen timeout, for slow operations like flushes.
func doTimeout(timeout time.Duration, method, u, tenant, contentType string, body []byte, hdr map[string]string) (response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return response{}, err
	}
	if body == nil {
		req.Body, req.ContentLength = nil, 0
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if tenant != "" {
		req.Header.Set(tenantHeader, tenant)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	// The context's timeout governs, not httpClient's 15 s: a flush during a
	// bucket outage takes about that long retrying its uploads.
	resp, err := untimedClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}, nil
}

// pushV1 sends a remote write 1.0 request.
func pushV1(base, tenant string, req *prompb.WriteRequest) (response, error) {
	raw, err := req.Marshal()
	if err != nil {
		return response{}, err
	}
	return do(http.MethodPost, base+"/api/v1/push", tenant, contentTypeRW1, snappy.Encode(nil, raw), map[string]string{
		"Content-Encoding":                  "snappy",
		"X-Prometheus-Remote-Write-Version": "0.1.0",
	})
}

// pushV2 sends a remote write 2.0 request.
func pushV2(base, tenant string, req *writev2.Request) (response, error) {
	raw, err := req.Marshal()
	if err != nil {
		return response{}, err
	}
	return do(http.MethodPost, base+"/api/v1/push", tenant, contentTypeRW2, snappy.Encode(nil, raw), map[string]string{
		"Content-Encoding":                  "snappy",
		"X-Prometheus-Remote-Write-Version": "2.0.0",
	})
}

// mustPushV1 pushes and fails the test unless the answer is 2xx.
func mustPushV1(t *testing.T, base, tenant string, req *prompb.WriteRequest) response {
	t.Helper()
	r, err := pushV1(base, tenant, req)
	if err != nil {
		t.Fatalf("remote write 1.0 to %s: %v", base, err)
	}
	if r.code/100 != 2 {
		t.Fatalf("remote write 1.0 to %s as %q: %s", base, tenant, r)
	}
	return r
}

// promResponse is the envelope of every Prometheus HTTP API answer.
type promResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
	Infos     []string        `json:"infos"`
}

// api is a Prometheus-compatible HTTP API at base (e.g. .../prometheus).
type api struct {
	base   string
	tenant string
}

// call sends a GET (form in the query string) or a POST (form in the body).
func (a api) call(method, path string, form url.Values) (response, error) {
	u := a.base + "/api/v1/" + path
	if method == http.MethodGet {
		if len(form) > 0 {
			u += "?" + form.Encode()
		}
		return do(method, u, a.tenant, "", nil, nil)
	}
	return do(method, u, a.tenant, "application/x-www-form-urlencoded", []byte(form.Encode()), nil)
}

// get calls the API and decodes a successful answer's data into out.
func (a api) get(t *testing.T, method, path string, form url.Values, out any) {
	t.Helper()
	if err := a.tryGet(method, path, form, out); err != nil {
		t.Fatal(err)
	}
}

func (a api) tryGet(method, path string, form url.Values, out any) error {
	r, err := a.call(method, path, form)
	if err != nil {
		return fmt.Errorf("%s %s %v: %w", method, path, form, err)
	}
	if r.code != http.StatusOK {
		return fmt.Errorf("%s %s/api/v1/%s %v as %q: %s", method, a.base, path, form, a.tenant, r)
	}
	var pr promResponse
	if err := json.Unmarshal(r.body, &pr); err != nil {
		return fmt.Errorf("%s %s: decoding %q: %w", method, path, r.body, err)
	}
	if pr.Status != "success" {
		return fmt.Errorf("%s %s: status %q: %s", method, path, pr.Status, r.body)
	}
	if out != nil {
		if err := json.Unmarshal(pr.Data, out); err != nil {
			return fmt.Errorf("%s %s: decoding data %s: %w", method, path, pr.Data, err)
		}
	}
	return nil
}

// point is one sample: milliseconds and the value exactly as the API wrote it.
type point struct {
	T int64
	V string
}

func (p point) String() string { return fmt.Sprintf("%d:%s", p.T, p.V) }

// series is one series of a vector or matrix result.
type series struct {
	Labels map[string]string
	Points []point
}

func (s series) key() string { return labelsKey(s.Labels) }

func labelsKey(ls map[string]string) string {
	names := make([]string, 0, len(ls))
	for n := range ls {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", n, ls[n])
	}
	b.WriteByte('}')
	return b.String()
}

// parsePoint decodes [<seconds>, "<value>"], insisting the value is a JSON
// string as the Prometheus API renders it.
func parsePoint(raw [2]json.RawMessage) (point, error) {
	var secs json.Number
	if err := json.Unmarshal(raw[0], &secs); err != nil {
		return point{}, fmt.Errorf("timestamp %s: %w", raw[0], err)
	}
	f, err := secs.Float64()
	if err != nil {
		return point{}, fmt.Errorf("timestamp %s: %w", raw[0], err)
	}
	v := bytes.TrimSpace(raw[1])
	if len(v) == 0 || v[0] != '"' {
		return point{}, fmt.Errorf("sample value %s is not a JSON string", raw[1])
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return point{}, err
	}
	return point{T: int64(math.Round(f * 1000)), V: s}, nil
}

// queryResult is the data of /query and /query_range.
type queryResult struct {
	ResultType string          `json:"resultType"`
	Result     json.RawMessage `json:"result"`
}

// seriesList decodes a vector or matrix result, sorted by labels.
func (q queryResult) seriesList() ([]series, error) {
	var raw []struct {
		Metric map[string]string    `json:"metric"`
		Value  *[2]json.RawMessage  `json:"value"`
		Values [][2]json.RawMessage `json:"values"`
	}
	if q.ResultType != "vector" && q.ResultType != "matrix" {
		return nil, fmt.Errorf("result type %q, want vector or matrix", q.ResultType)
	}
	if err := json.Unmarshal(q.Result, &raw); err != nil {
		return nil, err
	}
	out := make([]series, 0, len(raw))
	for _, r := range raw {
		s := series{Labels: r.Metric}
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		if r.Value != nil {
			p, err := parsePoint(*r.Value)
			if err != nil {
				return nil, err
			}
			s.Points = append(s.Points, p)
		}
		for _, v := range r.Values {
			p, err := parsePoint(v)
			if err != nil {
				return nil, err
			}
			s.Points = append(s.Points, p)
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out, nil
}

// query runs an instant query (GET or POST) and returns its series.
func (a api) query(method, q string, ts int64) ([]series, string, error) {
	var res queryResult
	if err := a.tryGet(method, "query", url.Values{"query": {q}, "time": {msToAPITime(ts)}}, &res); err != nil {
		return nil, "", err
	}
	s, err := res.seriesList()
	return s, res.ResultType, err
}

// queryRange runs a range query (GET or POST); step in seconds.
func (a api) queryRange(method, q string, start, end int64, step time.Duration) ([]series, error) {
	var res queryResult
	form := url.Values{"query": {q}, "start": {msToAPITime(start)}, "end": {msToAPITime(end)}, "step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}}
	if err := a.tryGet(method, "query_range", form, &res); err != nil {
		return nil, err
	}
	if res.ResultType != "matrix" {
		return nil, fmt.Errorf("query_range result type %q, want matrix", res.ResultType)
	}
	return res.seriesList()
}

// msToAPITime renders milliseconds as the API's decimal seconds.
func msToAPITime(ms int64) string {
	return strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)
}

// fmtSeries renders series compactly for failure messages.
func fmtSeries(ss []series) string {
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "%s %v\n", s.key(), s.Points)
	}
	return b.String()
}

// metricValue returns the value of the sample of name whose labels include
// want from a text exposition, and whether it was found.
func metricValue(exposition []byte, name string, want map[string]string) (float64, bool) {
	for _, line := range strings.Split(string(exposition), "\n") {
		if !strings.HasPrefix(line, name) || strings.HasPrefix(line, "#") {
			continue
		}
		rest := line[len(name):]
		lbls := ""
		if strings.HasPrefix(rest, "{") {
			end := strings.Index(rest, "}")
			if end < 0 {
				continue
			}
			lbls, rest = rest[1:end], rest[end+1:]
		} else if !strings.HasPrefix(rest, " ") {
			continue // a longer metric name
		}
		ok := true
		for k, v := range want {
			if !strings.Contains(","+lbls+",", ","+k+"="+strconv.Quote(v)+",") {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		f, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		return f, true
	}
	return 0, false
}
