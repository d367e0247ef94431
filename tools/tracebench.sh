#!/usr/bin/env bash
# Traces benchmark: the same OTLP gRPC load (tools/loadgen traces-ingest:
# telemetrygen-like traces of a root server span and a child client span,
# random trace IDs, 1,000 spans a request, CONCURRENCY exporters) into a
# single-process Canopy (replication factor 1) and into Jaeger v2 v1.76.0
# with its badger storage (tools/jaeger.sh), one after the other on this
# machine, each alone in a memory cgroup; then, against each, lookups by ID
# of a random sample of the traces sent (loadgen traces-query: Canopy's
# /tempo/api/traces/<id>, Jaeger's /api/traces/<id>) and a search over the
# last hour (TraceQL
#   { resource.service.name = "loadgen" && span.http.status_code = 500 }
# limit 20; Jaeger: service=loadgen, tags {"http.status_code":"500"}), best
# of 3; then the bytes each keeps per span: Canopy's bucket
# (<data>/bucket/anonymous/traces after POST /ingester/flush and, with a
# compactor that merges trace blocks, after it has merged them; blocks
# marked for deletion left out), Jaeger's badger directory (after a clean
# shutdown, which writes its memtables to SSTables and truncates its value
# log).
#
#   bash tools/tracebench.sh                    # 2,000,000 spans = 1,000,000 traces (the issue's size)
#   SPANS=200000 bash tools/tracebench.sh       # a quick check
#
# Environment:
#   SPANS        spans to send, two a trace                 (default 2000000)
#   CONCURRENCY  OTLP gRPC exporters, one request in flight each (default 4)
#   BATCH        spans per request                          (default 1000)
#   LOOKUPS      lookups by ID                              (default 1000)
#   PEERS        jaeger, or empty for Canopy alone          (default jaeger)
#   MEMORY       each system runs alone in a memory cgroup of this size, as
#                in a container (needs root and cgroup v1 or v2; without
#                them it runs unconfined and says so)     (default 1G)
#   OUT          where reports and logs are kept            (default /tmp/canopy-tracebench)
#   KEEP         when set, the work directory (binaries, data, bucket) is kept
set -euo pipefail
SPANS=${SPANS:-2000000}
CONCURRENCY=${CONCURRENCY:-4}
BATCH=${BATCH:-1000}
LOOKUPS=${LOOKUPS:-1000}
PEERS=${PEERS-jaeger}
OUT=${OUT:-/tmp/canopy-tracebench}
MEMORY=${MEMORY:-1G}

cd "$(dirname "$0")/.."
mkdir -p "$OUT"
work=$(mktemp -d /tmp/canopy-tracebench.XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ -n "${KEEP:-}" ]; then echo "tracebench: kept $work" >&2; else rm -rf "$work"; fi
  rmdir /sys/fs/cgroup/memory/canopy-tracebench-*-$$ /sys/fs/cgroup/canopy-tracebench-*-$$ 2>/dev/null || true
}
trap cleanup EXIT

