package lokiapi

import (
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/common/model"

	"github.com/canopy-observability/canopy/pkg/logql"
)

// LokiVersion is the Loki release whose query API this package serves; it
// is what /status/buildinfo and /drilldown-limits report as version, so
// that clients which look at Loki's version enable what Canopy serves
// (drilldown-limits arrived in Loki 3.6). Canopy's own version is reported
// apart, as canopyVersion.
const LokiVersion = "3.7.0"

// serveBuildInfo is /status/buildinfo: Loki's bare object (version,
// revision, branch, buildDate, buildUser, goVersion) and canopyVersion.
func (a *API) serveBuildInfo(w http.ResponseWriter, _ *http.Request) error {
	version, revision, date := "(devel)", "", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.time":
				date = s.Value
			}
		}
	}
	out := &jw{}
	out.raw(`{"version":"` + LokiVersion + `","revision":`)
	out.str(revision)
	out.raw(`,"branch":"","buildDate":`)
	out.str(date)
	out.raw(`,"buildUser":"","goVersion":`)
	out.str(runtime.Version())
	out.raw(`,"canopyVersion":`)
	out.str(version)
	out.byte('}')
	writeJSON(w, out.b)
	return nil
}

// logLevelFields are the fields Loki's discover_log_levels reads levels
// from, as drilldown-limits reports them.
var logLevelFields = levelFields

// serveDrilldownLimits is /drilldown-limits: what Logs Drilldown reads of
// the tenant's limits to decide what it shows (volume on, patterns on,
// level discovery as configured) and to bound what it asks.
func (a *API) serveDrilldownLimits(w http.ResponseWriter, _ *http.Request) error {
	out := &jw{}
	out.raw(`{"limits":{"discover_log_levels":`)
	out.raw(fmt.Sprint(a.cfg.DiscoverLogLevels))
	out.raw(`,"discover_service_name":[],"log_level_fields":`)
	out.strings(logLevelFields)
	out.raw(`,"max_entries_limit_per_query":`)
	out.int(int64(a.cfg.MaxEntriesLimitPerQuery))
	out.raw(`,"max_line_size_truncate":false,"max_query_bytes_read":`)
	out.str(formatBytes(uint64(a.cfg.MaxQueryBytesRead)))
	out.raw(`,"max_query_length":"0s","max_query_lookback":"0s","max_query_range":"0s","max_query_series":`)
	out.int(int64(a.cfg.MaxQuerySeries))
	out.raw(`,"metric_aggregation_enabled":false,"pattern_persistence_enabled":false,"query_timeout":`)
	out.str(model.Duration(a.cfg.QueryTimeout).String())
	out.raw(`,"retention_period":"0s","volume_enabled":true,"volume_max_series":`)
	out.int(maxVolumeSeries)
	out.raw(`},"pattern_ingester_enabled":true,"version":"` + LokiVersion + `"}`)
	writeJSON(w, out.b)
	return nil
}

// formatBytes writes a size as Loki's limits do: the largest binary unit
// that divides it (0B, 512KB, 10GB), bytes otherwise.
func formatBytes(n uint64) string {
	units := []string{"B", "KB", "MB", "GB", "TB", "PB", "EB"}
	u := 0
	for n != 0 && n%1024 == 0 && u < len(units)-1 {
		n /= 1024
		u++
	}
	return fmt.Sprintf("%d%s", n, units[u])
}

// serveFormatQuery is /format_query: the query's canonical form.
func (a *API) serveFormatQuery(w http.ResponseWriter, r *http.Request) error {
	e, err := logql.Parse(r.Form.Get("query"))
	if err != nil {
		return err
	}
	out := &jw{}
	out.raw(`{"status":"success","data":`)
	out.str(e.String())
	out.byte('}')
	writeJSON(w, out.b)
	return nil
}
