#!/usr/bin/env bash
# Replication benchmarks on two instances on loopback:
#  - base backup throughput (a replica cloned from a primary holding pgbench data),
#  - time from the promote request to the first committed write on the new primary,
#  - time of a demote with pg_rewind of a primary that diverged by 1,000 transactions.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
scripts/install-deps.sh
scripts/build.sh >/dev/null

scale=${BENCH_PGBENCH_SCALE:-10}
root=$(mktemp -d /tmp/im-bench-repl-XXXXXX)
chmod 755 "$root"
install -m 755 build/instance-manager build/instance-probe "$root/"
run=()
if [[ $(id -u) -eq 0 ]]; then chown postgres: "$root"; run=(setpriv --reuid=postgres --regid=postgres --init-groups --reset-env --); fi
as_user() { if [[ $(id -u) -eq 0 ]]; then setpriv --reuid=postgres --regid=postgres --init-groups --reset-env -- "$@"; else "$@"; fi; }
head -c 24 /dev/urandom | base64 > "$root/token"
[[ $(id -u) -eq 0 ]] && chown postgres: "$root/token"
token=$(cat "$root/token")
now_ms() { date +%s%3N; }

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$root"
}
trap cleanup EXIT

port_base=$(( 30000 + RANDOM % 20000 ))
p_pg=$port_base; p_http=$((port_base + 1)); r_pg=$((port_base + 2)); r_http=$((port_base + 3))

start() {  # name pgport httpport [extra...]
  local name=$1 pg=$2 http=$3; shift 3
  "${run[@]}" "$root/instance-manager" run --name "$name" --pgdata "$root/$name" --pg-port "$pg" \
    --socket-dir "$root" --http-listen "127.0.0.1:$http" --api-token-file "$root/token" --log-level warn "$@" \
    >>"$root/$name.log" 2>&1 &
  pids+=($!)
}
wait_ready() { for _ in $(seq 1 1200); do curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return 0; sleep 0.1; done; echo "not ready: $1" >&2; exit 1; }
post() { curl -s -X POST -H "Authorization: Bearer $token" -d "$2" "http://127.0.0.1:$1$3"; }
app_psql() { PGPASSWORD=$(cat "$root/p1/instance-manager/app.password") psql -X -A -t -q "host=127.0.0.1 port=$1 user=app dbname=app" "${@:2}"; }

start p1 $p_pg $p_http
wait_ready $p_http
app_psql $p_pg -c "SELECT 1" >/dev/null
PGPASSWORD=$(cat "$root/p1/instance-manager/app.password") pgbench -q -i -s "$scale" "host=127.0.0.1 port=$p_pg user=app dbname=app" >/dev/null 2>&1
app_psql $p_pg -c "CREATE TABLE bench_writes (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())"

t0=$(now_ms)
start r1 $r_pg $r_http --primary-conninfo "host=127.0.0.1 port=$p_pg" \
  --replication-password-file "$root/p1/instance-manager/replication.password"
wait_ready $r_http
t1=$(now_ms)
bytes=$(du -sb "$root/r1" | awk '{print $1}')
clone_ms=$((t1 - t0))

# Promote: from the request to the first committed write on the new primary.
t0=$(now_ms)
post $r_http '{"term": 1, "members": ["p1", "r1"]}' /v1/promote >/dev/null
until app_psql $r_pg -c "INSERT INTO bench_writes DEFAULT VALUES" 2>/dev/null; do :; done
t1=$(now_ms)
promote_ms=$((t1 - t0))

# The old primary diverges by 1,000 transactions, then is demoted with pg_rewind.
echo "INSERT INTO bench_writes DEFAULT VALUES;" > "$root/insert.sql"
PGPASSWORD=$(cat "$root/p1/instance-manager/app.password") pgbench -n -t 1000 -c 1 -f "$root/insert.sql" \
  "host=127.0.0.1 port=$p_pg user=app dbname=app" >/dev/null 2>&1
t0=$(now_ms)
answer=$(post $p_http "{\"term\": 2, \"primary_conninfo\": \"host=127.0.0.1 port=$r_pg\"}" /v1/demote)
t1=$(now_ms)
wait_ready $p_http
t2=$(now_ms)
echo "$answer" | grep -q '"rewound":true' || { echo "demote failed: $answer" >&2; exit 1; }

echo "replication benchmark (pgbench scale $scale)"
echo "  base backup: $((bytes / 1048576)) MB cloned in ${clone_ms} ms (manager start to ready replica): $(( bytes / 1048576 * 1000 / (clone_ms > 0 ? clone_ms : 1) )) MB/s"
echo "  promote request to first committed write: ${promote_ms} ms"
echo "  demote with pg_rewind after 1,000 diverging transactions: $((t1 - t0)) ms for the request, $((t2 - t0)) ms until ready as a replica"
