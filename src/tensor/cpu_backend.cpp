// CpuBackend: construction, naming, host memory, fill, and the helpers shared by
// the op files (argument checks, conversions, the blocked parallel loop).
//
// Owns: make_cpu_backend and the process-wide thread settings it makes (OpenMP and
// OpenBLAS). Must not: implement GEMM, copies or math ops (see cpu_*.cpp).
#include "tensor/cpu_backend.h"

#include <cblas.h>
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "zeroth/error.h"

namespace zeroth {

CpuBackend::CpuBackend(int threads) : threads_(threads) {
  ZT_ASSERT(threads >= 1, "CpuBackend needs at least one thread, got %d", threads);
}

std::string CpuBackend::name() const {
  // openblas_get_config() reads e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY SkylakeX ...".
  std::string cfg = openblas_get_config();
  size_t first = cfg.find(' ');
  size_t second = first == std::string::npos ? std::string::npos : cfg.find(' ', first + 1);
  std::string blas = second == std::string::npos ? cfg : cfg.substr(0, second);
  return strformat("cpu (%d thread%s, %s)", threads_, threads_ == 1 ? "" : "s", blas.c_str());
}

void* CpuBackend::allocate(size_t bytes) {
  constexpr size_t kAlign = 64;  // a cache line; enough for AVX-512 loads
  // Large buffers (the weights of a linear layer or an expert stack, KV caches) start on a
  // 2 MiB boundary and ask for transparent huge pages: a decode step streams every weight
  // once, and with 4 KiB pages each page costs a TLB miss (docs/perf.md, "Huge pages").
  // Where THP is off, or `never`, madvise changes nothing; the result is the same bits.
  constexpr size_t kHuge = size_t(2) << 20, kHugeFrom = size_t(4) << 20;
  const bool huge = bytes >= kHugeFrom;
  const size_t align = huge ? kHuge : kAlign;
  size_t rounded = (std::max<size_t>(bytes, 1) + align - 1) / align * align;
  void* p = std::aligned_alloc(align, rounded);
  if (p == nullptr)
    throw RuntimeError(strformat("cpu backend: out of host memory allocating %zu bytes", bytes));
#ifdef MADV_HUGEPAGE
  if (huge) (void)madvise(p, bytes / kHuge * kHuge, MADV_HUGEPAGE);  // advice only
#endif
  return p;
}

void CpuBackend::deallocate(void* ptr) { std::free(ptr); }

void CpuBackend::copy_to_host(void* dst_host, const void* src_dev, size_t bytes) {
  if (bytes > 0) std::memcpy(dst_host, src_dev, bytes);
}

void CpuBackend::copy_from_host(void* dst_dev, const void* src_host, size_t bytes) {
  if (bytes > 0) std::memcpy(dst_dev, src_host, bytes);
}

void CpuBackend::copy_on_device(void* dst_dev, const void* src_dev, size_t bytes) {
  if (bytes > 0) std::memmove(dst_dev, src_dev, bytes);
}

template <typename T>
static void fill_typed(int threads, T* p, int64_t n, T v) {
  cpu::parallel_blocks(threads, n, cpu::kBlock, [&](int64_t b, int64_t e) {
    std::fill(p + b, p + e, v);
  });
}

void CpuBackend::fill(Tensor& x, double value) {
  cpu::check_cpu(x, "fill", "x");
  cpu::check_contiguous(x, "fill", "x");
  int64_t n = x.numel();
  switch (x.dtype()) {
    case DType::F32: fill_typed(threads_, x.data<float>(), n, float(value)); break;
    case DType::BF16:
      fill_typed(threads_, static_cast<uint16_t*>(x.data_ptr()), n, float_to_bf16(float(value)));
      break;
    case DType::F16:
      fill_typed(threads_, static_cast<uint16_t*>(x.data_ptr()), n, float_to_f16(float(value)));
      break;
    case DType::I32:
      ZT_ASSERT(value == std::floor(value) && value >= double(std::numeric_limits<int32_t>::min()) &&
                    value <= double(std::numeric_limits<int32_t>::max()),
                "fill: value %g is not an I32", value);
      fill_typed(threads_, x.data<int32_t>(), n, int32_t(value));
      break;
    case DType::I64:
      ZT_ASSERT(value == std::floor(value) && std::fabs(value) <= 9.2e18,
                "fill: value %g is not an I64", value);
      fill_typed(threads_, x.data<int64_t>(), n, int64_t(value));
      break;
    case DType::F8E4M3: ZT_ASSERT(false, "fill: F8_E4M3 is a storage dtype only");
  }
}

std::unique_ptr<Backend> make_cpu_backend(int threads) {
  int n = threads > 0 ? threads : omp_get_num_procs();
  if (n < 1) n = 1;
  omp_set_num_threads(n);
  // All parallelism is OpenMP's: OpenBLAS runs on the calling thread, and gemm splits
  // products over the OpenMP threads (cpu_gemm.cpp says why: two spinning pools).
  openblas_set_num_threads(1);
  return std::make_unique<CpuBackend>(n);
}

namespace cpu {

void parallel_blocks(int threads, int64_t n, int64_t block,
                     const std::function<void(int64_t, int64_t)>& fn, int64_t serial_up_to) {
  if (n <= 0) return;
  int64_t nb = (n + block - 1) / block;
  if (nb == 1 || threads == 1 || n <= serial_up_to) {
    for (int64_t b = 0; b < nb; ++b) fn(b * block, std::min(n, (b + 1) * block));
    return;
  }
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t b = 0; b < nb; ++b) fn(b * block, std::min(n, (b + 1) * block));
}

void to_f32(const void* src, DType dtype, int64_t n, float* dst) {
  switch (dtype) {
    case DType::F32: std::memcpy(dst, src, size_t(n) * 4); return;
    case DType::BF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_float(s[i]);
      return;
    }
    case DType::F16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_float(s[i]);
      return;
    }
    default: ZT_ASSERT(false, "to_f32: %s is not a float dtype", dtype_name(dtype));
  }
}

