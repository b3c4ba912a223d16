#!/usr/bin/env bash
# HTTP benchmarks with ../shared/bench/load.sh against release builds.
#   bash benches/http.sh [SECONDS] [CONNECTIONS] [ROUNDS]
#   MODE=telemetry bash benches/http.sh ...
#   MODE=exporter bash benches/http.sh ...
#   MODE=lease bash benches/http.sh ...
# Starts a private redis-server and two servers side by side, `on` and `off`,
# both with rate limits at 10^9 (the Redis limiter decides every request but
# never refuses). MODE=limiter (default): `off` has RATE_LIMIT_ENABLED=false.
# MODE=telemetry: `on` exports traces to a local OTLP receiver (default
# sampling) and records metrics; `off` has neither (METRICS_ENABLED=false).
# MODE=exporter: both export traces; `on` with the built-in exporter, `off`
# with the SDK's batch processor and opentelemetry-otlp.
# The receiver is examples/otlp_sink (reads each body, answers 200, decodes
# nothing); SINK=python uses tests/otlp/check_traces.py --sink instead.
# MODE=lease: both limit; `off` asks Redis for every decision
# (RATE_LIMIT_LEASE_MS=0), `on` has quota leases (the default).
# MODE=baseline: `on` is this build, `off` the binary at BASELINE_BIN (an
# earlier commit built apart, e.g. in a git worktree), both with defaults.
# Runs load.sh against them in alternation, ROUNDS times (which goes first
# swaps each round), so drift on a noisy machine hits both alike, and prints
# every table plus the median ingest ratio. AT_ONCE=1 runs the two load.sh
# side by side in each round instead (benches/lib.sh, alternate_rounds).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-50}
rounds=${3:-3}
mode=${MODE:-limiter}
load=${LOAD_SH:-../shared/bench/load.sh}

cargo build --release -q --bin tally
source benches/lib.sh
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() { stop_all; rm -rf "$work"; }
trap cleanup EXIT
start_redis

# load.sh posts a fixed 2026-01-01 timestamp first: retention must cover it.
common=(TALLY_RETENTION=400d RUST_LOG=warn,tally::startup=info REDIS_URL=redis://127.0.0.1:$redis_port
        RATE_LIMIT_REQUESTS=1000000000 RATE_LIMIT_READ_REQUESTS=1000000000)
declare -A port
sink_port=$(free_port)
if [ "$mode" = telemetry ] || [ "$mode" = exporter ]; then
  if [ "${SINK:-native}" = python ]; then
    [ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q 'opentelemetry-proto>=1.20'; }
    .venv/bin/python tests/otlp/check_traces.py --sink "$sink_port" &
  else
    cargo build --release -q --example otlp_sink
    ./target/release/examples/otlp_sink "$sink_port" >"$work/sink.log" &
  fi
  pids+=($!)
fi
for v in on off; do
  port[$v]=$(free_port)
  extra=()
  case "$mode:$v" in
    limiter:off) extra=(RATE_LIMIT_ENABLED=false) ;;
    lease:off) extra=(RATE_LIMIT_LEASE_MS=0) ;;
    telemetry:on|exporter:on) extra=(OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$sink_port) ;;
    telemetry:off) extra=(METRICS_ENABLED=false) ;;
    exporter:off) extra=(OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$sink_port TRACES_EXPORTER=opentelemetry-otlp) ;;
  esac
  bin=./target/release/tally
  [ "$mode:$v" = baseline:off ] && bin=${BASELINE_BIN:?MODE=baseline needs BASELINE_BIN}
  env "${common[@]}" "${extra[@]}" TALLY_ADDR=127.0.0.1:${port[$v]} "$bin" 2>"$work/$v.log" &
  pids+=($!)
done
for v in on off; do wait_ready "http://127.0.0.1:${port[$v]}"; done

alternate_rounds "$mode" on off on off
for p in "${pids[@]:1}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
for v in on off; do
  echo "cache, $mode $v: $(grep -o 'cache_hit_ratio=[0-9.]*.*computations=[0-9]*' "$work/$v.log" | tail -1)"
done
if [ "$mode" = telemetry ] || [ "$mode" = exporter ]; then
  [ -s "$work/sink.log" ] && echo "receiver: $(cat "$work/sink.log")"
  # The built-in exporter logs when a full queue drops spans (the SDK's
  # processor, `exporter off`, does not say).
  echo "span queue full (built-in exporter), $mode on: $(grep -c 'span queue is full' "$work/on.log" || true) times"
fi
printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR]=$1 } END {
  printf "ingest on/off per round: "; for (i=1;i<=NR;i++) printf "%s ", a[i];
  printf "  median %s\n", a[int((NR+1)/2)] }'
