#!/usr/bin/env bash
# Probes under a connection flood: starts its own instance on a fresh
# temporary directory, opens a flood of slow and idle clients to its HTTP
# port (BENCH_CONNECTIONS, default 2,000: four times the server's cap of 512
# connections), and prints the latency of GET /healthz (one probe every
# 100 ms on a new connection, as kubelet does) during the flood: p50, p99,
# max and failures. BENCH_MANAGER runs another instance-manager binary (the
# one before a change, for a comparison).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DIM_WERROR=ON >/dev/null
cmake --build build --target instance-manager instance-probe bench-probe-flood >/dev/null

connections=${BENCH_CONNECTIONS:-2000}
seconds=${BENCH_SECONDS:-10}
manager=${BENCH_MANAGER:-build/instance-manager}
dir=$(mktemp -d /tmp/im-bench-XXXXXX)
chmod 755 "$dir"
install -m 755 "$manager" "$dir/instance-manager"
install -m 755 build/instance-probe "$dir/"
run=()
if [[ $(id -u) -eq 0 ]]; then chown postgres: "$dir"; run=(setpriv --reuid=postgres --regid=postgres --init-groups --reset-env --); fi
http_port=$(( 20000 + RANDOM % 20000 ))
pg_port=$(( 40000 + RANDOM % 20000 ))

"${run[@]}" "$dir/instance-manager" run --name bench --pgdata "$dir/data" --pg-port "$pg_port" \
  --socket-dir "$dir" --http-listen "127.0.0.1:$http_port" --log-level warn >"$dir/manager.log" 2>&1 &
pid=$!
cleanup() { kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

for _ in $(seq 1 120); do
  "$dir/instance-probe" --url "http://127.0.0.1:$http_port" --timeout 1s readyz 2>/dev/null && break
  sleep 0.5
done
# The flood client raises its own open-file limit to the hard limit.
ulimit -n "$(ulimit -Hn)"
build/bench-probe-flood "$http_port" "$connections" "$seconds"
