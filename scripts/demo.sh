#!/usr/bin/env bash
# Quick start: installs what is missing, builds, and runs a three-instance
# cluster on loopback (instance managers demo-1..3 plus the controller) with
# data under DEMO_DIR (default /tmp/instance-manager-demo; reused, never
# wiped, when it exists). Every member archives its WAL to a pgBackRest
# repository in DEMO_DIR/backup-repo, and the controller takes a full backup
# each day (the first at once). A manager that dies is started again 5 s
# later, as Kubernetes would recreate its pod. Ctrl-C stops everything cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/build.sh -DIM_TESTS=OFF

CL_DIR=${DEMO_DIR:-/tmp/instance-manager-demo}
CL_PREFIX=demo
CL_PG=${DEMO_PG_PORT:-15432}            # demo-1 on 15432, demo-2 on 15433, demo-3 on 15434
CL_HTTP=${DEMO_HTTP_PORT:-8001}         # their APIs on 8001..8003
CL_CTL=${DEMO_CONTROLLER_PORT:-8010}
source scripts/cluster-lib.sh
demo=$CL_DIR
im=$cl_im

stopping=0
stop_all() {
  stopping=1
  echo; echo "stopping (clean shutdown)..."
  cl_stop_all
  echo "stopped; run this again to start on the same data."
  exit 0
}
trap stop_all INT TERM

cl_setup
mkdir -p "$demo/backup-repo"; [[ $(id -u) -eq 0 ]] && chown postgres: "$demo/backup-repo"
member_args=(--backup-repo "$demo/backup-repo" --backup-stanza demo)
cl_start_members "${member_args[@]}"
# As the Kubernetes manifests: a commit returns once one other member has it.
cl_start_controller --durability "any 1" --backup-schedule full=1d
cl_wait_converged
# And the primary's synchronous standbys set (a poll or two later).
for _ in $(seq 1 40); do
  "$cl_im" status --controller "$cl_ctl" --json 2>/dev/null | grep -q '"sync_state": "ANY 1"' && break
  sleep 0.25
done

primary=$(cl_primary)
p=$(cl_index "$primary")
r=$(( (p + 1) % 3 ))
hosts="127.0.0.1:$(cl_pg_port 0),127.0.0.1:$(cl_pg_port 1),127.0.0.1:$(cl_pg_port 2)"

"$im" status --controller "$cl_ctl"
cat <<TXT

Three PostgreSQL instances under instance-manager, and the controller (logs in $demo).

Password:    export PGPASSWORD=\$(cat $demo/secrets/app.password)
Primary:     psql "host=127.0.0.1 port=$(cl_pg_port "$p") user=app dbname=app"
Replica:     psql "host=127.0.0.1 port=$(cl_pg_port "$r") user=app dbname=app"
Read-write:  psql "postgresql://app@$hosts/app?target_session_attrs=read-write"
Read-only:   psql "postgresql://app@$hosts/app?target_session_attrs=read-only"

Status:      $im status --controller $cl_ctl        (JSON: $cl_ctl/v1/cluster)
Failover:    kill -9 \$(cat $demo/$primary/manager.pid)       # the primary's "pod"
Switchover:  $im switchover --controller $cl_ctl --to ${cl_names[$r]} --api-token-file $demo/secrets/api-token

Backups (pgBackRest, repository $demo/backup-repo; a full one each day, the first now):
  Take one:  $im backup --controller $cl_ctl --type incr --api-token-file $demo/secrets/api-token
  List:      $im backups --controller $cl_ctl --api-token-file $demo/secrets/api-token
  Restore to a point in time, as a new cluster's first instance beside this one
  (rows committed after the time are not there; it promotes itself there, and
  archives to a stanza of its own, never this cluster's):
    ${cl_run[*]} $im run --name restored --pgdata $demo/restored --pg-port 15440 \\
      --http-listen 127.0.0.1:8020 --backup-repo $demo/backup-repo --backup-stanza restored \\
      --restore-from-backup --restore-from-stanza demo \\
      --recovery-target-time "\$(date -u -d '2 minutes ago' '+%Y-%m-%d %H:%M:%S')"

Press Ctrl-C to stop everything; run this again to start on the same data.
TXT

# Like a pod's restart policy: a manager that died is started again a few
# seconds later (by then the controller has failed over; it rejoins as a replica).
declare -A gone
while [[ $stopping -eq 0 ]]; do
  sleep 1
  for i in 0 1 2; do
    n=${cl_names[$i]}
    kill -0 "${cl_pid[$n]}" 2>/dev/null && continue
    if [[ -z ${gone[$n]:-} ]]; then
      wait "${cl_pid[$n]}" 2>/dev/null || true
      gone[$n]=$SECONDS
      echo "$(date +%T) $n's manager is gone; it starts again in 5 s"
    elif (( SECONDS - gone[$n] >= 5 )); then
      unset "gone[$n]"
      echo "$(date +%T) starting $n again"
      cl_start_member "$i" "${member_args[@]}"
    fi
  done
done
