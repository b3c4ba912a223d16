#!/usr/bin/env bash
# PostgreSQL backend benchmarks against release builds, in one run:
#   bash benches/database.sh [SECONDS] [CONNECTIONS] [ROUNDS]   (8 50 3)
# 1. benches/load.sh against two servers side by side, `embedded` and
#    `postgres` (DATABASE_URL; every 201 after its group commit), in
#    alternation: POST /api/metrics req/s postgres / embedded per round.
# 2. POST /api/metrics/batch with 1,000 points per request (wrk): points/s.
# 3. Summaries the cache has not seen (Redis flushed and the local tier
#    expired before each; every answer checked to be a miss), for period=all
#    and period=6h, over 1,000,000 and then 10,000,000 stored points of one
#    type spread over the last 5.8 days, once the rollups have folded in
#    (rollup_delta drained); and a cache hit. Then, the same way, a time series of
#    7 days at step=1h (169 steps, GET /api/metrics/series) the cache has not seen.
# BASELINE=<git revision> (or the path of a tally binary built before, such as
# target/baseline/tally from an earlier run) builds that revision too and runs it as a third
# server, `before` (its own database on the same PostgreSQL), through 1 and 2
# (ratio before / embedded) and 3 at 1,000,000 points: then and now in one run.
# SECTIONS="1 2" runs only those sections (default: all three).
# Starts its own redis-server and PostgreSQL (initdb + pg_ctl, fsync on,
# synchronous commit: real durability) in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
conns=${2:-50}
rounds=${3:-3}
load=${LOAD_SH:-benches/load.sh}
pg_bin=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}

servers=(embedded postgres)
if [ -x "${BASELINE:-}" ] && [ -f "${BASELINE:-}" ]; then
  # A binary built before (by an earlier run: target/baseline/tally).
  [ "$BASELINE" -ef target/baseline/tally ] || { mkdir -p target/baseline && cp "$BASELINE" target/baseline/tally; }
  servers+=(before)
elif [ -n "${BASELINE:-}" ]; then
  tree=$(mktemp -d)
  git worktree add -q --detach "$tree" "$BASELINE"
  # The same target directory: the dependencies are built once.
  (cd "$tree" && cargo build --release -q --bin tally --target-dir "$OLDPWD/target")
  git worktree remove --force "$tree"
  mkdir -p target/baseline && cp target/release/tally target/baseline/tally
  servers+=(before)
fi
cargo build --release -q --bin tally
bin_of() { if [ "$1" = before ]; then echo target/baseline/tally; else echo target/release/tally; fi; }
source benches/lib.sh
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  stop_all
  as_pg "$pg_bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] && chown postgres "$work"

start_redis
pg_port=$(free_port)
as_pg "$pg_bin/initdb" -D "$work/pg" -A trust -U postgres -E UTF8 >/dev/null
as_pg "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
  -o "-p $pg_port -k $work -c listen_addresses=127.0.0.1 -c max_connections=100" start >/dev/null

common=(TALLY_RETENTION=400d RUST_LOG=warn REDIS_URL=redis://127.0.0.1:$redis_port
        RATE_LIMIT_REQUESTS=1000000000 RATE_LIMIT_READ_REQUESTS=1000000000)
