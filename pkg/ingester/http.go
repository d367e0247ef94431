package ingester

import (
	"encoding/json"
	"net/http"
	"sort"
)

// FlushResult is the answer of POST /ingester/flush: totals over the
// units, and each unit's own figures under signals.
type FlushResult struct {
	Tenants       int                     `json:"tenants"`
	BlocksShipped int                     `json:"blocks_shipped"`
	Errors        []string                `json:"errors,omitempty"`
	Signals       map[string]SignalResult `json:"signals"`
}

// SignalResult is one unit's part of a flush.
type SignalResult struct {
	Tenants int      `json:"tenants"`
	Shipped int      `json:"shipped"`
	Errors  []string `json:"errors,omitempty"`
}

// FlushHandler serves POST /ingester/flush: every unit cuts every tenant's
// in-memory data and uploads everything not yet in the bucket before the
// answer (200 when everything is in the bucket, 500 naming what is not).
func (i *Ingester) FlushHandler(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	res := FlushResult{Signals: map[string]SignalResult{}}
	for _, u := range i.units {
		tenants, shipped, err := u.FlushAndShip(r.Context())
		sr := SignalResult{Tenants: tenants, Shipped: shipped, Errors: errorLines(err)}
		res.Signals[u.Signal()] = sr
		res.Tenants += tenants
		res.BlocksShipped += shipped
		for _, e := range sr.Errors {
			res.Errors = append(res.Errors, u.Signal()+": "+e)
		}
	}
	sort.Strings(res.Errors)
	w.Header().Set("Content-Type", "application/json")
	if len(res.Errors) > 0 {
		w.WriteHeader(http.StatusInternalServerError)
	}
	_ = json.NewEncoder(w).Encode(res)
}

// errorLines splits a joined error into its parts.
func errorLines(err error) []string {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, errorLines(e)...)
		}
		return out
	}
	return []string{err.Error()}
}
