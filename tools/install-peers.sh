#!/usr/bin/env bash
# Installs the pinned third-party programs Canopy's tests run against.
# Idempotent: skips what is already installed at the pinned version.
set -euo pipefail

# apt_peer PACKAGE: installs a Debian package that provides the command of the
# same name, unless it is there. The packages start a system service; tests
# start their own instances, so it is stopped.
apt_peer() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "install-peers: $1 missing and not root; tests needing it will skip" >&2
    return 0
  fi
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >/dev/null
  (systemctl stop "$1" 2>/dev/null || service "$1" stop 2>/dev/null || pkill -x "$1" || true) >/dev/null 2>&1
}

# Prometheus, from Debian's package (2.42: has --web.enable-remote-write-receiver
# and remote_write). Used as a real remote-write sender and as the reference
# receiver in benchmarks.
apt_peer prometheus
command -v prometheus >/dev/null 2>&1 && prometheus --version 2>&1 | head -1 || true

# Alertmanager, from Debian's package (0.25; its webhook payload is version 4
# as today's): routes the ruler's alerts in the alerting tests. The module's
# cmd/alertmanager does not build outside its repository (it embeds a UI
# bundle the module lacks).
apt_peer prometheus-alertmanager
command -v prometheus-alertmanager >/dev/null 2>&1 && prometheus-alertmanager --version 2>&1 | head -1 || true

# memcached, the shared results cache of the query-frontend tests (Debian
# bookworm's package, 1.6.18).
apt_peer memcached
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

# telemetrygen, the OpenTelemetry Collector's load generator: a real OTLP
# client for the logs tests (gRPC and HTTP). Pinned; cached in
# $(go env GOPATH)/bin like MinIO.
TELEMETRYGEN_VERSION=v0.161.0
if ! go version -m "$GOBIN_DIR/telemetrygen" 2>/dev/null | grep -q "mod[[:space:]]*github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen[[:space:]]*$TELEMETRYGEN_VERSION"; then
  echo "install-peers: building telemetrygen $TELEMETRYGEN_VERSION" >&2
  GOFLAGS= go install "github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@$TELEMETRYGEN_VERSION"
fi
echo "telemetrygen $TELEMETRYGEN_VERSION at $GOBIN_DIR/telemetrygen"
