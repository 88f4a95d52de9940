# Sourced by the bench scripts: one instance of the manager on a fresh
# temporary directory, as the postgres user when run as root.
# start_bench_manager BINARY: sets dir, http_port, pg_port and manager (the
# manager's pid: setpriv execs it), stops and removes it all at exit, and
# returns once /readyz answers (or after 60 s).
start_bench_manager() {
  local binary=$1
  dir=$(mktemp -d /tmp/im-bench-XXXXXX)
  chmod 755 "$dir"
  install -m 755 "$binary" "$dir/instance-manager"
  install -m 755 build/instance-probe "$dir/"
  local run=()
  if [[ $(id -u) -eq 0 ]]; then chown postgres: "$dir"; run=(setpriv --reuid=postgres --regid=postgres --init-groups --reset-env --); fi
  http_port=$(( 20000 + RANDOM % 20000 ))
  pg_port=$(( 40000 + RANDOM % 20000 ))
  "${run[@]}" "$dir/instance-manager" run --name bench --pgdata "$dir/data" --pg-port "$pg_port" \
    --socket-dir "$dir" --http-listen "127.0.0.1:$http_port" --log-level warn >"$dir/manager.log" 2>&1 &
  manager=$!
  trap 'kill -TERM $manager 2>/dev/null || true; wait $manager 2>/dev/null || true; rm -rf "$dir"' EXIT
  for _ in $(seq 1 120); do
    "$dir/instance-probe" --url "http://127.0.0.1:$http_port" --timeout 1s readyz 2>/dev/null && break
    sleep 0.5
  done
}
