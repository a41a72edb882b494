// Fill kernels: write one bit pattern into every element of a contiguous buffer.
//
// Owns: fill for every dtype. The host computes the element's bits once (with the
// same conversions as the CPU backend, dtype.h), so the result is bit-identical to
// the CPU's; the kernels only store 2-, 4- or 8-byte patterns. Must not: convert
// values on the device.
#include "fill.h"

#include <cstring>

#include "cuda/cuda_check.h"
#include "kernel_common.cuh"

namespace zeroth {

// ---- kernels ----

__global__ void fill_u16_kernel(uint16_t* x, int64_t n, uint16_t bits) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    x[i] = bits;
}

__global__ void fill_u32_kernel(uint32_t* x, int64_t n, uint32_t bits) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    x[i] = bits;
}

__global__ void fill_u64_kernel(uint64_t* x, int64_t n, uint64_t bits) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    x[i] = bits;
}

// ---- launchers ----

void launch_fill(void* x, DType dtype, int64_t n, double value, cudaStream_t stream) {
  if (n <= 0) return;
  const unsigned blocks = elementwise_blocks(n);
  switch (dtype) {
    case DType::F32: {
      float v = float(value);
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      fill_u32_kernel<<<blocks, kElementwiseThreads, 0, stream>>>(static_cast<uint32_t*>(x), n,
                                                                  bits);
      break;
    }
    case DType::BF16:
      fill_u16_kernel<<<blocks, kElementwiseThreads, 0, stream>>>(static_cast<uint16_t*>(x), n,
                                                                  float_to_bf16(float(value)));
      break;
    case DType::F16:
      fill_u16_kernel<<<blocks, kElementwiseThreads, 0, stream>>>(static_cast<uint16_t*>(x), n,
                                                                  float_to_f16(float(value)));
      break;
    case DType::I32: {
      int32_t v = int32_t(value);
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      fill_u32_kernel<<<blocks, kElementwiseThreads, 0, stream>>>(static_cast<uint32_t*>(x), n,
                                                                  bits);
      break;
    }
    case DType::I64: {
      int64_t v = int64_t(value);
      uint64_t bits;
      std::memcpy(&bits, &v, 8);
      fill_u64_kernel<<<blocks, kElementwiseThreads, 0, stream>>>(static_cast<uint64_t*>(x), n,
                                                                  bits);
      break;
    }
    case DType::F8E4M3:
      ZT_ASSERT(false, "fill: F8_E4M3 is a storage dtype only");
  }
  ZT_CUDA_CHECK_LAUNCH();
}

cudaError_t probe_kernel_image() {
  cudaFuncAttributes attr;
  cudaError_t err = cudaFuncGetAttributes(&attr, fill_u32_kernel);
  if (err != cudaSuccess) (void)cudaGetLastError();  // clear it; the caller reports it
  return err;
}

}  // namespace zeroth
