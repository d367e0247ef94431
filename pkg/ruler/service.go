package ruler

import (
	"context"
	"net/http"
	"net/http/httptest"

	"google.golang.org/grpc"

	"github.com/canopy-observability/canopy/pkg/rpc"
	"github.com/canopy-observability/canopy/pkg/rpc/rulerpb"
)

// ServiceName is the fully qualified gRPC service name. The contract is
// rpc/rulerpb/ruler.proto; this file is its Go side (a test checks the
// descriptor declares the .proto's methods).
const ServiceName = "canopy.ruler.v1.Ruler"

// The paths a Rules call may ask for, under Prometheus's /api/v1/.
var rulesPaths = map[string]bool{"rules": true, "alerts": true}

// RuleStateServer answers Rules calls from local: Prometheus's HTTP API
// over this process's ruler only (served under prefix, e.g.
// /prometheus/api/v1/).
type RuleStateServer struct {
	local  http.Handler
	prefix string
}

// RegisterServer serves this ruler's rule state on s.
func RegisterServer(s grpc.ServiceRegistrar, local http.Handler, prefix string) {
	s.RegisterService(&serviceDesc, &RuleStateServer{local: local, prefix: prefix})
}

// Rules answers one Rules call: the local API's status and body.
func (s *RuleStateServer) Rules(ctx context.Context, req *rulerpb.RulesRequest) (*rulerpb.RulesResponse, error) {
	if !rulesPaths[req.Path] {
		return &rulerpb.RulesResponse{StatusCode: http.StatusNotFound, Body: []byte(`{"status":"error","errorType":"not_found","error":"unknown rule state path"}`)}, nil
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, s.prefix+req.Path+"?"+req.Query, nil)
	if err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	s.local.ServeHTTP(rec, r)
	return &rulerpb.RulesResponse{StatusCode: int32(rec.Code), Body: rec.Body.Bytes()}, nil
}

// ruleStateService is what serves the Ruler service.
type ruleStateService interface {
	Rules(ctx context.Context, req *rulerpb.RulesRequest) (*rulerpb.RulesResponse, error)
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: ServiceName,
	HandlerType: (*ruleStateService)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Rules", Handler: rpc.Unary(ruleStateService.Rules)}},
	Metadata:    "rulerpb/ruler.proto",
}

// callRules asks the ruler behind conn for its rule state.
func callRules(ctx context.Context, conn grpc.ClientConnInterface, path, query string) (*rulerpb.RulesResponse, error) {
	out := new(rulerpb.RulesResponse)
	if err := conn.Invoke(ctx, "/"+ServiceName+"/Rules", &rulerpb.RulesRequest{Path: path, Query: query}, out); err != nil {
		return nil, err
	}
	return out, nil
}
