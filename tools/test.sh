#!/usr/bin/env bash
# The test suite: install dependencies, build with warnings as errors, run ctest.
# Long tests (training to full quality) are behind RC_LONG_TESTS=1.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Release -DRC_WERROR=ON \
      -DRC_LONG_TESTS="${RC_LONG_TESTS:-OFF}" >/dev/null
cmake --build build-test -j"$(nproc)"
cd build-test && ctest --output-on-failure -j2 "$@"
