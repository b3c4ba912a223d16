#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: repeatable where
# req/s on a shared 2-core machine is not (the same binary and load give the
# same count, whatever else the machine does). Counts every thread of the
# server, the OTLP exporter's included, from after a warm-up to after the
# exporter's next flush, divided by the requests wrk completed in between.
#   bash benches/instructions.sh [SECONDS]
# Cases: POST /api/metrics with telemetry on (traces to a local OTLP receiver,
# default sampling, metrics; the SDK's batch processor and opentelemetry-otlp),
# metrics only, and off; then warm GET
# /api/metrics/summary with the rate limiter on and off, and GET /health.
# Needs valgrind, wrk, redis-server and the .venv of .ci/run (for the receiver).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
command -v valgrind >/dev/null || { echo "needs valgrind" >&2; exit 2; }
cargo build --release -q --bin tally
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q 'opentelemetry-proto>=1.20'; }
source benches/lib.sh
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() { stop_all; rm -rf "$work"; }
trap cleanup EXIT
start_redis
sink_port=$(free_port)
.venv/bin/python tests/otlp/check_traces.py --sink "$sink_port" &
pids+=($!)

# case NAME PATH(ingest|url path) ENV...
case_() {
  local name=$1 path=$2; shift 2
  local port; port=$(free_port)
  local out="$work/$name"
  mkdir -p "$out"
  env TALLY_RETENTION=400d RUST_LOG=warn REDIS_URL="redis://127.0.0.1:$redis_port" \
    RATE_LIMIT_REQUESTS=1000000000 RATE_LIMIT_READ_REQUESTS=1000000000 "$@" \
    TALLY_ADDR="127.0.0.1:$port" \
    valgrind --tool=callgrind --callgrind-out-file="$out/cg.%p" ./target/release/tally 2>"$out/log" &
  local app=$!
  wait_ready "http://127.0.0.1:$port" 60
  curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' \
    -d '{"timestamp":"2026-01-01T00:00:00Z","value":1,"type":"bench_0"}' "http://127.0.0.1:$port/api/metrics"
  local args=("http://127.0.0.1:$port$path")
  [ "$path" = ingest ] && args=(-s benches/ingest.lua "http://127.0.0.1:$port")
  wrk -t1 -c8 -d3s "${args[@]}" >/dev/null
  callgrind_control -z "$app" >/dev/null 2>&1
  local n; n=$(wrk -t1 -c8 -d"${secs}s" "${args[@]}" | awk '/requests in/ {print $1}')
  sleep 6 # the batch exporter sends every 5 s: count its work for these requests
  callgrind_control -d "$app" >/dev/null 2>&1
  sleep 1
  kill "$app"; wait "$app" 2>/dev/null || true
  local ir; ir=$(cat "$out"/cg.*.1 | awk '/^totals:/ {print $2}')
  printf '%-34s %8d requests   %7.0f instructions/request\n' "$name" "$n" "$(awk -v i="$ir" -v n="$n" 'BEGIN {print i/n}')"
  eval "ir_$(tr -c 'a-z0-9\n' _ <<<"$name" | tr -d '\n')=$(awk -v i="$ir" -v n="$n" 'BEGIN {print i/n}')"
}

otlp=(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sink_port")
case_ "ingest telemetry on" ingest "${otlp[@]}"
case_ "ingest metrics only" ingest
case_ "ingest telemetry off" ingest METRICS_ENABLED=false
case_ "summary limiter on" "/api/metrics/summary?type=bench_0"
case_ "summary limiter off" "/api/metrics/summary?type=bench_0" RATE_LIMIT_ENABLED=false
case_ "health" "/health"
awk -v on="$ir_ingest_telemetry_on" -v off="$ir_ingest_telemetry_off" \
    -v s1="$ir_summary_limiter_on" -v s0="$ir_summary_limiter_off" -v h="$ir_health" 'BEGIN {
  printf "ingest telemetry on/off %.2fx   summary/health limiter on %.2fx, off %.2fx\n", on/off, s1/h, s0/h }'
