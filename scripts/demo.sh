#!/usr/bin/env bash
# Quick start: installs what is missing, builds, and runs one instance
# manager on a data directory under DEMO_DIR (default /tmp/instance-manager-demo;
# reused, never wiped, when it exists). Prints how to connect; Ctrl-C stops
# it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

scripts/install-deps.sh
scripts/build.sh -DIM_TESTS=OFF

demo=${DEMO_DIR:-/tmp/instance-manager-demo}
pg_port=${DEMO_PG_PORT:-15432}
http_port=${DEMO_HTTP_PORT:-8000}
mkdir -p "$demo/bin"
# A copy the postgres user can always run, wherever this checkout lives.
install -m 755 build/instance-manager build/instance-probe "$demo/bin/"

# postgres refuses to run as root: run as the postgres user then.
run=()
if [[ $(id -u) -eq 0 ]]; then
  chown postgres: "$demo"
  run=(setpriv --reuid=postgres --regid=postgres --init-groups --reset-env --)
fi
[[ -f "$demo/api-token" ]] || { head -c 24 /dev/urandom | base64 | tr '+/' '-_' > "$demo/api-token"; }
[[ $(id -u) -eq 0 ]] && chown postgres: "$demo/api-token"
chmod 600 "$demo/api-token"

"${run[@]}" "$demo/bin/instance-manager" run \
  --name demo-1 --pgdata "$demo/data" --pg-port "$pg_port" --socket-dir "$demo" \
  --http-listen "127.0.0.1:$http_port" --api-token-file "$demo/api-token" \
  >"$demo/manager.log" 2>&1 &
manager=$!
trap 'echo; echo "stopping (clean shutdown)..."; kill -TERM $manager 2>/dev/null; wait $manager; echo "stopped, exit code $?"; exit 0' INT TERM

for _ in $(seq 1 120); do
  if "$demo/bin/instance-probe" --url "http://127.0.0.1:$http_port" --timeout 1s readyz 2>/dev/null; then break; fi
  kill -0 $manager 2>/dev/null || { echo "the manager exited; its log:"; tail -30 "$demo/manager.log"; exit 1; }
  sleep 0.5
done

cat <<TXT

PostgreSQL is up under instance-manager (log: $demo/manager.log).

Status:      curl -s http://127.0.0.1:$http_port/v1/status
Probes:      curl -i http://127.0.0.1:$http_port/readyz      (also /healthz, /startupz, /metrics)
Connect:     PGPASSWORD=\$(cat $demo/data/instance-manager/app.password) psql "host=127.0.0.1 port=$pg_port user=app dbname=app"
Restart:     curl -s -X POST -H "Authorization: Bearer \$(cat $demo/api-token)" http://127.0.0.1:$http_port/v1/restart

Press Ctrl-C to stop; run this again to start on the same data.
TXT
curl -s "http://127.0.0.1:$http_port/v1/status"; echo
wait $manager
