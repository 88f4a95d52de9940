#!/usr/bin/env bash
# A rolling restart of a three-member cluster on loopback under bench-writer
# (one committing client) and pgbench -c 8: RUNS times (default 3) a
# restart-only setting (max_connections, raised by one each run) changed in
# the cluster's parameters file, printing per run and as median / max:
#  - total: from the file change to the controller's rollout-done decision
#    (the members read the file within 2 s; replicas one at a time, each back
#    and caught up; a switchover; the old primary restarted by its demotion);
#  - the longest gap between two commits the writer saw acknowledged;
#  - commits lost (rows the writer saw committed that the primary lacks),
#    switchovers and failovers (the decisions).
# Then the same for an operator's `instance-manager restart --all`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh >/dev/null
scripts/build.sh >/dev/null

runs=${RUNS:-3}
source bench/bench-lib.sh
start_bench_cluster rolling

cl_setup
params="$CL_DIR/cluster.conf"
echo "max_connections = 100" > "$params"
[[ $(id -u) -eq 0 ]] && chown postgres: "$params"
cl_start_members --log-level warn --pg-parameters-file "$params"
cl_start_controller --log-level warn
cl_wait_converged
export PGPASSWORD
PGPASSWORD=$(cat "$CL_DIR/secrets/app.password")
hosts="127.0.0.1:$(cl_pg_port 0),127.0.0.1:$(cl_pg_port 1),127.0.0.1:$(cl_pg_port 2)"
rw="postgresql://app@$hosts/app?target_session_attrs=read-write&connect_timeout=2"
psql -q "$rw" -c "CREATE TABLE IF NOT EXISTS bench_log (id bigint PRIMARY KEY, at timestamptz DEFAULT now())"
pgbench -q -i -s 10 "$rw" >/dev/null 2>&1
now_ms() { date +%s%3N; }
cluster_json() { "$cl_im" status --controller "$cl_ctl" --json 2>/dev/null; }
# The controller logs at warn: its decisions are in /v1/cluster (last 30),
# counted by time (ISO 8601 UTC strings compare as text).
decisions_since() {  # ACTION ISO_TIME
  cluster_json | python3 -c '
import json, sys
c = json.load(sys.stdin)
print(sum(1 for d in c.get("decisions", []) if d.get("action") == sys.argv[1] and d.get("time", "") >= sys.argv[2]))' "$1" "$2"
}
rollout_active() {
  cluster_json | python3 -c 'import json, sys; print(json.load(sys.stdin).get("rollout", {}).get("active", False))'
}

declare -a total_ms gap_ms
lost_total=0
one_run() {  # kind run
  local kind=$1 run=$2 out="$CL_DIR/writer.out" t0 t1 since
  cl_wait_converged
  pgbench -n -c 8 -j 2 -T 300 "$rw" >/dev/null 2>&1 &
  local pgb=$!
  local first=$(( run * 10000000 ))
  [[ $kind == operator ]] && first=$(( first + 5000000 ))
  "$writer" "$rw" "$first" >"$out" &
  local w=$!
  sleep 2
  since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  t0=$(now_ms)
  if [[ $kind == settings ]]; then
    echo "max_connections = $((100 + run))" > "$params"
  else
    "$cl_im" restart --controller "$cl_ctl" --all --api-token-file "$CL_DIR/secrets/api-token" >/dev/null
  fi
  # Active, then done.
  for _ in $(seq 1 200); do [[ $(rollout_active) == True ]] && break; sleep 0.05; done
  for _ in $(seq 1 2400); do [[ $(rollout_active) == False ]] && break; sleep 0.05; done
  t1=$(now_ms)
  sleep 1
  kill -TERM "$w" "$pgb" 2>/dev/null || true
  wait "$w" "$pgb" 2>/dev/null || true
  local gap lost sw fo
  gap=$(bench_gap "$out" "$t0" $((t1 + 1000)))
  lost=$(bench_lost "$out" "$rw")
  sw=$(decisions_since switchover-done "$since"); fo=$(decisions_since failover "$since")
  lost_total=$((lost_total + lost))
  total_ms+=($((t1 - t0))); gap_ms+=("$gap")
  echo "$kind $run: rolling restart done after $((t1 - t0)) ms, longest write gap $gap ms, $(wc -l < "$out") commits, $lost lost, $sw switchover(s), $fo failover(s)"
}

echo "three members on loopback, bench-writer and pgbench -c 8 running"
for run in $(seq 1 "$runs"); do one_run settings "$run"; done
for run in $(seq 1 "$runs"); do one_run operator "$run"; done
echo
bench_stats "rolling restart: change to done (all runs)" "${total_ms[@]}"
bench_stats "rolling restart: longest write gap (all runs)" "${gap_ms[@]}"
echo "committed transactions lost: $lost_total"
