#!/usr/bin/env bash
# Bundle a CUDA build of zeroth (the binary, the GPU test binaries, mpirun) with the
# shared libraries it needs (OpenMPI and its plugins, yaml-cpp, OpenBLAS, PCRE2,
# Protobuf, libstdc++ ...) into one archive that runs on a GPU machine that has only
# the NVIDIA driver and the CUDA toolkit (cudart, cuBLAS, NCCL are taken from there).
#
#   scripts/gpu-bundle.sh [BUILD_DIR] [OUT_ARCHIVE]
#     BUILD_DIR    a build configured with ZEROTH_CUDA=ON (default: build)
#     OUT_ARCHIVE  default: gpu-bundle/zeroth-gpu.tar.xz (gpu-bundle/ is git-ignored)
#
# On the GPU machine, from a checkout of the same commit (the tests read tests/golden):
#   tar xf zeroth-gpu.tar.xz -C /tmp && /tmp/zeroth-gpu/run-gpu.sh [tests|bench|all]
# run-gpu.sh sets LD_LIBRARY_PATH and OPAL_PREFIX (OpenMPI relocated into the bundle),
# runs every GPU test and the GPU benchmarks, and prints a summary.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
out=${2:-$here/gpu-bundle/zeroth-gpu.tar.xz}
build=$(cd "$build" && pwd)

grep -q '^ZEROTH_CUDA:BOOL=ON' "$build/CMakeCache.txt" ||
  { echo "gpu-bundle: $build is not a CUDA build (configure with -DZEROTH_CUDA=ON)" >&2; exit 2; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/zeroth-gpu
mkdir -p "$root/bin" "$root/tests" "$root/lib"

# Binaries: the CLI and every test executable that has [cuda] cases (plus the MPI
# comm test, which checks the relocated mpirun).
bins=("$build/zeroth")
for t in tensor/test_ops tensor/test_op_grads comm/comm_nccl_test comm/comm_test model/test_model; do
  [[ -x $build/tests/$t ]] && bins+=("$build/tests/$t")
done
cp "${bins[0]}" "$root/bin/"
for b in "${bins[@]:1}"; do cp "$b" "$root/tests/"; done
strip --strip-unneeded "$root"/bin/* "$root"/tests/* 2>/dev/null || true

# OpenMPI launcher, relocated under OPAL_PREFIX (Debian's layout below /usr).
ompi_pkglib=$(ompi_info --path pkglibdir --parsable 2>/dev/null | sed -n 's/^path:pkglibdir://p')
ompi_pkgdata=$(ompi_info --path pkgdatadir --parsable 2>/dev/null | sed -n 's/^path:pkgdatadir://p')
ompi_pkglib=${ompi_pkglib:-/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3}
ompi_pkgdata=${ompi_pkgdata:-/usr/share/openmpi}
cp /usr/bin/orterun /usr/bin/orted "$root/bin/"
ln -s orterun "$root/bin/mpirun"
mkdir -p "$root${ompi_pkglib#/usr}" "$root${ompi_pkgdata#/usr}"
cp "$ompi_pkglib"/*.so "$root${ompi_pkglib#/usr}/"
cp -r "$ompi_pkgdata"/. "$root${ompi_pkgdata#/usr}/"
[[ -d /etc/openmpi ]] && cp -r /etc/openmpi "$root/etc-openmpi"

# Shared libraries: everything the binaries and plugins load, except the C runtime
# (the target's glibc is used) and the CUDA toolkit/driver (the target's).
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libcuda\.so|libcudart|libcublas|libnccl|libnvidia)'
while read -r lib; do
  name=$(basename "$lib")
  [[ $name =~ $skip ]] && continue
  [[ -e $root/lib/$name ]] || cp -L "$lib" "$root/lib/$name"
done < <(for f in "$root"/bin/* "$root"/tests/* "$root${ompi_pkglib#/usr}"/*.so; do
           ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3}'
         done | sort -u)
strip --strip-unneeded "$root"/lib/*.so* 2>/dev/null || true

install -m 755 "$here/scripts/gpu-run.sh" "$root/run-gpu.sh"
git -C "$here" rev-parse HEAD > "$root/COMMIT" 2>/dev/null || echo unknown > "$root/COMMIT"
echo "$here" > "$root/SOURCE_DIR"

mkdir -p "$(dirname "$out")"
tar -C "$stage" -cJf "$out" zeroth-gpu
echo "gpu-bundle: $out ($(du -h "$out" | cut -f1); $(ls "$root/tests" | wc -l) test binaries, $(ls "$root/lib" | wc -l) libraries)"
