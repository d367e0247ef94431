package federation

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/canopy-observability/canopy/pkg/util/promjson"
)

// maxResponseBytes bounds one child's answer (before decompression is
// Go's transport's business: this counts decoded bytes).
const maxResponseBytes = 1 << 30

// child is one configured child and its HTTP client.
type child struct {
	cfg      ChildConfig
	base     string // URL without a trailing slash
	client   *http.Client
	timeout  time.Duration
	external map[string]string
}

func newChild(cfg ChildConfig, defaultTimeout time.Duration) (*child, error) {
	hc, err := commoncfg.NewClientFromConfig(cfg.HTTPClientConfig, "federation-"+cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("child %q: %w", cfg.Name, err)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = defaultTimeout
	}
	return &child{cfg: cfg, base: strings.TrimSuffix(cfg.URL, "/"), client: hc, timeout: timeout, external: cfg.ExternalLabels}, nil
}

// apiResponse is the Prometheus HTTP API's envelope.
type apiResponse = promjson.Response

// childError is a child's failure: its name and what went wrong.
type childError struct {
	child string
	err   error
}

func (e *childError) Error() string { return fmt.Sprintf("child %s: %v", e.child, e.err) }
func (e *childError) Unwrap() error { return e.err }

// call GETs (POSTs, for long forms) path with form on the child and
// decodes the envelope; bytes is the size of the answer.
func (c *child) call(ctx context.Context, tenant, path string, form url.Values) (resp apiResponse, bytes int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	body := form.Encode()
	var req *http.Request
	if len(body) > 4096 {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, strings.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, c.base+path+"?"+body, nil)
	}
	if err != nil {
		return resp, 0, &childError{c.cfg.Name, err}
	}
	if c.cfg.Tenant != "" {
		tenant = c.cfg.Tenant
	}
	if tenant != "" {
		req.Header.Set("X-Scope-OrgID", tenant)
	}
	req.Header.Set("Accept", "application/json")
	start := time.Now()
	r, err := c.client.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("no answer within its timeout of %s", c.timeout)
		}
		return resp, 0, &childError{c.cfg.Name, err}
	}
	defer r.Body.Close()
	cr := &countingReader{r: io.LimitReader(r.Body, maxResponseBytes+1)}
	decErr := json.NewDecoder(cr).Decode(&resp)
	if cr.n > maxResponseBytes {
		return resp, cr.n, &childError{c.cfg.Name, fmt.Errorf("answer larger than %d bytes", maxResponseBytes)}
	}
	if decErr != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return resp, cr.n, &childError{c.cfg.Name, fmt.Errorf("no whole answer within its timeout of %s", c.timeout)}
		}
		return resp, cr.n, &childError{c.cfg.Name, fmt.Errorf("HTTP %d after %s, body not the Prometheus API's JSON: %v", r.StatusCode, time.Since(start).Round(time.Millisecond), decErr)}
	}
	if resp.Status != "success" {
		return resp, cr.n, &childError{c.cfg.Name, fmt.Errorf("HTTP %d: %s: %s", r.StatusCode, resp.ErrorType, resp.Error)}
	}
	return resp, cr.n, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// queryResult is a query's answer as a matrix: an instant vector's
// samples become one-point series.
type queryResult struct {
	series   model.Matrix
	warnings []string
	bytes    int64
}

// queryRange runs expr on the child at the query's steps (step 0: an
// instant query at start).
func (c *child) queryRange(ctx context.Context, tenant, expr string, start, end time.Time, step, lookback time.Duration) (queryResult, error) {
	form := url.Values{"query": {expr}}
	if lookback > 0 {
		form.Set("lookback_delta", strconv.FormatFloat(lookback.Seconds(), 'f', -1, 64))
	}
	path := "/api/v1/query_range"
	if step == 0 {
		path = "/api/v1/query"
		form.Set("time", formatTime(start))
	} else {
		form.Set("start", formatTime(start))
		form.Set("end", formatTime(end))
		form.Set("step", strconv.FormatFloat(step.Seconds(), 'f', -1, 64))
	}
	resp, n, err := c.call(ctx, tenant, path, form)
	res := queryResult{warnings: resp.Warnings, bytes: n}
	if err != nil {
		return res, err
	}
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(resp.Data, &data); err != nil {
		return res, &childError{c.cfg.Name, fmt.Errorf("decoding the answer: %w", err)}
	}
	switch data.ResultType {
	case "matrix":
		err = json.Unmarshal(data.Result, &res.series)
	case "vector":
		var v model.Vector
		if err = json.Unmarshal(data.Result, &v); err == nil {
			for _, s := range v {
				ss := &model.SampleStream{Metric: s.Metric}
				if s.Histogram != nil {
					ss.Histograms = []model.SampleHistogramPair{{Timestamp: s.Timestamp, Histogram: s.Histogram}}
				} else {
					ss.Values = []model.SamplePair{{Timestamp: s.Timestamp, Value: s.Value}}
				}
				res.series = append(res.series, ss)
			}
		}
	default:
		return res, &childError{c.cfg.Name, fmt.Errorf("answered a %s where a vector or matrix was expected", data.ResultType)}
	}
	if err != nil {
		return res, &childError{c.cfg.Name, fmt.Errorf("decoding the answer: %w", err)}
	}
	return res, nil
}

func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64)
}
