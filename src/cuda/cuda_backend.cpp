// CudaBackend lifetime, memory and copies; make_cuda_backend and cuda_stream_of.
//
// Owns: choosing and checking the device, creating the stream, the cuBLAS handle
// and scratch buffers, stream-ordered allocation, and the host/device copies. Must
// not: implement ops (cuda_gemm.cpp, cuda_ops.cpp) or keep global state.
#include "zeroth/cuda_backend.h"

#include <cstdint>

#include "cuda/cuda_backend_impl.h"
#include "cuda/cuda_check.h"
#include "fill.h"         // kernels/: probe_kernel_image
#include "sum_squares.h"  // kernels/: kSumSquaresBlocks
#include "zeroth/error.h"
#include "zeroth/log.h"

namespace zeroth {

namespace {

constexpr size_t kCublasWorkspaceBytes = size_t(32) << 20;  // cuBLAS's advice for Hopper

std::string cuda_error_text(cudaError_t err) {
  return strformat("%s: %s", cudaGetErrorName(err), cudaGetErrorString(err));
}

// For the destructor, which must not throw: reports a failed release and goes on.
void warn_if_failed(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    ZT_LOG_WARN("CUDA backend teardown: %s failed: %s", what, cuda_error_text(err).c_str());
}

}  // namespace

CudaBackend::CudaBackend(int device_index) : device_index_(device_index) {
  const std::string dev = Device::cuda(device_index).str();
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    throw RuntimeError(strformat("%s cannot be used: cudaGetDeviceCount failed (%s)", dev.c_str(),
                                 cuda_error_text(err).c_str()));
  }
  if (device_index < 0 || device_index >= count) {
    throw RuntimeError(
        strformat("%s cannot be used: expected a device index in [0, %d), this "
                  "process sees %d CUDA device(s)",
                  dev.c_str(), count, count));
  }
  err = cudaSetDevice(device_index);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    throw RuntimeError(strformat("%s cannot be used: cudaSetDevice failed (%s)", dev.c_str(),
                                 cuda_error_text(err).c_str()));
  }
  cudaDeviceProp prop;
  ZT_CUDA_CHECK(cudaGetDeviceProperties(&prop, device_index));
  name_ = strformat("%s (%s, sm_%d%d, %.0f GiB)", dev.c_str(), prop.name, prop.major, prop.minor,
                    double(prop.totalGlobalMem) / double(size_t(1) << 30));
  err = probe_kernel_image();
  if (err != cudaSuccess) {
    throw RuntimeError(
        strformat("%s cannot be used: this build has no kernels for sm_%d%d (%s); "
                  "rebuild with ZEROTH_CUDA_ARCHITECTURES including it",
                  name_.c_str(), prop.major, prop.minor, cuda_error_text(err).c_str()));
  }
  int pools_supported = 0;
  ZT_CUDA_CHECK(
      cudaDeviceGetAttribute(&pools_supported, cudaDevAttrMemoryPoolsSupported, device_index));
  if (!pools_supported) {
    throw RuntimeError(
        strformat("%s cannot be used: expected stream-ordered memory pools "
                  "(cudaMallocAsync), the device does not support them",
                  name_.c_str()));
  }

  try {
    // Keep freed memory in the pool instead of returning it to the driver at every
    // synchronisation: the training loop frees and reallocates the same sizes.
    cudaMemPool_t pool;
    ZT_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device_index));
    uint64_t threshold = UINT64_MAX;
    ZT_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));

    ZT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    ZT_CUDA_CHECK(cudaMalloc(&cublas_workspace_, kCublasWorkspaceBytes));
    ZT_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&sum_squares_partials_),
                             sizeof(float) * kSumSquaresBlocks));
    ZT_CUBLAS_CHECK(cublasCreate(&cublas_));
    ZT_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    ZT_CUBLAS_CHECK(cublasSetWorkspace(cublas_, cublas_workspace_, kCublasWorkspaceBytes));
    ZT_CUBLAS_CHECK(cublasSetPointerMode(cublas_, CUBLAS_POINTER_MODE_HOST));
    // Default math: F32 GEMMs run in full fp32 (no TF32), BF16 ones on tensor cores.
    ZT_CUBLAS_CHECK(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH));
  } catch (...) {
    release();
    throw;
  }
}

