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
status=0
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$JOBS" ${CTEST_ARGS:-} || status=$?
# Say why tests were skipped (GPU tests print the reason; CTest hides it).
log="$BUILD_DIR/Testing/Temporary/LastTest.log"
if [[ -f $log ]] && grep -q '^SKIPPED:' "$log"; then
  echo "Skipped tests said:"
  grep '^SKIPPED:' "$log" | sort | uniq -c | sed 's/^/  /'
fi
exit $status
