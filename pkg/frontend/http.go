package frontend

import (
	"encoding/json"
	"net/http"
)

// Response is a downstream answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// errorBody is the Prometheus API's error shape.
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

func writeResponse(w http.ResponseWriter, r *Response) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(r.Status)
	_, _ = w.Write(r.Body)
}
