#!/usr/bin/env bash
# What synchronous durability costs, side by side in one run on one
# three-member cluster on loopback: pgbench -c 8 (TPC-B-like, scale 10) for
# SECONDS (default 20) under the controller's --durability async, "any 1" and
# "first 1", printing TPS and commit latency p50/p99 (pgbench's per-
# transaction log); then the failover time in "any 1" (bench/failover.sh,
# RUNS failovers and switchovers, default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh >/dev/null
scripts/build.sh >/dev/null

seconds=${SECONDS_PER_MODE:-20}
source bench/bench-lib.sh
start_bench_cluster durability

cl_setup
cl_start_members --log-level warn
export PGPASSWORD
PGPASSWORD=$(cat "$CL_DIR/secrets/app.password")
hosts="127.0.0.1:$(cl_pg_port 0),127.0.0.1:$(cl_pg_port 1),127.0.0.1:$(cl_pg_port 2)"
rw="postgresql://app@$hosts/app?target_session_attrs=read-write&connect_timeout=2"

# The primary's synchronous_standby_names, as the controller reports it.
sync_names() {
  "$cl_im" status --controller "$cl_ctl" --json 2>/dev/null |
    sed -n 's/^ *"sync": "\(.*\)",*$/\1/p' | sed 's/\\"/"/g' | head -1
}

results=()
for mode in async "any 1" "first 1"; do
  [[ -n ${cl_pid[controller]:-} ]] && { kill -TERM "${cl_pid[controller]}"; wait "${cl_pid[controller]}" 2>/dev/null || true; }
  cl_start_controller --durability "$mode" --log-level warn
  cl_wait_converged
  want=$([[ $mode == async ]] && echo "" || echo "${mode^^}")
  for _ in $(seq 1 120); do
    got=$(sync_names)
    if [[ -z $want && -z $got ]] || [[ -n $want && $got == "$want ("* ]]; then break; fi
    sleep 0.25
  done
  [[ $mode == async ]] && pgbench -q -i -s 10 "$rw" >/dev/null 2>&1
  log="$CL_DIR/pgbench-${mode// /-}"
  mkdir -p "$log"
  out=$(cd "$log" && pgbench -n -c 8 -j 2 -T "$seconds" -l "$rw" 2>&1)
  tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out" | tail -1)
  # Per-transaction log: the third field is the latency in microseconds.
  read -r p50 p99 < <(cat "$log"/pgbench_log.* | awk '{ print $3 }' | sort -n |
    awk '{ v[NR] = $1 } END { printf "%.2f %.2f\n", v[int(NR * 0.50) + 1] / 1000, v[int(NR * 0.99) + 1] / 1000 }')
  results+=("$(printf '%-10s %8.0f tps   p50 %7s ms   p99 %7s ms   (synchronous_standby_names: %s)' \
    "$mode" "$tps" "$p50" "$p99" "${got:-none}")")
done
echo "three members on loopback, pgbench -c 8 -j 2 -T $seconds, scale 10:"
printf '%s\n' "${results[@]}"
bench_cluster_cleanup
trap - EXIT
echo
BENCH_DURABILITY="any 1" RUNS=${RUNS:-3} bench/failover.sh
