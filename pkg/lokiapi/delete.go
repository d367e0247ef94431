package lokiapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/canopy-observability/canopy/pkg/storage/logdelete"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// PathDelete is Loki's log deletion API: POST (or PUT) makes a request,
// GET lists them, DELETE cancels one.
const PathDelete = PathPrefix + "delete"

// DeleteStore keeps a tenant's deletion requests (logdelete.Store is the
// bucket's). Implementations are safe for concurrent use.
type DeleteStore interface {
	Add(ctx context.Context, tenant string, r logdelete.Request) error
	// List returns the tenant's requests, oldest first.
	List(ctx context.Context, tenant string) ([]logdelete.Request, error)
	// Get and Remove return logdelete.ErrNotFound for an unknown id.
	Get(ctx context.Context, tenant, id string) (logdelete.Request, error)
	Remove(ctx context.Context, tenant, id string) error
}

// flagCancelPeriod is the flag of the period a request may be canceled.
const flagCancelPeriod = "-compactor.logs.delete-request-cancel-period"

// DeleteAPI serves PathDelete as Loki does (its HTTP API reference: the
// parameters, statuses and the list's JSON); the compactor applies the
// requests. Safe for concurrent use; requests carry their tenant in the
// context.
type DeleteAPI struct {
	store        DeleteStore
	cancelPeriod time.Duration
	logger       *slog.Logger
	now          func() time.Time
}

// NewDeleteHandler returns the deletion API over store. Requests may be
// canceled for cancelPeriod, after which the compactor applies them
// (-compactor.logs.delete-request-cancel-period).
func NewDeleteHandler(store DeleteStore, cancelPeriod time.Duration, logger *slog.Logger) *DeleteAPI {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &DeleteAPI{store: store, cancelPeriod: cancelPeriod, logger: logger, now: time.Now}
}

// deleteStatus is an error answered with a status of its own.
type deleteStatus struct {
	code int
	msg  string
}

func (e *deleteStatus) Error() string { return e.msg }

// ServeHTTP serves the deletion API.
func (d *DeleteAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var err error
	switch r.Method {
	case http.MethodPost, http.MethodPut:
		err = d.serveAdd(w, r)
	case http.MethodGet:
		err = d.serveList(w, r)
	case http.MethodDelete:
		err = d.serveCancel(w, r)
	default:
		w.Header().Set("Allow", "GET, POST, PUT, DELETE")
		err = &deleteStatus{http.StatusMethodNotAllowed, "use POST to request a deletion, GET to list requests, DELETE to cancel one"}
	}
	if err == nil {
		return
	}
	code, msg := http.StatusInternalServerError, err.Error()
	var (
		st  *deleteStatus
		bad *badRequest
	)
	switch {
	case errors.As(err, &st):
		code = st.code
	case errors.As(err, &bad):
		code = http.StatusBadRequest
	}
	if code >= http.StatusInternalServerError {
		id, _ := tenant.ID(r.Context())
		d.logger.Error("loki delete api request", "component", "lokiapi", "tenant", id, "method", r.Method, "err", err)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg))
}

