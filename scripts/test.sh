#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what is
# missing, builds with CMake (warnings are errors) and runs every test with
# CTest, builds the Meson mirror and runs its unit tests, then builds the unit
# tests with AddressSanitizer + UndefinedBehaviorSanitizer and runs them.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "== CMake build"
scripts/build.sh -DIM_TESTS=ON

echo "== Meson mirror"
if [[ ! -f build-meson/build.ninja ]]; then
  meson setup build-meson meson-compat >/dev/null
fi
meson compile -C build-meson >/dev/null
meson test -C build-meson --print-errorlogs unit

echo "== Unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -G Ninja -DIM_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan --parallel "$(nproc)" --target unit_tests
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 build-asan/tests/unit_tests >/tmp/im-asan-unit.log 2>&1 \
  || { tail -50 /tmp/im-asan-unit.log; exit 1; }
grep -E '^(All tests passed|test cases)' /tmp/im-asan-unit.log

echo "== All tests (CTest)"
cd build
exec ctest --output-on-failure --parallel 2