# cgroup NAME: makes a memory cgroup of $MEMORY and prints its path (empty
# when there is none to make).
cgroup() {
  local bytes cg
  bytes=$(numfmt --from=iec "$MEMORY")
  if [ -w /sys/fs/cgroup/memory ]; then
    cg=/sys/fs/cgroup/memory/canopy-tracebench-$1-$$
    mkdir -p "$cg" && echo "$bytes" >"$cg/memory.limit_in_bytes"
  elif [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw memory /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; then
    cg=/sys/fs/cgroup/canopy-tracebench-$1-$$
    mkdir -p "$cg" && echo "$bytes" >"$cg/memory.max" && { echo 0 >"$cg/memory.swap.max" 2>/dev/null || true; }
  else
    echo "tracebench: no writable memory cgroup: $1 runs without a memory limit" >&2
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

# field FILE KEY: a number from one of loadgen's -json reports.
field() { sed -n "s/^[[:space:]]*\"$2\": *\([-0-9.e+]*\),\{0,1\}$/\1/p" "$1" | head -1; }

# stop PID: SIGTERM, then wait up to a minute for a clean exit.
stop() {
  kill "$1"
  for _ in $(seq 1 600); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  wait "$1" 2>/dev/null || true
}

go build -o "$work/canopy" ./cmd/canopy
go build -o "$work/loadgen" ./tools/loadgen
ports=$("$work/loadgen" freeports 4)
read -r http grpc ml otlp <<<"$ports"

wait_ready() { # url
  for _ in $(seq 1 300); do curl -sf "$1" >/dev/null && return 0; sleep 0.2; done
  echo "tracebench: $1 not ready" >&2; exit 1
}

ingest() { # name pid
  "$work/loadgen" traces-ingest -name "$1" -addr "127.0.0.1:$otlp" -spans "$SPANS" -batch "$BATCH" \
    -concurrency "$CONCURRENCY" -pid "$2" -ids "$work/$1-ids.txt" -json | tee "$OUT/$1-ingest.json"
}

# Canopy: one process, replication factor 1, ingestion limits out of the way.
# When the compactor merges trace blocks (-compactor.traces.merge-windows),
# it does so here in windows of a minute, looked at every 15s, so that the
# bucket is measured after compaction.
data="$work/canopy-data"
compact=()
case "$("$work/canopy" -help 2>&1 || true)" in
*-compactor.traces.merge-windows*) compact=(-compactor.traces.merge-windows=1m -compactor.compaction-interval=15s) ;;
esac
cg=$(cgroup canopy)
sh -c "$inside" sh "$cg" "$work/canopy" -data-dir="$data" -server.http-listen-address=127.0.0.1 -server.http-listen-port="$http" \
  -server.grpc-listen-address=127.0.0.1 -server.grpc-listen-port="$grpc" -memberlist.bind-addr=127.0.0.1 -memberlist.bind-port="$ml" \
  -distributor.otlp.grpc-listen-address="127.0.0.1:$otlp" -distributor.otlp.http-listen-address= \
  -distributor.traces.ingestion-rate-limit-mb=100000 -distributor.traces.ingestion-burst-size-mb=100000 \
  -ingester.traces.max-live-traces-per-tenant=0 -server.http-write-timeout=30m "${compact[@]}" \
  >"$OUT/canopy.log" 2>&1 &
pid=$!
wait_ready "http://127.0.0.1:$http/ready"
ingest canopy "$pid"
# The flush answers once every trace, live ones included, is in the bucket.
flush_start=$(date +%s.%N)
curl -sf --max-time 1800 -X POST "http://127.0.0.1:$http/ingester/flush" >/dev/null
flush_seconds=$(awk -v a="$flush_start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
if [ ${#compact[@]} -gt 0 ]; then
  # The minute the last block was shipped in ends, then a compaction pass
  # merges it, then queriers re-list blocks (every 10s).
  echo "tracebench: waiting for the compactor to merge the trace blocks" >&2
  sleep $((60 - $(date +%s) % 60 + 40))
else
  sleep 12 # queriers re-list blocks every 10s; ingesters keep shipped traces 15s
fi
"$work/loadgen" traces-query -name canopy -api tempo -url "http://127.0.0.1:$http" -ids "$work/canopy-ids.txt" \
  -lookups "$LOOKUPS" -pid "$pid" -json | tee "$OUT/canopy-queries.json"
# The blocks queriers read: complete (meta.json) and not marked for deletion.
bucket="$data/bucket/anonymous/traces"
blocks=()
for b in "$bucket"/*/; do
  if [ -f "$b/meta.json" ] && [ ! -f "$b/deletion-mark.json" ]; then blocks+=("$b"); fi
done
bytes=$(du -scb "${blocks[@]}" | tail -1 | cut -f1)
stored=$(for b in "${blocks[@]}"; do cat "$b/meta.json"; done | sed -n 's/^[[:space:]]*"spans": *\([0-9]*\).*/\1/p' | awk '{s += $1} END {print s + 0}')
accepted=$(field "$OUT/canopy-ingest.json" spans_accepted)
{
  echo "canopy bucket: $bytes bytes in ${#blocks[@]} blocks ($(ls "$bucket" | wc -l) with those marked for deletion) holding $stored spans ($accepted accepted):" \
    "$(awk -v b="$bytes" -v s="$accepted" 'BEGIN {printf "%.1f", b / s}') bytes per span"
  echo "canopy flush (POST /ingester/flush): $flush_seconds s"
  echo "canopy peak RSS: $(grep VmHWM /proc/$pid/status | tr -s ' \t' ' '); $(cgroup_report "$cg")"
} | tee "$OUT/canopy-disk.txt"
echo "$bytes" >"$OUT/canopy-bytes"
stop "$pid"; pid=""

for peer in $PEERS; do
  case "$peer" in
  jaeger)
    jaeger=$(bash tools/jaeger.sh)
    badger="$work/jaeger-badger"
    # Jaeger v2's cmd/jaeger/config-badger.yaml, on this run's ports,
    # without the archive store, the UI and the health check; its own
    # metrics and the query service's own traces (which it would send to
    # localhost:4317) off.
    cat >"$work/jaeger.yaml" <<EOF
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_query:
    enable_tracing: false
    storage:
      traces: badger_store
    http:
      endpoint: 127.0.0.1:$http
    grpc:
      endpoint: 127.0.0.1:$grpc
  jaeger_storage:
    backends:
      badger_store:
        badger:
          directories:
            keys: $badger/keys
            values: $badger/values
          ephemeral: false
          ttl:
            spans: 48h
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:$otlp
processors:
  batch:
exporters:
  jaeger_storage_exporter:
    trace_storage: badger_store
EOF
    cg=$(cgroup jaeger)
    sh -c "$inside" sh "$cg" "$jaeger" --config "$work/jaeger.yaml" >"$OUT/jaeger.log" 2>&1 &
    pid=$!
    wait_ready "http://127.0.0.1:$http/api/services"
    ingest jaeger "$pid"
    # Spans the receiver accepted may still wait in the batch processor
    # (batches of 8,192) or be written to badger: about 10,000 spans, a
    # second or two at Jaeger's rate.
    sleep 10
    "$work/loadgen" traces-query -name jaeger -api jaeger -url "http://127.0.0.1:$http" -ids "$work/jaeger-ids.txt" \
      -lookups "$LOOKUPS" -pid "$pid" -json | tee "$OUT/jaeger-queries.json"
    rss=$(grep VmHWM /proc/$pid/status | tr -s ' \t' ' ')
    stop "$pid"; pid=""
    bytes=$(du -sb "$badger" | cut -f1)
    accepted=$(field "$OUT/jaeger-ingest.json" spans_accepted)
    {
      echo "jaeger badger: $bytes bytes after shutdown ($accepted spans accepted):" \
        "$(awk -v b="$bytes" -v s="$accepted" 'BEGIN {printf "%.1f", b / s}') bytes per span"
      echo "jaeger peak RSS: $rss; $(cgroup_report "$cg")"
    } | tee "$OUT/jaeger-disk.txt"
    echo "$bytes" >"$OUT/jaeger-bytes"
    ;;
  *) echo "tracebench: unknown peer $peer" >&2; exit 1 ;;
  esac
done

# The figures side by side, with Canopy's ratio to each peer.
{
  row() { # label key file-suffix format
    local line="| $1" c p
    c=$(field "$OUT/canopy-$3.json" "$2")
    line+=$(printf " | $4" "$c")
    for peer in $PEERS; do
      p=$(field "$OUT/$peer-$3.json" "$2")
      line+=$(printf " | $4 | %s" "$p" "$(awk -v a="$c" -v b="$p" 'BEGIN {if (b > 0) printf "%.2f×", a / b; else print "-"}')")
    done
    echo "$line |"
  }
  head="| | canopy"
  for peer in $PEERS; do head+=" | $peer | canopy / $peer"; done
  echo "$head |"
  echo "|---|---$(for _ in $PEERS; do printf '|---|---'; done)|"
  row "accepted spans/s" accepted_spans_per_second ingest "%.0f"
  row "receiver CPU s per million spans" receiver_cpu_seconds_per_million_spans ingest "%.2f"
  row "receiver peak RSS (MiB)" receiver_peak_rss_mib ingest "%.0f"
  row "push latency p99 (ms)" latency_p99_ms ingest "%.1f"
  line="| bytes per span on disk | $(awk -v b="$(cat "$OUT/canopy-bytes")" -v s="$(field "$OUT/canopy-ingest.json" spans_accepted)" 'BEGIN {printf "%.1f", b / s}')"
  for peer in $PEERS; do
    c=$(awk -v b="$(cat "$OUT/canopy-bytes")" -v s="$(field "$OUT/canopy-ingest.json" spans_accepted)" 'BEGIN {print b / s}')
    p=$(awk -v b="$(cat "$OUT/$peer-bytes")" -v s="$(field "$OUT/$peer-ingest.json" spans_accepted)" 'BEGIN {print b / s}')
    line+=" | $(printf %.1f "$p") | $(awk -v a="$c" -v b="$p" 'BEGIN {printf "%.2f×", a / b}')"
  done
  echo "$line |"
  row "lookup by ID p50 (ms)" lookup_p50_ms queries "%.1f"
  row "lookup by ID p99 (ms)" lookup_p99_ms queries "%.1f"
  row "lookup by ID max (ms)" lookup_max_ms queries "%.1f"
  row "lookups found whole" found_whole queries "%.0f"
  row "search, best of 3 (s)" search_best_seconds queries "%.3f"
  row "search traces returned" search_traces queries "%.0f"
} | tee "$OUT/summary.md"
echo "reports in $OUT"
