// Launcher for kernels/copy_strided.cu: element-wise copy between two strided
// views of the same shape, converting dtype.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "zeroth/dtype.h"

namespace zeroth {

constexpr int kMaxCopyDims = 6;

// Shape and the two operands' strides (in elements), passed to the kernel by value.
// Dimensions [0, ndim) are used; ndim == 0 is a single element.
struct CopyLayout {
  int ndim = 0;
  int64_t shape[kMaxCopyDims] = {};
  int64_t src_strides[kMaxCopyDims] = {};
  int64_t dst_strides[kMaxCopyDims] = {};
};

// dst[idx] = convert(src[idx]) for every index idx of layout.shape. Conversions:
// same dtype (bits copied), float -> float (via fp32, round to nearest even),
// int -> int (an I64 out of I32 range wraps), int -> float. float -> int is not
// allowed.
// src and dst must not overlap.
void launch_copy_strided(const void* src, DType src_dtype, void* dst, DType dst_dtype,
                         const CopyLayout& layout, cudaStream_t stream);

}  // namespace zeroth
