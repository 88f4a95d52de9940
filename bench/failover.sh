#!/usr/bin/env bash
# Failover and switchover of a three-member cluster on loopback while
# `pgbench -c 8` runs, RUNS times each (default 5), printing median and max of:
#  - failover: from kill -9 of the primary's manager (its whole "pod") to the
#    first committed write on the new primary;
#  - switchover: from the request to the first committed write on the new
#    primary, and the longest gap between two committed writes;
#  - committed transactions lost: rows bench-writer saw committed that the
#    new primary does not have.
# BENCH_DURABILITY (default "any 1") is the controller's --durability.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh >/dev/null
scripts/build.sh >/dev/null

runs=${RUNS:-5}
durability=${BENCH_DURABILITY:-any 1}
source bench/bench-lib.sh
start_bench_cluster bench

cl_setup
cl_start_members --log-level warn
cl_start_controller --durability "$durability" --log-level warn
cl_wait_converged
export PGPASSWORD
PGPASSWORD=$(cat "$CL_DIR/secrets/app.password")
hosts="127.0.0.1:$(cl_pg_port 0),127.0.0.1:$(cl_pg_port 1),127.0.0.1:$(cl_pg_port 2)"
rw="postgresql://app@$hosts/app?target_session_attrs=read-write&connect_timeout=2"
psql -q "$rw" -c "CREATE TABLE IF NOT EXISTS bench_log (id bigint PRIMARY KEY, at timestamptz DEFAULT now())"
pgbench -q -i -s 10 "$rw" >/dev/null 2>&1
now_ms() { date +%s%3N; }

declare -a failover_ms failover_gap switchover_ms switchover_gap
lost_total=0

one_run() {  # kind run
  local kind=$1 run=$2 old oi target ti t0 t1 line port out="$CL_DIR/writer.out"
  cl_wait_converged
  old=$(cl_primary); oi=$(cl_index "$old")
  ti=$(( (oi + 1) % 3 )); target=${cl_names[$ti]}
  pgbench -n -c 8 -j 2 -T 60 "$rw" >/dev/null 2>&1 &
  local pgb=$!
  local first=$(( run * 10000000 ))
  [[ $kind == switchover ]] && first=$(( first + 5000000 ))
  "$writer" "$rw" "$first" >"$out" &
  local w=$!
  sleep 2
  t0=$(now_ms)
  if [[ $kind == failover ]]; then
    kill -KILL "${cl_pid[$old]}"
  else
    "$cl_im" switchover --controller "$cl_ctl" --to "$target" \
      --api-token-file "$CL_DIR/secrets/api-token" >/dev/null
  fi
  # The first write committed on another server than the old primary.
  t1=""
  for _ in $(seq 1 600); do
    t1=$(awk -v t0="$t0" -v old="$(cl_pg_port "$oi")" '$2 >= t0 && $3 != old { print $2; exit }' "$out")
    [[ -n $t1 ]] && break
    sleep 0.05
  done
  sleep 1
  kill -TERM "$w" "$pgb" 2>/dev/null || true
  wait "$w" "$pgb" 2>/dev/null || true
  [[ -n $t1 ]] || { echo "$kind run $run: no write on a new primary within 30 s"; exit 1; }
  local gap
  gap=$(bench_gap "$out" $((t0 - 1000)) "$t1")
  local lost
  lost=$(bench_lost "$out" "$rw")
  lost_total=$((lost_total + lost))
  if [[ $kind == failover ]]; then
    failover_ms+=($((t1 - t0))); failover_gap+=("$gap")
    wait "${cl_pid[$old]}" 2>/dev/null || true
    cl_start_member "$oi" --log-level warn   # the "pod" comes back and rejoins
  else
    switchover_ms+=($((t1 - t0))); switchover_gap+=("$gap")
  fi
  echo "$kind $run: $old -> new primary, first committed write after $((t1 - t0)) ms, longest write gap $gap ms, $(wc -l < "$out") rows committed by the writer, $lost lost"
}


echo "three members on loopback, controller --durability '$durability', pgbench -c 8 running"
for run in $(seq 1 "$runs"); do one_run failover "$run"; done
for run in $(seq 1 "$runs"); do one_run switchover "$run"; done
echo
bench_stats "failover: kill -9 to first committed write" "${failover_ms[@]}"
bench_stats "failover: longest write gap" "${failover_gap[@]}"
bench_stats "switchover: request to first committed write" "${switchover_ms[@]}"
bench_stats "switchover: longest write gap" "${switchover_gap[@]}"
echo "committed transactions lost: $lost_total"
