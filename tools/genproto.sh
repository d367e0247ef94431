#!/usr/bin/env bash
# Generates the Go code of Canopy's internal gRPC contracts (pkg/rpc) with
# the generators tools/install-protoc.sh installs. With an argument, writes
# into that directory instead of the tree (make check compares the two).
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-pkg/rpc}
plugin="$(go env GOPATH)/bin/protoc-gen-go"
mkdir -p "$out"
cd pkg/rpc
# Sorted, so the generated files do not depend on the file system's order.
files=$(find . -name '*.proto' -printf '%P\n' | LC_ALL=C sort)
case "$out" in /*) ;; *) out="../../$out" ;; esac
protoc --plugin=protoc-gen-go="$plugin" -I . --go_out="$out" --go_opt=paths=source_relative $files
