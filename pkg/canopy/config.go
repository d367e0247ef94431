package canopy

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/dskit/flagext"
	"github.com/grafana/dskit/kv/memberlist"
	"github.com/grafana/dskit/server"
	"gopkg.in/yaml.v3"

	"github.com/canopy-observability/canopy/pkg/compactor"
	"github.com/canopy-observability/canopy/pkg/distributor"
	"github.com/canopy-observability/canopy/pkg/federation"
	"github.com/canopy-observability/canopy/pkg/frontend"
	"github.com/canopy-observability/canopy/pkg/ingester"
	"github.com/canopy-observability/canopy/pkg/querier"
	"github.com/canopy-observability/canopy/pkg/remediator"
	"github.com/canopy-observability/canopy/pkg/ruler"
	"github.com/canopy-observability/canopy/pkg/storage/bucket"
	"github.com/canopy-observability/canopy/pkg/storegateway"
	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// Config is the root configuration: one struct per component, composed.
type Config struct {
	Target              flagext.StringSliceCSV `yaml:"target"`
	DataDir             string                 `yaml:"data_dir"`
	MultitenancyEnabled bool                   `yaml:"multitenancy_enabled"`
	AdminTokenFile      string                 `yaml:"admin_token_file"`
	MemoryLimitRatio    float64                `yaml:"memory_limit_ratio"`
	GCPercent           int                    `yaml:"gogc"`
	// Instance is the process identity every ring and memberlist use.
	Instance ringconfig.Instance `yaml:",inline"`

	Server        server.Config       `yaml:"server"`
	MemberlistKV  memberlist.KVConfig `yaml:"memberlist"`
	Distributor   distributor.Config  `yaml:"distributor"`
	Ingester      ingester.Config     `yaml:"ingester"`
	Querier       querier.Config      `yaml:"querier"`
	Bucket        bucket.Config       `yaml:"bucket"`
	Compactor     compactor.Config    `yaml:"compactor"`
	StoreGateway  storegateway.Config `yaml:"store_gateway"`
	Frontend      frontend.Config     `yaml:"frontend"`
	Limits        validation.Limits   `yaml:"limits"`
	RuntimeConfig RuntimeConfigConfig `yaml:"runtime_config"`
	Federation    federation.Config   `yaml:"federation"`
	Ruler         ruler.Config        `yaml:"ruler"`
	Remediator    remediator.Config   `yaml:"remediator"`

	// configFile is -config.file, which the federator reads again for
	// its children.
	configFile string
	expandEnv  bool
}

// RuntimeConfigConfig names the runtime-reloadable overrides file.
type RuntimeConfigConfig struct {
	File         string        `yaml:"file"`
	ReloadPeriod time.Duration `yaml:"period"`
}

// RegisterFlags registers every flag with its default.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	c.Target = []string{All}
	f.Var(&c.Target, "target", "Comma-separated components this process runs: all (the default: every component), write (distributor, ingester), read (query-frontend, querier), backend (store-gateway, compactor, ruler, remediator), or one component: distributor, ingester, query-frontend, querier, store-gateway, compactor, ruler, remediator; or federator: the global PromQL layer over the children in -config.file's federation section, alone in its process.")
	f.StringVar(&c.DataDir, "data-dir", "./data", "Directory for all local state: ingester WALs and blocks, ring tokens; the filesystem bucket lives at <data-dir>/bucket.")
	f.StringVar(&c.AdminTokenFile, "auth.admin-token-file", "", "File holding the bearer token the admin and debug paths (/ingester/flush, /compactor/run, /config, /metrics, /debug/pprof/, the Prometheus API's status/runtimeinfo, flags, config, tsdb and admin/) require. Empty: they are open in -target=all (the single process) and refused with 403 in every other target.")
	f.Float64Var(&c.MemoryLimitRatio, "memory-limit-ratio", 0.9, "The Go runtime's soft memory limit is this fraction of the memory limit of the process's cgroup (a container's limit), so garbage is collected harder before the kernel would kill the process. GOMEMLIMIT in the environment wins; 0, or no cgroup limit, sets none.")
	f.IntVar(&c.GCPercent, "gogc", 75, "The garbage collector's GOGC: how far the heap may grow over live data before a collection, in percent. 75 (Prometheus 3's default too) spends a little CPU for less memory per series. The GOGC environment variable wins; -1 turns collection off.")
	f.BoolVar(&c.MultitenancyEnabled, "auth.multitenancy-enabled", false, "Require the X-Scope-OrgID header on every request. When false, all data belongs to the tenant \"anonymous\".")

	c.Server.RegisterFlags(f)
	overrideDefault(f, "server.http-listen-port", "9009")
	overrideDefault(f, "server.grpc-listen-port", "9095")
	overrideFlag(f, "server.http-write-timeout", "2m30s", "Write timeout of the HTTP server: longer than the query timeouts (-querier.timeout, -querier.logs.query-timeout: 2m), so that a long query's answer is written, not cut off.")
	c.Instance.RegisterFlags(f)
	c.MemberlistKV.RegisterFlags(f)
	overrideFlag(f, "memberlist.advertise-port", "0", "Gossip port advertised to the other members. 0: -memberlist.bind-port.")
	overrideFlag(f, "memberlist.advertise-addr", "", "Gossip address advertised to the other members. Empty: the address memberlist is bound to, or -instance-addr's when bound to every interface.")
	overrideFlag(f, "memberlist.rejoin-interval", "30s", "How often to join the -memberlist.join seeds again, so a cluster split by a restarted seed heals. 0: join only on start.")
	c.Distributor.RegisterFlags(f)
	c.Ingester.RegisterFlags(f)
	c.Querier.RegisterFlags(f)
	c.Federation.RegisterFlags(f)
	c.Ruler.RegisterFlags(f)
	c.Remediator.RegisterFlags(f)
	c.Bucket.RegisterFlags(f)
	c.Compactor.RegisterFlags(f)
	c.StoreGateway.RegisterFlags(f)
	c.Frontend.RegisterFlags(f)
	c.Limits.RegisterFlags(f)
	f.StringVar(&c.RuntimeConfig.File, "runtime-config.file", "", "YAML file of per-tenant limit overrides, reloaded periodically. Empty: the flag defaults apply to every tenant.")
	f.DurationVar(&c.RuntimeConfig.ReloadPeriod, "runtime-config.reload-period", 10*time.Second, "How often the runtime config file is reloaded.")
}

