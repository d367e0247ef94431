package frontend

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
)

// Response is a downstream answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// errorBody is the Prometheus API's error shape, the one of the answers the
// query-frontend makes outside any signal's pipeline; a pipeline's own
// answers have its codec's shape (Codec.EncodeError).
type errorBody struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, typ, msg string) {
	writeResponse(w, promError(code, typ, msg))
}

// promError is an error answer as the Prometheus API gives it.
func promError(code int, typ, msg string) *Response {
	// Marshalling three strings cannot fail.
	b, _ := json.Marshal(errorBody{Status: "error", ErrorType: typ, Error: msg})
	return &Response{Status: code, Header: http.Header{"Content-Type": []string{"application/json"}}, Body: append(b, '\n')}
}

func writeResponse(w http.ResponseWriter, r *Response) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(r.Status)
	_, _ = w.Write(r.Body)
}

// failure returns how err is answered — the status and errorType of the
// Prometheus API, and the message — naming the limit when one was hit.
func (s *stages) failure(err error) (code int, typ, msg string) {
	var (
		tooMany errTooManyOutstanding
		tooLong errQueryTooLong
		bad     badRequest
		limit   errLimit
	)
	switch {
	case errors.As(err, &tooMany):
		s.rejected.WithLabelValues("max_outstanding_requests_per_tenant").Inc()
		return http.StatusTooManyRequests, "unavailable", err.Error()
	case errors.As(err, &tooLong):
		s.rejected.WithLabelValues("max_query_length").Inc()
		return http.StatusBadRequest, "bad_data", err.Error()
	case errors.As(err, &limit):
		s.rejected.WithLabelValues(limit.reason).Inc()
		return http.StatusUnprocessableEntity, "execution", err.Error()
	case errors.As(err, &bad):
		return http.StatusBadRequest, "bad_data", err.Error()
	case errors.Is(err, context.Canceled):
		return 499, "canceled", "the request was canceled by the client"
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "timeout", err.Error()
	}
	return http.StatusInternalServerError, "internal", err.Error()
}
