#!/usr/bin/env bash
# Idempotency keys and readiness, against a release build, in one run:
#   bash benches/idempotency.sh [SECONDS] [CONNECTIONS] [ROUNDS]   (8 50 5)
# 1. Time from process start to /ready answering 200: with Redis up, with Redis down
#    (nothing listens on its port), and with PostgreSQL (a fresh database: migrations).
# 2. POST /api/metrics with a fresh Idempotency-Key on every request ÷ the same without,
#    on the embedded store and on PostgreSQL: wrk runs the two scripts in alternation,
#    ROUNDS times against one server of each, and prints the per-round ratios and medians.
# Starts its own redis-server and PostgreSQL (initdb + pg_ctl) in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
conns=${2:-50}
rounds=${3:-5}
pg_bin=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install -y wrk)" >&2; exit 2; }

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
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.05; done

common=(TALLY_RETENTION=400d RUST_LOG=warn RATE_LIMIT_REQUESTS=1000000000 RATE_LIMIT_READ_REQUESTS=1000000000)

# Starts a server with "$@" on a new port (sets `port`, appends its pid).
start_tally() {
  port=$(free_port)
  env "${common[@]}" "$@" TALLY_ADDR=127.0.0.1:$port ./target/release/tally 2>>"$work/tally.log" &
  pids+=($!)
}

echo "== 1. process start to /ready 200 (median of 5)"
ready_ms() { # env...
  local times=()
  for i in 1 2 3 4 5; do
    local started; started=$(date +%s%N)
    start_tally "$@"
    local pid=${pids[-1]}
    until curl -fsS -o /dev/null "http://127.0.0.1:$port/ready" 2>/dev/null; do sleep 0.002; done
    times+=($(( ($(date +%s%N) - started) / 1000000 )))
    kill "$pid"; wait "$pid" 2>/dev/null || true
    unset 'pids[-1]'
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%s ms (runs: ", a[3]}'
  printf '%s ' "${times[@]}"; echo ")"
}
echo "redis up:              $(ready_ms REDIS_URL=redis://127.0.0.1:$redis_port)"
echo "redis down:            $(ready_ms REDIS_URL=redis://127.0.0.1:$(free_port))"
db=0
pg_ready() {
  db=$((db + 1))
  as_pg psql -h 127.0.0.1 -p "$pg_port" -U postgres -qc "CREATE DATABASE ready_$db" >/dev/null
  ready_ms REDIS_URL=redis://127.0.0.1:$redis_port DATABASE_URL=postgres://postgres@127.0.0.1:$pg_port/ready_$db
}
echo "postgres (migrations): $(pg_ready)"

echo "== 2. ingest with an Idempotency-Key on every request ÷ without"
declare -A port_of
start_tally REDIS_URL=redis://127.0.0.1:$redis_port; port_of[embedded]=$port
start_tally REDIS_URL=redis://127.0.0.1:$redis_port DATABASE_URL=postgres://postgres@127.0.0.1:$pg_port/postgres
port_of[postgres]=$port
for v in embedded postgres; do wait_ready "http://127.0.0.1:${port_of[$v]}"; done
rps() { wrk -t2 -c"$conns" -d"${secs}s" -s "benches/$2.lua" "http://127.0.0.1:${port_of[$1]}" | awk '/Requests\/sec/ {print $2}'; }
for v in embedded postgres; do
  ratios=()
  for r in $(seq "$rounds"); do
    if [ $((r % 2)) -eq 1 ]; then plain=$(rps "$v" ingest); keyed=$(rps "$v" ingest_keyed)
    else keyed=$(rps "$v" ingest_keyed); plain=$(rps "$v" ingest); fi
    ratio=$(awk -v k="$keyed" -v p="$plain" 'BEGIN { printf "%.2f", k/p }')
    echo "$v round $r: without $plain req/s, with key $keyed req/s, ratio $ratio"
    ratios+=("$ratio")
  done
  printf '%s keyed/plain per round: %s  median %s\n' "$v" "${ratios[*]}" \
    "$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
done
