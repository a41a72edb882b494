// gpu_probe.h: asks the CUDA runtime how many devices there are, without failing.
#include "zeroth/gpu_probe.h"

#ifdef ZEROTH_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

#include "zeroth/error.h"

namespace zeroth {

int gpu_count() {
#ifdef ZEROTH_HAVE_CUDA
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky error
    return 0;
  }
  return n;
#else
  return 0;
#endif
}

bool gpu_available(std::string* why) {
#ifdef ZEROTH_HAVE_CUDA
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    if (why) *why = strformat("cudaGetDeviceCount: %s (error %d)", cudaGetErrorString(err), int(err));
    return false;
  }
  if (n == 0) {
    if (why) *why = "cudaGetDeviceCount found 0 devices";
    return false;
  }
  return true;
#else
  if (why) *why = "this build has no CUDA backend (ZEROTH_CUDA=OFF)";
  return false;
#endif
}

}  // namespace zeroth
