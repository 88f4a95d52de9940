#!/usr/bin/env bash
# Installs, from Debian's archive, whatever the build, the tests and the demo
# need and the machine lacks. Safe to run again: it only installs what is missing.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config meson
  libboost-dev libssl-dev libpq-dev libcurl4-openssl-dev nlohmann-json3-dev catch2 libcli11-dev
  libspdlog-dev libfmt-dev prometheus-cpp-dev
  postgresql postgresql-client pgbackrest util-linux procps iproute2 curl openssl
)
packages+=("$@")

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
# Debian's postgresql package would start a cluster of its own; we only want the binaries.
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
