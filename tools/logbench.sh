#!/usr/bin/env bash
# Logs benchmark: the same Loki protobuf push load (tools/loadgen
# logs-ingest: nginx, logfmt and JSON lines over 1,000 streams, one needle
# line) into a single-process Canopy (replication factor 1) and into
# VictoriaLogs, one after the other on this machine; then the same queries
# against both: a needle search, a filter over every line, logfmt and json
# parsing; then the bytes each keeps per raw byte.
#
#   bash tools/logbench.sh                  # 2 GB
#   BYTES=10GB bash tools/logbench.sh       # the issue's needle-search size
#
# Environment:
#   BYTES        raw line bytes to send (kB, MB, GB)         (default 2GB)
#   STREAMS      active streams                             (default 1000)
#   CONCURRENCY  pushes in flight                           (default 4)
#   PEERS        victorialogs, or empty for Canopy alone    (default victorialogs)
#   MEMORY       each system runs alone in a memory cgroup of this size, as
#                in a container (needs root and cgroup v1 or v2; without
#                them it runs unconfined and says so)     (default 1G)
#   OUT          where reports and logs are kept            (default /tmp/canopy-logbench)
set -euo pipefail
BYTES=${BYTES:-2GB}
STREAMS=${STREAMS:-1000}
CONCURRENCY=${CONCURRENCY:-4}
PEERS=${PEERS-victorialogs}
OUT=${OUT:-/tmp/canopy-logbench}
MEMORY=${MEMORY:-1G}
NEEDLE=needle-3f9a1c7e5b2d4f60a8e1

cd "$(dirname "$0")/.."
mkdir -p "$OUT"
work=$(mktemp -d /tmp/canopy-logbench.XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
  rmdir /sys/fs/cgroup/memory/canopy-logbench-*-$$ /sys/fs/cgroup/canopy-logbench-*-$$ 2>/dev/null || true
}
trap cleanup EXIT

