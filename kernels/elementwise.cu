// Element-wise kernels: axpby, scale, add/mul with trailing-dimension broadcast, and
// the strided matrix-stack scale gemm needs when it has no product to add.
//
// Owns: the per-element math of these ops over contiguous buffers (index i is the
// flat element index). Must not: handle strides (copy_strided.cu does) or reduce.
#include "elementwise.h"

#include "cuda/cuda_check.h"
#include "kernel_common.cuh"

namespace zeroth {

// ---- kernels ----

__global__ void axpby_kernel(float a, const void* x, DType x_dtype, float b, void* y,
                             DType y_dtype, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float ax = a * load_as_float(x, x_dtype, i);
    store_from_float(y, y_dtype, i, b == 0.0f ? ax : ax + b * load_as_float(y, y_dtype, i));
  }
}

__global__ void scale_kernel(void* x, DType dtype, int64_t n, float a) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    store_from_float(x, dtype, i, a * load_as_float(x, dtype, i));
}

// c[m, r, j] = beta * c[m, r, j], or 0 when beta == 0 (NaNs dropped), for the
// (batch, rows, cols) matrices at c + m * batch_stride + r * ld + j.
__global__ void scale_matrix_stack_kernel(void* c, DType dtype, int64_t rows, int64_t cols,
                                          int64_t ld, int64_t batch_stride, int64_t n, float beta) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t j = i % cols;
    const int64_t r = (i / cols) % rows;
    const int64_t m = i / (cols * rows);
    const int64_t off = m * batch_stride + r * ld + j;
    store_from_float(c, dtype, off, beta == 0.0f ? 0.0f : beta * load_as_float(c, dtype, off));
  }
}

// Each thread reads x[i] and y[i % ny] before writing out[i], so out may alias x.
__global__ void binary_broadcast_kernel(BinaryOp op, const void* x, DType x_dtype, const void* y,
                                        DType y_dtype, void* out, DType out_dtype, int64_t nx,
                                        int64_t ny) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < nx;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float xv = load_as_float(x, x_dtype, i);
    const float yv = load_as_float(y, y_dtype, ny == nx ? i : i % ny);
    store_from_float(out, out_dtype, i, op == BinaryOp::Add ? xv + yv : xv * yv);
  }
}

// ---- launchers ----

void launch_axpby(float a, const void* x, DType x_dtype, float b, void* y, DType y_dtype,
                  int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  axpby_kernel<<<elementwise_blocks(n), kElementwiseThreads, 0, stream>>>(a, x, x_dtype, b, y,
                                                                          y_dtype, n);
  ZT_CUDA_CHECK_LAUNCH();
}

void launch_scale(void* x, DType dtype, int64_t n, float a, cudaStream_t stream) {
  if (n <= 0) return;
  scale_kernel<<<elementwise_blocks(n), kElementwiseThreads, 0, stream>>>(x, dtype, n, a);
  ZT_CUDA_CHECK_LAUNCH();
}

void launch_scale_matrix_stack(void* c, DType dtype, int64_t batch, int64_t rows, int64_t cols,
                               int64_t ld, int64_t batch_stride, float beta,
                               cudaStream_t stream) {
  const int64_t n = batch * rows * cols;
  if (n <= 0) return;
  scale_matrix_stack_kernel<<<elementwise_blocks(n), kElementwiseThreads, 0, stream>>>(
      c, dtype, rows, cols, ld, batch_stride, n, beta);
  ZT_CUDA_CHECK_LAUNCH();
}

void launch_binary_broadcast(BinaryOp op, const void* x, DType x_dtype, const void* y,
                             DType y_dtype, void* out, DType out_dtype, int64_t nx, int64_t ny,
                             cudaStream_t stream) {
  if (nx <= 0) return;
  ZT_ASSERT(ny > 0 && nx % ny == 0, "broadcast of %lld elements over %lld", (long long)ny,
            (long long)nx);
  binary_broadcast_kernel<<<elementwise_blocks(nx), kElementwiseThreads, 0, stream>>>(
      op, x, x_dtype, y, y_dtype, out, out_dtype, nx, ny);
  ZT_CUDA_CHECK_LAUNCH();
}

}  // namespace zeroth
