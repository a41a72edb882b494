// Launchers for kernels/elementwise.cu: element-wise float ops on contiguous buffers.
// Every operand may be F32, BF16 or F16 independently; math is in fp32.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "zeroth/dtype.h"

namespace zeroth {

// y[i] = a * x[i] + b * y[i], i in [0, n). With b == 0, y is not read (as BLAS
// and the CPU backend: stale NaNs in y are dropped).
void launch_axpby(float a, const void* x /* (n) */, DType x_dtype, float b, void* y /* (n) */,
                  DType y_dtype, int64_t n, cudaStream_t stream);

// x[i] *= a, i in [0, n).
void launch_scale(void* x /* (n) */, DType dtype, int64_t n, float a, cudaStream_t stream);

// c = beta * c over `batch` strided row-major (rows, cols) matrices (row stride ld,
// batch stride batch_stride, in elements); beta == 0 writes zeros without reading.
void launch_scale_matrix_stack(void* c /* (batch, rows, cols) strided */, DType dtype,
                               int64_t batch, int64_t rows, int64_t cols, int64_t ld,
                               int64_t batch_stride, float beta, cudaStream_t stream);

enum class BinaryOp : uint8_t { Add = 0, Mul = 1 };

// out[i] = x[i] op y[i % ny], i in [0, nx): y is x's trailing dimensions, broadcast
// over the leading ones (ny divides nx; ny == nx is the plain case). out may alias x.
void launch_binary_broadcast(BinaryOp op, const void* x /* (nx) */, DType x_dtype,
                             const void* y /* (ny) */, DType y_dtype, void* out /* (nx) */,
                             DType out_dtype, int64_t nx, int64_t ny, cudaStream_t stream);

}  // namespace zeroth
