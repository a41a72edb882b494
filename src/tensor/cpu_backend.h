// CpuBackend: the reference implementation of Backend (backend.h) on host memory.
//
// Owns: the class declaration and the small helpers its op files share (argument
// checks, bulk dtype conversion, a deterministic parallel-for over fixed blocks).
// Ops are split by kind: cpu_backend.cpp (memory, fill, threads), cpu_gemm.cpp
// (OpenBLAS), cpu_copy.cpp (strided copies), cpu_elementwise.cpp, cpu_reduce.cpp.
// Must not: hold global state beyond the thread counts make_cpu_backend sets for
// OpenMP and OpenBLAS; results must not depend on the number of threads except
// through OpenBLAS's own GEMM blocking.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "zeroth/backend.h"

namespace zeroth {

class CpuBackend : public Backend {
 public:
  explicit CpuBackend(int threads);  // threads >= 1

  Device device() const override { return Device::cpu(); }
  std::string name() const override;
  int threads() const { return threads_; }

  void* allocate(size_t bytes) override;
  void deallocate(void* ptr) override;
  void copy_to_host(void* dst_host, const void* src_dev, size_t bytes) override;
  void copy_from_host(void* dst_dev, const void* src_host, size_t bytes) override;
  void copy_on_device(void* dst_dev, const void* src_dev, size_t bytes) override;
  void synchronize() override {}

  void gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c,
            float alpha = 1.0f, float beta = 0.0f) override;
  void fill(Tensor& x, double value) override;
  void copy(const Tensor& src, Tensor& dst) override;
  void axpby(float a, const Tensor& x, float b, Tensor& y) override;
  void scale(Tensor& x, float a) override;
  void add(const Tensor& x, const Tensor& y, Tensor& out) override;
  void mul(const Tensor& x, const Tensor& y, Tensor& out) override;
  void sum_last(const Tensor& x, Tensor& out) override;
  void max_last(const Tensor& x, Tensor& out) override;
  void sum_squares(const Tensor& x, Tensor& out, bool accumulate) override;
  void softmax_last(const Tensor& x, Tensor& out) override;
  void log_softmax_last(const Tensor& x, Tensor& out) override;

 private:
  int threads_;
};

namespace cpu {

// Elements per block in blocked loops. Fixed, so block boundaries (and with them
// any per-block partial results) never depend on the thread count.
constexpr int64_t kBlock = 4096;

// Calls fn(begin, end) for [0, n) cut into blocks of `block` elements, spread over
// `threads` OpenMP threads. fn must only touch its own block's outputs.
void parallel_blocks(int threads, int64_t n, int64_t block,
                     const std::function<void(int64_t begin, int64_t end)>& fn);

// Bulk conversions between a float dtype and f32 (n elements, contiguous).
void to_f32(const void* src, DType dtype, int64_t n, float* dst);
void from_f32(const float* src, DType dtype, int64_t n, void* dst);

// Argument checks shared by the ops; each aborts (ZT_ASSERT) naming `op`.
void check_cpu(const Tensor& t, const char* op, const char* arg);
void check_float(const Tensor& t, const char* op, const char* arg);
void check_contiguous(const Tensor& t, const char* op, const char* arg);
void check_same_shape(const Tensor& x, const Tensor& y, const char* op);
// x (..., D) and out (...) for the row ops that reduce the last dimension.
void check_reduced_shape(const Tensor& x, const Tensor& out, const char* op);

}  // namespace cpu
}  // namespace zeroth
