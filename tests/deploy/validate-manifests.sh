#!/usr/bin/env bash
# CTest deploy_manifests: the Kubernetes manifests of deploy/kubernetes,
# under their own name and rendered for another, with the Secrets that
# secrets.sh prints, validated against the Kubernetes schemas (npm package
# kubernetes-models, installed into the build tree from package-lock.json)
# and checked for the links between the objects. Where kubectl is at hand,
# its kustomize output must equal what the check built.
#   tests/deploy/validate-manifests.sh WORK_DIR
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:?usage: validate-manifests.sh WORK_DIR}
# Node.js and npm from Debian when missing (some Node.js builds bring their
# own npm, which Debian's npm package would conflict with).
command -v node >/dev/null || "$src/scripts/install-deps.sh" nodejs
command -v npm >/dev/null || "$src/scripts/install-deps.sh" npm
check="$work/manifest-check"
mkdir -p "$check"
cp "$src/tests/deploy/package.json" "$src/tests/deploy/package-lock.json" "$src/tests/deploy/validate.mjs" "$check/"
if ! cmp -s "$check/package-lock.json" "$check/node_modules/.package-lock.json" 2>/dev/null; then
  (cd "$check" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

run() {  # DIR NAME
  local dir=$1 name=$2
  "$src/deploy/kubernetes/secrets.sh" "$name" --superuser >"$work/secrets-$name.yaml"
  local kustomized=""
  if command -v kubectl >/dev/null && kubectl kustomize "$dir/with-superuser" >"$work/kustomized-$name.yaml" 2>/dev/null; then
    kustomized="$work/kustomized-$name.yaml"
  fi
  (cd "$check" && node validate.mjs "$dir" "$name" "$work/secrets-$name.yaml" $kustomized)
}

echo "== deploy/kubernetes as it is (cluster demo)"
run "$src/deploy/kubernetes" demo
echo "== rendered for a cluster named orders"
rm -rf "$work/orders"
"$src/deploy/kubernetes/render.sh" orders "$work/orders"
if grep -rqw demo "$work/orders"; then
  grep -rnw demo "$work/orders"
  echo "FAIL render.sh left the old name behind"
  exit 1
fi
run "$work/orders" orders
# A name that is no DNS label is refused before anything is written.
if "$src/deploy/kubernetes/render.sh" "Bad_Name" "$work/bad" 2>/dev/null || [[ -e $work/bad ]]; then
  echo "FAIL render.sh accepted Bad_Name"
  exit 1
fi
echo "ok   render.sh refuses a name that is not a DNS label"
