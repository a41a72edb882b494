// Launchers for kernels/fill.cu: set every element of a contiguous buffer to one
// value. Plain C++ (no CUDA headers beyond the runtime API) so src/cuda/ can call it.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "zeroth/dtype.h"

namespace zeroth {

// x[i] = value for i in [0, n), converted to `dtype` as the CPU backend does:
// float dtypes via float (bf16/f16 rounded to nearest even), integers by truncation.
void launch_fill(void* x /* (n) */, DType dtype, int64_t n, double value, cudaStream_t stream);

// cudaSuccess when this process has a kernel image for the current device;
// otherwise the runtime's error (e.g. cudaErrorNoKernelImageForDevice).
cudaError_t probe_kernel_image();

}  // namespace zeroth
