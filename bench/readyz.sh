#!/usr/bin/env bash
# Benchmark of the probe path: requests/s and p50/p99 latency of GET /readyz
# under wrk (16 keep-alive connections, 10 s), and the manager's RSS idle and
# under that load. Starts its own instance on a fresh temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
scripts/install-deps.sh wrk
scripts/build.sh >/dev/null

duration=${BENCH_DURATION:-10s}
connections=${BENCH_CONNECTIONS:-16}
source bench/bench-lib.sh
start_bench_manager build/instance-manager
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# PSS shares each shared-library page among the processes that map it; USS
# (private clean + dirty) is what the manager alone costs the machine.
pss_kb() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }
uss_kb() { awk '/^Private_(Clean|Dirty):/ {s += $2} END {print s}' "/proc/$1/smaps_rollup"; }
mb() { echo "$(( $1 / 1024 )).$(( ($1 % 1024) * 10 / 1024 )) MB ($1 kB)"; }
# The manager's own pid (setpriv execs it, so $manager is the manager).
sleep 2
idle=$(rss_kb $manager)
idle_pss=$(pss_kb $manager)
idle_uss=$(uss_kb $manager)

peak=$idle
( while kill -0 $manager 2>/dev/null; do r=$(rss_kb $manager 2>/dev/null || echo 0); echo "$r"; sleep 0.1; done ) >"$dir/rss.samples" &
sampler=$!
wrk -t1 -c"$connections" -d"$duration" --latency "http://127.0.0.1:$http_port/readyz" >"$dir/wrk.out"
kill $sampler 2>/dev/null || true
peak=$(sort -n "$dir/rss.samples" | tail -1)
load_pss=$(pss_kb $manager)
load_uss=$(uss_kb $manager)

rps=$(awk '/^Requests\/sec:/ {print $2}' "$dir/wrk.out")
p50=$(awk '$1 == "50%" {print $2}' "$dir/wrk.out")
p99=$(awk '$1 == "99%" {print $2}' "$dir/wrk.out")
non2xx=$(awk '/Non-2xx/ {print $NF}' "$dir/wrk.out")
echo "readyz benchmark: wrk, $connections keep-alive connections, $duration"
echo "  requests/s:       $rps"
echo "  latency p50:      $p50"
echo "  latency p99:      $p99"
echo "  non-2xx answers:  ${non2xx:-0}"
echo "  manager RSS idle: $(mb "$idle")"
echo "  manager RSS load: $(mb "$peak") (peak of 100 ms samples)"
echo "  manager PSS idle / after load: $(mb "$idle_pss") / $(mb "$load_pss")"
echo "  manager USS idle / after load: $(mb "$idle_uss") / $(mb "$load_uss")"
