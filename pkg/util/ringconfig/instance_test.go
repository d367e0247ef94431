package ringconfig

import (
	"flag"
	"testing"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/flagext"
	"github.com/stretchr/testify/require"
)

func TestInstanceResolve(t *testing.T) {
	for name, tc := range map[string]struct {
		in         Instance
		listenAddr string
		port       int
		wantAddr   string
		wantPort   int
	}{
		"listen address names one address": {in: Instance{ID: "a"}, listenAddr: "127.0.0.1", port: 9095, wantAddr: "127.0.0.1", wantPort: 9095},
		"explicit address wins":            {in: Instance{ID: "a", Addr: "10.1.2.3", Port: 1234}, listenAddr: "127.0.0.1", port: 9095, wantAddr: "10.1.2.3", wantPort: 1234},
		"IPv6 loopback":                    {in: Instance{ID: "a"}, listenAddr: "::1", port: 1, wantAddr: "::1", wantPort: 1},
	} {
		t.Run(name, func(t *testing.T) {
			got := tc.in.Resolve(tc.listenAddr, tc.port, log.NewNopLogger())
			require.Equal(t, tc.wantAddr, got.Addr)
			require.Equal(t, tc.wantPort, got.Port)
		})
	}
	// Listening on every interface: some real interface address, never the
	// unspecified one.
	got := Instance{ID: "a"}.Resolve("0.0.0.0", 9095, log.NewNopLogger())
	require.NotEmpty(t, got.Addr)
	require.NotEqual(t, "0.0.0.0", got.Addr)
}

// TestRingOverridesIdentity: every ring takes the process identity unless
// its own flags override a field.
func TestRingOverridesIdentity(t *testing.T) {
	var cfg Config
	flagext.DefaultValues(&ringFlags{&cfg})
	self := Instance{ID: "node-1", Addr: "127.0.0.1", Port: 9095, Zone: "z1"}

	lc, err := cfg.LifecyclerConfig(nil, self, "")
	require.NoError(t, err)
	require.Equal(t, "node-1", lc.ID)
	require.Equal(t, "127.0.0.1", lc.Addr)
	require.Equal(t, 9095, lc.Port)
	require.Equal(t, "z1", lc.Zone)

	cfg.InstanceID, cfg.InstancePort = "sg-1", 9999
	lc, err = cfg.LifecyclerConfig(nil, self, "")
	require.NoError(t, err)
	require.Equal(t, "sg-1", lc.ID)
	require.Equal(t, "127.0.0.1", lc.Addr)
	require.Equal(t, 9999, lc.Port)

	_, err = cfg.LifecyclerConfig(nil, Instance{ID: "x", Addr: "no-such-host.invalid", Port: 1}, "")
	require.ErrorContains(t, err, "-instance-addr")
}

type ringFlags struct{ c *Config }

func (r *ringFlags) RegisterFlags(f *flag.FlagSet) { r.c.RegisterFlags("test.", f) }