// Validate checks every component's configuration and the targets.
func (c *Config) Validate() error {
	if len(c.Target) == 0 {
		return errors.New("no -target given")
	}
	for _, t := range c.Target {
		if _, ok := targets[t]; !ok {
			return fmt.Errorf("unknown -target %q: valid targets are %s", t, strings.Join(TargetNames(), ", "))
		}
	}
	if c.DataDir == "" {
		return errors.New("-data-dir must not be empty")
	}
	for _, v := range []interface{ Validate() error }{&c.Distributor, &c.Ingester, &c.Querier, &c.Bucket, &c.Compactor, &c.StoreGateway, &c.Frontend, &c.Limits, &c.Ruler} {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	if c.Frontend.DownstreamURL == "" && c.runs(QueryFrontend) && !c.runs(Querier) {
		return errors.New("-target runs a query-frontend without a querier: set -query-frontend.downstream-url to the queriers' HTTP address")
	}
	if qiw := c.Querier.QueryIngestersWithin; qiw > 0 && c.Ingester.Metrics.Retention < qiw {
		return fmt.Errorf("-ingester.tsdb.retention-period (%s) must be at least -querier.query-ingesters-within (%s): queriers read that window from ingesters", c.Ingester.Metrics.Retention, qiw)
	}
	return nil
}

// runs reports whether the targets include module.
func (c *Config) runs(module string) bool {
	for _, t := range c.Target {
		for _, m := range targets[t] {
			if m == module {
				return true
			}
		}
	}
	return false
}

// Load fills c from flags and, when -config.file is given, YAML: defaults
// first, then the file, then flags given on the command line.
func Load(c *Config, fs *flag.FlagSet, args []string) error {
	var configFile string
	var expandEnv bool
	fs.StringVar(&configFile, "config.file", "", "YAML configuration file. Flags given on the command line override it. Secrets (bucket credentials) belong here rather than in flags, which every user of the host can read in the process list.")
	fs.BoolVar(&expandEnv, "config.expand-env", false, "Replace ${VAR} and $VAR in -config.file with the environment's values before parsing, e.g. bucket: {s3: {secret_key: ${S3_SECRET_KEY}}}.")
	c.RegisterFlags(fs)
	configFile = findFlag(args, "config.file")
	c.configFile, c.expandEnv = configFile, findBoolFlag(args, "config.expand-env")
	if configFile != "" {
		if err := decodeFile(c, configFile, c.expandEnv); err != nil {
			return err
		}
	}
	return fs.Parse(args)
}

// decodeFile decodes YAML file name into c, unknown keys refused.
func decodeFile(c *Config, name string, expandEnv bool) error {
	b, err := os.ReadFile(name)
	if err != nil {
		return fmt.Errorf("reading -config.file: %w", err)
	}
	if expandEnv {
		b = []byte(os.ExpandEnv(string(b)))
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && err.Error() != "EOF" {
		return fmt.Errorf("parsing -config.file %s: %w", name, err)
	}
	return nil
}

// findFlag scans args for the string flag name before flags are parsed.
func findFlag(args []string, name string) string {
	for i, a := range args {
		a = strings.TrimLeft(a, "-")
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// findBoolFlag scans args for the boolean flag name before flags are
// parsed: -name alone is true, -name=<bool> as flag.Parse reads it.
func findBoolFlag(args []string, name string) bool {
	for _, a := range args {
		a = strings.TrimLeft(a, "-")
		if a == name {
			return true
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			b, err := strconv.ParseBool(v)
			return err == nil && b
		}
	}
	return false
}

// overrideFlag changes the default and the help of a flag registered by a
// dependency.
func overrideFlag(f *flag.FlagSet, name, value, usage string) {
	overrideDefault(f, name, value)
	f.Lookup(name).Usage = usage
}

// overrideDefault changes the default of a flag registered by a dependency.
func overrideDefault(f *flag.FlagSet, name, value string) {
	fl := f.Lookup(name)
	if fl == nil {
		panic("no flag " + name) // A programming error caught by every test.
	}
	if err := fl.Value.Set(value); err != nil {
		panic(err)
	}
	fl.DefValue = value
}
