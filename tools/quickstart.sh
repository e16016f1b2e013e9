#!/usr/bin/env bash
# The main job: install dependencies, build, train the tiny preset on the
# built-in synthetic clips (CPU), then evaluate on held-out clips.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
# --resume auto: run again, it continues an interrupted run or, when
# runs/tiny is complete, evaluates it again
build/recompose train configs/tiny.ini --out runs/tiny --resume auto --eval "$@"
