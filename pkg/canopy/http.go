package canopy

import (
	"fmt"
	"html/template"
	"net/http"
	"sort"

	"github.com/grafana/dskit/services"
	"gopkg.in/yaml.v3"
)

var indexTemplate = template.Must(template.New("index").Parse(`<!DOCTYPE html>
<html><head><title>Canopy</title></head><body>
<h1>Canopy</h1>
<p>Targets: {{.Targets}}</p>
<ul>
<li><a href="/ready">/ready</a></li>
<li><a href="/services">/services</a></li>
<li><a href="/config">/config</a></li>
<li><a href="/ring/ingester">/ring/ingester</a></li>
<li><a href="/memberlist">/memberlist</a></li>
<li><a href="/metrics">/metrics</a></li>
<li><a href="/debug/pprof/">/debug/pprof/</a></li>
<li>Prometheus API: <a href="/prometheus/api/v1/status/buildinfo">/prometheus/api/v1/…</a></li>
<li>Remote write: POST /api/v1/push; OTLP: POST /otlp/v1/metrics</li>
</ul></body></html>
`))

func (c *Canopy) registerOperationalRoutes() {
	r := c.Server.HTTP
	r.Path("/").Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = indexTemplate.Execute(w, map[string]any{"Targets": c.cfg.Target})
	}))
	r.Path("/ready").Handler(http.HandlerFunc(c.serveReady))
	r.Path("/services").Handler(http.HandlerFunc(c.serveServices))
	r.Path("/config").Handler(http.HandlerFunc(c.serveConfig))
	r.Path("/memberlist").Handler(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if c.memberlistKV == nil {
			http.Error(w, "memberlist is not running in this process", http.StatusNotFound)
			return
		}
		c.memberlistKV.ServeHTTP(w, req)
	}))
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
