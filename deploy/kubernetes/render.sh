#!/usr/bin/env bash
# Copies these manifests for a cluster of another name (default: demo):
#   deploy/kubernetes/render.sh orders /tmp/orders && kubectl apply -k /tmp/orders/cluster
# Every object, label and host name that says "demo" says NAME instead.
set -euo pipefail
name=${1:?usage: render.sh CLUSTER_NAME OUT_DIR}
out=${2:?usage: render.sh CLUSTER_NAME OUT_DIR}
# A DNS label, short enough for "<name>-controller" and the volume claims.
[[ $name =~ ^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$ ]] || {
  echo "render.sh: '$name' must be a lowercase DNS label of at most 40 characters" >&2
  exit 2
}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
(cd "$here" && find . -name '*.yaml' -print0) | while IFS= read -r -d '' f; do
  mkdir -p "$out/$(dirname "$f")"
  sed -E "s/\bdemo\b/$name/g" "$here/$f" >"$out/$f"
done
