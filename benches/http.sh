#!/usr/bin/env bash
# HTTP benchmarks with benches/load.sh against release builds.
#   bash benches/http.sh [SECONDS] [CONNECTIONS] [ROUNDS]
#   MODE=telemetry bash benches/http.sh ...
#   MODE=sampled bash benches/http.sh ...
#   MODE=lease bash benches/http.sh ...
# Starts a private redis-server and two servers side by side, `on` and `off`,
# both with rate limits at 10^9 (the Redis limiter decides every request but
# never refuses). MODE=limiter (default): `off` has RATE_LIMIT_ENABLED=false.
# MODE=telemetry: `on` exports traces to a local OTLP receiver (default
# sampling) and records metrics; `off` has neither (METRICS_ENABLED=false).
# MODE=sampled: as telemetry, but `on` samples one trace in ten
# (OTEL_TRACES_SAMPLER=parentbased_traceidratio, OTEL_TRACES_SAMPLER_ARG=0.1).
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
load=${LOAD_SH:-benches/load.sh}

cargo build --release -q --bin tally
source benches/lib.sh
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() { stop_all; rm -rf "$work"; }
trap cleanup EXIT
start_redis

common=(TALLY_RETENTION=400d RUST_LOG=warn,tally::startup=info REDIS_URL=redis://127.0.0.1:$redis_port
        RATE_LIMIT_REQUESTS=1000000000 RATE_LIMIT_READ_REQUESTS=1000000000)
declare -A port
sink_port=$(free_port)
if [ "$mode" = telemetry ] || [ "$mode" = sampled ]; then
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
    telemetry:on) extra=(OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$sink_port) ;;
    sampled:on) extra=(OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$sink_port
                       OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.1) ;;
    telemetry:off|sampled:off) extra=(METRICS_ENABLED=false) ;;
  esac
  bin=./target/release/tally
  [ "$mode:$v" = baseline:off ] && bin=${BASELINE_BIN:?MODE=baseline needs BASELINE_BIN}
  env "${common[@]}" "${extra[@]}" TALLY_ADDR=127.0.0.1:${port[$v]} "$bin" 2>"$work/$v.log" &
  pids+=($!)
done
for v in on off; do wait_ready "http://127.0.0.1:${port[$v]}"; done

alternate_rounds "$mode" on off on off
if [ "$mode" = telemetry ] || [ "$mode" = sampled ]; then
  sleep 6 # the batch processor sends every 5 s
  echo "spans, $mode on: $(curl -fsS "http://127.0.0.1:${port[on]}/metrics" | grep '^tally_trace_spans_total' | tr '\n' ' ')"
fi
for p in "${pids[@]:1}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
for v in on off; do
  echo "cache, $mode $v: $(grep -o 'cache_hit_ratio=[0-9.]*.*computations=[0-9]*' "$work/$v.log" | tail -1)"
done
if [ "$mode" = telemetry ] || [ "$mode" = sampled ]; then
  [ -s "$work/sink.log" ] && echo "receiver: $(cat "$work/sink.log")"
fi
printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR]=$1 } END {
  printf "ingest on/off per round: "; for (i=1;i<=NR;i++) printf "%s ", a[i];
  printf "  median %s\n", a[int((NR+1)/2)] }'
