package tempoapi

import (
	"context"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// PathPrefix is where the API is served: Grafana's Tempo datasource URL is
// <host>/tempo, to which it adds Tempo's paths (/api/search, …).
const PathPrefix = "/tempo/api/"

// TempoVersion is the Tempo release /api/status/buildinfo reports. Grafana's
// Tempo datasource reads it to decide what it may ask: from 2.2.0 it
// searches (and from 2.7.0 runs metrics queries) through the gRPC
// StreamingQuerier service on the datasource's host and port when the
// datasource's streaming options are on. Canopy serves only the HTTP
// API, so it reports a version below 2.2.0 and Grafana uses plain HTTP
// whatever the datasource's settings. The suffix keeps it apart from a
// real Tempo release (a semver pre-release sorts before 2.1.1, still
// below 2.2.0). Canopy's own version is reported apart, as canopyVersion.
const TempoVersion = "2.1.1-canopy"

// API serves Tempo's query API over a Backend. It is safe for concurrent
// use; requests must carry their tenant in the context (pkg/util/tenant).
// It holds no goroutines of its own.
type API struct {
	cfg    Config
	b      Backend
	logger *slog.Logger
	mux    *http.ServeMux
	now    func() time.Time
}

// NewHandler returns the Tempo query API; the caller registers it under
// PathPrefix with the tenant resolved. cfg must have been validated.
func NewHandler(cfg Config, b Backend, logger *slog.Logger) *API {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &API{cfg: cfg, b: b, logger: logger, mux: http.NewServeMux(), now: time.Now}
	a.mux.HandleFunc("GET "+PathPrefix+"echo", serveEcho)
	a.mux.HandleFunc("GET "+PathPrefix+"status/buildinfo", serveBuildInfo)
	a.handle("traces/{id}", a.serveTraceV1)
	a.handle("v2/traces/{id}", a.serveTraceV2)
	a.handle("search", a.serveSearch)
	a.handle("search/tags", a.serveTagsV1)
	a.handle("v2/search/tags", a.serveTagsV2)
	a.handle("search/tag/{tag}/values", a.serveTagValuesV1)
	a.handle("v2/search/tag/{tag}/values", a.serveTagValuesV2)
	a.handle("metrics/query_range", a.serveQueryRange)
	a.handle("metrics/query", a.serveQueryInstant)
	return a
}

// ServeHTTP serves the API.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// handle serves GET PathPrefix+path with h, which is given the request's
// tenant and runs within the query timeout; h's error is the answer.
func (a *API) handle(path string, h func(w http.ResponseWriter, r *http.Request, tenant string) error) {
	a.mux.HandleFunc("GET "+PathPrefix+path, func(w http.ResponseWriter, r *http.Request) {
		id, err := tenant.ID(r.Context())
		if err != nil {
			a.writeError(w, r, "", &noTenantError{err: err})
			return
		}
		if a.cfg.QueryTimeout > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), a.cfg.QueryTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		if err := r.ParseForm(); err != nil {
			a.writeError(w, r, id, badf("reading the request's parameters: %v", err))
			return
		}
		if err := h(w, r, id); err != nil {
			a.writeError(w, r, id, err)
		}
	})
}

// serveEcho is /api/echo, Grafana's "Save & test": 200 and "echo".
func serveEcho(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("echo"))
}

// buildInfoJSON is Tempo's /api/status/buildinfo, with canopyVersion.
type buildInfoJSON struct {
	Version       string `json:"version"`
	Revision      string `json:"revision"`
	Branch        string `json:"branch"`
	BuildDate     string `json:"buildDate"`
	BuildUser     string `json:"buildUser"`
	GoVersion     string `json:"goVersion"`
	CanopyVersion string `json:"canopyVersion"`
}

// serveBuildInfo is /api/status/buildinfo: TempoVersion as version, and
// the binary's own build.
func serveBuildInfo(w http.ResponseWriter, _ *http.Request) {
	out := buildInfoJSON{Version: TempoVersion, GoVersion: runtime.Version(), CanopyVersion: "(devel)"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			out.CanopyVersion = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				out.Revision = s.Value
			case "vcs.time":
				out.BuildDate = s.Value
			}
		}
	}
	_ = writeJSON(w, out)
}
