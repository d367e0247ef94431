package tempoapi

import (
	"context"
	"errors"
	"net/http"
)

// Errors are answered as Tempo answers them: the status code and the
// message as text/plain, which Grafana shows as is.
//
//	400  bad parameters, and Backend errors wrapping ErrBadRequest
//	     (queries that do not parse, exceeded limits)
//	401  no tenant (the API was registered without the tenant resolver)
//	404  no trace with the ID (also a trace with no spans, which Grafana
//	     would show as not found anyway)
//	499  the client went away (nginx's "client closed request")
//	504  the request ran longer than -querier.traces.query-timeout
//	500  the Backend failed
const statusClientClosedRequest = 499

const (
	msgClientCanceled = "the request was canceled by the client"
	msgTimeout        = "the query ran longer than " + FlagQueryTimeout + " allows: narrow the time range or the query, or raise the timeout"
	msgNotFound       = "trace not found"
)

// errTraceNotFound is a trace-by-ID request's answer when the trace has
// no spans: 404.
var errTraceNotFound = errors.New(msgNotFound)

// noTenantError is a request without a tenant in its context: 401.
type noTenantError struct{ err error }

func (e *noTenantError) Error() string { return e.err.Error() }
func (e *noTenantError) Unwrap() error { return e.err }

// status returns the status and the message of an error.
func status(ctx context.Context, err error) (int, string) {
	var (
		bad      *badRequest
		noTenant *noTenantError
	)
	switch {
	case errors.As(err, &bad), errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest, err.Error()
	case errors.As(err, &noTenant):
		return http.StatusUnauthorized, err.Error()
	case errors.Is(err, errTraceNotFound):
		return http.StatusNotFound, msgNotFound
	case errors.Is(ctx.Err(), context.Canceled) || errors.Is(err, context.Canceled):
		return statusClientClosedRequest, msgClientCanceled
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, msgTimeout
	}
	return http.StatusInternalServerError, err.Error()
}

// writeError answers a failed request.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, tenant string, err error) {
	code, msg := status(r.Context(), err)
	if code >= http.StatusInternalServerError {
		a.logger.Error("tempo api request", "component", "tempoapi", "tenant", tenant, "path", r.URL.Path, "err", err)
	} else {
		a.logger.Debug("tempo api request", "component", "tempoapi", "tenant", tenant, "path", r.URL.Path, "status", code, "err", err)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg))
}
