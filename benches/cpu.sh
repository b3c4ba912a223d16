#!/usr/bin/env bash
# Server CPU time per request, telemetry on vs off: steadier than req/s on a
# shared 2-core machine, and unlike instructions.sh it counts the kernel's
# work and the cost of cache misses too.
#   bash benches/cpu.sh [SECONDS] [ROUNDS]
# Starts a private redis-server, examples/otlp_sink and two servers (`on`
# exports every span to the sink and records metrics; `off` has neither), then
# per round drives POST /api/metrics on each in turn with wrk (as load.sh's
# ingest does) and divides the server's user and system CPU time, read from
# /proc/PID/stat, by the requests wrk completed.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-6}
rounds=${2:-5}

cargo build --release -q --bin tally --example otlp_sink
source benches/lib.sh
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() { stop_all; rm -rf "$work"; }
trap cleanup EXIT
start_redis
sink_port=$(free_port)
./target/release/examples/otlp_sink "$sink_port" >"$work/sink.log" &
pids+=($!)
declare -A port pid
for v in on off; do
  port[$v]=$(free_port)
  extra=(METRICS_ENABLED=false)
  [ "$v" = on ] && extra=(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sink_port")
  env TALLY_RETENTION=400d RUST_LOG=warn REDIS_URL="redis://127.0.0.1:$redis_port" \
    RATE_LIMIT_REQUESTS=1000000000 RATE_LIMIT_READ_REQUESTS=1000000000 "${extra[@]}" \
    TALLY_ADDR="127.0.0.1:${port[$v]}" ./target/release/tally 2>"$work/$v.log" &
  pid[$v]=$!
  pids+=($!)
done
for v in on off; do wait_ready "http://127.0.0.1:${port[$v]}"; done

hz=$(getconf CLK_TCK)
cpu() { awk '{ print $14, $15 }' "/proc/$1/stat"; } # user and system ticks
declare -A per
for r in $(seq "$rounds"); do
  for v in on off; do
    read -r u0 s0 < <(cpu "${pid[$v]}")
    n=$(wrk -t2 -c50 -d"${secs}s" -s benches/ingest.lua "http://127.0.0.1:${port[$v]}" |
      awk '/requests in/ { print $1 }')
    read -r u1 s1 < <(cpu "${pid[$v]}")
    line=$(awk -v n="$n" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$hz" 'BEGIN {
      printf "%6.2f %6.2f %6.2f", (u + s) / hz / n * 1e6, u / hz / n * 1e6, s / hz / n * 1e6 }')
    read -r total user sys <<<"$line"
    printf 'round %d %-3s %8d requests   %6s us/request (user %s, system %s)\n' "$r" "$v" "$n" "$total" "$user" "$sys"
    per[$v]+="$total "
  done
done
awk -v on="${per[on]}" -v off="${per[off]}" 'BEGIN {
  n = split(on, a, " "); split(off, b, " ")
  for (i = 1; i <= n; i++) { r[i] = a[i] / b[i] }
  asort(r)
  printf "CPU per request on/off per round: "; for (i = 1; i <= n; i++) printf "%.2f ", r[i]
  printf "  median %.2f\n", r[int((n + 1) / 2)] }'
