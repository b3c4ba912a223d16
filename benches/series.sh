#!/usr/bin/env bash
# Warm time series against warm summaries: one release server, wrk on loopback as
# benches/load.sh drives it (-t2, CONNECTIONS connections, SECONDS a run), in
# alternating rounds so drift on a noisy machine weighs on both alike.
#   bash benches/series.sh [SECONDS] [CONNECTIONS] [ROUNDS]   (8 50 5)
# A private redis-server, rate limits at 10^9 (the limiter decides every request but
# never refuses). The store holds 100,000 points of one type over the last day. Each
# round runs the summary (`period=hourly`) and each series:
#   hourly    `period=hourly`, the chosen step (1m: 60 points, about 14 KB)
#   daily15m  `period=daily&step=15m` (96 points)
#   daily1m   `period=daily&step=1m` (1,440 points, SERIES_MAX_POINTS: about 330 KB)
# Prints req/s and p99 of each, then per round and as a median the ratio of each
# series to the summary of the same round; the goal (hourly) is TARGET (0.80) or more.
# TALLY_BIN=path skips the release build and runs that binary instead.
set -euo pipefail
bin=${TALLY_BIN:-}
[ -z "$bin" ] || bin=$(realpath -m -- "$bin")
cd "$(dirname "$0")/.."
secs=${1:-8}
conns=${2:-50}
rounds=${3:-5}
target=${TARGET:-0.80}
command -v wrk >/dev/null || { echo "series.sh: needs wrk (apt-get install -y wrk)" >&2; exit 2; }
if [ -z "$bin" ]; then
  cargo build --release -q --bin tally
  bin=./target/release/tally
fi
source benches/lib.sh
trap 'stop_all; rm -rf "$work"' EXIT
start_redis
port=$(free_port)
base=http://127.0.0.1:$port
env RUST_LOG=warn REDIS_URL="redis://127.0.0.1:$redis_port" \
  RATE_LIMIT_REQUESTS=1000000000 RATE_LIMIT_READ_REQUESTS=1000000000 \
  TALLY_ADDR="127.0.0.1:$port" "$bin" 2>"$work/tally.log" &
pids+=($!)
wait_ready "$base" || { echo "series.sh: $base/ready never answered 200" >&2; cat "$work/tally.log" >&2; exit 1; }

# 100,000 points over the last day, 10 batches of 10,000.
python3 - "$base" <<'PY'
import json, sys, time, urllib.request
from datetime import datetime, timezone
base, now = sys.argv[1], time.time()
for b in range(10):
    batch = [{"timestamp": datetime.fromtimestamp(now - 60 - (b * 10_000 + i) * 0.8639,
                                                  timezone.utc).isoformat(),
              "value": float((b * 10_000 + i) % 997), "type": "bench_series"}
             for i in range(10_000)]
    req = urllib.request.Request(base + "/api/metrics/batch", json.dumps(batch).encode(),
                                 {"content-type": "application/json"})
    assert urllib.request.urlopen(req).status == 201
PY

declare -A url=(
  [summary]="$base/api/metrics/summary?type=bench_series&period=hourly"
  [hourly]="$base/api/metrics/series?type=bench_series&period=hourly"
  [daily15m]="$base/api/metrics/series?type=bench_series&period=daily&step=15m"
  [daily1m]="$base/api/metrics/series?type=bench_series&period=daily&step=1m"
)
names=(summary hourly daily15m daily1m)
for n in "${names[@]}"; do
  curl -fsS -o "$work/body.$n" "${url[$n]}"
  echo "$n: $(wc -c <"$work/body.$n") bytes"
done

declare -A ratios=()
for r in $(seq "$rounds"); do
  order=("${names[@]}")
  [ $((r % 2)) -eq 0 ] && order=(daily1m daily15m hourly summary)
  declare -A rps=()
  echo "== round $r"
  for n in "${order[@]}"; do
    out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency "${url[$n]}")
    rps[$n]=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    printf '%-9s %10s req/s   p99 %-9s non-2xx %s\n' "$n" "${rps[$n]}" \
      "$(awk '$1=="99%" {print $2}' <<<"$out")" "${non2xx:-0}"
  done
  for n in hourly daily15m daily1m; do
    ratios[$n]+="$(awk -v a="${rps[$n]}" -v b="${rps[summary]}" 'BEGIN { printf "%.2f", a/b }') "
  done
done
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
status=0
for n in hourly daily15m daily1m; do
  m=$(median "${ratios[$n]}")
  echo "series $n ÷ summary: ${ratios[$n]}median $m"
done
m=$(median "${ratios[hourly]}")
awk -v m="$m" -v t="$target" 'BEGIN { exit !(m >= t) }' || { echo "series.sh: hourly ÷ summary $m is under $target" >&2; status=1; }
exit "$status"
