//go:build tools

// Package victorialogs pins the VictoriaLogs server the logs benchmark
// compares against (tools/victorialogs.sh builds it).
package victorialogs

import _ "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs"
