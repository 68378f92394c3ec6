#!/usr/bin/env bash
# Configures and builds sluice (Release with debug info) into ./build.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}" \
  -DSLUICE_TEST_PYTHON="${SLUICE_TEST_PYTHON:-python3}" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
