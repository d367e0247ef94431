package rpc_test

import (
	"context"
	"crypto/tls"
	"flag"
	"io"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/canopy-observability/canopy/pkg/ingester/client"
	"github.com/canopy-observability/canopy/pkg/rpc"
	"github.com/canopy-observability/canopy/pkg/util/tlstest"
)

// clientConfig is the configuration the -ingester.client.* flags args give.
func clientConfig(t *testing.T, args ...string) rpc.ClientConfig {
	t.Helper()
	var cfg rpc.ClientConfig
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	cfg.RegisterFlagsWithPrefix("ingester.client", fs)
	require.NoError(t, fs.Parse(args))
	require.NoError(t, cfg.Validate("ingester.client"))
	return cfg
}

// TestClientTLS: an ingester serving gRPC over TLS is pushed to and queried
// by a client configured with -ingester.client.tls-enabled and the CA that
// signed its certificate; a client without TLS, or trusting another CA,
// fails saying why.
func TestClientTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "canopy test CA")
	addr := serve(t, &fakeIngester{}, credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{ca.ServerCert(t)}, MinVersion: tls.VersionTLS12}))
	caFile := ca.WriteFiles(t).CA
	otherCAFile := tlstest.NewCA(t, "another CA").WriteFiles(t).CA

	for _, tc := range []struct {
		name    string
		args    []string
		wantErr []string // in the error of every call
	}{
		{name: "TLS with the server's CA", args: []string{"-ingester.client.tls-enabled", "-ingester.client.tls-ca-path=" + caFile}},
		{name: "no TLS", args: nil, wantErr: []string{"does the server require TLS? see -ingester.client.tls-enabled"}},
		{name: "TLS with another CA", args: []string{"-ingester.client.tls-enabled", "-ingester.client.tls-ca-path=" + otherCAFile}, wantErr: []string{"certificate signed by unknown authority", "see -ingester.client.tls-ca-path"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := client.NewPool(clientConfig(t, tc.args...), nil, log.NewNopLogger(), nil)
			defer pool.Close()
			c, err := pool.Client(addr)
			require.NoError(t, err) // dialling is lazy
			ctx, cancel := context.WithTimeout(user.InjectOrgID(context.Background(), "team-a"), 10*time.Second)
			defer cancel()

			resp, err := c.Push(ctx, testWriteRequest())
			if tc.wantErr != nil {
				_, qerr := c.QueryStream(ctx, &prompb.Query{Matchers: []*prompb.LabelMatcher{{Name: "job", Value: "node"}}})
				for _, e := range []error{err, qerr} {
					require.Equal(t, codes.Unavailable, status.Code(e), "%v", e)
					for _, want := range tc.wantErr {
						require.ErrorContains(t, e, want)
					}
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, map[string]int{"out_of_order": 1}, resp.Rejected)

			rc, err := c.QueryStream(ctx, &prompb.Query{Matchers: []*prompb.LabelMatcher{{Name: "job", Value: "node"}}})
			require.NoError(t, err)
			got, err := io.ReadAll(rc)
			require.NoError(t, err)
			require.NoError(t, rc.Close())
			require.Equal(t, "series-node", string(got))
		})
	}
}

func TestClientConfigDefaults(t *testing.T) {
	cfg := clientConfig(t)
	require.Equal(t, rpc.DefaultMaxMessageSize, cfg.GRPC.MaxRecvMsgSize)
	require.Equal(t, rpc.DefaultMaxMessageSize, cfg.GRPC.MaxSendMsgSize)
	require.False(t, cfg.GRPC.TLSEnabled)
	require.True(t, cfg.HealthCheck)

	bad := clientConfig(t)
	bad.GRPC.GRPCCompression = "lz4"
	require.ErrorContains(t, bad.Validate("ingester.client"), "-ingester.client.grpc-compression")

	bad = clientConfig(t)
	bad.GRPC.TLS.CAPath = "ca.pem"
	require.ErrorContains(t, bad.Validate("ingester.client"), "-ingester.client.tls-* flags are set but -ingester.client.tls-enabled is not")

	// A missing file fails the first call, naming the flags.
	missing := clientConfig(t, "-ingester.client.tls-enabled", "-ingester.client.tls-ca-path=/nonexistent/ca.pem")
	_, err := missing.Dial("127.0.0.1:1")
	require.ErrorContains(t, err, "client TLS (-ingester.client.tls-*)")
}