# cgroup NAME: makes a memory cgroup of $MEMORY and prints its path (empty
# when there is none to make).
cgroup() {
  local bytes cg
  bytes=$(numfmt --from=iec "$MEMORY")
  if [ -w /sys/fs/cgroup/memory ]; then
    cg=/sys/fs/cgroup/memory/canopy-logbench-$1-$$
    mkdir -p "$cg" && echo "$bytes" >"$cg/memory.limit_in_bytes"
  elif [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw memory /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; then
    cg=/sys/fs/cgroup/canopy-logbench-$1-$$
    mkdir -p "$cg" && echo "$bytes" >"$cg/memory.max" && { echo 0 >"$cg/memory.swap.max" 2>/dev/null || true; }
  else
    echo "logbench: no writable memory cgroup: $1 runs without a memory limit" >&2
  fi
  echo "${cg:-}"
}

# cgroup_report CG: the cgroup's peak and OOM kills.
cgroup_report() {
  local cg=$1
  if [ -z "$cg" ]; then echo "no cgroup"; return; fi
  if [ -f "$cg/memory.peak" ]; then
    echo "cgroup limit $MEMORY, peak $(numfmt --to=iec <"$cg/memory.peak"), OOM kills $(awk '/oom_kill /{print $2}' "$cg/memory.events")"
  else
    echo "cgroup limit $MEMORY, peak $(numfmt --to=iec <"$cg/memory.max_usage_in_bytes"), OOM kills $(awk '/oom_kill /{print $2}' "$cg/memory.oom_control")"
  fi
}

# inside: a shell that moves itself into cgroup $1 (none when empty) and
# becomes the command after it, so that $! is the command's PID.
inside='[ -z "$1" ] || echo $$ >"$1/cgroup.procs"; shift; exec "$@"'

go build -o "$work/canopy" ./cmd/canopy
go build -o "$work/loadgen" ./tools/loadgen
ports=$("$work/loadgen" freeports 3)
read -r http grpc ml <<<"$ports"

wait_ready() { # url
  for _ in $(seq 1 300); do curl -sf "$1" >/dev/null && return 0; sleep 0.2; done
  echo "logbench: $1 not ready" >&2; exit 1
}

queries() { # name api base start end
  local name=$1 api=$2 base=$3 start=$4 end=$5
  if [ "$api" = loki ]; then
    "$work/loadgen" logs-query -name "$name needle" -api loki -url "$base" -pid "$pid" -start "$start" -end "$end" -limit 100 \
      -query "{job=\"bench\"} |= \"$NEEDLE\""
    "$work/loadgen" logs-query -name "$name filter" -api loki -url "$base" -pid "$pid" -instant -end "$end" \
      -query "sum(count_over_time({job=\"bench\"} |= \"status=500\" [2h]))"
    "$work/loadgen" logs-query -name "$name logfmt" -api loki -url "$base" -pid "$pid" -instant -end "$end" \
      -query "sum by (level) (count_over_time({job=\"bench\", format=\"logfmt\"} | logfmt | status >= 500 [2h]))"
    "$work/loadgen" logs-query -name "$name json" -api loki -url "$base" -pid "$pid" -instant -end "$end" \
      -query "sum by (level) (count_over_time({job=\"bench\", format=\"json\"} | json | status >= 500 [2h]))"
  else
    "$work/loadgen" logs-query -name "$name needle" -api logsql -url "$base" -pid "$pid" -start "$start" -end "$end" -limit 100 \
      -query "{job=\"bench\"} \"$NEEDLE\""
    "$work/loadgen" logs-query -name "$name filter" -api logsql -url "$base" -pid "$pid" -start "$start" -end "$end" \
      -query "{job=\"bench\"} \"status=500\" | stats count()"
    "$work/loadgen" logs-query -name "$name logfmt" -api logsql -url "$base" -pid "$pid" -start "$start" -end "$end" \
      -query "{job=\"bench\", format=\"logfmt\"} | unpack_logfmt | filter status:>=500 | stats by (level) count()"
    "$work/loadgen" logs-query -name "$name json" -api logsql -url "$base" -pid "$pid" -start "$start" -end "$end" \
      -query "{job=\"bench\", format=\"json\"} | unpack_json | filter status:>=500 | stats by (level) count()"
  fi
}

start_ns=$(( ($(date +%s) - 600) * 1000000000 ))

# Canopy: one process, replication factor 1, ingestion limits out of the way.
data="$work/canopy-data"
cg=$(cgroup canopy)
sh -c "$inside" sh "$cg" "$work/canopy" -data-dir="$data" -server.http-listen-address=127.0.0.1 -server.http-listen-port="$http" \
  -server.grpc-listen-address=127.0.0.1 -server.grpc-listen-port="$grpc" -memberlist.bind-addr=127.0.0.1 -memberlist.bind-port="$ml" \
  -distributor.otlp.grpc-listen-address= -distributor.otlp.http-listen-address= \
  -distributor.logs.ingestion-rate-limit-mb=100000 -distributor.logs.ingestion-burst-size-mb=100000 \
  >"$OUT/canopy.log" 2>&1 &
pid=$!
wait_ready "http://127.0.0.1:$http/ready"
"$work/loadgen" logs-ingest -url "http://127.0.0.1:$http/loki/api/v1/push" -bytes "$BYTES" -streams "$STREAMS" \
  -concurrency "$CONCURRENCY" -needle "$NEEDLE" -pid "$pid" -json | tee "$OUT/canopy-ingest.json"
curl -sf -X POST "http://127.0.0.1:$http/ingester/flush" >/dev/null
sleep 12 # queriers re-list blocks every 10s
end_ns=$(( ($(date +%s) + 60) * 1000000000 ))
queries canopy loki "http://127.0.0.1:$http" "$start_ns" "$end_ns" | tee "$OUT/canopy-queries.json"
echo "canopy bucket: $(du -sb "$data/bucket" | cut -f1) bytes; peak RSS: $(grep VmHWM /proc/$pid/status | tr -s ' \t' ' '); $(cgroup_report "$cg")" | tee "$OUT/canopy-disk.txt"
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""

for peer in $PEERS; do
  case "$peer" in
  victorialogs)
    vl=$(bash tools/victorialogs.sh)
    cg=$(cgroup victorialogs)
    sh -c "$inside" sh "$cg" "$vl" -storageDataPath="$work/vl-data" -httpListenAddr="127.0.0.1:$http" -retentionPeriod=30d >"$OUT/victorialogs.log" 2>&1 &
    pid=$!
    wait_ready "http://127.0.0.1:$http/health"
    "$work/loadgen" logs-ingest -url "http://127.0.0.1:$http/insert/loki/api/v1/push" -bytes "$BYTES" -streams "$STREAMS" \
      -concurrency "$CONCURRENCY" -needle "$NEEDLE" -pid "$pid" -json | tee "$OUT/victorialogs-ingest.json"
    curl -sf "http://127.0.0.1:$http/internal/force_flush" >/dev/null || true
    sleep 5
    end_ns=$(( ($(date +%s) + 60) * 1000000000 ))
    queries victorialogs logsql "http://127.0.0.1:$http" "$start_ns" "$end_ns" | tee "$OUT/victorialogs-queries.json"
    echo "victorialogs storage: $(du -sb "$work/vl-data" | cut -f1) bytes; peak RSS: $(grep VmHWM /proc/$pid/status | tr -s ' \t' ' '); $(cgroup_report "$cg")" | tee "$OUT/victorialogs-disk.txt"
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
    ;;
  *) echo "logbench: unknown peer $peer" >&2; exit 1 ;;
  esac
done
echo "reports in $OUT"
