#!/usr/bin/env bash
# The limiter against a Redis Cluster of three primaries ÷ against one
# redis-server, same machine, same run: ingest req/s with many distinct clients
# (benches/ingest_clients.lua rotates X-Forwarded-For behind a trusted proxy) and no
# quota leases (RATE_LIMIT_LEASE_MS=0: every decision asks Redis), and the Redis round
# trips (script calls, summed over the nodes) per decision.
#   bash benches/cluster.sh [SECONDS] [CONNECTIONS] [ROUNDS]
# Needs wrk, redis-server and redis-cli. Rounds alternate which server goes first.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
conns=${2:-50}
rounds=${3:-5}

cargo build --release -q --bin tally
source benches/lib.sh
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() { stop_all; rm -rf "$work"; }
trap cleanup EXIT
start_redis

# Three primaries (REPLICAS=1 adds a replica to each; on a 2-core machine their
# replication competes with everything else). A node's bus port is its port + 10000.
replicas=${REPLICAS:-0}
nodes=()
while [ ${#nodes[@]} -lt $((3 * (1 + replicas))) ]; do
  p=$(free_port)
  [ "$p" -lt 55000 ] && nodes+=("$p")
done
for p in "${nodes[@]}"; do
  redis-server --port "$p" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
    --cluster-enabled yes --cluster-config-file "nodes-$p.conf" --cluster-node-timeout 2000 >/dev/null &
  pids+=($!)
done
for p in "${nodes[@]}"; do
  until [ "$(redis-cli -p "$p" ping 2>/dev/null)" = PONG ]; do sleep 0.1; done
done
redis-cli --cluster create $(printf '127.0.0.1:%s ' "${nodes[@]}") --cluster-replicas "$replicas" --cluster-yes >/dev/null
for p in "${nodes[@]}"; do
  until redis-cli -p "$p" cluster info | grep -q cluster_state:ok; do sleep 0.2; done
done

declare -A port url
url[single]="redis://127.0.0.1:$redis_port"
url[cluster]="redis-cluster://127.0.0.1:${nodes[0]}?node=127.0.0.1:${nodes[1]}&node=127.0.0.1:${nodes[2]}"
for v in single cluster; do
  port[$v]=$(free_port)
  env RUST_LOG=warn REDIS_URL="${url[$v]}" RATE_LIMIT_LEASE_MS=0 TRUSTED_PROXIES=127.0.0.1/32 \
    RATE_LIMIT_REQUESTS=1000000000 RATE_LIMIT_READ_REQUESTS=1000000000 \
    TALLY_ADDR="127.0.0.1:${port[$v]}" ./target/release/tally 2>"$work/$v.log" &
  pids+=($!)
done
for v in single cluster; do wait_ready "http://127.0.0.1:${port[$v]}"; done

# Script calls so far on the server(s) behind VARIANT.
calls() {
  local list=("$redis_port")
  [ "$1" = cluster ] && list=("${nodes[@]}")
  local n=0 p c
  for p in "${list[@]}"; do
    c=$(redis-cli -p "$p" info commandstats | awk -F'[=,]' '/^cmdstat_evalsha:/ {print $2}')
    n=$((n + ${c:-0}))
  done
  echo "$n"
}

declare -A rps trips
ratios=()
for r in $(seq "$rounds"); do
  order=(single cluster)
  [ $((r % 2)) -eq 0 ] && order=(cluster single)
  for v in "${order[@]}"; do
    before=$(calls "$v")
    out=$(wrk -t2 -c"$conns" -d"${secs}s" -s benches/ingest_clients.lua "http://127.0.0.1:${port[$v]}")
    after=$(calls "$v")
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    rps[$v]=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    trips[$v]=$(awk -v c=$((after - before)) -v n="$n" 'BEGIN { printf "%.3f", c / n }')
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    printf 'round %d %-8s %10s req/s   %s script calls per decision   non-2xx %s\n' \
      "$r" "$v" "${rps[$v]}" "${trips[$v]}" "${non2xx:-0}"
  done
  ratios+=("$(awk -v a="${rps[cluster]}" -v b="${rps[single]}" 'BEGIN { printf "%.2f", a / b }')")
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR]=$1 } END {
  printf "ingest cluster/single per round: "; for (i=1;i<=NR;i++) printf "%s ", a[i];
  printf "  median %s\n", a[int((NR+1)/2)] }'
