#!/usr/bin/env bash
# HTTP benchmarks with ../shared/bench/load.sh against release builds, each
# variant on its own port with a private redis-server, run back to back.
#   bash benches/http.sh [SECONDS] [CONNECTIONS] [VARIANT...]
# Variants: base (defaults, limits high), nolimit (RATE_LIMIT_ENABLED=false).
# Prints load.sh's table per variant and the ingest ratio between variants.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-50}
shift $(( $# > 2 ? 2 : $# )) || true
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(base nolimit)
load=${LOAD_SH:-../shared/bench/load.sh}

cargo build --release -q --bin tally
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null &
pids+=($!)

# load.sh posts a fixed 2026-01-01 timestamp first: retention must cover it.
common=(TALLY_RETENTION=400d RUST_LOG=warn REDIS_URL=redis://127.0.0.1:$redis_port
        RATE_LIMIT_REQUESTS=1000000000 RATE_LIMIT_READ_REQUESTS=1000000000)
declare -A ingest
for v in "${variants[@]}"; do
  port=$(free_port)
  extra=()
  case "$v" in
    base) ;;
    nolimit) extra=(RATE_LIMIT_ENABLED=false) ;;
    *) echo "unknown variant $v" >&2; exit 2 ;;
  esac
  env "${common[@]}" "${extra[@]}" TALLY_ADDR=127.0.0.1:$port ./target/release/tally 2>"$work/$v.log" &
  pid=$!
  for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/ready" 2>/dev/null && break; sleep 0.1; done
  echo "== $v"
  out=$(bash "$load" "http://127.0.0.1:$port" "$secs" "$conns")
  echo "$out"
  ingest[$v]=$(awk '$1=="ingest" {print $2}' <<<"$out")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  redis-cli -p "$redis_port" flushall >/dev/null   # our private server only
done
if [ -n "${ingest[base]:-}" ] && [ -n "${ingest[nolimit]:-}" ]; then
  awk -v a="${ingest[base]}" -v b="${ingest[nolimit]}" \
    'BEGIN { printf "ratio ingest limiter-on/limiter-off %.2f\n", a/b }'
fi
