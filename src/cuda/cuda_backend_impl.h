// CudaBackend: the Backend (backend.h) on one CUDA device, private to src/cuda/.
//
// Owns: the device's stream (non-blocking; every op, copy, allocation and free is
// enqueued on it, so program order on the stream is the backend's queue order),
// the cuBLAS handle bound to that stream with its workspace, and small scratch
// buffers. Memory comes from the device's stream-ordered pool (cudaMallocAsync /
// cudaFreeAsync on the stream). Must not: synchronise with the host except in
// copy_to_host, copy_from_host, synchronize and the destructor.
//
// Split: cuda_backend.cpp (lifetime, memory, copies), cuda_gemm.cpp (gemm),
// cuda_ops.cpp (the element-wise, reduction and softmax ops over kernels/).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <string>

#include "elementwise.h"  // kernels/: BinaryOp
#include "zeroth/backend.h"

namespace zeroth {

class CudaBackend final : public Backend {
 public:
  // Throws RuntimeError naming the device when it cannot be used.
  explicit CudaBackend(int device_index);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  Device device() const override { return Device::cuda(device_index_); }
  std::string name() const override { return name_; }

  void* allocate(size_t bytes) override;
  void deallocate(void* ptr) override;
  void copy_to_host(void* dst_host, const void* src_dev, size_t bytes) override;
  void copy_from_host(void* dst_dev, const void* src_host, size_t bytes) override;
  void copy_on_device(void* dst_dev, const void* src_dev, size_t bytes) override;
  void synchronize() override;

  void gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c, float alpha,
            float beta) override;
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

  cudaStream_t stream() const { return stream_; }

 private:
  // Makes this backend's device current for the calling thread (cheap; every
  // public entry point calls it, so several backends can share a thread).
  void activate() const;
  // Releases what the constructor created (also on a failed construction).
  void release() noexcept;
  // Aborts unless t is defined and lives on this backend's device.
  void require_here(const Tensor& t, const char* op, const char* arg) const;
  void binary_op(BinaryOp op, const Tensor& x, const Tensor& y, Tensor& out, const char* name);
  void softmax_op(const Tensor& x, Tensor& out, bool log_softmax, const char* name);

  int device_index_;
  std::string name_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  void* cublas_workspace_ = nullptr;       // kCublasWorkspaceBytes
  float* sum_squares_partials_ = nullptr;  // (kSumSquaresBlocks)
};

}  // namespace zeroth
