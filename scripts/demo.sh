#!/usr/bin/env bash
# Installs the dependencies, builds zeroth and runs the default demo.
# (Until the R1-Zero demo lands with the GRPO trainer, the demo prints the build:
# version, backends and library versions.)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
bash scripts/install-deps.sh
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD_DIR" -j"$(nproc)" --target zeroth
"$BUILD_DIR"/zeroth version
