# Sourced by the bench scripts: one instance of the manager on a fresh
# temporary directory, as the postgres user when run as root.
# start_bench_manager BINARY [ARGS...]: sets dir, http_port, pg_port and
# manager (the manager's pid: setpriv execs it), stops and removes it all at
# exit, and returns once /readyz answers (or after 60 s). ARGS go to `run`;
# BENCH_ENV (KEY=VALUE...) into its environment.
BENCH_ENV=()
start_bench_manager() {
  local binary=$1; shift
  dir=$(mktemp -d /tmp/im-bench-XXXXXX)
  chmod 755 "$dir"
  install -m 755 "$binary" "$dir/instance-manager"
  install -m 755 build/instance-probe "$dir/"
  local run=()
  if [[ $(id -u) -eq 0 ]]; then chown postgres: "$dir"; run=(setpriv --reuid=postgres --regid=postgres --init-groups --reset-env --); fi
  http_port=$(( 20000 + RANDOM % 20000 ))
  pg_port=$(( 40000 + RANDOM % 20000 ))
  "${run[@]}" env "${BENCH_ENV[@]}" "$dir/instance-manager" run --name bench --pgdata "$dir/data" \
    --pg-port "$pg_port" --socket-dir "$dir" --http-listen "127.0.0.1:$http_port" --log-level warn \
    "$@" >"$dir/manager.log" 2>&1 &
  manager=$!
  trap 'kill -TERM $manager 2>/dev/null || true; wait $manager 2>/dev/null || true; rm -rf "$dir"' EXIT
  for _ in $(seq 1 120); do
    "$dir/instance-probe" --url "http://127.0.0.1:$http_port" --timeout 1s readyz 2>/dev/null && break
    sleep 0.5
  done
}

# start_bench_cluster PREFIX: a three-member cluster of scripts/cluster-lib.sh
# on a fresh temporary directory (members PREFIX-1..3, random ports), and
# `writer` set to bench-writer; everything stops and goes at exit. The
# caller then runs cl_setup, cl_start_members, cl_start_controller.
start_bench_cluster() {
  CL_DIR=$(mktemp -d "/tmp/im-bench-$1-XXXXXX")
  chmod 755 "$CL_DIR"
  CL_PREFIX=$1
  local base=$(( 30000 + RANDOM % 20000 ))
  CL_PG=$base; CL_HTTP=$((base + 10)); CL_CTL=$((base + 20))
  source scripts/cluster-lib.sh
  writer=build/bench-writer
  trap bench_cluster_cleanup EXIT
}
bench_cluster_cleanup() {
  # A stopped (SIGSTOP) manager would never see its SIGTERM.
  kill -CONT "${cl_pid[@]}" 2>/dev/null || true
  # shellcheck disable=SC2046
  kill $(jobs -p) 2>/dev/null || true
  cl_stop_all
  rm -rf "$CL_DIR"
}

# bench_stats NAME VALUES...: median and max of VALUES (ms), on one line.
bench_stats() {
  local name=$1; shift
  local sorted n=$# median max
  sorted=$(printf '%s\n' "$@" | sort -n)
  median=$(sed -n "$(( (n + 1) / 2 ))p" <<<"$sorted"); max=$(tail -1 <<<"$sorted")
  printf '%-54s median %6s ms   max %6s ms   (%d runs)\n' "$name" "$median" "$max" "$n"
}

# bench_gap OUT FROM_MS TO_MS: the longest gap (ms) between two commits in
# bench-writer's output OUT ("id unix_ms port" lines) that ended in [FROM, TO].
bench_gap() {
  awk -v t0="$2" -v t1="$3" 'prev && $2 >= t0 && $2 <= t1 { g = $2 - prev; if (g > max) max = g } { prev = $2 } END { print max + 0 }' "$1"
}

# bench_lost OUT CONNINFO: how many of the commits bench-writer saw
# acknowledged (OUT) the cluster's bench_log lacks.
bench_lost() {
  awk '{ print $1 }' "$1" > "$1.ids"
  psql -At "$2" -c "CREATE TEMP TABLE seen (id bigint)" -c "\\copy seen FROM '$1.ids'" \
    -c "SELECT count(*) FROM seen WHERE id NOT IN (SELECT id FROM bench_log)" | tail -1
}
