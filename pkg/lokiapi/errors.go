package lokiapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/prometheus/prometheus/promql"

	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// Errors are answered as Loki answers them: the status code and the
// message as text/plain, which Grafana shows as is. Loki's statuses:
//
//	400  bad parameters, queries that do not parse or cannot be evaluated,
//	     exceeded query limits (max series, max entries, bytes read,
//	     samples: Loki answers its ErrLimit with 400, not 422)
//	499  the client went away (nginx's "client closed request")
//	504  the query ran out of time (-querier.logs.query-timeout)
//	500  the store failed
const statusClientClosedRequest = 499

const (
	msgClientCanceled = "The request was cancelled by the client."
	msgTimeout        = "The query ran longer than " + flagQueryTimeout + " allows: narrow the time range or the stream selector, or raise the timeout."
)

// storeError is an error the Backend returned: the server's fault, 500.
type storeError struct{ err error }

func (e *storeError) Error() string { return e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// Unavailable marks err as the store's failure (500), not the query's:
// what a Backend or an engine's Remote returns when what it reads from
// failed.
func Unavailable(err error) error { return &storeError{err: err} }

// status returns the status and the message of an error. The engine's
// errors other than the store's and the context's concern the query.
func status(ctx context.Context, err error) (int, string) {
	var (
		bad      *badRequest
		parse    *logql.Error
		store    *storeError
		canceled promql.ErrQueryCanceled
		timeout  promql.ErrQueryTimeout
		samples  promql.ErrTooManySamples
	)
	switch {
	case errors.As(err, &bad), errors.As(err, &parse):
		return http.StatusBadRequest, err.Error()
	case errors.Is(ctx.Err(), context.Canceled) || errors.Is(err, context.Canceled) || errors.As(err, &canceled):
		return statusClientClosedRequest, msgClientCanceled
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &timeout):
		return http.StatusGatewayTimeout, msgTimeout
	case errors.Is(err, logql.ErrLimit):
		return http.StatusBadRequest, err.Error()
	case errors.As(err, &samples):
		return http.StatusBadRequest, "the query would hold more samples at once than the engine allows: narrow the time range or raise the step"
	case errors.As(err, &store):
		return http.StatusInternalServerError, err.Error()
	}
	return http.StatusBadRequest, err.Error()
}

// writeError answers a failed request.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := status(r.Context(), err)
	if code >= http.StatusInternalServerError {
		id, _ := tenant.ID(r.Context())
		a.logger.Error("loki api request", "component", "lokiapi", "tenant", id, "path", r.URL.Path, "err", err)
	} else {
		a.logger.Debug("loki api request", "component", "lokiapi", "path", r.URL.Path, "status", code, "err", err)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg))
}
