package storegateway

import (
	"google.golang.org/protobuf/proto"

	"github.com/canopy-observability/canopy/pkg/ingester/client"
	"github.com/canopy-observability/canopy/pkg/rpc/storegatewaypb"
)

// The Go types of the messages convert to and from their generated form
// (rpc/storegatewaypb) on the wire.

// Marshal encodes m as storegatewaypb.SeriesRequest.
func (m *SeriesRequest) Marshal() ([]byte, error) {
	return proto.Marshal(&storegatewaypb.SeriesRequest{StartMs: m.Start, EndMs: m.End, Matchers: client.MatchersToPB(m.Matchers), BlockIds: m.BlockIDs})
}

// Unmarshal decodes a storegatewaypb.SeriesRequest into m.
func (m *SeriesRequest) Unmarshal(b []byte) error {
	var pb storegatewaypb.SeriesRequest
	if err := proto.Unmarshal(b, &pb); err != nil {
		return err
	}
	*m = SeriesRequest{Start: pb.StartMs, End: pb.EndMs, Matchers: client.MatchersFromPB(pb.Matchers), BlockIDs: pb.BlockIds}
	return nil
}

// Marshal encodes m as storegatewaypb.LabelsRequest.
func (m *LabelsRequest) Marshal() ([]byte, error) {
	return proto.Marshal(&storegatewaypb.LabelsRequest{StartMs: m.Start, EndMs: m.End, Name: m.Name, Matchers: client.MatchersToPB(m.Matchers), Limit: int64(m.Limit), BlockIds: m.BlockIDs})
}

// Unmarshal decodes a storegatewaypb.LabelsRequest into m.
func (m *LabelsRequest) Unmarshal(b []byte) error {
	var pb storegatewaypb.LabelsRequest
	if err := proto.Unmarshal(b, &pb); err != nil {
		return err
	}
	*m = LabelsRequest{
		LabelsRequest: client.LabelsRequest{Start: pb.StartMs, End: pb.EndMs, Name: pb.Name, Matchers: client.MatchersFromPB(pb.Matchers), Limit: int(pb.Limit)},
		BlockIDs:      pb.BlockIds,
	}
	return nil
}

// Marshal encodes m as storegatewaypb.LabelsResponse.
func (m *LabelsResponse) Marshal() ([]byte, error) {
	return deterministic.Marshal(&storegatewaypb.LabelsResponse{Values: m.Values, QueriedBlocks: m.QueriedBlocks, BlockErrors: m.BlockErrors})
}

// Unmarshal decodes a storegatewaypb.LabelsResponse into m.
func (m *LabelsResponse) Unmarshal(b []byte) error {
	var pb storegatewaypb.LabelsResponse
	if err := proto.Unmarshal(b, &pb); err != nil {
		return err
	}
	*m = LabelsResponse{Values: pb.Values, QueriedBlocks: pb.QueriedBlocks, BlockErrors: pb.BlockErrors}
	return nil
}

// deterministic orders map entries, so equal messages marshal to equal bytes.
var deterministic = proto.MarshalOptions{Deterministic: true}
