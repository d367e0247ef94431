//go:build tools

// Package tools pins the Prometheus server; it is never built.
package tools

import _ "github.com/prometheus/prometheus/cmd/prometheus"
