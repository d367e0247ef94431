#!/usr/bin/env bash
# Installs the pinned third-party programs Canopy's tests run against.
# Idempotent: skips what is already installed at the pinned version.
set -euo pipefail

# Prometheus, from Debian's package (2.42: has --web.enable-remote-write-receiver
# and remote_write). Used as a real remote-write sender and as the reference
# receiver in benchmarks.
if ! command -v prometheus >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    # The package starts a system service; tests start their own instances.
    (systemctl stop prometheus 2>/dev/null || service prometheus stop 2>/dev/null || pkill -x prometheus || true) >/dev/null 2>&1
  else
    echo "install-peers: prometheus missing and not root; tests needing it will skip" >&2
  fi
fi
command -v prometheus >/dev/null 2>&1 && prometheus --version 2>&1 | head -1 || true

# memcached, the shared results cache of the query-frontend tests (Debian
# bookworm's package, 1.6.18).
if ! command -v memcached >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends memcached >/dev/null
    # The package starts a system service; tests start their own.
    (systemctl stop memcached 2>/dev/null || service memcached stop 2>/dev/null || pkill -x memcached || true) >/dev/null 2>&1
  else
    echo "install-peers: memcached missing and not root; tests needing it will skip" >&2
  fi
fi
command -v memcached >/dev/null 2>&1 && memcached -V || true

# MinIO, the real S3 server of the object-storage tests. No semver tags:
# pinned by pseudo-version. Building it takes about four minutes the first
# time; the binary is cached in $(go env GOPATH)/bin.
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
GOBIN_DIR="$(go env GOPATH)/bin"
if ! go version -m "$GOBIN_DIR/minio" 2>/dev/null | grep -q "mod[[:space:]]*github.com/minio/minio[[:space:]]*$MINIO_VERSION"; then
  echo "install-peers: building MinIO $MINIO_VERSION (a few minutes)" >&2
  GOFLAGS= go install "github.com/minio/minio@$MINIO_VERSION"
fi
echo "minio $MINIO_VERSION at $GOBIN_DIR/minio"
