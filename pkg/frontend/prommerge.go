package frontend

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/prometheus/prometheus/model/labels"
)

// Merging the Prometheus API's answers to the parts of a split range query,
// statistics (stats=all) included.

// rangeResponse is the part of a query_range answer the merge reads. Sample
// values are kept as the querier wrote them, so merging changes no digit.
type rangeResponse struct {
	Status string `json:"status"`
	Data   struct {
		ResultType string          `json:"resultType"`
		Result     []rangeSeries   `json:"result"`
		Stats      json.RawMessage `json:"stats,omitempty"`
	} `json:"data"`
	Warnings []string `json:"warnings,omitempty"`
	Infos    []string `json:"infos,omitempty"`
}

type rangeSeries struct {
	Metric     map[string]string `json:"metric"`
	Values     []json.RawMessage `json:"values,omitempty"`
	Histograms []json.RawMessage `json:"histograms,omitempty"`
}

type queryStats struct {
	Timings map[string]float64 `json:"timings,omitempty"`
	Samples *struct {
		PerStep []json.RawMessage `json:"totalQueryableSamplesPerStep,omitempty"`
		Total   int64             `json:"totalQueryableSamples"`
		Peak    int64             `json:"peakSamples"`
	} `json:"samples,omitempty"`
}

// mergeRange joins the answers of consecutive parts of one range query.
func mergeRange(bodies [][]byte) ([]byte, error) {
	if len(bodies) == 1 {
		return bodies[0], nil
	}
	var (
		out    rangeResponse
		series = map[string]*rangeSeries{}
		stats  *queryStats
		seen   = map[string]bool{}
	)
	out.Status = "success"
	out.Data.ResultType = "matrix"
	for _, b := range bodies {
		var r rangeResponse
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("decoding a query part's answer: %w", err)
		}
		for _, s := range r.Data.Result {
			k := labels.FromMap(s.Metric).String()
			cur, ok := series[k]
			if !ok {
				cp := rangeSeries{Metric: s.Metric}
				cur = &cp
				series[k] = cur
			}
			cur.Values = append(cur.Values, s.Values...)
			cur.Histograms = append(cur.Histograms, s.Histograms...)
		}
		for _, w := range r.Warnings {
			if !seen["w"+w] {
				seen["w"+w] = true
				out.Warnings = append(out.Warnings, w)
			}
		}
		for _, w := range r.Infos {
			if !seen["i"+w] {
				seen["i"+w] = true
				out.Infos = append(out.Infos, w)
			}
		}
		if len(r.Data.Stats) > 0 {
			var s queryStats
			if err := json.Unmarshal(r.Data.Stats, &s); err != nil {
				return nil, fmt.Errorf("decoding a query part's stats: %w", err)
			}
			stats = mergeStats(stats, &s)
		}
	}
	keys := make([]labels.Labels, 0, len(series))
	byLabels := make(map[string]*rangeSeries, len(series))
	for _, s := range series {
		ls := labels.FromMap(s.Metric)
		keys = append(keys, ls)
		byLabels[ls.String()] = s
	}
	sort.Slice(keys, func(i, j int) bool { return labels.Compare(keys[i], keys[j]) < 0 })
	out.Data.Result = make([]rangeSeries, 0, len(keys))
	for _, ls := range keys {
		out.Data.Result = append(out.Data.Result, *byLabels[ls.String()])
	}
	if stats != nil {
		b, err := json.Marshal(stats)
		if err != nil {
			return nil, err
		}
		out.Data.Stats = b
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// mergeStats adds b's statistics to a: times and totals add up, peaks are
// the largest, per-step counts are concatenated.
func mergeStats(a, b *queryStats) *queryStats {
	if a == nil {
		return b
	}
	if a.Timings == nil {
		a.Timings = map[string]float64{}
	}
	for k, v := range b.Timings {
		a.Timings[k] += v
	}
	if b.Samples != nil {
		if a.Samples == nil {
			a.Samples = b.Samples
		} else {
			a.Samples.PerStep = append(a.Samples.PerStep, b.Samples.PerStep...)
			a.Samples.Total += b.Samples.Total
			a.Samples.Peak = max(a.Samples.Peak, b.Samples.Peak)
		}
	}
	return a
}
