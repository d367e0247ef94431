package promjson

import (
	"encoding/json"
	"fmt"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
)

// Response is the Prometheus HTTP API's envelope.
type Response struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
	Infos     []string        `json:"infos"`
}

// DecodeInstant reads the data of an instant query's answer into a vector,
// as Prometheus's rules read their query's result: a scalar is one sample
// without labels; native histograms are rebuilt (FloatHistogram).
func DecodeInstant(data json.RawMessage) (promql.Vector, error) {
	var qr struct {
		Type   model.ValueType `json:"resultType"`
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &qr); err != nil {
		return nil, fmt.Errorf("decoding a query answer: %w", err)
	}
	switch qr.Type {
	case model.ValScalar:
		var sc model.Scalar
		if err := json.Unmarshal(qr.Result, &sc); err != nil {
			return nil, fmt.Errorf("decoding a scalar answer: %w", err)
		}
		return promql.Vector{{T: int64(sc.Timestamp), F: float64(sc.Value), Metric: labels.EmptyLabels()}}, nil
	case model.ValVector:
	default:
		return nil, fmt.Errorf("the query answered a %s, not a vector or a scalar", qr.Type)
	}
	var v model.Vector
	if err := json.Unmarshal(qr.Result, &v); err != nil {
		return nil, fmt.Errorf("decoding a vector answer: %w", err)
	}
	out := make(promql.Vector, 0, len(v))
	for _, s := range v {
		b := labels.NewScratchBuilder(len(s.Metric))
		for k, val := range s.Metric {
			b.Add(string(k), string(val))
		}
		b.Sort()
		smp := promql.Sample{Metric: b.Labels(), T: int64(s.Timestamp), F: float64(s.Value)}
		if s.Histogram != nil {
			fh, err := FloatHistogram(s.Histogram)
			if err != nil {
				return nil, err
			}
			smp.F, smp.H = 0, fh
		}
		out = append(out, smp)
	}
	return out, nil
}
