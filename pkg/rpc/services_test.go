package rpc_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/canopy-observability/canopy/pkg/ingester/client"
	"github.com/canopy-observability/canopy/pkg/rpc/ingesterpb"
	"github.com/canopy-observability/canopy/pkg/rpc/rulerpb"
	"github.com/canopy-observability/canopy/pkg/rpc/storegatewaypb"
	"github.com/canopy-observability/canopy/pkg/ruler"
	"github.com/canopy-observability/canopy/pkg/storegateway"
)

type streaming struct {
	ClientStream, ServerStream bool
}

// TestServiceDescriptorsMatchProto: the hand-written service descriptors
// serve exactly the methods of the .proto services, with the same streaming
// kinds, under the same names.
func TestServiceDescriptorsMatchProto(t *testing.T) {
	srv := grpc.NewServer()
	client.RegisterIngesterServer(srv, &fakeIngester{})
	storegateway.RegisterServer(srv, (*storegateway.StoreGateway)(nil))
	ruler.RegisterServer(srv, nil, "")
	served := srv.GetServiceInfo()

	for _, sd := range []protoreflect.ServiceDescriptor{
		ingesterpb.File_ingesterpb_ingester_proto.Services().ByName("Ingester"),
		storegatewaypb.File_storegatewaypb_storegateway_proto.Services().ByName("StoreGateway"),
		rulerpb.File_rulerpb_ruler_proto.Services().ByName("Ruler"),
	} {
		t.Run(string(sd.FullName()), func(t *testing.T) {
			want := map[string]streaming{}
			for i := 0; i < sd.Methods().Len(); i++ {
				m := sd.Methods().Get(i)
				want[string(m.Name())] = streaming{ClientStream: m.IsStreamingClient(), ServerStream: m.IsStreamingServer()}
			}
			info, ok := served[string(sd.FullName())]
			require.True(t, ok, "no service %s is served", sd.FullName())
			got := map[string]streaming{}
			for _, m := range info.Methods {
				got[m.Name] = streaming{ClientStream: m.IsClientStream, ServerStream: m.IsServerStream}
			}
			require.Equal(t, want, got)
			require.Equal(t, sd.ParentFile().Path(), info.Metadata)
		})
	}
}
