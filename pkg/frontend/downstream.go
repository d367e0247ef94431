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

	"github.com/canopy-observability/canopy/pkg/lokiapi"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// Downstream runs requests on the queriers' query APIs (Prometheus's under
// /prometheus/api/v1/, Loki's under /loki/api/v1/). It is used by many
// goroutines at once.
type Downstream interface {
	// Do runs the API call at path (the codec's prefix and its path, e.g.
	// "/prometheus/api/v1/query_range") with form and header for tenant,
	// as a form POST. It must not modify form or header.
	Do(ctx context.Context, tenant, path string, form url.Values, header http.Header) (*Response, error)
	// Proxy forwards any other API request unchanged.
	Proxy(w http.ResponseWriter, r *http.Request)
}

// HandlerDownstream runs requests on an http.Handler of this process (the
// querier's query APIs, at their paths), found when the request is made.
type HandlerDownstream struct {
	// Handler returns the handler, nil when no querier runs in the
	// process. It resolves the tenant from the request's header.
	Handler func() http.Handler
}

// Do implements Downstream.
func (d HandlerDownstream) Do(ctx context.Context, id, path string, form url.Values, header http.Header) (*Response, error) {
	h := d.Handler()
	if h == nil {
		return nil, errors.New("no querier runs in this process and -query-frontend.downstream-url is empty")
	}
	req, err := newCall(ctx, path, form, header, id)
	if err != nil {
		return nil, err
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	h.ServeHTTP(rec, req)
	return &Response{Status: rec.status, Header: rec.header, Body: rec.body.Bytes()}, nil
}

// Proxy implements Downstream.
func (d HandlerDownstream) Proxy(w http.ResponseWriter, r *http.Request) {
	h := d.Handler()
	if h == nil {
		const msg = "no querier runs in this process and -query-frontend.downstream-url is empty"
		if strings.HasPrefix(r.URL.Path, lokiapi.PathPrefix) {
			writeResponse(w, lokiError(http.StatusInternalServerError, "internal", msg))
			return
		}
		writeError(w, http.StatusInternalServerError, "internal", msg)
		return
	}
	h.ServeHTTP(w, r)
}

// newCall is the form POST of a downstream call to target for tenant id.
func newCall(ctx context.Context, target string, form url.Values, header http.Header, id string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	for k, vs := range header {
		req.Header[k] = append([]string(nil), vs...)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	tenant.SetHeader(req, id)
	return req, nil
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
func (d *HTTPDownstream) Do(ctx context.Context, id, path string, form url.Values, header http.Header) (*Response, error) {
	req, err := newCall(ctx, d.base.JoinPath(path).String(), form, header, id)
	if err != nil {
		return nil, err
	}
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