psql_at() { "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d "$1" -Atc "$2"; }
psql_at postgres "CREATE DATABASE before" >/dev/null
declare -A port db=([postgres]=postgres [before]=before)
for v in "${servers[@]}"; do
  port[$v]=$(free_port)
  extra=()
  [ -n "${db[$v]:-}" ] && extra=(DATABASE_URL=postgres://postgres@127.0.0.1:$pg_port/${db[$v]})
  env "${common[@]}" "${extra[@]}" TALLY_ADDR=127.0.0.1:${port[$v]} "./$(bin_of "$v")" 2>"$work/$v.log" &
  pids+=($!)
done
for v in "${servers[@]}"; do
  for _ in $(seq 300); do
    curl -fsS "http://127.0.0.1:${port[$v]}/health" 2>/dev/null | grep -qv '"database_connected":false' && break
    sleep 0.1
  done
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
sections=${SECTIONS:-1 2 3}
section() { [[ " $sections " == *" $1 "* ]]; }
if section 1; then
echo "== 1. single POST: durable (postgres) vs embedded"
for v in "${servers[@]:1}"; do
  alternate_rounds "" embedded "$v" "$v" embedded
  printf 'ingest %s/embedded per round: %s   median %s (target >= 0.50)\n' "$v" "${ratios[*]}" "$(median "${ratios[@]}")"
done
if [ -n "${port[before]:-}" ]; then
  # Side by side (AT_ONCE): both builds share one PostgreSQL, whose checkpoints and
  # autovacuum would otherwise land on whichever round runs after the other's writes.
  AT_ONCE=1 alternate_rounds "" postgres before postgres before
  printf 'ingest postgres/before per round (at once): %s   median %s\n' "${ratios[*]}" "$(median "${ratios[@]}")"
fi

fi

if section 2; then
echo "== 2. POST /api/metrics/batch, 1,000 points per request"
ts=$(date -u +%Y-%m-%dT%H:%M:%SZ)
python3 - "$ts" >"$work/batch.json" <<'PY'
import json, sys
print(json.dumps([{"timestamp": sys.argv[1], "value": i * 0.5, "type": "batch_%d" % (i % 5)} for i in range(1000)]))
PY
cat >"$work/batch.lua" <<LUA
local f = io.open("$work/batch.json"); local body = f:read("*a"); f:close()
wrk.method = "POST"; wrk.body = body; wrk.headers["Content-Type"] = "application/json"
LUA
for v in "${servers[@]}"; do
  rps=$(wrk -t2 -c8 -d"${secs}s" -s "$work/batch.lua" "http://127.0.0.1:${port[$v]}/api/metrics/batch" \
        | awk '/Requests\/sec/ {print $2}')
  awk -v v="$v" -v r="$rps" 'BEGIN { printf "%-9s batch: %8.1f req/s = %9.0f points/s (target >= 100000 for postgres)\n", v, r, r*1000 }'
done

fi

section 3 || exit 0
echo "== 3. summaries the cache has not seen, over points of one type"
python3 - "$work" <<'PY2'
import json, sys, datetime
now = datetime.datetime.now(datetime.timezone.utc)
for b in range(1000):
    with open(f"{sys.argv[1]}/big_{b}.json", "w") as f:
        json.dump([{"timestamp": (now - datetime.timedelta(seconds=(b * 1000 + i) % 500000)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "value": (b * 1000 + i) % 9973 * 0.1, "type": "big"} for i in range(1000)], f)
PY2
# Posts the 1,000 files (1,000,000 points) to server $1.
store_million() {
  local start url="http://127.0.0.1:${port[$1]}/api/metrics/batch"
  start=$(date +%s.%N)
  ls "$work"/big_*.json | xargs -P 4 -I{} curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' \
    --data-binary @{} "$url"
  awk -v s="$start" -v e="$(date +%s.%N)" -v v="$1" \
    'BEGIN { printf "%s: stored 1,000,000 points in %.1f s (%.0f points/s, 4 clients)\n", v, e-s, 1e6/(e-s) }'
}
# Waits until server $1's partials are all folded into its rollups, then for
# the pass's next vacuum of rollup_delta (every 5 s): the steady state.
folded() {
  local waited=0
  [ "$1" = before ] && return 0
  while [ "$(psql_at "${db[$1]}" 'SELECT count(*) FROM rollup_delta')" -gt 0 ]; do sleep 0.5; waited=$((waited + 1)); done
  echo "$1: rollups folded in $((waited / 2)) s after the last write"
  sleep 6
}
# One read of type big from server $1 (`$2` the query after the path: the summary's
# period, or `series?…`), Redis flushed and the local tier (1 s) expired first; fails
# unless the answer is a cache miss.
miss() {
  local what=$2
  [[ "$what" == series* ]] || what="summary?period=$what"
  redis-cli -p "$redis_port" FLUSHALL >/dev/null
  sleep 1.2
  curl -fsS -o /dev/null -D "$work/headers" -w '%{time_total}\n' \
    "http://127.0.0.1:${port[$1]}/api/metrics/$what&type=big"
  grep -qi '^cache-status:.*fwd=miss' "$work/headers" || { echo "not a cache miss" >&2; exit 1; }
}
ms() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%.2f ms", a[int((NR+1)/2)]*1000}'; }
report() {
  local v=$1 rows=$2 period times
  for period in all 6h; do
    times=(); for _ in 1 2 3 4 5; do times+=("$(miss "$v" "$period")"); done
    echo "$v, $rows points: summary period=$period, cache miss: median $(ms "${times[@]}")   all: ${times[*]}"
  done
  [ "$v" = before ] && return 0 # a build from before the series
  times=(); for _ in 1 2 3 4 5; do times+=("$(miss "$v" "series?period=7d&step=1h")"); done
  echo "$v, $rows points: series period=7d step=1h, cache miss: median $(ms "${times[@]}")   all: ${times[*]}"
}
for v in "${servers[@]:1}"; do
  store_million "$v"
  folded "$v"
  report "$v" 1,000,000
done
for _ in $(seq 9); do store_million postgres >/dev/null; done
folded postgres
report postgres 10,000,000
url="http://127.0.0.1:${port[postgres]}/api/metrics/summary?type=big&period=all"
curl -fsS -o /dev/null "$url"
hits=(); for _ in $(seq 20); do hits+=("$(curl -fsS -o /dev/null -w '%{time_total}\n' "$url")"); done
echo "postgres, 10,000,000 points: summary from the cache (20 hits): median $(ms "${hits[@]}")"
curl -fsS "$url"; echo
