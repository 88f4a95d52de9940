#!/usr/bin/env bash
# Quick start: installs what is missing, builds, and runs a three-instance
# cluster on loopback (instance managers demo-1..3 plus the controller) with
# data under DEMO_DIR (default /tmp/instance-manager-demo; reused, never
# wiped, when it exists). A manager that dies is started again 5 s later,
# as Kubernetes would recreate its pod. Ctrl-C stops everything cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/build.sh -DIM_TESTS=OFF

demo=${DEMO_DIR:-/tmp/instance-manager-demo}
base_pg=${DEMO_PG_PORT:-15432}      # demo-1 on 15432, demo-2 on 15433, demo-3 on 15434
base_http=${DEMO_HTTP_PORT:-8001}   # their APIs on 8001..8003
ctl_port=${DEMO_CONTROLLER_PORT:-8010}
names=(demo-1 demo-2 demo-3)
mkdir -p "$demo/bin" "$demo/secrets"
# A copy the postgres user can always run, wherever this checkout lives.
install -m 755 build/instance-manager build/instance-probe "$demo/bin/"
im="$demo/bin/instance-manager"

# postgres refuses to run as root: run everything as the postgres user then.
run=()
if [[ $(id -u) -eq 0 ]]; then
  run=(setpriv --reuid=postgres --regid=postgres --init-groups --reset-env --)
fi
# One API token and one set of passwords for the whole cluster.
for f in api-token app.password replication.password; do
  [[ -s "$demo/secrets/$f" ]] || head -c 24 /dev/urandom | base64 | tr '+/' '-_' > "$demo/secrets/$f"
done
chmod 700 "$demo/secrets"; chmod 600 "$demo"/secrets/*
[[ $(id -u) -eq 0 ]] && chown -R postgres: "$demo"

pg_port() { echo $((base_pg + $1)); }
api() { echo "http://127.0.0.1:$((base_http + $1))"; }
declare -A pid

start_member() {  # index
  local i=$1 name=${names[$1]} dir="$demo/${names[$1]}"
  mkdir -p "$dir"; [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
  local extra=()
  # The first start of demo-2 and demo-3 clones demo-1; afterwards each data
  # directory knows its role and the controller says whom to follow.
  [[ $i -gt 0 ]] && extra=(--primary-conninfo "host=127.0.0.1 port=$(pg_port 0)")
  "${run[@]}" "$im" run --name "$name" --pgdata "$dir/data" --pg-port "$(pg_port "$i")" \
    --socket-dir "$dir" --http-listen "127.0.0.1:$((base_http + i))" \
    --api-token-file "$demo/secrets/api-token" \
    --app-password-file "$demo/secrets/app.password" \
    --replication-password-file "$demo/secrets/replication.password" \
    "${extra[@]}" >>"$dir/manager.log" 2>&1 &
  pid[$name]=$!
  echo $! > "$dir/manager.pid"
}

wait_ready() {  # index
  for _ in $(seq 1 240); do
    "$demo/bin/instance-probe" --url "$(api "$1")" --timeout 1s readyz 2>/dev/null && return 0
    kill -0 "${pid[${names[$1]}]}" 2>/dev/null || {
      echo "${names[$1]}'s manager exited; its log:"; tail -30 "$demo/${names[$1]}/manager.log"; exit 1; }
    sleep 0.5
  done
  echo "${names[$1]} did not become ready"; exit 1
}

stopping=0
stop_all() {
  stopping=1
  echo; echo "stopping (clean shutdown)..."
  kill -TERM "${pid[controller]}" 2>/dev/null || true
  for n in "${names[@]}"; do kill -TERM "${pid[$n]}" 2>/dev/null || true; done
  wait || true
  echo "stopped; run this again to start on the same data."
  exit 0
}
trap stop_all INT TERM

if [[ -d "$demo/demo-2/data" ]]; then
  # A cluster from an earlier run: all members at once, the controller sorts the roles out.
  for i in 0 1 2; do start_member "$i"; done
else
  start_member 0; wait_ready 0
  start_member 1; start_member 2
fi
for i in 0 1 2; do wait_ready "$i"; done

members=()
for i in 0 1 2; do members+=(--member "${names[$i]}=$(api "$i")"); done
"${run[@]}" "$im" controller "${members[@]}" --api-token-file "$demo/secrets/api-token" \
  --listen "127.0.0.1:$ctl_port" >>"$demo/controller.log" 2>&1 &
pid[controller]=$!
ctl="http://127.0.0.1:$ctl_port"

# Until the controller holds a primary and both replicas stream from it.
for _ in $(seq 1 120); do
  json=$("$im" status --controller "$ctl" --json 2>/dev/null || true)
  [[ $(grep -o '"streaming": true' <<<"$json" | wc -l) -eq 2 ]] && break
  sleep 0.5
done
primary=$("$im" status --controller "$ctl" --json | sed -n 's/^  "primary": "\(.*\)",*$/\1/p')
for i in 0 1 2; do [[ ${names[$i]} == "$primary" ]] && p=$i; done
r=$(( (p + 1) % 3 ))
hosts="127.0.0.1:$(pg_port 0),127.0.0.1:$(pg_port 1),127.0.0.1:$(pg_port 2)"

"$im" status --controller "$ctl"
cat <<TXT

Three PostgreSQL instances under instance-manager, and the controller (logs in $demo).

Password:    export PGPASSWORD=\$(cat $demo/secrets/app.password)
Primary:     psql "host=127.0.0.1 port=$(pg_port "$p") user=app dbname=app"
Replica:     psql "host=127.0.0.1 port=$(pg_port "$r") user=app dbname=app"
Read-write:  psql "postgresql://app@$hosts/app?target_session_attrs=read-write"
Read-only:   psql "postgresql://app@$hosts/app?target_session_attrs=read-only"

Status:      $im status --controller $ctl        (JSON: $ctl/v1/cluster)
Failover:    kill -9 \$(cat $demo/$primary/manager.pid)       # the primary's "pod"
Switchover:  $im switchover --controller $ctl --to ${names[$r]} --api-token-file $demo/secrets/api-token

Press Ctrl-C to stop everything; run this again to start on the same data.
TXT

# Like a pod's restart policy: a manager that died is started again a few
# seconds later (by then the controller has failed over; it rejoins as a replica).
declare -A gone
while [[ $stopping -eq 0 ]]; do
  sleep 1
  for i in 0 1 2; do
    n=${names[$i]}
    kill -0 "${pid[$n]}" 2>/dev/null && continue
    if [[ -z ${gone[$n]:-} ]]; then
      wait "${pid[$n]}" 2>/dev/null || true
      gone[$n]=$SECONDS
      echo "$(date +%T) $n's manager is gone; it starts again in 5 s"
    elif (( SECONDS - gone[$n] >= 5 )); then
      unset "gone[$n]"
      echo "$(date +%T) starting $n again"
      start_member "$i"
    fi
  done
done
