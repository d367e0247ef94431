#!/usr/bin/env bash
# Load harness: the same remote write load (tools/loadgen) against a
# single-process Canopy and against a real Prometheus remote-write receiver,
# one after the other on this machine, then both results side by side.
#
#   bash tools/install-peers.sh          # Prometheus (2.42, Debian package)
#   SERIES=100000 DURATION=30s bash tools/bench.sh
#
# Environment:
#   SERIES       active series                              (default 1000000)
#   DURATION     measured window after the warm-up round    (default 60s)
#   BATCH        series per request                         (default 2000)
#   CONCURRENCY  requests in flight                         (default 4)
#   RATE         samples/s to send, 0 = as fast as accepted (default 0)
#   PROTOCOL     Canopy's protocol, rw1 or rw2 (Prometheus always gets rw1;
#                2.42 takes nothing else)                   (default rw1)
#   PROFILE      seconds of Canopy CPU profile to take at the start of the
#                measured window, 0 = none                  (default 0)
#   OUT          where the JSON reports, logs and profile are kept
#                                                           (default /tmp/canopy-bench-results)
#   SKIP_PROMETHEUS=1  run Canopy only
set -euo pipefail

SERIES=${SERIES:-1000000}
DURATION=${DURATION:-60s}
BATCH=${BATCH:-2000}
CONCURRENCY=${CONCURRENCY:-4}
RATE=${RATE:-0}
PROTOCOL=${PROTOCOL:-rw1}
PROFILE=${PROFILE:-0}
OUT=${OUT:-/tmp/canopy-bench-results}
SKIP_PROMETHEUS=${SKIP_PROMETHEUS:-0}

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

loadgen_args=(-series "$SERIES" -duration "$DURATION" -batch "$BATCH" -concurrency "$CONCURRENCY" -rate "$RATE" -json)

# --- Canopy -----------------------------------------------------------------
read -r http grpc gossip < <("$work/loadgen" freeports 3)
"$work/canopy" \
  -data-dir="$work/canopy-data" \
  -server.http-listen-address=127.0.0.1 -server.http-listen-port="$http" \
  -server.grpc-listen-address=127.0.0.1 -server.grpc-listen-port="$grpc" \
  -memberlist.bind-addr=127.0.0.1 -memberlist.bind-port="$gossip" \
  -ingester.ring.instance-addr=127.0.0.1 \
  -distributor.otlp.grpc-listen-address= -distributor.otlp.http-listen-address= \
  -distributor.ingestion-rate-limit=1e12 -distributor.ingestion-burst-size=2000000000 \
  -ingester.max-global-series-per-tenant=0 \
  -log.level=warn >"$OUT/canopy.log" 2>&1 &
canopy_pid=$!
pids+=("$canopy_pid")
wait_ready "http://127.0.0.1:$http/ready" canopy "$canopy_pid"
prof=()
if [ "$PROFILE" != 0 ]; then
  prof=(-pprof-url "http://127.0.0.1:$http/debug/pprof/profile?seconds=$PROFILE" -pprof-out "$OUT/canopy.prof")
fi
echo "bench: canopy (pid $canopy_pid, :$http): $SERIES series, $PROTOCOL, $DURATION" >&2
echo "+ loadgen -name canopy -url http://127.0.0.1:$http/api/v1/push -protocol $PROTOCOL -pid $canopy_pid ${loadgen_args[*]} ${prof[*]}" >&2
"$work/loadgen" -name canopy -url "http://127.0.0.1:$http/api/v1/push" -protocol "$PROTOCOL" -pid "$canopy_pid" \
  "${loadgen_args[@]}" "${prof[@]+"${prof[@]}"}" >"$OUT/canopy.json"
stop "$canopy_pid"

# --- Prometheus ---------------------------------------------------------------
if [ "$SKIP_PROMETHEUS" != 1 ]; then
  if ! command -v prometheus >/dev/null; then
    echo "bench: prometheus not found; run 'bash tools/install-peers.sh' (or SKIP_PROMETHEUS=1)" >&2
    exit 1
  fi
  read -r pport < <("$work/loadgen" freeports 1)
  printf 'global:\n  scrape_interval: 15s\n' >"$work/prometheus.yml"
  prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prometheus-data" \
    --web.listen-address="127.0.0.1:$pport" --web.enable-remote-write-receiver \
    --log.level=warn >"$OUT/prometheus.log" 2>&1 &
  prom_pid=$!
  pids+=("$prom_pid")
  wait_ready "http://127.0.0.1:$pport/-/ready" prometheus "$prom_pid"
  echo "bench: prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}') (pid $prom_pid, :$pport): $SERIES series, rw1, $DURATION" >&2
  echo "+ loadgen -name prometheus -url http://127.0.0.1:$pport/api/v1/write -protocol rw1 -pid $prom_pid ${loadgen_args[*]}" >&2
  "$work/loadgen" -name prometheus -url "http://127.0.0.1:$pport/api/v1/write" -protocol rw1 -pid "$prom_pid" \
    "${loadgen_args[@]}" >"$OUT/prometheus.json"
  stop "$prom_pid"
fi

# --- Results ------------------------------------------------------------------
reports=("$OUT/canopy.json")
[ "$SKIP_PROMETHEUS" = 1 ] || reports+=("$OUT/prometheus.json")
echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | awk '{print $3}'); load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "load: SERIES=$SERIES DURATION=$DURATION BATCH=$BATCH CONCURRENCY=$CONCURRENCY RATE=$RATE PROTOCOL=$PROTOCOL"
for f in "${reports[@]}"; do
  echo
  "$work/loadgen" show "$f"
done
if [ "${#reports[@]}" = 2 ]; then
  echo
  "$work/loadgen" compare "${reports[@]}"
fi
echo
echo "reports: ${reports[*]}"
if [ "$PROFILE" != 0 ] && [ -s "$OUT/canopy.prof" ]; then
  echo "profile: go tool pprof -top -nodecount=25 $OUT/canopy $OUT/canopy.prof"
fi
