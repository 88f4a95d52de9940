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
source bench/bench-lib.sh
start_bench_manager "${BENCH_MANAGER:-build/instance-manager}"
# The flood client raises its own open-file limit to the hard limit.
ulimit -n "$(ulimit -Hn)"
build/bench-probe-flood "$http_port" "$connections" "$seconds"
