#!/usr/bin/env bash
# Builds, once, the pinned Prometheus 3 server the benchmarks compare
# against (tools/peers/prometheus: the v0.314.0 module, Prometheus 3.14) and
# prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
PROMETHEUS_MODULE_VERSION=v0.314.0
prom="$(go env GOPATH)/bin/prometheus-$PROMETHEUS_MODULE_VERSION"
if [ ! -x "$prom" ]; then
  mkdir -p "$(dirname "$prom")"
  echo "building Prometheus $PROMETHEUS_MODULE_VERSION (a few minutes, once)" >&2
  (cd tools/peers/prometheus && go build -o "$prom.tmp" github.com/prometheus/prometheus/cmd/prometheus)
  mv "$prom.tmp" "$prom"
fi
echo "$prom"
