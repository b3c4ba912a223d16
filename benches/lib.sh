# Shared by the HTTP benchmarks (sourced from the repository root): free
# loopback ports, a scratch directory, the processes to stop, and a private
# redis-server. Each script sets its own EXIT trap, calling `stop_all` and
# removing "$work" (plus whatever else it started).

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

work=$(mktemp -d)
pids=()

# shellcheck disable=SC2317  # called from the scripts' EXIT traps
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}

# Starts a redis-server that keeps nothing on disk; sets redis_port.
start_redis() {
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null &
  pids+=($!)
}

# Waits for URL's /ready to answer 200 (up to SECONDS, default 30); fails otherwise.
wait_ready() {
  for _ in $(seq $((${2:-30} * 10))); do
    curl -fsS -o /dev/null "$1/ready" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# Runs load.sh ("$load", "$secs", "$conns") against two servers in alternation,
# "$rounds" times, so drift on a noisy machine hits both alike (odd rounds
# FIRST then SECOND, even rounds the other way round, so neither always runs
# first); prints each table and leaves the per-round ingest ratios NUM ÷ DEN
# in `ratios`.
# AT_ONCE=1: each round runs the two load.sh side by side instead, started
# together, so their health, ingest and summary phases overlap and whatever
# else the machine does in that moment hits both servers alike (they share
# the cores, so absolute req/s are about half; read the ratios).
#   alternate_rounds LABEL FIRST SECOND NUM DEN   (servers at 127.0.0.1:${port[NAME]})
alternate_rounds() {
  local label=$1 first=$2 second=$3 num=$4 den=$5 r v how both
  ratios=()
  for r in $(seq "$rounds"); do
    declare -A ingest=()
    local order=("$first" "$second")
    [ $((r % 2)) -eq 0 ] && order=("$second" "$first")
    if [ "${AT_ONCE:-0}" = 1 ]; then
      how=" (at once)" both=()
      for v in "${order[@]}"; do
        bash "$load" "http://127.0.0.1:${port[$v]}" "$secs" "$conns" >"$work/round.$v" &
        both+=($!)
      done
      for v in "${both[@]}"; do wait "$v"; done # each: a failed load.sh fails the run
    else
      how=""
      for v in "${order[@]}"; do
        bash "$load" "http://127.0.0.1:${port[$v]}" "$secs" "$conns" >"$work/round.$v"
      done
    fi
    for v in "${order[@]}"; do
      echo "== round $r$how: ${label:+$label }$v"
      cat "$work/round.$v"
      ingest[$v]=$(awk '$1=="ingest" {print $2}' "$work/round.$v")
    done
    ratios+=("$(awk -v a="${ingest[$num]}" -v b="${ingest[$den]}" 'BEGIN { printf "%.2f", a/b }')")
  done
}
