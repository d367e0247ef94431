#!/usr/bin/env bash
# Hostile-input harness: starts a single-process Canopy (multi-tenancy on,
# loopback) in a memory cgroup, replays the attacks of tools/attack against
# it and prints each one's peak RSS, the answers and whether Canopy is still
# up; then the cgroup's peak and how many times its OOM killer fired.
#
#   bash tools/attack.sh                 # 2 GiB cgroup, the issue's figures
#   MEMORY=3G SCALE=0.5 bash tools/attack.sh
#
# Environment:
#   MEMORY  the cgroup's memory limit (default 2G); needs root and a cgroup v1
#           memory controller or cgroup v2; without them the attacks run
#           outside a cgroup and say so
#   SCALE   multiplies every count, size and hold time (default 1)
#   OUT     where Canopy's log is kept (default /tmp/canopy-attack-results)
set -euo pipefail

MEMORY=${MEMORY:-2G}
SCALE=${SCALE:-1}
OUT=${OUT:-/tmp/canopy-attack-results}

cd "$(dirname "$0")/.."
mkdir -p "$OUT"
work=$(mktemp -d /tmp/canopy-attack.XXXXXX)
cg=""
pid=""
cleanup() {
  [ -z "$pid" ] || { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  [ -z "$cg" ] || rmdir "$cg" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "attack: building canopy" >&2
go build -o "$work/canopy" ./cmd/canopy
go build -o "$work/attack" ./tools/attack/run
go build -o "$work/loadgen" ./tools/loadgen
read -r http grpc gossip < <("$work/loadgen" freeports 3)

# The cgroup is made before Canopy starts, and Canopy is started inside it
# by a shell that first moves itself there.
bytes=$(numfmt --from=iec "$MEMORY")
if [ -w /sys/fs/cgroup/memory ]; then
  cg=/sys/fs/cgroup/memory/canopy-attack-$$
  mkdir "$cg"
  echo "$bytes" >"$cg/memory.limit_in_bytes"
  echo "$bytes" >"$cg/memory.memsw.limit_in_bytes" 2>/dev/null || true
elif [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw memory /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; then
  cg=/sys/fs/cgroup/canopy-attack-$$
  mkdir "$cg"
  echo "$bytes" >"$cg/memory.max"
  echo 0 >"$cg/memory.swap.max" 2>/dev/null || true
else
  echo "attack: no writable memory cgroup here: running without a memory limit" >&2
fi

# start: a fresh Canopy with empty data, so each attack's peak is its own
# (the Go runtime keeps freed memory for a while).
start() {
  rm -rf "$work/data"
  sh -c '[ -z "$1" ] || echo $$ >"$1/cgroup.procs"; shift; exec "$@"' sh "$cg" \
    "$work/canopy" -data-dir="$work/data" -auth.multitenancy-enabled \
    -server.http-listen-address=127.0.0.1 -server.http-listen-port="$http" \
    -server.grpc-listen-address=127.0.0.1 -server.grpc-listen-port="$grpc" \
    -memberlist.bind-addr=127.0.0.1 -memberlist.bind-port="$gossip" \
    -distributor.otlp.grpc-listen-address= -distributor.otlp.http-listen-address= \
    -log.level=warn >>"$OUT/canopy.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    curl -fsS -o /dev/null "http://127.0.0.1:$http/ready" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { echo "attack: canopy exited during start-up:" >&2; tail -20 "$OUT/canopy.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "attack: canopy not ready after 60s" >&2
  exit 1
}

stop() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=""
}

: >"$OUT/canopy.log"
echo "attack: memory limit $([ -n "$cg" ] && echo "$MEMORY" || echo none), scale $SCALE, a fresh canopy for each attack" >&2
status=0
header=true
for name in $("$work/attack" -list); do
  start
  "$work/attack" -url "http://127.0.0.1:$http" -pid "$pid" -scale "$SCALE" -only "$name" -header=$header || status=$?
  header=false
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "attack: canopy did not survive $name; the end of its log:" >&2
    tail -20 "$OUT/canopy.log" >&2
    status=1
  fi
  stop
done

echo
if [ -f "$cg/memory.max_usage_in_bytes" ]; then
  echo "cgroup: limit $MEMORY, peak over all attacks $(numfmt --to=iec <"$cg/memory.max_usage_in_bytes"), OOM kills $(awk '/oom_kill /{print $2}' "$cg/memory.oom_control")"
elif [ -f "$cg/memory.peak" ]; then
  echo "cgroup: limit $MEMORY, peak over all attacks $(numfmt --to=iec <"$cg/memory.peak"), OOM kills $(awk '/oom_kill /{print $2}' "$cg/memory.events")"
fi
exit "$status"
