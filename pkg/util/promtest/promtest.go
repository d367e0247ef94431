// Package promtest holds test helpers for Prometheus metrics.
package promtest

import "github.com/prometheus/client_golang/prometheus"

// SeriesWithLabel counts the series g exposes that carry label name=value
// (in any metric). It fails only if gathering fails, returning -1.
func SeriesWithLabel(g prometheus.Gatherer, name, value string) int {
	families, err := g.Gather()
	if err != nil {
		return -1
	}
	n := 0
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == name && l.GetValue() == value {
					n++
				}
			}
		}
	}
	return n
}