void from_f32(const float* src, DType dtype, int64_t n, void* dst) {
  switch (dtype) {
    case DType::F32: std::memcpy(dst, src, size_t(n) * 4); return;
    case DType::BF16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = float_to_bf16(src[i]);
      return;
    }
    case DType::F16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = float_to_f16(src[i]);
      return;
    }
    default: ZT_ASSERT(false, "from_f32: %s is not a float dtype", dtype_name(dtype));
  }
}

void check_cpu(const Tensor& t, const char* op, const char* arg) {
  ZT_ASSERT(t.defined(), "%s: %s is undefined", op, arg);
  ZT_ASSERT(t.device().is_cpu(), "%s: %s is %s, the cpu backend needs cpu tensors", op, arg,
            t.str().c_str());
}

void check_float(const Tensor& t, const char* op, const char* arg) {
  check_cpu(t, op, arg);
  ZT_ASSERT(dtype_is_float(t.dtype()), "%s: %s is %s, expected a float dtype", op, arg,
            t.str().c_str());
}

void check_contiguous(const Tensor& t, const char* op, const char* arg) {
  ZT_ASSERT(t.is_contiguous(), "%s: %s (%s, strides %s) must be contiguous", op, arg,
            t.str().c_str(), shape_str(t.strides()).c_str());
}

void check_same_shape(const Tensor& x, const Tensor& y, const char* op) {
  ZT_ASSERT(x.shape() == y.shape(), "%s: shapes differ: %s vs %s", op, x.str().c_str(),
            y.str().c_str());
}

void check_reduced_shape(const Tensor& x, const Tensor& out, const char* op) {
  ZT_ASSERT(x.dim() >= 1, "%s: x (%s) needs at least one dimension", op, x.str().c_str());
  Shape expect(x.shape().begin(), x.shape().end() - 1);
  bool ok = out.shape() == expect || (expect.empty() && out.shape() == Shape{1});
  ZT_ASSERT(ok, "%s: out is %s, expected shape %s for x %s", op, out.str().c_str(),
            shape_str(expect).c_str(), x.str().c_str());
}

}  // namespace cpu
}  // namespace zeroth
