// Backend: the one op interface. CPU (reference: OpenBLAS + OpenMP threads) and
// CUDA (kernels/, cuBLAS) implement it; model, rollout and RL code call only this.
//
// Owns: the list of ops and their exact semantics. Each op is synchronous in
// program order with respect to the backend's queue (CUDA: its stream); results
// are visible to later ops on the same backend without an explicit sync. Reading a
// result on the host needs copy_to_host (which waits).
//
// Adding an op (as in ggml's test-backend-ops):
//   1. declare it here with its shapes, dtypes and semantics;
//   2. implement it in src/tensor/cpu_*.cpp (the reference) and in
//      src/cuda/ + kernels/ (the CUDA twin);
//   3. add one case to tests/tensor/test_ops.cpp, which checks every backend
//      against a float64 reference with a stated tolerance.
//
// Conventions: float ops accept F32 and BF16 (and F16 where noted), computing in
// fp32; an op's inputs and outputs live on this backend's device; unless an op says
// otherwise, tensors must be contiguous. Misuse (wrong device, shape or dtype) is a
// bug in the caller and aborts with a message (ZT_ASSERT).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "zeroth/tensor.h"

namespace zeroth {

class Backend {
 public:
  virtual ~Backend() = default;

  virtual Device device() const = 0;
  // Human-readable, e.g. "cpu (2 threads, OpenBLAS 0.3.21)" or "cuda:0 (NVIDIA H100)".
  virtual std::string name() const = 0;

  // ---- memory ----
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* ptr) = 0;
  // Synchronous copies between host memory and this device (or within it).
  virtual void copy_to_host(void* dst_host, const void* src_dev, size_t bytes) = 0;
  virtual void copy_from_host(void* dst_dev, const void* src_host, size_t bytes) = 0;
  virtual void copy_on_device(void* dst_dev, const void* src_dev, size_t bytes) = 0;
  // Waits until every queued op has finished (no-op on CPU).
  virtual void synchronize() = 0;

  // ---- ops ----

  // C = alpha * op(A) @ op(B) + beta * C, accumulated in fp32.
  //   op(A): (M, K) — A is stored (M, K), or (K, M) when trans_a.
  //   op(B): (K, N) — B is stored (K, N), or (N, K) when trans_b.
  //   C: (M, N).
  // Batched: any of A, B, C may carry a leading batch dimension (batch, rows, cols);
  // a 2-D operand is broadcast across the batch (batch stride 0). Every operand's
  // last dimension must be contiguous; its row stride (leading dimension) and batch
  // stride may be anything, so narrowed views work without copies.
  // dtypes: A and B both F32 or both BF16; C F32 or BF16. With beta == 0, C's
  // previous contents are ignored (NaNs included).
  virtual void gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c,
                    float alpha = 1.0f, float beta = 0.0f) = 0;

  // Every element of x = value (converted to x's dtype). Any dtype.
  virtual void fill(Tensor& x, double value) = 0;

  // dst = src elementwise, converting dtype (float <-> float, int <-> int, int -> float).
  // Same shape; both may have any strides (up to 6 dimensions).
  virtual void copy(const Tensor& src, Tensor& dst) = 0;

  // y = a * x + b * y. Same shape, float dtypes (x and y may differ). With b == 0, y is
  // not read (NaNs in y are dropped, as in BLAS).
  virtual void axpby(float a, const Tensor& x, float b, Tensor& y) = 0;

  // x *= a. Float dtypes.
  virtual void scale(Tensor& x, float a) = 0;

  // out = x + y and out = x * y. y's shape equals x's, or the trailing dimensions of
  // x's (broadcast over the leading ones, e.g. x (N, D), y (D)). out has x's shape
  // and may alias x. Float dtypes.
  virtual void add(const Tensor& x, const Tensor& y, Tensor& out) = 0;
  virtual void mul(const Tensor& x, const Tensor& y, Tensor& out) = 0;

  // out[..] = sum / max of x over its last dimension. x (..., D) -> out (...), out F32.
  virtual void sum_last(const Tensor& x, Tensor& out) = 0;
  virtual void max_last(const Tensor& x, Tensor& out) = 0;

  // out[0] (+)= sum of x[i]^2 over all elements, fp32 accumulation, deterministic
  // order (independent of thread count). out: F32 with one element. With
  // accumulate, adds to out's value (for a global gradient norm over many tensors).
  virtual void sum_squares(const Tensor& x, Tensor& out, bool accumulate) = 0;

  // Row-wise softmax and log-softmax over the last dimension, in fp32 internally.
  // out has x's shape (may alias x). A row that is all -inf gives NaN (as PyTorch).
  virtual void softmax_last(const Tensor& x, Tensor& out) = 0;
  virtual void log_softmax_last(const Tensor& x, Tensor& out) = 0;
};

// The CPU backend. threads <= 0: all cores (OpenMP's default). Sets the threads of
// OpenBLAS and OpenMP for this process.
std::unique_ptr<Backend> make_cpu_backend(int threads = 0);

}  // namespace zeroth
