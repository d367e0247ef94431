#!/usr/bin/env bash
# Rule evaluation benchmark (tools/rulebench): Canopy's ruler and a real
# Prometheus 3 evaluate the same 10,000 recording rules over the same
# samples in the same run. Builds the pinned Prometheus server from its Go
# module (tools/peers/prometheus, v0.314.0 = Prometheus 3.14) the first time.
#
#   bash tools/rulebench.sh                     # 10,000 rules, 2m warm-up, 3m measured
#   bash tools/rulebench.sh -rules 1000         # any tools/rulebench flag
set -euo pipefail
cd "$(dirname "$0")/.."
prom=$(bash tools/prometheus3.sh)
go build -o bin/canopy ./cmd/canopy
go run ./tools/rulebench -canopy bin/canopy -prometheus "$prom" "$@"
