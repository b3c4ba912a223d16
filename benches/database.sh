#!/usr/bin/env bash
# PostgreSQL backend benchmarks against release builds, in one run:
#   bash benches/database.sh [SECONDS] [CONNECTIONS] [ROUNDS]   (8 50 3)
# 1. benches/load.sh against two servers side by side, `embedded` and
#    `postgres` (DATABASE_URL; every 201 after its group commit), in
#    alternation: POST /api/metrics req/s postgres / embedded per round.
# 2. POST /api/metrics/batch with 1,000 points per request (wrk): points/s.
# 3. A summary over 1,000,000 stored points of one type: latency of misses
#    (a new period each, so the SQL runs) and of cache hits.
# Starts its own redis-server and PostgreSQL (initdb + pg_ctl, fsync on,
# synchronous commit: real durability) in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
conns=${2:-50}
rounds=${3:-3}
load=${LOAD_SH:-benches/load.sh}
pg_bin=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}

cargo build --release -q --bin tally
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
declare -A port
for v in embedded postgres; do
  port[$v]=$(free_port)
  extra=()
  [ "$v" = postgres ] && extra=(DATABASE_URL=postgres://postgres@127.0.0.1:$pg_port/postgres)
  env "${common[@]}" "${extra[@]}" TALLY_ADDR=127.0.0.1:${port[$v]} ./target/release/tally 2>"$work/$v.log" &
  pids+=($!)
done
for v in embedded postgres; do
  for _ in $(seq 300); do
    curl -fsS "http://127.0.0.1:${port[$v]}/health" 2>/dev/null | grep -qv '"database_connected":false' && break
    sleep 0.1
  done
done

echo "== 1. single POST: durable (postgres) vs embedded"
alternate_rounds "" embedded postgres postgres embedded
printf 'ingest postgres/embedded per round: %s   median %s (target >= 0.50)\n' "${ratios[*]}" \
  "$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"

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
for v in embedded postgres; do
  rps=$(wrk -t2 -c8 -d"${secs}s" -s "$work/batch.lua" "http://127.0.0.1:${port[$v]}/api/metrics/batch" \
        | awk '/Requests\/sec/ {print $2}')
  awk -v v="$v" -v r="$rps" 'BEGIN { printf "%-9s batch: %8.1f req/s = %9.0f points/s (target >= 100000 for postgres)\n", v, r, r*1000 }'
done

echo "== 3. summary over 1,000,000 points of one type (postgres)"
pgurl=http://127.0.0.1:${port[postgres]}
python3 - "$work" <<'PY'
import json, sys, datetime
now = datetime.datetime.now(datetime.timezone.utc)
for b in range(1000):
    with open(f"{sys.argv[1]}/big_{b}.json", "w") as f:
        json.dump([{"timestamp": (now - datetime.timedelta(seconds=(b * 1000 + i) % 500000)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "value": (b * 1000 + i) % 9973 * 0.1, "type": "big"} for i in range(1000)], f)
PY
start=$(date +%s.%N)
ls "$work"/big_*.json | xargs -P 4 -I{} curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' \
  --data-binary @{} "$pgurl/api/metrics/batch"
awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "stored 1,000,000 points in %.1f s (%.0f points/s, 4 clients)\n", e-s, 1e6/(e-s) }'
t() { curl -fsS -o /dev/null -w '%{time_total}\n' "$pgurl/api/metrics/summary?type=big&period=$1"; }
misses=(); for d in 400 399 398 397 396; do misses+=("$(t "${d}d")"); done
t 395d >/dev/null
hits=(); for _ in $(seq 20); do hits+=("$(t 395d)"); done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%.2f ms", a[int((NR+1)/2)]*1000}'; }
echo "summary without the cache (5 misses, SQL): median $(med "${misses[@]}")   all: ${misses[*]}"
echo "summary with the cache (20 hits):          median $(med "${hits[@]}")"
curl -fsS "$pgurl/api/metrics/summary?type=big&period=395d"; echo
