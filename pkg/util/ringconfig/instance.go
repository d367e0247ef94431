package ringconfig

import (
	"flag"
	"fmt"
	"net"
	"os"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/netutil"
)

// Instance is a process's identity: the one ID, address, port and zone that
// every ring it joins (ingester, store-gateway, compactor, …) and memberlist
// advertise. A ring's own -<ring>.ring.instance-* flags override a field
// for that ring only.
type Instance struct {
	ID   string `yaml:"instance_id"`
	Addr string `yaml:"instance_addr"`
	Port int    `yaml:"instance_port"`
	Zone string `yaml:"instance_availability_zone"`
}

// RegisterFlags registers the process identity flags.
func (i *Instance) RegisterFlags(f *flag.FlagSet) {
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	f.StringVar(&i.ID, "instance-id", host, "This process's ID in every ring it joins; unique in the cluster and stable across restarts. Default: the host name.")
	f.StringVar(&i.Addr, "instance-addr", "", "Address other processes reach this process's gRPC server on, in every ring. Empty: -server.grpc-listen-address when it names one address, else the first private network interface, else 127.0.0.1.")
	f.IntVar(&i.Port, "instance-port", 0, "gRPC port advertised in every ring. 0: the port the gRPC server listens on.")
	f.StringVar(&i.Zone, "instance-availability-zone", "", "Availability zone of this process, for zone-aware replication in every ring.")
}

// Resolve fills what the flags left empty: the address from the gRPC
// listen address (when it names one address) or the first private network
// interface, and the port from the port the gRPC server listens on.
func (i Instance) Resolve(grpcListenAddr string, grpcPort int, logger log.Logger) Instance {
	if i.Addr == "" {
		i.Addr = DefaultAddr(grpcListenAddr, logger)
	}
	if i.Port == 0 {
		i.Port = grpcPort
	}
	return i
}

// DefaultAddr is the address a process advertises when none is given:
// listenAddr when it names one address, else the first private network
// interface, else 127.0.0.1.
func DefaultAddr(listenAddr string, logger log.Logger) string {
	if ip := net.ParseIP(listenAddr); ip != nil && !ip.IsUnspecified() {
		return listenAddr
	}
	a, err := netutil.GetFirstAddressOf(netutil.PrivateNetworkInterfacesWithFallback([]string{"eth0", "en0", "lo"}, logger), logger, false)
	if err != nil || a == "" {
		return "127.0.0.1"
	}
	return a
}

// merge returns the ring's identity: self with the ring's overrides.
func (c *Config) merge(self Instance) (Instance, error) {
	out := self
	if c.InstanceID != "" {
		out.ID = c.InstanceID
	}
	if c.InstanceAddr != "" {
		out.Addr = c.InstanceAddr
	}
	if c.InstancePort != 0 {
		out.Port = c.InstancePort
	}
	if c.InstanceZone != "" {
		out.Zone = c.InstanceZone
	}
	if out.ID == "" {
		return out, fmt.Errorf("ring instance ID is empty: set -instance-id")
	}
	if out.Addr == "" {
		return out, fmt.Errorf("ring instance address is empty: set -instance-addr")
	}
	if ip := net.ParseIP(out.Addr); ip == nil {
		if _, err := net.LookupHost(out.Addr); err != nil {
			return out, fmt.Errorf("ring instance address %q (-instance-addr): %w", out.Addr, err)
		}
	}
	return out, nil
}
