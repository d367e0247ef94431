package rpc_test

import (
	"context"
	"io"
	"testing"

	"github.com/grafana/dskit/user"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/canopy-observability/canopy/pkg/ingester/client"
	"github.com/canopy-observability/canopy/pkg/rpc"
	"github.com/canopy-observability/canopy/pkg/rpc/ingesterpb"
	"github.com/canopy-observability/canopy/pkg/rpc/internal/compatpb"
)

const method = "/" + client.ServiceName + "/"

// oldConn dials as an older Canopy would: plain gRPC with the "proto"
// codec, marshalling the older messages of compatpb with
// google.golang.org/protobuf.
func oldConn(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, conn.Close()) })
	return conn
}

// TestOldClientNewServer: a client built from an older contract (fields
// added since missing from its messages) pushes and queries a current
// server, which ignores nothing it needs and answers fields the old client
// skips.
func TestOldClientNewServer(t *testing.T) {
	ing := &fakeIngester{}
	conn := oldConn(t, serve(t, ing, nil))
	ctx := metadataContext(t, user.InjectOrgID(context.Background(), "team-a"))

	wr := testWriteRequest()
	var pushResp compatpb.OldPushResponse
	require.NoError(t, conn.Invoke(ctx, method+"Push", &compatpb.OldPushRequest{WriteRequest: mustMarshal(t, wr)}, &pushResp))
	require.Equal(t, map[string]int64{"out_of_order": 1}, pushResp.Rejected)
	require.Equal(t, "out of order sample", pushResp.FirstError)
	require.Len(t, ing.pushed, 1)
	require.Equal(t, wr, ing.pushed[0])
	require.Equal(t, []string{"team-a"}, ing.tenants)

	// A query without the hints added since.
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, method+"QueryStream")
	require.NoError(t, err)
	require.NoError(t, stream.SendMsg(&compatpb.OldQueryStreamRequest{StartMs: 1, EndMs: 2, Matchers: []*compatpb.OldMatcher{{Type: 2, Name: "job", Value: "node"}}}))
	require.NoError(t, stream.CloseSend())
	var got []byte
	for {
		var f compatpb.OldFrame
		err := stream.RecvMsg(&f)
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		got = append(got, f.Data...)
	}
	require.Equal(t, "series-node", string(got))
	require.Equal(t, &prompb.Query{StartTimestampMs: 1, EndTimestampMs: 2, Matchers: []*prompb.LabelMatcher{{Type: prompb.LabelMatcher_RE, Name: "job", Value: "node"}}}, ing.queries[0])

	// A request without the limit added since means no limit; the answer's
	// warnings are a field the old client skips.
	var lv compatpb.OldLabelsResponse
	require.NoError(t, conn.Invoke(ctx, method+"LabelValues", &compatpb.OldLabelsRequest{StartMs: 1, EndMs: 2, Name: "job"}, &lv))
	require.Equal(t, []string{"a", "b"}, lv.Values)
	require.Equal(t, &client.LabelsRequest{Start: 1, End: 2, Name: "job"}, ing.labels[0])
}

// TestNewClientOldServer: the current client works against a server that
// answers only the older messages' fields (an older server): the fields it
// does not set keep their zero value.
func TestNewClientOldServer(t *testing.T) {
	var resp client.PushResponse
	old, err := proto.Marshal(&compatpb.OldPushResponse{Rejected: map[string]int64{"series_limit": 2}, FirstError: "limit"})
	require.NoError(t, err)
	require.NoError(t, resp.Unmarshal(old))
	require.Equal(t, client.PushResponse{Rejected: map[string]int{"series_limit": 2}, FirstError: "limit"}, resp)
}

// TestUnknownFieldsDecode: messages from a newer peer, with fields this
// version does not know, decode to what this version knows.
func TestUnknownFieldsDecode(t *testing.T) {
	wr := testWriteRequest()
	for _, tc := range []struct {
		name   string
		future proto.Message
		into   rpc.Message
		want   any
	}{
		{
			name:   "PushRequest, decoded in place",
			future: &compatpb.FuturePushRequest{FutureHint: "new", WriteRequest: mustMarshal(t, wr), FutureNumbers: []int64{1, 2, 3}},
			into:   client.PushRequest{Request: new(writev2.Request)},
			want:   client.PushRequest{Request: wr},
		},
		{
			name:   "PushResponse",
			future: &compatpb.FuturePushResponse{Rejected: map[string]int64{"x": 1}, LimitError: true, FutureDetail: "new"},
			into:   new(client.PushResponse),
			want:   &client.PushResponse{Rejected: map[string]int{"x": 1}, LimitError: true},
		},
		{
			name:   "LabelsResponse",
			future: &compatpb.FutureLabelsResponse{Values: []string{"a"}, FutureBlob: []byte{0, 1, 2}},
			into:   new(client.LabelsResponse),
			want:   &client.LabelsResponse{Values: []string{"a"}},
		},
		{
			name:   "Frame",
			future: &compatpb.FutureFrame{Data: []byte("chunk"), FutureSequence: 7},
			into:   new(rpc.Frame),
			want:   &rpc.Frame{Data: []byte("chunk")},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := proto.Marshal(tc.future)
			require.NoError(t, err)
			require.NoError(t, tc.into.Unmarshal(b))
			require.Equal(t, tc.want, tc.into)
		})
	}

	// And a generated message skips them too (kept as unknown fields).
	b, err := proto.Marshal(&compatpb.FuturePushRequest{WriteRequest: []byte("x"), FutureHint: "new"})
	require.NoError(t, err)
	var pr ingesterpb.PushRequest
	require.NoError(t, proto.Unmarshal(b, &pr))
	require.Equal(t, []byte("x"), pr.WriteRequest)
}

// TestNewServerUnknownPushFields: a newer distributor's push, with fields
// this ingester does not know, is appended.
func TestNewServerUnknownPushFields(t *testing.T) {
	ing := &fakeIngester{}
	conn := oldConn(t, serve(t, ing, nil))
	ctx := metadataContext(t, user.InjectOrgID(context.Background(), "team-a"))
	wr := testWriteRequest()
	var resp compatpb.FuturePushResponse
	require.NoError(t, conn.Invoke(ctx, method+"Push", &compatpb.FuturePushRequest{WriteRequest: mustMarshal(t, wr), FutureHint: "x"}, &resp))
	require.Equal(t, wr, ing.pushed[0])
	require.True(t, resp.LimitError)
}

// TestPreContractPushFails: a distributor older than the .proto contract
// sends a bare remote-write request; the ingester refuses it instead of
// appending nothing.
func TestPreContractPushFails(t *testing.T) {
	ing := &fakeIngester{}
	conn := oldConn(t, serve(t, ing, nil))
	ctx := metadataContext(t, user.InjectOrgID(context.Background(), "team-a"))
	err := conn.Invoke(ctx, method+"Push", testWriteRequest(), new(client.PushResponse), rpc.CallOption())
	require.ErrorContains(t, err, "older than the ingester's contract")
	require.Empty(t, ing.pushed)
}

// TestUnknownMatchTypeRefused: a matcher type added by a newer peer is an
// error, never a wrong match.
func TestUnknownMatchTypeRefused(t *testing.T) {
	b, err := proto.Marshal(&ingesterpb.LabelsRequest{Name: "job", Matchers: []*ingesterpb.Matcher{{Type: 7, Name: "job", Value: "x"}}})
	require.NoError(t, err)
	var req client.LabelsRequest
	require.NoError(t, req.Unmarshal(b))
	_, err = client.ToMatchers(req.Matchers)
	require.ErrorContains(t, err, "unknown match type 7")
}
