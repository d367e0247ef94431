#!/usr/bin/env bash
# Builds, once, the pinned VictoriaMetrics single-node server the write
# benchmark compares against (tools/peers/victoriametrics: v1.151.0, pure Go)
# and prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
VM_VERSION=v1.151.0
vm="$(go env GOPATH)/bin/victoria-metrics-$VM_VERSION"
if [ ! -x "$vm" ]; then
  mkdir -p "$(dirname "$vm")"
  echo "building VictoriaMetrics $VM_VERSION (a few minutes, once)" >&2
  (cd tools/peers/victoriametrics && CGO_ENABLED=0 go build -o "$vm.tmp" github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics)
  mv "$vm.tmp" "$vm"
fi
echo "$vm"
