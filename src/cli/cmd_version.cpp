// `zeroth version`: the version, compiled backends, and the versions of the
// libraries this binary was built with (read from their headers at compile time).
#include <cblas.h>
#include <mpi.h>
#include <openblas_config.h>

#include <cstdio>
#include <string>

#ifdef ZEROTH_HAVE_CUDA
#include <cublas_api.h>
#include <cuda_runtime_api.h>
#include <nccl.h>
#endif

#include "cli/cli.h"
#include "zeroth/error.h"
#include "zeroth/gpu_probe.h"

namespace zeroth {
namespace cli {

int cmd_version(const std::vector<std::string>& argv) {
  Args args("version", argv, {}, {});
  if (args.help()) {
    std::printf("usage: zeroth version\n\nPrints the version, the compiled backends and the\n"
                "CUDA, cuBLAS, NCCL, MPI and OpenBLAS versions zeroth was built with.\n");
    return 0;
  }
  std::printf("zeroth %s\n", ZEROTH_VERSION);
#ifdef ZEROTH_HAVE_CUDA
  std::printf("backends: cpu cuda\n");
  std::printf("CUDA runtime: %d.%d (built with)\n", CUDART_VERSION / 1000, (CUDART_VERSION % 1000) / 10);
  std::printf("cuBLAS: %d.%d.%d\n", CUBLAS_VER_MAJOR, CUBLAS_VER_MINOR, CUBLAS_VER_PATCH);
  std::printf("NCCL: %d.%d.%d\n", NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH);
  std::string why;
  int n = gpu_count();
  if (n > 0) std::printf("GPUs visible: %d\n", n);
  else if (!gpu_available(&why)) std::printf("GPUs visible: 0 (%s)\n", why.c_str());
#else
  std::printf("backends: cpu\n");
  std::printf("CUDA: not built (ZEROTH_CUDA=OFF)\n");
#endif
#if defined(OMPI_MAJOR_VERSION)
  std::printf("MPI: Open MPI %d.%d.%d (MPI %d.%d)\n", OMPI_MAJOR_VERSION, OMPI_MINOR_VERSION,
              OMPI_RELEASE_VERSION, MPI_VERSION, MPI_SUBVERSION);
#else
  std::printf("MPI: MPI %d.%d\n", MPI_VERSION, MPI_SUBVERSION);
#endif
  std::string ob = OPENBLAS_VERSION;
  while (!ob.empty() && ob.front() == ' ') ob.erase(ob.begin());
  while (!ob.empty() && ob.back() == ' ') ob.pop_back();
  // The kernels OpenBLAS picked for this CPU at run time (DYNAMIC_ARCH): an older OpenBLAS
  // runs a CPU it does not know with an older core's kernels (Debian's 0.3.21 picks Haswell
  // on an AVX-512 AMD EPYC of family 26; OPENBLAS_CORETYPE overrides it, docs/perf.md).
  const char* core = openblas_get_corename();
  std::printf("OpenBLAS: %s (kernels: %s)\n", ob.c_str(), core ? core : "unknown");
  return 0;
}

}  // namespace cli
}  // namespace zeroth
