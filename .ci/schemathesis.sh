#!/usr/bin/env bash
# Fuzz the running server through its own /openapi.json with schemathesis:
# fails on any 5xx, any undocumented status or content type, any response that
# violates its schema, any valid request refused and any invalid one accepted. Then `promtool check metrics` on its /metrics.
# Starts a private redis-server and a tally, stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${TALLY_BIN:-target/debug/tally}
venv=$(realpath -m "${VENV:-.venv}")
examples=${SCHEMATHESIS_EXAMPLES:-150}
seed=${SCHEMATHESIS_SEED:-20261130}

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
token=schemathesis-admin-token-0123456789
TALLY_ADDR=127.0.0.1:$app_port REDIS_URL=redis://127.0.0.1:$redis_port RUST_LOG=warn \
  RATE_LIMIT_REQUESTS=1000000 RATE_LIMIT_READ_REQUESTS=1000000 ADMIN_TOKENS="ci:$token" EXTERNAL_SERVICE_FAILURE_RATE=0 "$bin" 2>"$work/tally.log" &
app_pid=$!
for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$app_port/ready" 2>/dev/null && break; sleep 0.1; done

status=0
# Every check runs (positive and negative data acceptance included: the spec must state
# every rule the server enforces). The checks and their one excuse are in
# schemathesis/schemathesis.toml, the rules no schema can state in schemathesis/hooks.py;
# naming --checks here would override the file.
report_dir=$PWD/target/schemathesis
(cd .ci/schemathesis && PYTHONPATH=. SCHEMATHESIS_HOOKS=hooks "$venv/bin/schemathesis" \
  run "http://127.0.0.1:$app_port/openapi.json" \
  -H "Authorization: Bearer $token" --max-examples "$examples" --seed "$seed" --no-color --request-timeout 10 \
  --report junit --report-dir "$report_dir") || status=$?
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
