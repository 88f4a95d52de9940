#!/usr/bin/env bash
# Makes the host folders for the three instances, owned by the image's
# postgres user (uid and gid 999) and private to it (no chmod 777), renders
# the kind configuration mounting them into the node, and creates the kind
# cluster `pg` (unless it exists). Existing folders and their data are kept.
#   deploy/kubernetes/examples/kind-hostpath/create.sh [PGDATA_ROOT (default ~/pgdata)]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=${1:-$HOME/pgdata}
sudo=""; [[ $(id -u) -ne 0 ]] && sudo=sudo
for n in 0 1 2; do
  $sudo install -d -o 999 -g 999 -m 0700 "$root/instance-$n"
done
root=$(cd "$root" && pwd)
sed "s|PGDATA_ROOT|$root|" "$here/kind-config.yaml.in" >"$root/kind-config.yaml"
if ! kind get clusters 2>/dev/null | grep -qx pg; then
  kind create cluster --name pg --config "$root/kind-config.yaml"
fi
echo "host folders: $root/instance-{0,1,2} (uid 999); next: the Secrets (deploy/kubernetes/secrets.sh), then kubectl apply -k $here"
