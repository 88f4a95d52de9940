#!/usr/bin/env bash
# What backups and archiving cost on this machine, one instance on loopback
# with a pgBackRest repository on the same disk as its data:
# - a full backup's throughput (MB/s of database) through POST /v1/backup,
#   beside a plain `tar` of the same data directory to the same disk (the
#   physical limit here), for pgBackRest's defaults (gz, one process) and
#   for lz4 with two processes (PGBACKREST_COMPRESS_TYPE, _PROCESS_MAX);
# - restoring that backup into an empty directory with --restore-from-backup
#   until the instance serves as primary, beside extracting the tar;
# - archive-push latency per WAL segment under pgbench -c 4 (from the moment
#   postgres marks a segment ready to the moment it is archived, sampled
#   every 100 ms).
# SCALE (default 30: about 450 MB) sets pgbench's scale.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh >/dev/null
scripts/build.sh >/dev/null
scale=${SCALE:-30}

run=()
[[ $(id -u) -eq 0 ]] && run=(setpriv --reuid=postgres --regid=postgres --init-groups --reset-env --)
work=$(mktemp -d /tmp/im-bench-backup-XXXXXX)
chmod 755 "$work"
install -m 755 build/instance-manager build/instance-probe "$work/"
[[ $(id -u) -eq 0 ]] && chown postgres: "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
as_pg() { "${run[@]}" "$@"; }
ms() { date +%s%3N; }

# start NAME PG_PORT HTTP_PORT [ARGS...] with ENV (KEY=VALUE...) set.
ENV=()
start() {
  local name=$1 pg=$2 http=$3; shift 3
  # Not through as_pg: a function run in the background is a subshell, and
  # $! must be the manager itself (setpriv and env exec it) for the cleanup.
  "${run[@]}" env "${ENV[@]}" "$work/instance-manager" run --name "$name" --pgdata "$work/$name" \
    --pg-port "$pg" --socket-dir "$work" --http-listen "127.0.0.1:$http" --log-level warn \
    --backup-repo "$work/repo-$config" --backup-stanza bench "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
}
status() { curl -s "http://127.0.0.1:$1/v1/status"; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
wait_for() {  # HTTP_PORT PYTHON_CONDITION (on d, the status) SECONDS
  for _ in $(seq 1 $(( $3 * 10 ))); do
    [[ $(status "$1" | field "bool($2)" 2>/dev/null) == True ]] && return 0
    sleep 0.1
  done
  echo "timed out waiting for: $2"; tail -20 "$work"/*.log; exit 1
}
psql_at() { as_pg psql -X -A -t -h "$work" -p "$1" -U postgres -d "${2:-postgres}" -c "$3"; }

results=()
base=$(( 30000 + RANDOM % 20000 ))
token="$work/token"; head -c 24 /dev/urandom | base64 > "$token"; chmod 644 "$token"
for config in defaults lz4-2; do
  pg=$base http=$((base + 1)); base=$((base + 10))
  ENV=()
  [[ $config == lz4-2 ]] && ENV=(PGBACKREST_COMPRESS_TYPE=lz4 PGBACKREST_PROCESS_MAX=2)
  as_pg mkdir -p "$work/repo-$config"
  start "p-$config" "$pg" "$http" --api-token-file "$token"
  wait_for "$http" "d['backup'] and d['backup']['stanza_ready']" 120
  as_pg pgbench -q -i -s "$scale" -h "$work" -p "$pg" -U postgres postgres >/dev/null 2>&1
  psql_at "$pg" postgres "CHECKPOINT" >/dev/null
  mb=$(( $(as_pg du -sm "$work/p-$config" | cut -f1) ))

  # Archive-push latency per segment under load.
  lat="$work/latency-$config"
  as_pg pgbench -n -c 4 -j 2 -T 20 -h "$work" -p "$pg" -U postgres postgres >/dev/null 2>&1 &
  load=$!
  declare -A ready_at=()
  : >"$lat"
  while kill -0 "$load" 2>/dev/null; do
    now=$(ms)
    while IFS='|' read -r name; do
      seg=${name%.*}
      case $name in
        *.ready) [[ -z ${ready_at[$seg]:-} ]] && ready_at[$seg]=$now ;;
        *.done) if [[ -n ${ready_at[$seg]:-} && ${ready_at[$seg]} != x ]]; then
                  echo $(( now - ready_at[$seg] )) >>"$lat"; ready_at[$seg]=x; fi ;;
      esac
    done < <(psql_at "$pg" postgres "SELECT name FROM pg_ls_archive_statusdir()" 2>/dev/null)
    sleep 0.1
  done
  wait "$load" || true
  segs=$(wc -l <"$lat")
  read -r p50 p99 < <(sort -n "$lat" | awk '{ v[NR] = $1 } END { if (NR) printf "%d %d\n", v[int(NR*0.5)+1], v[int(NR*0.99)+1]; else print "- -" }')

  # A full backup through the API.
  psql_at "$pg" postgres "CHECKPOINT" >/dev/null
  t0=$(ms)
  curl -s -H "Authorization: Bearer $(cat "$token")" -X POST "http://127.0.0.1:$http/v1/backup" -d '{"type": "full"}' >/dev/null
  wait_for "$http" "d['backup']['last_result'] and d['backup']['last_result']['ok'] and d['backup']['backups'] >= 1" 1800
  backup_ms=$(( $(ms) - t0 ))
  read -r size stored < <(status "$http" | field "'%d %d' % (d['backup']['last_backup']['size_bytes'], d['backup']['last_backup']['repository_bytes'])")
  size_mb=$(( size / 1048576 )); stored_mb=$(( stored / 1048576 ))

  # The physical limit: tar of the same directory to the same disk.
  t0=$(ms)
  as_pg tar -cf "$work/tar-$config.tar" -C "$work" "p-$config" 2>/dev/null || true
  sync
  tar_ms=$(( $(ms) - t0 ))

  # Restore into an empty directory until the instance serves as primary.
  rpg=$((pg + 5)) rhttp=$((pg + 6))
  t0=$(ms)
  start "r-$config" "$rpg" "$rhttp" --restore-from-backup
  wait_for "$rhttp" "d['role'] == 'primary' and not d['restoring'] and d['ready']" 1800
  restore_ms=$(( $(ms) - t0 ))
  as_pg mkdir -p "$work/untar-$config"
  t0=$(ms)
  as_pg tar -xf "$work/tar-$config.tar" -C "$work/untar-$config"
  sync
  untar_ms=$(( $(ms) - t0 ))
  as_pg rm -rf "$work/untar-$config" "$work/tar-$config.tar"

  rate() { awk -v mb="$1" -v ms="$2" 'BEGIN { printf "%.0f", mb * 1000 / (ms > 0 ? ms : 1) }'; }
  results+=("$(printf '%-9s database %5d MB (stored %4d MB)   backup %6d ms = %4s MB/s   tar %6d ms = %4s MB/s' \
    "$config" "$size_mb" "$stored_mb" "$backup_ms" "$(rate "$size_mb" "$backup_ms")" "$tar_ms" "$(rate "$mb" "$tar_ms")")")
  results+=("$(printf '%-9s restore to a serving primary %6d ms   untar %6d ms' "$config" "$restore_ms" "$untar_ms")")
  results+=("$(printf '%-9s archive-push per segment under pgbench -c 4: p50 %s ms   p99 %s ms   (%d segments)' \
    "$config" "$p50" "$p99" "$segs")")
done
echo
echo "bench/backup.sh: pgbench scale $scale, repository on the data's disk"
printf '%s\n' "${results[@]}"
