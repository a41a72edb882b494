// Strided copy kernel with dtype conversion (up to 6-D).
//
// Owns: the index math from a linear element index to the source and destination
// offsets of two strided views, and the per-element dtype conversion. Must not:
// assume contiguity or alignment beyond the element size.
#include "copy_strided.h"

#include "cuda/cuda_check.h"
#include "kernel_common.cuh"

namespace zeroth {

// ---- kernels ----

// Linear index i (row-major over layout.shape, last dimension fastest) ->
// element offsets in src and dst: offset = sum_d idx_d * stride_d.
__device__ __forceinline__ void copy_offsets(const CopyLayout& layout, int64_t i,
                                             int64_t* src_off, int64_t* dst_off) {
  int64_t s = 0, d = 0;
  for (int dim = layout.ndim - 1; dim >= 0; --dim) {
    const int64_t size = layout.shape[dim];
    const int64_t idx = i % size;
    i /= size;
    s += idx * layout.src_strides[dim];
    d += idx * layout.dst_strides[dim];
  }
  *src_off = s;
  *dst_off = d;
}

// Same dtype: copies the element's bits (elem_size 1, 2, 4 or 8).
__global__ void copy_strided_bits_kernel(const void* src, void* dst, int elem_size,
                                         CopyLayout layout, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t so, dof;
    copy_offsets(layout, i, &so, &dof);
    switch (elem_size) {
      case 2: static_cast<uint16_t*>(dst)[dof] = static_cast<const uint16_t*>(src)[so]; break;
      case 4: static_cast<uint32_t*>(dst)[dof] = static_cast<const uint32_t*>(src)[so]; break;
      case 8: static_cast<uint64_t*>(dst)[dof] = static_cast<const uint64_t*>(src)[so]; break;
      default: static_cast<uint8_t*>(dst)[dof] = static_cast<const uint8_t*>(src)[so]; break;
    }
  }
}

// Float or integer source -> float destination, through fp32.
__global__ void copy_strided_to_float_kernel(const void* src, DType src_dtype, void* dst,
                                             DType dst_dtype, CopyLayout layout, int64_t n) {
  const bool src_is_int = src_dtype == DType::I32 || src_dtype == DType::I64;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t so, dof;
    copy_offsets(layout, i, &so, &dof);
    const float v = src_is_int ? float(load_as_int64(src, src_dtype, so))
                               : load_as_float(src, src_dtype, so);
    store_from_float(dst, dst_dtype, dof, v);
  }
}

// Integer -> integer of another width.
__global__ void copy_strided_int_kernel(const void* src, DType src_dtype, void* dst,
                                        DType dst_dtype, CopyLayout layout, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t so, dof;
    copy_offsets(layout, i, &so, &dof);
    store_from_int64(dst, dst_dtype, dof, load_as_int64(src, src_dtype, so));
  }
}

// ---- launchers ----

void launch_copy_strided(const void* src, DType src_dtype, void* dst, DType dst_dtype,
                         const CopyLayout& layout, cudaStream_t stream) {
  ZT_ASSERT(layout.ndim >= 0 && layout.ndim <= kMaxCopyDims, "copy of %d dimensions", layout.ndim);
  ZT_ASSERT(dtype_is_float(dst_dtype) || !dtype_is_float(src_dtype),
            "copy from %s to %s is not supported", dtype_name(src_dtype), dtype_name(dst_dtype));
  int64_t n = 1;
  for (int d = 0; d < layout.ndim; ++d) n *= layout.shape[d];
  if (n <= 0) return;
  const unsigned blocks = elementwise_blocks(n);
  if (src_dtype == dst_dtype) {
    copy_strided_bits_kernel<<<blocks, kElementwiseThreads, 0, stream>>>(
        src, dst, int(dtype_size(src_dtype)), layout, n);
  } else if (dtype_is_float(dst_dtype)) {
    copy_strided_to_float_kernel<<<blocks, kElementwiseThreads, 0, stream>>>(
        src, src_dtype, dst, dst_dtype, layout, n);
  } else {
    copy_strided_int_kernel<<<blocks, kElementwiseThreads, 0, stream>>>(src, src_dtype, dst,
                                                                        dst_dtype, layout, n);
  }
  ZT_CUDA_CHECK_LAUNCH();
}

}  // namespace zeroth
