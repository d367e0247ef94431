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

// errorBody is the Prometheus API's error shape, which every answer of the
// query-frontend's own making has.
type errorBody struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(errorBody{Status: "error", ErrorType: typ, Error: msg})
}

// errorResponse is an error answer as the queriers give it.
func errorResponse(code int, typ, msg string) (*Response, error) {
	b, err := json.Marshal(errorBody{Status: "error", ErrorType: typ, Error: msg})
	if err != nil {
		return nil, err
	}
	return &Response{Status: code, Header: http.Header{"Content-Type": []string{"application/json"}}, Body: b}, nil
}

func writeResponse(w http.ResponseWriter, r *Response) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(r.Status)
	_, _ = w.Write(r.Body)
}

// fail answers err, naming the limit when one was hit.
func (s *stages) fail(w http.ResponseWriter, err error) {
	var (
		tooMany errTooManyOutstanding
		tooLong errQueryTooLong
		bad     badRequest
	)
	switch {
	case errors.As(err, &tooMany):
		s.rejected.WithLabelValues("max_outstanding_requests_per_tenant").Inc()
		writeError(w, http.StatusTooManyRequests, "unavailable", err.Error())
	case errors.As(err, &tooLong):
		s.rejected.WithLabelValues("max_query_length").Inc()
		writeError(w, http.StatusBadRequest, "bad_data", err.Error())
	case errors.As(err, &bad):
		writeError(w, http.StatusBadRequest, "bad_data", err.Error())
	case errors.Is(err, context.Canceled):
		writeError(w, 499, "canceled", "the request was canceled by the client")
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "timeout", err.Error())
	default:
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
	}
}
