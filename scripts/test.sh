#!/usr/bin/env bash
# Installs the dependencies, builds zeroth (Release; CUDA where nvcc exists) and runs
# every test with CTest. GPU tests skip with a printed reason where no GPU is present.
#   bash scripts/test.sh                 # everything
#   BUILD_DIR=build-asan CMAKE_ARGS="-DZEROTH_SANITIZE=address,undefined" bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}

bash scripts/install-deps.sh
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-Release} ${CMAKE_ARGS:-}
cmake --build "$BUILD_DIR" -j"$JOBS"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$JOBS" ${CTEST_ARGS:-}
