#!/usr/bin/env bash
# The fencing bound F of the write authority: from a primary's deadline (its
# grants from a majority run out unrenewed) to its last acknowledged commit,
# RUNS times (default 5) each way, while bench-writer commits on the primary:
#  - lapse: both replicas' managers are stopped (SIGSTOP), so no majority
#    renews; the primary's own loop kills postgres at the deadline;
#  - watchdog: the primary's manager itself is stopped; the watchdog process
#    kills postgres at the deadline.
# The deadline comes from the log line of whoever killed (it says how long
# after the deadline the kill was done); a commit's time is when the writer
# saw it acknowledged. The protocol assumes F <= 250 ms (clock_bounds.hpp).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh >/dev/null
scripts/build.sh >/dev/null

runs=${RUNS:-5}
source bench/bench-lib.sh
start_bench_cluster fence

cl_setup
cl_start_members
cl_start_controller --log-level warn
cl_wait_converged
primary=$(cl_primary); pi=$(cl_index "$primary")
# The primary holds its grants by itself from here on: the controller goes,
# so that nothing but the grants decides.
kill -TERM "${cl_pid[controller]}"; wait "${cl_pid[controller]}" 2>/dev/null || true
export PGPASSWORD
PGPASSWORD=$(cat "$CL_DIR/secrets/app.password")
conn="postgresql://app@127.0.0.1:$(cl_pg_port "$pi")/app?connect_timeout=1"
psql -q "$conn" -c "CREATE TABLE IF NOT EXISTS bench_log (id bigint PRIMARY KEY, at timestamptz DEFAULT now())"
log="$CL_DIR/$primary/manager.log"
iso_ms() { date -d "$1" +%s%3N; }

declare -a lapse_f watchdog_f
one_run() {  # kind run
  local kind=$1 run=$2 out="$CL_DIR/writer.out" msg line t us deadline last
  "$cl_im" status --member "$primary=$(cl_api "$pi")" --json | grep -q '"may_write": true' || {
    sleep 2; }
  local before
  before=$(wc -l < "$log")
  "$writer" "$conn" $(( run * 10000000 + (${#kind} * 1000000) )) > "$out" 2>/dev/null &
  local w=$!
  sleep 1.5
  if [[ $kind == lapse ]]; then
    for i in 0 1 2; do [[ $i -ne $pi ]] && kill -STOP "${cl_pid[${cl_names[$i]}]}"; done
    msg='no majority renewed the write right in time'
  else
    kill -STOP "${cl_pid[$primary]}"
    msg='the write right ran out without renewal'
  fi
  sleep 3
  # Commits after this are the primary serving again (its grants gathered anew).
  local resumed
  resumed=$(date +%s%3N)
  for i in 0 1 2; do kill -CONT "${cl_pid[${cl_names[$i]}]}"; done
  sleep 0.5
  kill -TERM "$w"; wait "$w" 2>/dev/null || true
  line=$(tail -n +"$((before + 1))" "$log" | grep -m1 "$msg" || true)
  [[ -n $line ]] || { echo "$kind run $run: no kill logged"; tail -20 "$log"; exit 1; }
  t=$(sed -n 's/^{"time":"\([^"]*\)".*/\1/p' <<<"$line")
  us=$(sed -n 's/.*"after_deadline_us":\(-\{0,1\}[0-9]*\).*/\1/p' <<<"$line")
  deadline=$(( $(iso_ms "$t") - ${us:-0} / 1000 ))
  last=$(awk -v r="$resumed" '$2 < r { t = $2 } END { printf "%.0f\n", t }' "$out")
  local f=$(( last - deadline ))
  echo "$kind $run: killed $(( ${us:-0} / 1000 )) ms after the deadline; last acknowledged commit $f ms after it ($(wc -l < "$out") commits)"
  if [[ $kind == lapse ]]; then lapse_f+=("$f"); else watchdog_f+=("$f"); fi
  # Serving again (its grants gathered anew) before the next run.
  for _ in $(seq 1 120); do
    psql -qAt "$conn" -c "SELECT 1" >/dev/null 2>&1 && break
    sleep 0.25
  done
}


echo "three members on loopback, primary $primary, --grant-ttl 1s, bench-writer committing"
for run in $(seq 1 "$runs"); do one_run lapse "$run"; done
for run in $(seq 1 "$runs"); do one_run watchdog "$run"; done
echo
bench_stats "F, lapse (the manager kills): deadline to last commit" "${lapse_f[@]}"
bench_stats "F, watchdog (manager stopped): deadline to last commit" "${watchdog_f[@]}"
echo "(negative: the last commit was before the deadline; the protocol assumes at most 250 ms)"
