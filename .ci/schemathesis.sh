#!/usr/bin/env bash
# Fuzz the running server through its own /openapi.json with schemathesis:
# fails on any 5xx, any undocumented status or content type, and any response
# that violates its schema. Then `promtool check metrics` on its /metrics.
# Starts a private redis-server and a tally, stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${TALLY_BIN:-target/debug/tally}
venv=${VENV:-.venv}
examples=${SCHEMATHESIS_EXAMPLES:-40}

if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'schemathesis>=4,<5'
fi
[ -x "$bin" ] || cargo build -q --bin tally

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
redis_port=$(free_port)
app_port=$(free_port)
cleanup() {
  [ -n "${app_pid:-}" ] && kill "$app_pid" 2>/dev/null && wait "$app_pid" 2>/dev/null
  [ -n "${redis_pid:-}" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null &
redis_pid=$!
TALLY_ADDR=127.0.0.1:$app_port REDIS_URL=redis://127.0.0.1:$redis_port RUST_LOG=warn \
  RATE_LIMIT_REQUESTS=1000000 RATE_LIMIT_READ_REQUESTS=1000000 EXTERNAL_SERVICE_FAILURE_RATE=0 "$bin" 2>"$work/tally.log" &
app_pid=$!
for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$app_port/ready" 2>/dev/null && break; sleep 0.1; done

status=0
"$venv/bin/schemathesis" run "http://127.0.0.1:$app_port/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --max-examples "$examples" --seed 20261130 --no-color --request-timeout 10 \
  --report junit --report-dir target/schemathesis || status=$?
# The server has now served every route: its exposition must satisfy promtool.
if [ "$status" -eq 0 ]; then
  echo "== promtool check metrics on a server that served every route"
  curl -fsS "http://127.0.0.1:$app_port/metrics" > "$work/metrics.txt"
  promtool check metrics < "$work/metrics.txt" || status=$?
  echo "== deploy: promtool on the Prometheus config and alert rules; their metric names exist"
  promtool check config deploy/prometheus/prometheus.yml || status=$?
  "$venv/bin/python" deploy/check_promql.py "$work/metrics.txt" \
    deploy/prometheus/alerts.yml deploy/grafana/dashboards/tally.json || status=$?
fi
if [ "$status" -ne 0 ]; then
  echo "schemathesis or promtool failed; server log:" >&2
  tail -n 50 "$work/tally.log" >&2
fi
exit "$status"
