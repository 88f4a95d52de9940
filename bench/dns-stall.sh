#!/usr/bin/env bash
# The loop while a name server does not answer: starts a replica whose
# upstream is a host name that only a silent name server (a UDP socket that
# takes queries and never answers) could resolve, in a mount namespace with
# its own resolv.conf, and prints the latency of GET /healthz (one every
# 100 ms, 2 s timeout) while the manager keeps trying to reach it: p50, p99,
# max and failures. Root only. BENCH_MANAGER runs another binary.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "dns-stall.sh needs root (a mount namespace)" >&2; exit 2; }
cmake -S . -B build -G Ninja -DIM_WERROR=ON >/dev/null
cmake --build build --target instance-manager bench-probe-flood >/dev/null

seconds=${BENCH_SECONDS:-20}
manager=${BENCH_MANAGER:-build/instance-manager}
dir=$(mktemp -d /tmp/im-bench-XXXXXX)
chmod 755 "$dir"
install -m 755 "$manager" "$dir/instance-manager"
chown postgres: "$dir"
echo unused >"$dir/replication.password"
chown postgres: "$dir/replication.password"
ns_address=127.83.0.1
printf 'nameserver %s\noptions timeout:5 attempts:2\n' "$ns_address" >"$dir/resolv.conf"
chmod 644 "$dir/resolv.conf"
python3 -c "import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('$ns_address', 53)); time.sleep(3600)" &
silent=$!
http_port=$(( 20000 + RANDOM % 20000 ))
pg_port=$(( 40000 + RANDOM % 20000 ))
unshare --mount -- sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$dir/resolv.conf" \
  setpriv --reuid=postgres --regid=postgres --init-groups --reset-env -- \
  "$dir/instance-manager" run --name bench --pgdata "$dir/data" --pg-port "$pg_port" \
  --socket-dir "$dir" --http-listen "127.0.0.1:$http_port" --log-level warn \
  --primary-conninfo "host=upstream.dns-test.example port=5432" \
  --replication-password-file "$dir/replication.password" >"$dir/manager.log" 2>&1 &
pid=$!
cleanup() {
  kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
  kill $silent 2>/dev/null || true; rm -rf "$dir"
}
trap cleanup EXIT
# No flood (0 connections): the prober alone, while the manager retries.
build/bench-probe-flood "$http_port" 0 "$seconds" | sed 's/^probe flood: 0 slow\/idle connections, /dns stall: /; /flood reconnects/d'
echo "  manager's tries: $(grep -c 'does not answer yet' "$dir/manager.log")"
