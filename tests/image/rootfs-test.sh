#!/usr/bin/env bash
# The container image's recipe without a Docker engine: debootstrap a Debian
# 12 root (minbase), run docker/install-runtime.sh inside it as the
# Dockerfile's runtime stage does, copy the two binaries in, then start
# `instance-manager run` from that root as PID 1 of a new PID namespace, as
# user postgres with the image's environment: it must bootstrap an empty
# data directory and answer /readyz, and stop cleanly on SIGTERM.
# Needs root and Debian's archive; IM_SKIP_IMAGE_TEST=1 skips it (it
# downloads about 100 MB and takes a few minutes).
# Usage: tests/image/rootfs-test.sh BIN_DIR   (where the built binaries are)
set -euo pipefail
cd "$(dirname "$0")/../.."
# A skip exits 77: CTest reports it as skipped (SKIP_RETURN_CODE), not passed.
if [[ ${IM_SKIP_IMAGE_TEST:-0} == 1 ]]; then echo "skipped: IM_SKIP_IMAGE_TEST=1"; exit 77; fi
if [[ $(id -u) -ne 0 ]]; then echo "skipped: needs root (debootstrap, chroot, namespaces)"; exit 77; fi
bin_dir=$(cd "$1" && pwd)
mirror=${IM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Ports as the integration tests claim theirs (tests/integration/harness.cpp,
# free_port): below the kernel's ephemeral range, each held by a lock file
# while this script runs, so tests CTest runs beside it never take them.
claim_port() {
  mkdir -p /tmp/im-test-ports && chmod 1777 /tmp/im-test-ports
  local p fd
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 12000 ))
    exec {fd}<>"/tmp/im-test-ports/$p"
    if flock -n "$fd" && [[ -z $(ss -Hltn "sport = :$p") ]]; then claimed=$p; return 0; fi
    exec {fd}<&-
  done
  echo "no free port"; exit 1
}
claim_port; http_port=$claimed
claim_port; pg_port=$claimed

root=$(mktemp -d /tmp/im-rootfs-XXXXXX)
chmod 755 "$root"   # it becomes /: everyone must be able to enter it
manager=""
cleanup() {
  [[ -n $manager ]] && kill -KILL "$manager" 2>/dev/null || true
  rm -rf "$root"
}
trap cleanup EXIT

command -v debootstrap >/dev/null || scripts/install-deps.sh debootstrap
echo "== debootstrap bookworm (minbase) into $root"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || { tail -20 "$root.log"; exit 1; }
rm -f "$root.log"
echo "== docker/install-runtime.sh inside it"
install -m 755 docker/install-runtime.sh "$root/usr/local/sbin/install-runtime.sh"
mount -t proc proc "$root/proc"
chroot "$root" /usr/local/sbin/install-runtime.sh 15
umount "$root/proc"
# The manifests' runAsUser and fsGroup (deploy/kubernetes) count on these.
uid=$(chroot "$root" id -u postgres) gid=$(chroot "$root" id -g postgres)
[[ $uid == 999 && $gid == 999 ]] || { echo "postgres is $uid:$gid, not 999:999"; exit 1; }
# Archiving, backups and restore run pgBackRest from the image.
chroot "$root" pgbackrest version | grep -q '^pgBackRest 2\.' || { echo "no pgbackrest in the image"; exit 1; }
install -m 755 "$bin_dir/instance-manager" "$bin_dir/instance-probe" "$root/usr/local/bin/"

echo "== instance-manager run as PID 1 of a new PID namespace, from that root"
# The image's environment (docker/Dockerfile), with ports of our own.
unshare --pid --fork --mount --kill-child sh -c "
  mount -t proc proc '$root/proc' && mount -t tmpfs -o mode=1777 tmpfs '$root/dev/shm' &&
  exec chroot --userspec=postgres:postgres '$root' env -i HOME=/var/lib/postgresql \
    PATH=/usr/local/bin:/usr/bin:/bin PGDATA=/var/lib/postgresql/data/pgdata \
    IM_PG_BIN=/usr/lib/postgresql/15/bin IM_SOCKET_DIR=/var/run/postgresql \
    IM_HTTP_LISTEN=127.0.0.1:$http_port IM_PG_PORT=$pg_port IM_NAME=image-test \
    instance-manager run" >"$root/../$(basename "$root").manager.log" 2>&1 &
manager=$!
log="$root/../$(basename "$root").manager.log"
ready=0
for _ in $(seq 1 120); do
  if "$bin_dir/instance-probe" --url "http://127.0.0.1:$http_port" --timeout 1s readyz 2>/dev/null; then ready=1; break; fi
  kill -0 "$manager" 2>/dev/null || break
  sleep 0.5
done
if [[ $ready -ne 1 ]]; then echo "not ready; the manager's log:"; tail -30 "$log"; rm -f "$log"; exit 1; fi
pid1=$(grep -o '"pid":[0-9]*' "$log" | head -1)
echo "ready; the manager logged $pid1 (its PID in its namespace)"
[[ $pid1 == '"pid":1' ]] || { echo "the manager is not PID 1"; exit 1; }
# SIGTERM to PID 1 itself (unshare would answer a signal by killing it).
kill -TERM "$(cat "/proc/$manager/task/$manager/children")"
wait "$manager" && code=0 || code=$?
rm -f "$log"
manager=""
[[ $code -eq 0 ]] || { echo "exit code $code after SIGTERM"; exit 1; }
echo "ok: the image's root filesystem bootstraps PostgreSQL under instance-manager as PID 1"
