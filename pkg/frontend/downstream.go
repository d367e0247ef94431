package frontend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// Downstream runs requests on the queriers' Prometheus API. It is used by
// many goroutines at once.
type Downstream interface {
	// Do runs the API call path (e.g. "query_range") with form for tenant.
	// It must not modify form.
	Do(ctx context.Context, tenant, path string, form url.Values) (*Response, error)
	// Proxy forwards any other API request unchanged.
	Proxy(w http.ResponseWriter, r *http.Request)
}

// HandlerDownstream runs requests on an http.Handler of this process (the
// querier's API), found when the request is made.
type HandlerDownstream struct {
	Handler func() http.Handler
	// Prefix is where the API lives, e.g. "/prometheus/api/v1/".
	Prefix string
}

// Do implements Downstream.
func (d HandlerDownstream) Do(ctx context.Context, id, path string, form url.Values) (*Response, error) {
	h := d.Handler()
	if h == nil {
		return nil, errors.New("no querier runs in this process and -query-frontend.downstream-url is empty")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Prefix+path, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	tenant.SetHeader(req, id)
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	h.ServeHTTP(rec, req)
	return &Response{Status: rec.status, Header: rec.header, Body: rec.body.Bytes()}, nil
}

// Proxy implements Downstream.
func (d HandlerDownstream) Proxy(w http.ResponseWriter, r *http.Request) {
	h := d.Handler()
	if h == nil {
		writeError(w, http.StatusInternalServerError, "internal", "no querier runs in this process and -query-frontend.downstream-url is empty")
		return
	}
	h.ServeHTTP(w, r)
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
}

// HTTPDownstream sends requests to queriers at a base URL.
type HTTPDownstream struct {
	base   *url.URL
	client *http.Client
	proxy  *httputil.ReverseProxy
}

// NewHTTPDownstream returns a downstream for queriers at base.
func NewHTTPDownstream(base string) (*HTTPDownstream, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("-query-frontend.downstream-url %q: not an absolute URL", base)
	}
	return &HTTPDownstream{base: u, client: &http.Client{}, proxy: httputil.NewSingleHostReverseProxy(u)}, nil
}

// Do implements Downstream.
func (d *HTTPDownstream) Do(ctx context.Context, id, path string, form url.Values) (*Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.base.JoinPath("/prometheus/api/v1/", path).String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	tenant.SetHeader(req, id)
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("querier at %s: %w", d.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("querier at %s: %w", d.base, err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// Proxy implements Downstream.
func (d *HTTPDownstream) Proxy(w http.ResponseWriter, r *http.Request) { d.proxy.ServeHTTP(w, r) }
