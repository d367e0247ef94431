package canopy

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/go-kit/log/level"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/canopy-observability/canopy/pkg/api"
	"github.com/canopy-observability/canopy/pkg/federation"
	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/lokiapi"
	"github.com/canopy-observability/canopy/pkg/querier"
	"github.com/canopy-observability/canopy/pkg/tempoapi"
	"github.com/canopy-observability/canopy/pkg/util/logging"
)

// initFederator runs the federator: the Prometheus HTTP API over the
// children of the config file's federation section, which it reads again
// every -federation.reload-interval and on POST /federation/reload.
func (c *Canopy) initFederator() (services.Service, error) {
	if c.cfg.runs(All) || len(c.cfg.Target) > 1 {
		return nil, errors.New("-target=federator runs alone: a federator queries other Canopy clusters (and Prometheus-API endpoints), not a store of its own")
	}
	qcfg := c.cfg.Querier
	slogger := logging.Slog(c.logger)
	f, err := federation.New(c.cfg.Federation, parser.NewParser(querier.ParserOptions(qcfg)), slogger, c.reg)
	if err != nil {
		return nil, err
	}
	inner := querier.NewEngine(qcfg, slogger, c.reg)
	promAPI := querier.NewAPI(qcfg, f.Engine(inner, qcfg.LookbackDelta, qcfg.DefaultEvaluationInterval), f, f, f, nil, slogger, c.reg, c.reg)
	c.API.RegisterPrometheusAPI("federator", f.Wrap(promAPI))
	c.API.RegisterTempoAPI("federator", tempoapi.NewHandler(qcfg.Traces, f.Traces(), slogger))
	logs := f.Logs()
	eng := logql.NewEngine(slogger, prometheus.WrapRegistererWithPrefix("canopy_logql_", c.reg)).WithRemote(logs)
	c.API.RegisterLokiAPI("federator", f.Wrap(lokiapi.NewHandler(qcfg.Logs, eng, logs, slogger)))
	var reloading sync.Mutex // the timer and POST /federation/reload
	reload := func() error {
		reloading.Lock()
		defer reloading.Unlock()
		if c.cfg.configFile == "" {
			return errors.New("no -config.file to read the children from")
		}
		var cfg Config
		if err := decodeFile(&cfg, c.cfg.configFile, c.cfg.expandEnv); err != nil {
			return err
		}
		next := c.cfg.Federation
		next.Children, next.ReplicaLabels = cfg.Federation.Children, cfg.Federation.ReplicaLabels
		if cfg.Federation.PartialResponse != "" {
			next.PartialResponse = cfg.Federation.PartialResponse
		}
		next.TenantPartialResponse = cfg.Federation.TenantPartialResponse
		if reflect.DeepEqual(next, c.currentFederation) {
			return nil
		}
		if err := f.ApplyConfig(next); err != nil {
			return err
		}
		c.currentFederation = next
		level.Info(c.logger).Log("msg", "federation children reloaded", "children", len(next.Children))
		return nil
	}
	c.currentFederation = c.cfg.Federation
	c.API.Register(api.Route{Path: api.PathFederationChildren, Component: "federator", Help: "the federator's children and their health (JSON with ?format=json)"}, http.HandlerFunc(f.ServeChildren))
	c.API.Register(api.Route{Path: api.PathFederationReload, Methods: []string{http.MethodPost}, Component: "federator", Help: "POST: read the children from -config.file again"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := reload(); err != nil {
			http.Error(w, "reloading the federation config: "+err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte("reloaded\n"))
	}))
	every := c.cfg.Federation.ReloadInterval
	if every <= 0 {
		every = 24 * time.Hour
	}
	return services.NewTimerService(every, nil, func(context.Context) error {
		if c.cfg.Federation.ReloadInterval > 0 {
			if err := reload(); err != nil {
				level.Warn(c.logger).Log("msg", "reloading the federation config failed; the children stay as they were", "err", err)
			}
		}
		return nil
	}, nil), nil
}
