#!/usr/bin/env bash
# Builds, once, the pinned Jaeger v2 server the traces benchmark compares
# against (tools/jaeger: github.com/jaegertracing/jaeger/cmd/jaeger v1.76.0,
# a Go tool of a module of its own) and prints its path. About 3 minutes on
# a 2-core machine the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
JAEGER_VERSION=v1.76.0
jaeger="$(go env GOPATH)/bin/jaeger-$JAEGER_VERSION"
if [ ! -x "$jaeger" ]; then
  mkdir -p "$(dirname "$jaeger")"
  echo "building Jaeger $JAEGER_VERSION (a few minutes, once)" >&2
  (cd tools/jaeger && CGO_ENABLED=0 go build -o "$jaeger.tmp" github.com/jaegertracing/jaeger/cmd/jaeger)
  mv "$jaeger.tmp" "$jaeger"
fi
echo "$jaeger"
