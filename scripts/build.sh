#!/usr/bin/env bash
# Configures and builds the CMake tree in build/ (Release with debug info).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DIM_WERROR=ON "$@" >/dev/null
cmake --build build --parallel "$(nproc)"
