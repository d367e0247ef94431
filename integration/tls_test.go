package integration

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/canopy-observability/canopy/pkg/util/tlstest"
)

// TestInternalGRPCOverMutualTLS: write, read and backend processes whose
// gRPC servers require client certificates (-server.grpc-tls-*) and whose
// ingester, store-gateway and ruler clients present one and trust the
// cluster's CA (-ingester.client.tls-*, -store-gateway.client.tls-*,
// -ruler.client.tls-*): a push reaches the ingester, a query reads it from
// the ingester and, once shipped, from a store-gateway, and the reader
// lists the backend ruler's groups.
func TestInternalGRPCOverMutualTLS(t *testing.T) {
	requireIntegration(t)
	files := tlstest.NewCA(t, "canopy cluster CA").WriteFiles(t)
	args := []string{
		"-auth.multitenancy-enabled",
		"-ingester.replication-factor=1",
		"-store-gateway.replication-factor=1",
		"-querier.query-ingesters-within=0",
		"-querier.query-store-after=0",
		"-querier.bucket-index-ttl=1s",
		"-server.grpc-tls-cert-path=" + files.Cert,
		"-server.grpc-tls-key-path=" + files.Key,
		"-server.grpc-tls-ca-path=" + files.CA,
		"-server.grpc-tls-client-auth=RequireAndVerifyClientCert",
	}
	for _, client := range []string{"ingester.client", "store-gateway.client", "ruler.client"} {
		args = append(args,
			"-"+client+".tls-enabled",
			"-"+client+".tls-ca-path="+files.CA,
			"-"+client+".tls-cert-path="+files.Cert,
			"-"+client+".tls-key-path="+files.Key,
		)
	}
	nodes := newCanopyCluster(t, logDir(t), []string{"write", "read", "backend"}, args...)
	writer, reader, backend := nodes[0], nodes[1], nodes[2]
	for _, n := range nodes {
		n.start(t)
	}
	for _, n := range nodes {
		n.waitReady(t, 90*time.Second)
	}
	waitRingActive(t, []*canopyNode{writer, reader}, []string{writer.id}, 60*time.Second)

	ts := time.Now().Add(-time.Minute).Truncate(time.Second).UnixMilli()
	mustPushV1(t, writer.url(), storeTenant, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "tls_test_metric"}, {Name: "job", Value: "tls"}},
		Samples: []prompb.Sample{{Value: 42, Timestamp: ts}},
	}}})
	a := api{base: reader.url() + "/prometheus", tenant: storeTenant}
	answer := func() error {
		ss, _, err := a.query(http.MethodGet, "tls_test_metric", ts)
		if err != nil {
			return err
		}
		if len(ss) != 1 || len(ss[0].Points) != 1 || ss[0].Points[0].V != "42" {
			return fmt.Errorf("answer %s, want one series of value 42", fmtSeries(ss))
		}
		return nil
	}
	eventually(t, 30*time.Second, 500*time.Millisecond, "the reader answers from the ingester over TLS", answer)

	// Shipped and indexed, the sample is read through the store-gateway too.
	postEach(t, []*canopyNode{writer}, "/ingester/flush")
	waitRingActiveOf(t, []*canopyNode{backend}, []string{backend.id}, 60*time.Second, "compactor")
	postEach(t, []*canopyNode{backend}, "/compactor/run")
	eventually(t, 60*time.Second, time.Second, "a store-gateway reads the block over TLS", func() error {
		if err := answer(); err != nil {
			return err
		}
		r, err := do(http.MethodGet, backend.url()+"/metrics", "", "", nil, nil)
		if err != nil {
			return err
		}
		if v, _ := metricValue(r.body, "canopy_store_gateway_blocks_queried_total", nil); v == 0 {
			return fmt.Errorf("no block queried yet")
		}
		return nil
	})

	// The reader asks the backend's ruler for its rule state over TLS
	// (-ruler.client.tls-*).
	group := "name: tls\nrules:\n  - record: tls_test_rec\n    expr: vector(1)\n"
	if r, err := do(http.MethodPost, backend.url()+"/prometheus/config/v1/rules/tls", storeTenant, "application/yaml", []byte(group), nil); err != nil || r.code != http.StatusAccepted {
		t.Fatalf("uploading a rule group: %v %v", r, err)
	}
	eventually(t, 30*time.Second, 500*time.Millisecond, "the reader lists the backend's group over TLS", func() error {
		code, body, err := httpGet(reader.url()+"/prometheus/api/v1/rules", http.Header{tenantHeader: {storeTenant}})
		if err != nil || code != http.StatusOK || !strings.Contains(string(body), `"name":"tls"`) {
			return fmt.Errorf("%d %s %v", code, body, err)
		}
		return nil
	})
}
