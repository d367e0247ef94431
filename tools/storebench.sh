#!/usr/bin/env bash
# Store benchmark (tools/storebench): bytes per sample after compaction and a
# 7-day range query, Canopy's bucket path against a real Prometheus 3 holding
# the same samples. Builds the pinned Prometheus server from its Go module
# (tools/peers/prometheus, v0.314.0 = Prometheus 3.14) the first time.
#
#   bash tools/storebench.sh                 # 10,000 series × 7 days
#   bash tools/storebench.sh -series 1000    # any tools/storebench flag
set -euo pipefail
cd "$(dirname "$0")/.."
prom=$(bash tools/prometheus3.sh)
go build -o bin/canopy ./cmd/canopy
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | awk '{print $3}')"
go run ./tools/storebench -canopy bin/canopy -prometheus "$prom" "$@"
