#!/usr/bin/env bash
# What open dashboards cost the API: benches/load.sh against one release
# server, without and with STREAMS live dashboard streams open.
#   bash benches/dashboard.sh [SECONDS] [CONNECTIONS] [ROUNDS] [STREAMS]   (8 50 3 50)
# A private redis-server, rate limits at 10^9 (the limiter decides every request
# but never refuses). Each round runs load.sh once with no stream open and once
# with STREAMS `curl -sN` readers of /dashboard/stream, spread over the five
# pages; the order flips every round so the growing store and a drifting
# machine weigh on both alike. A stream counts as live when it received SSE
# `update` events during the load; a round with a dead stream measures nothing,
# so the script then exits 1 after printing everything. Prints every table,
# the per-round ratio of POST /api/metrics req/s (with streams / without) and
# its median; the target is TARGET (0.90) or more. TALLY_BIN=path skips the
# release build and runs that binary instead.
set -euo pipefail
bin=${TALLY_BIN:-}
[ -z "$bin" ] || bin=$(realpath -m -- "$bin") # given from the caller's directory
cd "$(dirname "$0")/.."
secs=${1:-8}
conns=${2:-50}
rounds=${3:-3}
streams=${4:-50}
target=${TARGET:-0.90}
load=${LOAD_SH:-benches/load.sh}
pages=(overview breakers cache limits metrics)

if [ -z "$bin" ]; then
  cargo build --release -q --bin tally
  bin=./target/release/tally
fi
source benches/lib.sh
readers=()
# shellcheck disable=SC2317  # called by the EXIT trap and between rounds
stop_readers() {
  for p in "${readers[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${readers[@]}"; do wait "$p" 2>/dev/null || true; done
  readers=()
}
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  stop_readers
  stop_all
  rm -rf "$work"
}
trap cleanup EXIT
start_redis

port=$(free_port)
base=http://127.0.0.1:$port
# load.sh posts a fixed 2026-01-01 timestamp first: retention must cover it.
env TALLY_RETENTION=400d RUST_LOG=warn REDIS_URL="redis://127.0.0.1:$redis_port" \
  RATE_LIMIT_REQUESTS=1000000000 RATE_LIMIT_READ_REQUESTS=1000000000 \
  TALLY_ADDR="127.0.0.1:$port" "$bin" 2>"$work/tally.log" &
pids+=($!)
wait_ready "$base" || { echo "dashboard.sh: $base/ready never answered 200" >&2; cat "$work/tally.log" >&2; exit 1; }

# A stream that is not there would make every round measure nothing: say so early.
probe=$(curl -sN -o /dev/null -w '%{http_code} %{content_type}' --max-time 2 "$base/dashboard/stream?page=overview" || true)
case "$probe" in
  "200 text/event-stream"*) ;;
  *) echo "WARNING: /dashboard/stream?page=overview answered '$probe', not a 200 text/event-stream" ;;
esac

# The number of SSE `update` events each reader of round $1 has received so far.
update_events() {
  local i n
  for i in $(seq 0 $((streams - 1))); do
    n=$(grep -Ec '^event: ?update' "$work/stream.$1.$i" 2>/dev/null || true)
    echo "${n:-0}"
  done
}

# Opens $streams readers for round $1; each ends by itself after the round's time.
open_readers() {
  local i page
  for i in $(seq 0 $((streams - 1))); do
    page=${pages[i % ${#pages[@]}]}
    curl -sfN --max-time $((secs * 3 + 60)) "$base/dashboard/stream?page=$page" \
      >"$work/stream.$1.$i" 2>/dev/null &
    readers+=($!)
  done
  # Until every reader has its first event (5 s at most), so the load meets them all.
  for _ in $(seq 50); do
    [ "$(update_events "$1" | awk '$1 > 0 { n++ } END { print n + 0 }')" -eq "$streams" ] && break
    sleep 0.1
  done
}

ratios=()
dead_rounds=0
for r in $(seq "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then order=(without with); else order=(with without); fi
  declare -A ingest=()
  for v in "${order[@]}"; do
    echo "== round $r: $v streams"
    if [ "$v" = with ]; then
      open_readers "$r"
      mapfile -t before < <(update_events "$r")
    fi
    out=$(bash "$load" "$base" "$secs" "$conns")
    echo "$out"
    ingest[$v]=$(awk '$1=="ingest" {print $2}' <<<"$out")
    if [ "$v" = with ]; then
      mapfile -t after < <(update_events "$r")
      stop_readers
      live=0 empty=0 events=0
      for i in $(seq 0 $((streams - 1))); do
        [ -s "$work/stream.$r.$i" ] || empty=$((empty + 1))
        [ "${after[i]:-0}" -gt "${before[i]:-0}" ] && live=$((live + 1))
        events=$((events + ${after[i]:-0} - ${before[i]:-0}))
      done
      echo "streams: $live/$streams received data during the load ($events update events; $empty received nothing at all)"
      [ "$live" -eq "$streams" ] || dead_rounds=$((dead_rounds + 1))
    fi
  done
  ratios+=("$(awk -v a="${ingest[with]}" -v b="${ingest[without]}" 'BEGIN { printf "%.2f", a/b }')")
done

echo "ingest with/without streams per round: ${ratios[*]}"
printf '%s\n' "${ratios[@]}" | sort -n | awk -v t="$target" '{ a[NR]=$1 } END {
  m=a[int((NR+1)/2)]; printf "median %s (target >= %s: %s)\n", m, t, (m+0 >= t+0) ? "met" : "NOT met" }'
if [ "$dead_rounds" -gt 0 ]; then
  echo "dashboard.sh: in $dead_rounds of $rounds rounds some streams received nothing during the load: the ratios measure nothing" >&2
  exit 1
fi
