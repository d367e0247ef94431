#!/usr/bin/env bash
# Write load harness: the same remote write load (tools/loadgen: pre-encoded
# payloads, eight labels a series, one sample a series a round) against a
# single-process Canopy and against each peer, one after the other on this
# machine, at each series count; then the results side by side with the
# ratios Canopy / peer.
#
#   bash tools/bench.sh                               # 200k and 1M series, Prometheus 3
#   SERIES=200000 DURATION=30s PEERS="prometheus3 victoriametrics" bash tools/bench.sh
#
# Environment:
#   SERIES       active series counts, space-separated  (default "200000 1000000")
#   DURATION     measured window after the warm-up round    (default 60s)
#   BATCH        series per request                         (default 2000)
#   CONCURRENCY  requests in flight                         (default 4)
#   RATE         samples/s to send, 0 = as fast as accepted (default 0)
#   PROTOCOL     rw1 or rw2; peers that take only 1.0 get rw1 (default rw1)
#   PEERS        any of prometheus3 (built from the pinned module by
#                tools/prometheus3.sh), victoriametrics (built from its pinned
#                module by tools/victoriametrics.sh), prometheus2 (Debian's
#                2.42, tools/install-peers.sh); empty: Canopy alone
#                                                           (default prometheus3)
#   PROFILE      seconds of Canopy CPU and allocation profile taken at the
#                start of the measured window, 0 = none     (default 0)
#   NODES        Canopy processes: 1 (the single process, the default), or
#                3 (three -target=all processes joined by memberlist with
#                replication factor 3, the load sent to the first; CPU and
#                RSS are the sum of the three)
#   CANOPY_FLAGS extra flags for Canopy
#   OUT          where the JSON reports, logs and profiles are kept
#                                                           (default /tmp/canopy-bench-results)
set -euo pipefail

SERIES=${SERIES:-200000 1000000}
DURATION=${DURATION:-60s}
BATCH=${BATCH:-2000}
CONCURRENCY=${CONCURRENCY:-4}
RATE=${RATE:-0}
PROTOCOL=${PROTOCOL:-rw1}
PEERS=${PEERS-prometheus3}
PROFILE=${PROFILE:-0}
CANOPY_FLAGS=${CANOPY_FLAGS:-}
NODES=${NODES:-1}
case "$NODES" in 1 | 3) ;; *) echo "bench: NODES is 1 or 3" >&2; exit 1 ;; esac
OUT=${OUT:-/tmp/canopy-bench-results}

cd "$(dirname "$0")/.."
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$OUT"
work=$(mktemp -d /tmp/canopy-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    # A TSDB head of a million series takes a few seconds to close.
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  pids=()
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop PID: stop one process and wait for it, so the next system under test
# has the machine to itself.
stop() {
  kill "$1" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local rest=()
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || rest+=("$p"); done
  pids=("${rest[@]+"${rest[@]}"}")
}

wait_ready() { # url name pid
  for _ in $(seq 1 600); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    kill -0 "$3" 2>/dev/null || { echo "bench: $2 exited during start-up; log:" >&2; tail -20 "$OUT/$2.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "bench: $2 not ready after 60s" >&2
  exit 1
}

echo "bench: building canopy and loadgen" >&2
go build -o "$work/canopy" ./cmd/canopy
go build -o "$work/loadgen" ./tools/loadgen
cp "$work/canopy" "$OUT/canopy" # for go tool pprof
declare -A bin
for peer in $PEERS; do
  case "$peer" in
    prometheus3) bin[$peer]=$(bash tools/prometheus3.sh) ;;
    victoriametrics) bin[$peer]=$(bash tools/victoriametrics.sh) ;;
    prometheus2)
      command -v prometheus >/dev/null || { echo "bench: Debian's prometheus not found; run 'bash tools/install-peers.sh'" >&2; exit 1; }
      bin[$peer]=$(command -v prometheus) ;;
    *) echo "bench: unknown peer $peer (prometheus3, victoriametrics, prometheus2)" >&2; exit 1 ;;
  esac
done

# load NAME URL PROTOCOL PID SERIES [loadgen flags]: the measured load.
load() {
  local name=$1 url=$2 proto=$3 pid=$4 series=$5
  shift 5
  local args=(-name "$name" -url "$url" -protocol "$proto" -pid "$pid" -series "$series" -duration "$DURATION"
    -batch "$BATCH" -concurrency "$CONCURRENCY" -rate "$RATE" -json "$@")
  echo "+ loadgen ${args[*]}" >&2
  "$work/loadgen" "${args[@]}" >"$OUT/$name-$series.json"
}

