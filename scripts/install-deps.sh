#!/usr/bin/env bash
# Installs every Debian 12 package zeroth needs to build, test and run.
# Non-interactive and idempotent; run as root (or with sudo available).
# The CUDA toolkit (nvcc, cuBLAS, NCCL) is not a Debian package: where it is
# installed at /usr/local/cuda the build picks it up, otherwise the CUDA
# backend is left out.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libopenmpi-dev openmpi-bin
  libprotobuf-dev protobuf-compiler
  libyaml-cpp-dev
  catch2
  libopenblas-dev
  nlohmann-json3-dev
  libpcre2-dev
  bubblewrap
  python3 python3-numpy
)

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all ${#packages[@]} packages already installed"
fi
