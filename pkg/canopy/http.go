package canopy

import (
	"fmt"
	"html/template"
	"net/http"
	"sort"

	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/services"
	"gopkg.in/yaml.v3"

	"github.com/canopy-observability/canopy/pkg/api"
)

var indexTemplate = template.Must(template.New("index").Parse(`<!DOCTYPE html>
<html><head><title>Canopy</title></head><body>
<h1>Canopy</h1>
<p>Targets: {{.Targets}}</p>
<table>
<tr><th>path</th><th>served by</th><th></th></tr>
{{range .Routes}}<tr><td>{{if .Methods}}{{index .Methods 0}} {{.Path}}{{else}}<a href="{{.Path}}">{{.Path}}</a>{{end}}{{if .Prefix}}…{{end}}</td><td>{{.Component}}</td><td>{{.Help}}</td></tr>
{{end}}<tr><td><a href="/metrics">/metrics</a></td><td>server</td><td>this process's metrics</td></tr>
<tr><td><a href="/debug/pprof/">/debug/pprof/</a></td><td>server</td><td>profiles</td></tr>
</table></body></html>
`))

// registerOperationalRoutes serves what every process serves, whatever its
// targets (/metrics and /debug/pprof/ come with the dskit server).
func (c *Canopy) registerOperationalRoutes() {
	ops := func(path, help string, h http.HandlerFunc) {
		c.API.Register(api.Route{Path: path, Component: "canopy", Help: help}, h)
	}
	ops(api.PathIndex, "this page", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = indexTemplate.Execute(w, map[string]any{"Targets": c.cfg.Target, "Routes": c.API.Routes()})
	})
	ops(api.PathReady, "200 once every module runs, every ingester unit is ACTIVE and, where a distributor or querier runs beside it, they see it in the ring", c.serveReady)
	ops(api.PathServices, "the modules and their states", c.serveServices)
	ops(api.PathConfig, "the configuration in force (secrets masked)", c.serveConfig)
}

func (c *Canopy) serveReady(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	m := c.manager
	c.mu.Unlock()
	if m == nil || !m.IsHealthy() {
		http.Error(w, "not ready: some services are not running (see /services)", http.StatusServiceUnavailable)
		return
	}
	if c.Ingester != nil {
		if err := c.Ingester.CheckReady(r.Context()); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	// A process that takes writes and ingests them itself is ready once its
	// distributor sees its ingester in the ring: until then every push
	// would be refused (503, empty ring) by a process that says it is ready.
	if c.Distributor != nil && c.MetricsIngester != nil && c.IngesterRing != nil {
		if st, err := c.IngesterRing.GetInstanceState(c.MetricsIngester.ID()); err != nil || st != ring.ACTIVE {
			http.Error(w, "not ready: the distributor does not see this process's ingester ACTIVE in the ring yet", http.StatusServiceUnavailable)
			return
		}
	}
	// The same for logs: the logs ring client (distributor and querier)
	// must see this process's logs ingester.
	if c.LogsIngester != nil && c.LogsRing != nil {
		if st, err := c.LogsRing.GetInstanceState(c.LogsIngester.Lifecycler().ID); err != nil || st != ring.ACTIVE {
			http.Error(w, "not ready: this process's logs ingester is not ACTIVE in the logs-ingester ring it reads yet", http.StatusServiceUnavailable)
			return
		}
	}
	if c.TracesIngester != nil && c.TracesRing != nil {
		if st, err := c.TracesRing.GetInstanceState(c.TracesIngester.Lifecycler().ID); err != nil || st != ring.ACTIVE {
			http.Error(w, "not ready: this process's traces ingester is not ACTIVE in the traces-ingester ring it reads yet", http.StatusServiceUnavailable)
			return
		}
	}
	fmt.Fprintln(w, "ready")
}

func (c *Canopy) serveServices(w http.ResponseWriter, _ *http.Request) {
	c.mu.Lock()
	svcs := c.services
	c.mu.Unlock()
	names := make([]string, 0, len(svcs))
	for n := range svcs {
		names = append(names, n)
	}
	sort.Strings(names)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	for _, n := range names {
		s := svcs[n]
		line := fmt.Sprintf("%-22s %s", n, s.State())
		if s.State() == services.Failed {
			line += fmt.Sprintf(" (%v)", s.FailureCase())
		}
		fmt.Fprintln(w, line)
	}
}

func (c *Canopy) serveConfig(w http.ResponseWriter, _ *http.Request) {
	cfg := c.cfg
	cfg.Bucket = cfg.Bucket.Redacted()
	out, err := yaml.Marshal(cfg)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/yaml; charset=utf-8")
	_, _ = w.Write(out)
}