for series in $SERIES; do
  reports=()
  # --- Canopy -----------------------------------------------------------------
  read -r -a ports < <("$work/loadgen" freeports $((3 * NODES)))
  join=""
  for n in $(seq 0 $((NODES - 1))); do join="$join${join:+,}127.0.0.1:${ports[3 * n + 2]}"; done
  cpids=()
  for n in $(seq 0 $((NODES - 1))); do
    http=${ports[3 * n]} grpc=${ports[3 * n + 1]} gossip=${ports[3 * n + 2]}
    cluster=()
    if [ "$NODES" -gt 1 ]; then
      cluster=(-instance-id="canopy-$n" -memberlist.join="$join" -ingester.replication-factor=3)
    fi
    # shellcheck disable=SC2086 # CANOPY_FLAGS is a list of flags
    "$work/canopy" \
      -data-dir="$work/canopy-data-$series-$n" -bucket.filesystem.dir="$work/canopy-bucket-$series" \
      -server.http-listen-address=127.0.0.1 -server.http-listen-port="$http" \
      -server.grpc-listen-address=127.0.0.1 -server.grpc-listen-port="$grpc" \
      -memberlist.bind-addr=127.0.0.1 -memberlist.bind-port="$gossip" \
      -distributor.otlp.grpc-listen-address= -distributor.otlp.http-listen-address= \
      -distributor.ingestion-rate-limit=1e12 -distributor.ingestion-burst-size=2000000000 \
      -ingester.max-global-series-per-tenant=0 "${cluster[@]+"${cluster[@]}"}" \
      -log.level=warn $CANOPY_FLAGS >"$OUT/canopy-$n.log" 2>&1 &
    cpids+=("$!")
    pids+=("$!")
  done
  for n in $(seq 0 $((NODES - 1))); do
    wait_ready "http://127.0.0.1:${ports[3 * n]}/ready" "canopy-$n" "${cpids[$n]}"
  done
  http=${ports[0]}
  if [ "$NODES" -gt 1 ]; then
    for _ in $(seq 1 300); do
      [ "$(curl -fsS "http://127.0.0.1:$http/ring/ingester" 2>/dev/null | grep -o ACTIVE | wc -l)" -ge "$NODES" ] && break
      sleep 0.2
    done
  fi
  prof=()
  if [ "$PROFILE" != 0 ]; then
    # The first process's profile, and in a cluster also the second's (an
    # ingester that only receives).
    urls="http://127.0.0.1:$http/debug/pprof/profile?seconds=$PROFILE" outs="$OUT/canopy-$series.prof"
    if [ "$NODES" -gt 1 ]; then
      urls="$urls,http://127.0.0.1:${ports[3]}/debug/pprof/profile?seconds=$PROFILE" outs="$outs,$OUT/canopy-$series-node2.prof"
    fi
    prof=(-pprof-url "$urls" -pprof-out "$outs")
  fi
  echo "bench: canopy ×$NODES (pids ${cpids[*]}, :$http): $series series, $PROTOCOL, $DURATION" >&2
  load canopy "http://127.0.0.1:$http/api/v1/push" "$PROTOCOL" "$(IFS=,; echo "${cpids[*]}")" "$series" "${prof[@]+"${prof[@]}"}"
  if [ "$PROFILE" != 0 ]; then
    curl -fsS -o "$OUT/canopy-$series.allocs" "http://127.0.0.1:$http/debug/pprof/allocs" || true
  fi
  reports+=("$OUT/canopy-$series.json")
  for p in "${cpids[@]}"; do stop "$p"; done
  rm -rf "$work/canopy-data-$series"-* "$work/canopy-bucket-$series"

  # --- Peers ------------------------------------------------------------------
  for peer in $PEERS; do
    read -r port < <("$work/loadgen" freeports 1)
    proto=$PROTOCOL
    case "$peer" in
      prometheus2 | prometheus3)
        printf 'global:\n  scrape_interval: 15s\n' >"$work/prometheus.yml"
        extra=()
        if [ "$peer" = prometheus2 ]; then
          proto=rw1 # 2.42 takes nothing else
        else
          extra=(--web.remote-write-receiver.accepted-protobuf-messages=prometheus.WriteRequest
            --web.remote-write-receiver.accepted-protobuf-messages=io.prometheus.write.v2.Request)
        fi
        "${bin[$peer]}" --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/$peer-data" \
          --web.listen-address="127.0.0.1:$port" --web.enable-remote-write-receiver "${extra[@]+"${extra[@]}"}" \
          --log.level=warn >"$OUT/$peer.log" 2>&1 &
        ready="http://127.0.0.1:$port/-/ready"
        url="http://127.0.0.1:$port/api/v1/write"
        ;;
      victoriametrics)
        proto=rw1 # it takes 1.0 only
        "${bin[$peer]}" -storageDataPath="$work/$peer-data" -httpListenAddr="127.0.0.1:$port" \
          -retentionPeriod=1y -loggerLevel=WARN >"$OUT/$peer.log" 2>&1 &
        ready="http://127.0.0.1:$port/health"
        url="http://127.0.0.1:$port/api/v1/write"
        ;;
    esac
    pid=$!
    pids+=("$pid")
    wait_ready "$ready" "$peer" "$pid"
    echo "bench: $peer (pid $pid, :$port): $series series, $proto, $DURATION" >&2
    load "$peer" "$url" "$proto" "$pid" "$series"
    reports+=("$OUT/$peer-$series.json")
    stop "$pid"
    rm -rf "${work:?}/$peer-data"
  done

  # --- Results ----------------------------------------------------------------
  echo
  echo "== $series series =="
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | awk '{print $3}'); load average before: $load_before, now: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "load: SERIES=$series DURATION=$DURATION BATCH=$BATCH CONCURRENCY=$CONCURRENCY RATE=$RATE PROTOCOL=$PROTOCOL NODES=$NODES PEERS=\"$PEERS\""
  if [ "${#reports[@]}" -ge 2 ]; then
    "$work/loadgen" compare "${reports[@]}"
  else
    "$work/loadgen" show "${reports[@]}"
  fi
  echo "reports: ${reports[*]}"
  if [ "$PROFILE" != 0 ] && [ -s "$OUT/canopy-$series.prof" ]; then
    echo "profile: go tool pprof -top -nodecount=25 $OUT/canopy $OUT/canopy-$series.prof"
    echo "allocations: go tool pprof -sample_index=alloc_space -top $OUT/canopy $OUT/canopy-$series.allocs"
  fi
done