// serveAdd makes a request: query (a stream selector, optionally with a
// pipeline), start (required) and end (default now), Unix seconds or
// RFC3339. max_interval, with which Loki splits its work, is checked and
// otherwise has no use here. 204 without a body, as Loki answers.
func (d *DeleteAPI) serveAdd(w http.ResponseWriter, r *http.Request) error {
	id, err := tenant.ID(r.Context())
	if err != nil {
		return &deleteStatus{http.StatusUnauthorized, err.Error()}
	}
	if err := form(r); err != nil {
		return err
	}
	query := r.Form.Get("query")
	if query == "" {
		return badf("the parameter \"query\" is required: the stream selector of the logs to delete, such as {app=\"web\"}, optionally with line filters")
	}
	if _, _, err := logdelete.ParseQuery(query); err != nil {
		return badf("invalid parameter \"query\": %v", err)
	}
	now := d.now()
	if r.Form.Get("start") == "" {
		return badf("the parameter \"start\" is required (Unix seconds or RFC3339)")
	}
	start, err := parseDeleteTime(r.Form.Get("start"))
	if err != nil {
		return badf("invalid parameter \"start\": %v", err)
	}
	end := now.UnixMilli()
	if s := r.Form.Get("end"); s != "" {
		if end, err = parseDeleteTime(s); err != nil {
			return badf("invalid parameter \"end\": %v", err)
		}
		if end > now.UnixMilli() {
			return badf("invalid parameter \"end\": it is in the future, and deletes in the future are not allowed")
		}
	}
	if start > end {
		return badf("the parameter \"start\" is after \"end\"")
	}
	if s := r.Form.Get("max_interval"); s != "" {
		if iv, err := time.ParseDuration(s); err != nil || iv < time.Second {
			return badf("invalid parameter \"max_interval\": %q is not a duration of at least 1s (units s, m, h)", s)
		}
	}
	req := logdelete.Request{ID: logdelete.NewID(), Query: query, Start: start, End: end, CreatedAt: now.UnixMilli()}
	if err := d.store.Add(r.Context(), id, req); err != nil {
		return err
	}
	d.logger.Info("log deletion requested", "component", "lokiapi", "tenant", id, "request_id", req.ID, "query", query)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// parseDeleteTime reads a time as Loki's deletion API does, Unix seconds
// (a fraction kept to the millisecond) or RFC3339, and returns Unix
// milliseconds.
func parseDeleteTime(s string) (int64, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UnixMilli(), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || strings.ContainsAny(s, "eExXpP_") {
		return 0, fmt.Errorf("%q is neither Unix seconds nor RFC3339", s)
	}
	if math.Abs(f) >= secondsBound {
		return 0, fmt.Errorf("%q is not Unix seconds (nanoseconds or milliseconds are not taken here)", s)
	}
	return int64(math.Round(f * 1000)), nil
}

// deleteRequestJSON is a request as Loki lists it: times in seconds
// (fractions to the millisecond), status "received" or "processed".
type deleteRequestJSON struct {
	RequestID string     `json:"request_id"`
	StartTime model.Time `json:"start_time"`
	EndTime   model.Time `json:"end_time"`
	Query     string     `json:"query"`
	Status    string     `json:"status"`
	CreatedAt model.Time `json:"created_at"`
}

// serveList lists the tenant's requests, pending and processed, oldest
// first: a JSON array, [] when there is none.
func (d *DeleteAPI) serveList(w http.ResponseWriter, r *http.Request) error {
	id, err := tenant.ID(r.Context())
	if err != nil {
		return &deleteStatus{http.StatusUnauthorized, err.Error()}
	}
	reqs, err := d.store.List(r.Context(), id)
	if err != nil {
		return err
	}
	out := make([]deleteRequestJSON, 0, len(reqs))
	for _, q := range reqs {
		status := "received"
		if q.Processed() {
			status = "processed"
		}
		out = append(out, deleteRequestJSON{RequestID: q.ID, StartTime: model.Time(q.Start), EndTime: model.Time(q.End), Query: q.Query, Status: status, CreatedAt: model.Time(q.CreatedAt)})
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(out)
}

// serveCancel cancels a pending request, request_id, while it may be: for
// the cancel period after it was made, or later with force=true as long
// as the compactor has not finished applying it (what it has deleted
// stays deleted). 204.
func (d *DeleteAPI) serveCancel(w http.ResponseWriter, r *http.Request) error {
	id, err := tenant.ID(r.Context())
	if err != nil {
		return &deleteStatus{http.StatusUnauthorized, err.Error()}
	}
	if err := form(r); err != nil {
		return err
	}
	rid := r.Form.Get("request_id")
	if rid == "" {
		return badf("the parameter \"request_id\" is required: the id of the request to cancel, as GET %s lists it", PathDelete)
	}
	req, err := d.store.Get(r.Context(), id, rid)
	if errors.Is(err, logdelete.ErrNotFound) {
		return &deleteStatus{http.StatusNotFound, fmt.Sprintf("could not find delete request with id %q", rid)}
	}
	if err != nil {
		return err
	}
	if req.Processed() {
		return badf("delete request %s is already processed: it can no longer be canceled", rid)
	}
	if age := d.now().Sub(time.UnixMilli(req.CreatedAt)); age >= d.cancelPeriod && r.Form.Get("force") != "true" {
		return badf("delete request %s is being applied (it is older than %s, %s): it can no longer be canceled; force=true cancels what is not applied yet", rid, d.cancelPeriod, flagCancelPeriod)
	}
	if err := d.store.Remove(r.Context(), id, rid); err != nil {
		if errors.Is(err, logdelete.ErrNotFound) {
			return &deleteStatus{http.StatusNotFound, fmt.Sprintf("could not find delete request with id %q", rid)}
		}
		return err
	}
	d.logger.Info("log deletion request canceled", "component", "lokiapi", "tenant", id, "request_id", rid)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
