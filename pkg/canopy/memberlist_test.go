package canopy

import (
	"flag"
	"testing"

	"github.com/grafana/dskit/kv/memberlist"
	"github.com/stretchr/testify/require"

	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
)

func TestMemberlistConfigDefaultsToBoundPortAndSkipsSelf(t *testing.T) {
	self := ringconfig.Instance{ID: "n1", Addr: "10.0.0.1", Port: 9095}
	for name, tc := range map[string]struct {
		bindAddrs  []string
		bindPort   int
		advAddr    string
		advPort    int
		join       []string
		wantAdv    string
		wantPort   int
		wantJoined []string
	}{
		"three on one host, node 1 is the seed": {
			bindAddrs: []string{"127.0.0.1"}, bindPort: 7001,
			join:    []string{"127.0.0.1:7001", "127.0.0.1:7002", "localhost:7003"},
			wantAdv: "", wantPort: 7001, wantJoined: []string{"127.0.0.1:7002", "localhost:7003"},
		},
		"every interface: advertise the instance address": {
			bindAddrs: []string{"0.0.0.0"}, bindPort: 7946,
			join:    []string{"10.0.0.1:7946", "canopy-2:7946", "localhost"},
			wantAdv: "10.0.0.1", wantPort: 7946, wantJoined: []string{"canopy-2:7946"},
		},
		"explicit advertise settings are kept": {
			bindAddrs: []string{"0.0.0.0"}, bindPort: 7946, advAddr: "192.0.2.1", advPort: 17946,
			join:    []string{"192.0.2.1:17946", "canopy-2:7946"},
			wantAdv: "192.0.2.1", wantPort: 17946, wantJoined: []string{"canopy-2:7946"},
		},
		"port chosen on start": {
			bindAddrs: []string{"127.0.0.1"}, bindPort: 0,
			join:    []string{"127.0.0.1:7002"},
			wantAdv: "", wantPort: 0, wantJoined: []string{"127.0.0.1:7002"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			var cfg memberlist.KVConfig
			cfg.RegisterFlags(flag.NewFlagSet("", flag.PanicOnError))
			cfg.TCPTransport.BindAddrs = tc.bindAddrs
			cfg.TCPTransport.BindPort = tc.bindPort
			cfg.AdvertiseAddr, cfg.AdvertisePort = tc.advAddr, tc.advPort
			cfg.JoinMembers = tc.join
			got := memberlistConfig(cfg, self)
			require.Equal(t, tc.wantAdv, got.AdvertiseAddr)
			require.Equal(t, tc.wantPort, got.AdvertisePort)
			require.Equal(t, tc.wantJoined, []string(got.JoinMembers))
		})
	}
}

// TestMemberlistFlagDefaults: the advertised port follows the bound one and
// a split cluster heals, without flags.
func TestMemberlistFlagDefaults(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("canopy", flag.PanicOnError)
	cfg.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{"-memberlist.bind-port=7001"}))
	require.Zero(t, cfg.MemberlistKV.AdvertisePort)
	require.Positive(t, cfg.MemberlistKV.RejoinInterval)
	require.Equal(t, 7001, memberlistConfig(cfg.MemberlistKV, ringconfig.Instance{Addr: "10.0.0.1"}).AdvertisePort)
}
