package canopy

import (
	"net"
	"strconv"

	"github.com/grafana/dskit/kv/memberlist"

	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
)

// memberlistConfig fills what the memberlist flags left to the process
// identity:
//   - the advertised port defaults to the bound one (-memberlist.bind-port),
//     so several processes on one host each advertise their own;
//   - the advertised address defaults to the process's address when memberlist
//     listens on every interface (bound to one address, memberlist advertises
//     that one itself);
//   - the join list loses this process's own address: joining oneself counts
//     as a successful join, so a restarted seed would form a cluster of one.
func memberlistConfig(cfg memberlist.KVConfig, self ringconfig.Instance) memberlist.KVConfig {
	port := cfg.TCPTransport.BindPort
	if cfg.AdvertisePort == 0 {
		cfg.AdvertisePort = port
	}
	unspecified := len(cfg.TCPTransport.BindAddrs) == 0
	for _, a := range cfg.TCPTransport.BindAddrs {
		if ip := net.ParseIP(a); a == "" || ip != nil && ip.IsUnspecified() {
			unspecified = true
		}
	}
	if cfg.AdvertiseAddr == "" && unspecified && cfg.AdvertisePort != 0 {
		cfg.AdvertiseAddr = self.Addr
	}
	if port == 0 {
		return cfg // The port is chosen on start: nothing to recognise.
	}
	own := map[string]bool{}
	addOwn := func(host string, p int) {
		if host != "" && p != 0 {
			own[net.JoinHostPort(host, strconv.Itoa(p))] = true
		}
	}
	addOwn(cfg.AdvertiseAddr, cfg.AdvertisePort)
	addOwn(self.Addr, port)
	for _, a := range cfg.TCPTransport.BindAddrs {
		addOwn(a, port)
	}
	if unspecified || own["127.0.0.1:"+strconv.Itoa(port)] {
		addOwn("127.0.0.1", port)
		addOwn("localhost", port)
	}
	join := make([]string, 0, len(cfg.JoinMembers))
	for _, m := range cfg.JoinMembers {
		if own[m] || own[net.JoinHostPort(m, strconv.Itoa(port))] {
			continue
		}
		join = append(join, m)
	}
	cfg.JoinMembers = join
	return cfg
}