CudaBackend::~CudaBackend() {
  if (cudaSetDevice(device_index_) == cudaSuccess && stream_ != nullptr)
    warn_if_failed(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  release();
}

void CudaBackend::release() noexcept {
  if (cublas_ != nullptr) {
    cublasStatus_t st = cublasDestroy(cublas_);
    if (st != CUBLAS_STATUS_SUCCESS)
      ZT_LOG_WARN("CUDA backend teardown: cublasDestroy failed: %s", cublasGetStatusString(st));
    cublas_ = nullptr;
  }
  if (sum_squares_partials_ != nullptr) warn_if_failed(cudaFree(sum_squares_partials_), "cudaFree");
  if (cublas_workspace_ != nullptr) warn_if_failed(cudaFree(cublas_workspace_), "cudaFree");
  if (stream_ != nullptr) warn_if_failed(cudaStreamDestroy(stream_), "cudaStreamDestroy");
  sum_squares_partials_ = nullptr;
  cublas_workspace_ = nullptr;
  stream_ = nullptr;
}

void CudaBackend::activate() const { ZT_CUDA_CHECK(cudaSetDevice(device_index_)); }

void CudaBackend::require_here(const Tensor& t, const char* op, const char* arg) const {
  ZT_ASSERT(t.defined(), "%s: %s is undefined", op, arg);
  ZT_ASSERT(t.device() == device(), "%s: %s %s is not on %s", op, arg, t.str().c_str(),
            device().str().c_str());
}

// ---- memory ----

void* CudaBackend::allocate(size_t bytes) {
  if (bytes == 0) return nullptr;
  activate();
  void* ptr = nullptr;
  cudaError_t err = cudaMallocAsync(&ptr, bytes, stream_);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    (void)cudaMemGetInfo(&free_bytes, &total_bytes);
    (void)cudaGetLastError();
    throw RuntimeError(
        strformat("%s: cudaMallocAsync of %zu bytes failed (%s); %zu of %zu bytes "
                  "free on the device",
                  name_.c_str(), bytes, cuda_error_text(err).c_str(), free_bytes, total_bytes));
  }
  return ptr;
}

void CudaBackend::deallocate(void* ptr) {
  if (ptr == nullptr) return;
  activate();
  ZT_CUDA_CHECK(cudaFreeAsync(ptr, stream_));
}

// Host copies wait for the stream: the data is in place (or in host memory) on return.
void CudaBackend::copy_to_host(void* dst_host, const void* src_dev, size_t bytes) {
  if (bytes == 0) return;
  activate();
  ZT_CUDA_CHECK(cudaMemcpyAsync(dst_host, src_dev, bytes, cudaMemcpyDeviceToHost, stream_));
  ZT_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::copy_from_host(void* dst_dev, const void* src_host, size_t bytes) {
  if (bytes == 0) return;
  activate();
  ZT_CUDA_CHECK(cudaMemcpyAsync(dst_dev, src_host, bytes, cudaMemcpyHostToDevice, stream_));
  ZT_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

// Ordered on the stream like every op; no host wait is needed for later ops to see it.
void CudaBackend::copy_on_device(void* dst_dev, const void* src_dev, size_t bytes) {
  if (bytes == 0) return;
  activate();
  ZT_CUDA_CHECK(cudaMemcpyAsync(dst_dev, src_dev, bytes, cudaMemcpyDeviceToDevice, stream_));
}

void CudaBackend::synchronize() {
  activate();
  ZT_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

// ---- public entry points ----

std::unique_ptr<Backend> make_cuda_backend(int device_index) {
  return std::make_unique<CudaBackend>(device_index);
}

void* cuda_stream_of(Backend& be) {
  auto* cuda = dynamic_cast<CudaBackend*>(&be);
  ZT_ASSERT(cuda != nullptr, "cuda_stream_of: backend %s is not a CUDA backend", be.name().c_str());
  return static_cast<void*>(cuda->stream());
}

}  // namespace zeroth
