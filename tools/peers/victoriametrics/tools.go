//go:build tools

// Package tools pins the VictoriaMetrics single-node server the write
// benchmark (tools/bench.sh, PEERS=victoriametrics) compares against.
package tools

import _ "github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics"
