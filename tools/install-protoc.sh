#!/usr/bin/env bash
# Installs the pinned protobuf generators behind `make proto`: Debian's
# protoc (protobuf-compiler 3.21.12, bookworm) and protoc-gen-go built from
# the google.golang.org/protobuf version in go.mod. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOC_VERSION=3.21.12

if ! command -v protoc >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-protoc: protoc missing and not root: apt-get install protobuf-compiler" >&2
    exit 1
  fi
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends protobuf-compiler >/dev/null
fi
have=$(protoc --version | awk '{print $2}')
if [ "$have" != "$PROTOC_VERSION" ]; then
  echo "install-protoc: protoc $have found, $PROTOC_VERSION wanted (the generated files name it)" >&2
  exit 1
fi

# protoc-gen-go at the version go.mod requires, so the generated code matches
# the runtime it is compiled against.
want=$(go list -m -f '{{.Version}}' google.golang.org/protobuf)
GOBIN_DIR="$(go env GOPATH)/bin"
if ! go version -m "$GOBIN_DIR/protoc-gen-go" 2>/dev/null | grep -q "mod[[:space:]]*google.golang.org/protobuf[[:space:]]*$want"; then
  GOBIN="$GOBIN_DIR" go install google.golang.org/protobuf/cmd/protoc-gen-go
fi
echo "protoc $have, protoc-gen-go $want at $GOBIN_DIR/protoc-gen-go"
