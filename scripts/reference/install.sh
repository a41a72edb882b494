#!/usr/bin/env bash
# Installs what scripts/reference/*.py need: Debian's CPU PyTorch and NumPy for /usr/bin/python3.
# Only developers who regenerate tests/golden run this; the C++ build and CI never need PyTorch.
# Must not touch pyenv/pip environments. Idempotent: skips apt when both modules already import.
set -euo pipefail

PY=/usr/bin/python3

if "$PY" -c 'import torch, numpy' >/dev/null 2>&1; then
  echo "install.sh: torch $("$PY" -c 'import torch; print(torch.__version__)') and numpy already available"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends python3 python3-torch python3-numpy

"$PY" -c 'import torch, numpy; print("install.sh: torch", torch.__version__, "numpy", numpy.__version__)'
