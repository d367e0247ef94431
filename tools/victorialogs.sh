#!/usr/bin/env bash
# Builds, once, the pinned VictoriaLogs server the logs benchmark compares
# against (tools/peers/victorialogs: v1.52.1, pure Go) and prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
VL_VERSION=v1.52.1
vl="$(go env GOPATH)/bin/victoria-logs-$VL_VERSION"
if [ ! -x "$vl" ]; then
  mkdir -p "$(dirname "$vl")"
  echo "building VictoriaLogs $VL_VERSION (a minute, once)" >&2
  (cd tools/peers/victorialogs && CGO_ENABLED=0 go build -o "$vl.tmp" github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs)
  mv "$vl.tmp" "$vl"
fi
echo "$vl"
