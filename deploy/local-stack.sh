#!/usr/bin/env bash
# The compose topology without Docker, from local binaries: Redis, tally,
# `tally simulator` as the upstream, and Debian's Prometheus scraping tally on
# loopback with the stack's alert rules. Drives traffic, then asserts that
# Prometheus answers the dashboard's main queries with data. Stops everything
# it started, whatever happens.
#   bash deploy/local-stack.sh [TALLY_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/tally}
[ -x "$bin" ] || cargo build -q --bin tally
for tool in redis-server prometheus curl python3; do
  command -v "$tool" >/dev/null || { echo "local-stack: needs $tool" >&2; exit 2; }
done

# Four distinct free ports: every socket stays bound until all are chosen.
free_ports() {
  python3 -c 'import socket
ss = [socket.socket() for _ in range(4)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))'
}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

read -r redis_port upstream_port app_port prom_port < <(free_ports)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null &
pids+=($!)
TALLY_ADDR=127.0.0.1:$upstream_port EXTERNAL_SERVICE_FAILURE_RATE=0.1 RUST_LOG=warn \
  "$bin" simulator 2>"$work/upstream.log" &
pids+=($!)
TALLY_ADDR=127.0.0.1:$app_port REDIS_URL=redis://127.0.0.1:$redis_port \
  UPSTREAM_URL=http://127.0.0.1:$upstream_port/simulator RUST_LOG=warn \
  "$bin" 2>"$work/app.log" &
app_pid=$!
pids+=($app_pid)

# The stack's Prometheus config, pointed at loopback and scraping every second.
cp deploy/prometheus/alerts.yml "$work/alerts.yml"
python3 - "$app_port" >"$work/prometheus.yml" <<'PY'
import re, sys
conf = open("deploy/prometheus/prometheus.yml").read().replace("scrape_interval: 5s", "scrape_interval: 1s")
static = f'    static_configs:\n      - targets: ["127.0.0.1:{sys.argv[1]}"]\n'
conf, n = re.subn(r"    dns_sd_configs:\n(      .*\n|        .*\n)+", static, conf)
assert n == 1, "no dns_sd_configs block in prometheus.yml"
print(conf, end="")
PY
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address=127.0.0.1:$prom_port >"$work/prometheus.log" 2>&1 &
prom_pid=$!
pids+=($prom_pid)

# Waits up to 60 s for URL to answer 2xx while PID lives; on failure, shows LOG.
wait_for() {
  local url=$1 pid=$2 log=$3
  for _ in $(seq 300); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { echo "local-stack: the process behind $url exited" >&2; break; }
    sleep 0.2
  done
  echo "local-stack: $url never came up; the end of $log:" >&2
  tail -n 30 "$log" >&2
  return 1
}
wait_for "http://127.0.0.1:$app_port/ready" "$app_pid" "$work/app.log"
wait_for "http://127.0.0.1:$prom_port/-/ready" "$prom_pid" "$work/prometheus.log"

echo "== driving traffic for 8 s"
end=$((SECONDS + 8))
while [ $SECONDS -lt $end ]; do
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  curl -s -o /dev/null -X POST -H 'content-type: application/json' \
    -d "{\"timestamp\":\"$now\",\"value\":$RANDOM,\"type\":\"stack\"}" "http://127.0.0.1:$app_port/api/metrics"
  curl -s -o /dev/null "http://127.0.0.1:$app_port/api/metrics/summary?type=stack"
  curl -s -o /dev/null "http://127.0.0.1:$app_port/api/external"
done
sleep 2

query() {
  curl -fsS --get "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" \
    | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(len(r))'
}
failed=0; passed=0
for q in \
  'sum by (route) (rate(http_server_request_duration_seconds_count[30s]))' \
  'histogram_quantile(0.99, sum by (le, route) (rate(http_server_request_duration_seconds_bucket[30s])))' \
  'max by (breaker, state) (tally_breaker_state) == 1' \
  'tally_cache_hit_ratio' \
  'sum by (backend) (rate(tally_rate_limit_decisions_total[30s]))' \
  'histogram_quantile(0.99, sum by (le) (rate(tally_upstream_request_duration_seconds_bucket[30s])))'; do
  n=$(query "$q")
  if [ "$n" -gt 0 ]; then passed=$((passed + 1)); echo "ok   $n series: $q"; else failed=$((failed + 1)); echo "FAIL no data: $q"; fi
done
rules=$(curl -fsS "http://127.0.0.1:$prom_port/api/v1/rules" | python3 -c 'import json,sys; print(sum(len(g["rules"]) for g in json.load(sys.stdin)["data"]["groups"]))')
expected=$(grep -c -- '- alert:' deploy/prometheus/alerts.yml)
if [ "$rules" -eq "$expected" ]; then passed=$((passed + 1)); echo "ok   $rules alert rules loaded"; else failed=$((failed + 1)); echo "FAIL $rules of $expected alert rules loaded"; fi
echo "local stack: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
