package frontend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/canopy-observability/canopy/pkg/tempoapi"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// Tempo's API (pkg/tempoapi) serves only GET, where the Prometheus and
// Loki APIs take the form POSTs Downstream.Do makes: the frontend's
// Downstream is wrapped in a tempoDownstream, which makes the calls below
// tempoapi.PathPrefix as GETs with the form in the URL.

// tempoDownstream is a Downstream making its calls to Tempo's API as GETs
// through HandlerDownstream's and HTTPDownstream's getter, and every other
// call, or any call of another Downstream (tests'), through Do. Proxy is
// the wrapped Downstream's.
type tempoDownstream struct{ Downstream }

// getter is a Downstream that can make a call as a GET.
type getter interface {
	get(ctx context.Context, tenant, path string, form url.Values, header http.Header) (*Response, error)
}

// Do implements Downstream.
func (d tempoDownstream) Do(ctx context.Context, id, path string, form url.Values, header http.Header) (*Response, error) {
	if g, ok := d.Downstream.(getter); ok && strings.HasPrefix(path, tempoapi.PathPrefix) {
		return g.get(ctx, id, path, form, header)
	}
	return d.Downstream.Do(ctx, id, path, form, header)
}

func (d HandlerDownstream) get(ctx context.Context, id, path string, form url.Values, header http.Header) (*Response, error) {
	h := d.Handler()
	if h == nil {
		return nil, errors.New("no querier runs in this process and -query-frontend.downstream-url is empty")
	}
	req, err := newGet(ctx, path, form, header, id)
	if err != nil {
		return nil, err
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	h.ServeHTTP(rec, req)
	return &Response{Status: rec.status, Header: rec.header, Body: rec.body.Bytes()}, nil
}

func (d *HTTPDownstream) get(ctx context.Context, id, path string, form url.Values, header http.Header) (*Response, error) {
	req, err := newGet(ctx, d.base.JoinPath(path).String(), form, header, id)
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

// newGet is the GET of a downstream call to target for tenant id, form in
// its query.
func newGet(ctx context.Context, target string, form url.Values, header http.Header, id string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target+"?"+form.Encode(), nil)
	if err != nil {
		return nil, err
	}
	for k, vs := range header {
		req.Header[k] = append([]string(nil), vs...)
	}
	tenant.SetHeader(req, id)
	return req, nil
}
