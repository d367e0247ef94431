package client_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/grafana/dskit/middleware"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/canopy-observability/canopy/pkg/ingester/client"
	"github.com/canopy-observability/canopy/pkg/rpc"
)

// The benchmarks below measure the internal RPC's hot paths over loopback
// gRPC, as a distributor pushes to an ingester and a querier streams from
// one: a push of 2,000 series of eight labels (tools/loadgen's shape), and a
// query stream of 64 frames of 64KiB.
//
//	go test -run '^$' -bench . -benchmem ./pkg/ingester/client/

var serverCodec = rpc.ServerOption()

func benchWriteRequest(n int) *writev2.Request {
	st := writev2.NewSymbolTable()
	req := &writev2.Request{}
	var refs []uint32
	for i := 0; i < n; i++ {
		t := i / 200
		refs = st.SymbolizeLabels(labels.FromStrings(
			"__name__", fmt.Sprintf("loadgen_metric_%d_total", i%200),
			"cluster", fmt.Sprintf("cluster-%d", t%4),
			"container", "app",
			"instance", fmt.Sprintf("10.0.%d.%d:8080", (t>>8)&0xff, t&0xff),
			"job", "loadgen",
			"namespace", fmt.Sprintf("namespace-%d", t%40),
			"pod", fmt.Sprintf("loadgen-%07d", t),
			"service", fmt.Sprintf("service-%d", t%200),
		), refs[:0])
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: append([]uint32(nil), refs...),
			Samples:    []writev2.Sample{{Value: float64(i), Timestamp: 1700000000000}},
		})
	}
	req.Symbols = st.Symbols()
	return req
}

type benchIngester struct {
	client.IngesterServer // nil: only Push and QueryStream are called
	frame                 []byte
}

func (benchIngester) Push(context.Context, *writev2.Request) (*client.PushResponse, error) {
	return &client.PushResponse{}, nil
}

func (b benchIngester) QueryStream(_ *prompb.Query, stream client.FrameSender) error {
	w := client.FrameWriter{Stream: stream}
	for i := 0; i < 64; i++ {
		if _, err := w.Write(b.frame); err != nil {
			return err
		}
	}
	return nil
}

func benchClient(b *testing.B) *client.Client {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer(serverCodec,
		grpc.UnaryInterceptor(middleware.ServerUserHeaderInterceptor),
		grpc.StreamInterceptor(middleware.StreamServerUserHeaderInterceptor),
		grpc.MaxRecvMsgSize(256<<20))
	client.RegisterIngesterServer(srv, benchIngester{frame: make([]byte, 64<<10)})
	go func() { _ = srv.Serve(lis) }()
	b.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(middleware.ClientUserHeaderInterceptor),
		grpc.WithStreamInterceptor(middleware.StreamClientUserHeaderInterceptor),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20), grpc.MaxCallSendMsgSize(256<<20)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	return client.NewClient(conn)
}

func BenchmarkPushGRPC(b *testing.B) {
	c := benchClient(b)
	req := benchWriteRequest(2000)
	ctx := user.InjectOrgID(context.Background(), "bench")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Push(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(2000*b.N)/b.Elapsed().Seconds(), "samples/s")
}

func BenchmarkQueryStreamGRPC(b *testing.B) {
	c := benchClient(b)
	ctx := user.InjectOrgID(context.Background(), "bench")
	q := &prompb.Query{Matchers: []*prompb.LabelMatcher{{Name: "job", Value: "x"}}}
	b.ReportAllocs()
	b.SetBytes(64 * 64 << 10)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rc, err := c.QueryStream(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			b.Fatal(err)
		}
		_ = rc.Close()
	}
}

// BenchmarkPushMarshal compares marshalling the remote-write request alone
// (the wire before the .proto contract) with marshalling it inside
// PushRequest: the wrapper must cost no copy.
func BenchmarkPushMarshal(b *testing.B) {
	req := benchWriteRequest(2000)
	for _, bc := range []struct {
		name string
		msg  interface{ Marshal() ([]byte, error) }
	}{
		{"writev2-alone", req},
		{"PushRequest", client.PushRequest{Request: req}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				out, err := bc.msg.Marshal()
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(out)))
			}
		})
	}
}

// BenchmarkPushUnmarshal is BenchmarkPushMarshal's other side.
func BenchmarkPushUnmarshal(b *testing.B) {
	req := benchWriteRequest(2000)
	bare, _ := req.Marshal()
	wrapped, _ := client.PushRequest{Request: req}.Marshal()
	b.Run("writev2-alone", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(bare)))
		for i := 0; i < b.N; i++ {
			var r writev2.Request
			if err := r.Unmarshal(bare); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("PushRequest", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(wrapped)))
		for i := 0; i < b.N; i++ {
			if err := (client.PushRequest{Request: new(writev2.Request)}).Unmarshal(wrapped); err != nil {
				b.Fatal(err)
			}
		}
	})
}
