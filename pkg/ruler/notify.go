package ruler

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/discovery/dns"
	"github.com/prometheus/prometheus/notifier"
)

// alerting is Prometheus's notifier with the Alertmanagers of
// -ruler.alertmanager-url, found by Prometheus's service discovery: static
// addresses, or every address of a dns+ name.
type alerting struct {
	notifier  *notifier.Manager
	discovery *discovery.Manager
	cancel    context.CancelFunc
}

func newAlerting(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*alerting, error) {
	var ams config.AlertmanagerConfigs
	sd := map[string]discovery.Configs{}
	for i, s := range cfg.alertmanagers() {
		u, err := parseAlertmanagerURL(s)
		if err != nil {
			return nil, err
		}
		amc := config.DefaultAlertmanagerConfig
		amc.Scheme, amc.PathPrefix, amc.Timeout = u.Scheme, u.Path, model.Duration(10*time.Second)
		amc.HTTPClientConfig = commoncfg.DefaultHTTPClientConfig
		if u.User != nil {
			pw, _ := u.User.Password()
			amc.HTTPClientConfig.BasicAuth = &commoncfg.BasicAuth{Username: u.User.Username(), Password: commoncfg.Secret(pw)}
		}
		if u.dns {
			port, _ := strconv.Atoi(u.Port())
			amc.ServiceDiscoveryConfigs = discovery.Configs{&dns.SDConfig{Names: []string{u.Hostname()}, Type: "A", Port: port, RefreshInterval: model.Duration(30 * time.Second)}}
		} else {
			host := u.Host
			if u.Port() == "" {
				host = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
			}
			amc.ServiceDiscoveryConfigs = discovery.Configs{discovery.StaticConfig{{Targets: []model.LabelSet{{model.AddressLabel: model.LabelValue(host)}}, Source: s}}}
		}
		ams = append(ams, &amc)
		sd[fmt.Sprintf("config-%d", i)] = amc.ServiceDiscoveryConfigs
	}
	n := notifier.NewManager(&notifier.Options{QueueCapacity: 10000, DrainOnShutdown: true, Registerer: reg}, model.UTF8Validation, logger.With("component", "ruler-notifier"))
	pc := config.DefaultConfig
	pc.AlertingConfig.AlertmanagerConfigs = ams
	if err := n.ApplyConfig(&pc); err != nil {
		return nil, fmt.Errorf("ruler.alertmanager-url: %w", err)
	}
	sdMetrics, err := discovery.CreateAndRegisterSDMetrics(registererOrNone(reg))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	dm := discovery.NewManager(ctx, logger.With("component", "ruler-discovery"), registererOrNone(reg), sdMetrics, discovery.Name("notify"))
	if dm == nil {
		cancel()
		return nil, fmt.Errorf("starting the Alertmanager discovery failed")
	}
	if err := dm.ApplyConfig(sd); err != nil {
		cancel()
		return nil, err
	}
	return &alerting{notifier: n, discovery: dm, cancel: cancel}, nil
}

func registererOrNone(reg prometheus.Registerer) prometheus.Registerer {
	if reg == nil {
		return prometheus.NewRegistry()
	}
	return reg
}

func (a *alerting) run() {
	go func() { _ = a.discovery.Run() }()
	go a.notifier.Run(a.discovery.SyncCh())
}

func (a *alerting) stop() {
	a.notifier.Stop()
	a.cancel()
}
