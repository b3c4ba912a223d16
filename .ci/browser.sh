#!/usr/bin/env bash
# Browser test of the ops dashboard: a private redis-server and one tally with
# an admin token, then tests/browser/dashboard.mjs in Debian's headless Chromium.
#   bash .ci/browser.sh [TALLY_BINARY]     (default target/debug/tally)
# Installs what a fresh machine lacks (chromium from Debian, playwright-core by
# `npm ci`; never a browser download). Exits with the test's code; the servers
# and the temporary directory go whatever happens. Screenshots are left in
# target/dashboard-screenshots/.
set -euo pipefail
bin=${1:-}
[ -z "$bin" ] || bin=$(realpath -m -- "$bin") # given from the caller's directory
cd "$(dirname "$0")/.."
bin=${bin:-target/debug/tally}
[ -x "$bin" ] || { echo "browser.sh: no executable at $bin (cargo build --bin tally)" >&2; exit 2; }

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi
if [ ! -d tests/browser/node_modules ]; then
  echo "== npm ci in tests/browser"
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
pids=()
rc=1
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$rc" -ne 0 ] && [ -s "$work/tally.log" ]; then
    echo "== tally's log (last 40 lines)"
    tail -n 40 "$work/tally.log"
  fi
  rm -rf "$work"
}
trap cleanup EXIT

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
  >"$work/redis.log" 2>&1 &
pids+=($!)

# Thirty-two hex characters; the name `ops` is what the audit log must show.
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
port=$(free_port)
base=http://127.0.0.1:$port
env TALLY_ADDR="127.0.0.1:$port" REDIS_URL="redis://127.0.0.1:$redis_port" \
  ADMIN_TOKENS="ops:$token" RUST_LOG=warn TALLY_RETENTION=400d \
  "$bin" >"$work/tally.log" 2>&1 &
pids+=($!)

ready=
for _ in $(seq 200); do
  if curl -fsS -o /dev/null --max-time 1 "$base/ready" 2>/dev/null; then ready=1; break; fi
  kill -0 "${pids[1]}" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "browser.sh: $base/ready never answered 200" >&2
  exit 1
fi

echo "== node tests/browser/dashboard.mjs $base"
rc=0
node tests/browser/dashboard.mjs "$base" "$token" || rc=$?
exit "$rc"
