// CpuBackend elementwise ops: axpby, scale, add, mul.
//
// Owns: blocked loops over contiguous data that convert each block to f32, compute,
// and convert back. Each output element depends only on its own inputs, so results
// never depend on the number of threads.
// Must not: reduce (cpu_reduce.cpp) or handle strides (only copy and gemm do).
//
// axpby with b == 0 writes a * x without reading y (as BLAS does), so stale NaNs in
// an uninitialised y are dropped.
#include <algorithm>
#include <vector>

#include "tensor/cpu_backend.h"
#include "zeroth/error.h"

namespace zeroth {
namespace {

// f32 view of elements [begin, begin + n) of t: t's own memory when F32, else `buf`.
const float* load_block(const Tensor& t, int64_t begin, int64_t n, float* buf) {
  const char* p = static_cast<const char*>(t.data_ptr()) + size_t(begin) * t.element_size();
  if (t.dtype() == DType::F32) return reinterpret_cast<const float*>(p);
  cpu::to_f32(p, t.dtype(), n, buf);
  return buf;
}

// Where to write the f32 results for [begin, begin + n) of t: t's memory when F32, else `buf`
// (then store_block converts).
float* out_block(Tensor& t, int64_t begin, float* buf) {
  if (t.dtype() == DType::F32) return t.data<float>() + begin;
  return buf;
}

void store_block(Tensor& t, int64_t begin, int64_t n, const float* vals) {
  if (t.dtype() == DType::F32) return;  // written in place
  char* p = static_cast<char*>(t.data_ptr()) + size_t(begin) * t.element_size();
  cpu::from_f32(vals, t.dtype(), n, p);
}

void check_unary(const Tensor& t, const char* op, const char* arg) {
  cpu::check_float(t, op, arg);
  cpu::check_contiguous(t, op, arg);
}

enum class Binary { Add, Mul };

void binary_op(int threads, Binary kind, const Tensor& x, const Tensor& y, Tensor& out,
               const char* op) {
  check_unary(x, op, "x");
  check_unary(y, op, "y");
  check_unary(out, op, "out");
  cpu::check_same_shape(x, out, op);
  bool trailing = y.dim() <= x.dim() &&
                  std::equal(y.shape().begin(), y.shape().end(), x.shape().end() - y.dim());
  ZT_ASSERT(trailing, "%s: y %s must have x's shape or its trailing dimensions (x %s)", op,
            y.str().c_str(), x.str().c_str());
  const int64_t n = x.numel(), inner = y.numel();
  if (n == 0) return;
  // y as f32: its own memory, or a converted copy.
  std::vector<float> yf;
  const float* yp = nullptr;
  if (y.dtype() == DType::F32) {
    yp = y.data<float>();
  } else {
    yf.resize(static_cast<size_t>(inner));
    cpu::to_f32(y.data_ptr(), y.dtype(), inner, yf.data());
    yp = yf.data();
  }
  cpu::parallel_blocks(threads, n, cpu::kBlock, [&](int64_t b, int64_t e) {
    float xbuf[cpu::kBlock], obuf[cpu::kBlock];
    const float* xs = load_block(x, b, e - b, xbuf);
    float* os = out_block(out, b, obuf);
    // In runs that do not wrap around y (one run when y has x's shape), each a plain
    // loop the compiler vectorises (a wrap test per element kept it scalar: a batch-64
    // decode step's residual add took ~18 us).
    for (int64_t i = 0, j = b % inner; i < e - b; j = 0) {
      const int64_t len = std::min(e - b - i, inner - j);
      const float* xr = xs + i;
      const float* yr = yp + j;
      float* orow = os + i;
      if (kind == Binary::Add) {
        for (int64_t t = 0; t < len; ++t) orow[t] = xr[t] + yr[t];
      } else {
        for (int64_t t = 0; t < len; ++t) orow[t] = xr[t] * yr[t];
      }
      i += len;
    }
    store_block(out, b, e - b, os);
  }, cpu::kSerialElements);
}

}  // namespace

void CpuBackend::axpby(float a, const Tensor& x, float b, Tensor& y) {
  check_unary(x, "axpby", "x");
  check_unary(y, "axpby", "y");
  cpu::check_same_shape(x, y, "axpby");
  cpu::parallel_blocks(threads_, x.numel(), cpu::kBlock, [&](int64_t begin, int64_t end) {
    float xbuf[cpu::kBlock], ybuf[cpu::kBlock];
    int64_t n = end - begin;
    const float* xs = load_block(x, begin, n, xbuf);
    float* ys = out_block(y, begin, ybuf);
    if (b == 0.0f) {
      for (int64_t i = 0; i < n; ++i) ys[i] = a * xs[i];
    } else {
      const float* yin = load_block(y, begin, n, ybuf);  // ybuf or y itself, as ys
      for (int64_t i = 0; i < n; ++i) ys[i] = a * xs[i] + b * yin[i];
    }
    store_block(y, begin, n, ys);
  }, cpu::kSerialElements);
}

void CpuBackend::scale(Tensor& x, float a) {
  check_unary(x, "scale", "x");
  cpu::parallel_blocks(threads_, x.numel(), cpu::kBlock, [&](int64_t begin, int64_t end) {
    float buf[cpu::kBlock];
    int64_t n = end - begin;
    const float* xs = load_block(x, begin, n, buf);
    float* os = out_block(x, begin, buf);
    for (int64_t i = 0; i < n; ++i) os[i] = xs[i] * a;
    store_block(x, begin, n, os);
  }, cpu::kSerialElements);
}

void CpuBackend::add(const Tensor& x, const Tensor& y, Tensor& out) {
  binary_op(threads_, Binary::Add, x, y, out, "add");
}

void CpuBackend::mul(const Tensor& x, const Tensor& y, Tensor& out) {
  binary_op(threads_, Binary::Mul, x, y, out, "mul");
}

}  // namespace zeroth
