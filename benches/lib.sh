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
