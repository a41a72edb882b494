// CudaBackend's element-wise, reduction and softmax ops: argument checks, then one
// launcher from kernels/ on the backend's stream.
//
// Owns: validating shapes, dtypes, devices and contiguity exactly as backend.h
// documents them (misuse aborts via ZT_ASSERT) and translating tensors into the
// launchers' pointer/size arguments. Must not: do math on the host, synchronise,
// or allocate.
#include <cmath>
#include <cstdint>

#include "copy_strided.h"
#include "cuda/cuda_backend_impl.h"
#include "cuda/cuda_check.h"
#include "elementwise.h"
#include "fill.h"
#include "reduce_last.h"
#include "softmax.h"
#include "sum_squares.h"

namespace zeroth {

namespace {

void require_contiguous(const Tensor& t, const char* op, const char* arg) {
  ZT_ASSERT(t.is_contiguous(), "%s: %s %s must be contiguous", op, arg, t.str().c_str());
}

void require_float(const Tensor& t, const char* op, const char* arg) {
  ZT_ASSERT(dtype_is_float(t.dtype()), "%s: %s %s must be F32, BF16 or F16", op, arg,
            t.str().c_str());
}

// out of a reduction over x's last dimension: F32, shape x.shape()[:-1] ((1) for a
// 1-D x), as the CPU backend requires.
void require_reduced(const Tensor& x, const Tensor& out, const char* op) {
  ZT_ASSERT(x.dim() >= 1, "%s: x %s needs a last dimension", op, x.str().c_str());
  const Shape expect(x.shape().begin(), x.shape().end() - 1);
  const bool ok = out.shape() == expect || (expect.empty() && out.shape() == Shape{1});
  ZT_ASSERT(out.dtype() == DType::F32 && ok, "%s: out is %s, expected F32 of shape %s for x %s", op,
            out.str().c_str(), shape_str(expect).c_str(), x.str().c_str());
}

// Rows of a (..., D) tensor reduced or normalised over its last dimension.
int64_t rows_of(const Tensor& x, const char* op) {
  ZT_ASSERT(x.dim() >= 1, "%s: x %s needs a last dimension", op, x.str().c_str());
  int64_t rows = 1;
  for (int d = 0; d + 1 < x.dim(); ++d) rows *= x.size(d);
  return rows;
}

}  // namespace

void CudaBackend::fill(Tensor& x, double value) {
  require_here(x, "fill", "x");
  require_contiguous(x, "fill", "x");
  if (x.dtype() == DType::I32) {
    ZT_ASSERT(
        value == std::floor(value) && value >= double(INT32_MIN) && value <= double(INT32_MAX),
        "fill: value %g is not an I32", value);
  } else if (x.dtype() == DType::I64) {
    ZT_ASSERT(value == std::floor(value) && std::fabs(value) <= 9.2e18,
              "fill: value %g is not an I64", value);
  }
  activate();
  launch_fill(x.data_ptr(), x.dtype(), x.numel(), value, stream_);
}

void CudaBackend::copy(const Tensor& src, Tensor& dst) {
  require_here(src, "copy", "src");
  require_here(dst, "copy", "dst");
  ZT_ASSERT(src.shape() == dst.shape(), "copy: shapes differ: src %s, dst %s", src.str().c_str(),
            dst.str().c_str());
  ZT_ASSERT(src.dim() <= kMaxCopyDims, "copy: at most %d dimensions, got src %s", kMaxCopyDims,
            src.str().c_str());
  ZT_ASSERT(dtype_is_float(dst.dtype()) || !dtype_is_float(src.dtype()),
            "copy: cannot convert float to integer (src %s, dst %s)", src.str().c_str(),
            dst.str().c_str());
  activate();
  if (src.dtype() == dst.dtype() && src.is_contiguous() && dst.is_contiguous()) {
    if (src.nbytes() > 0)
      ZT_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), src.nbytes(),
                                    cudaMemcpyDeviceToDevice, stream_));
    return;
  }
  CopyLayout layout;
  layout.ndim = src.dim();
  for (int d = 0; d < layout.ndim; ++d) {
    layout.shape[d] = src.size(d);
    layout.src_strides[d] = src.stride(d);
    layout.dst_strides[d] = dst.stride(d);
  }
  launch_copy_strided(src.data_ptr(), src.dtype(), dst.data_ptr(), dst.dtype(), layout, stream_);
}

void CudaBackend::axpby(float a, const Tensor& x, float b, Tensor& y) {
  require_here(x, "axpby", "x");
  require_here(y, "axpby", "y");
  require_float(x, "axpby", "x");
  require_float(y, "axpby", "y");
  require_contiguous(x, "axpby", "x");
  require_contiguous(y, "axpby", "y");
  ZT_ASSERT(x.shape() == y.shape(), "axpby: shapes differ: x %s, y %s", x.str().c_str(),
            y.str().c_str());
  activate();
  launch_axpby(a, x.data_ptr(), x.dtype(), b, y.data_ptr(), y.dtype(), x.numel(), stream_);
}

void CudaBackend::scale(Tensor& x, float a) {
  require_here(x, "scale", "x");
  require_float(x, "scale", "x");
  require_contiguous(x, "scale", "x");
  activate();
  launch_scale(x.data_ptr(), x.dtype(), x.numel(), a, stream_);
}

void CudaBackend::binary_op(BinaryOp op, const Tensor& x, const Tensor& y, Tensor& out,
                            const char* name) {
  require_here(x, name, "x");
  require_here(y, name, "y");
  require_here(out, name, "out");
  require_float(x, name, "x");
  require_float(y, name, "y");
  require_float(out, name, "out");
  require_contiguous(x, name, "x");
  require_contiguous(y, name, "y");
  require_contiguous(out, name, "out");
  ZT_ASSERT(out.shape() == x.shape(), "%s: out %s must have x's shape %s", name, out.str().c_str(),
            x.str().c_str());
  // y's shape is x's trailing dimensions: x (..., y0, .., yk), y (y0, .., yk).
  bool trailing = y.dim() <= x.dim();
  for (int d = 1; trailing && d <= y.dim(); ++d) trailing = y.size(-d) == x.size(-d);
  ZT_ASSERT(trailing, "%s: y %s must equal x %s or its trailing dimensions", name, y.str().c_str(),
            x.str().c_str());
  ZT_ASSERT(out.data_ptr() != x.data_ptr() || out.dtype() == x.dtype(),
            "%s: out aliases x with another dtype (%s, %s)", name, out.str().c_str(),
            x.str().c_str());
  if (x.numel() == 0) return;
  activate();
  launch_binary_broadcast(op, x.data_ptr(), x.dtype(), y.data_ptr(), y.dtype(), out.data_ptr(),
                          out.dtype(), x.numel(), y.numel(), stream_);
}

void CudaBackend::add(const Tensor& x, const Tensor& y, Tensor& out) {
  binary_op(BinaryOp::Add, x, y, out, "add");
}

void CudaBackend::mul(const Tensor& x, const Tensor& y, Tensor& out) {
  binary_op(BinaryOp::Mul, x, y, out, "mul");
}

void CudaBackend::sum_last(const Tensor& x, Tensor& out) {
  require_here(x, "sum_last", "x");
  require_here(out, "sum_last", "out");
  require_float(x, "sum_last", "x");
  require_contiguous(x, "sum_last", "x");
  require_contiguous(out, "sum_last", "out");
  require_reduced(x, out, "sum_last");
  const int64_t rows = rows_of(x, "sum_last");
  activate();
  launch_sum_last(x.data_ptr(), x.dtype(), static_cast<float*>(out.data_ptr()), rows, x.size(-1),
                  stream_);
}

void CudaBackend::max_last(const Tensor& x, Tensor& out) {
  require_here(x, "max_last", "x");
  require_here(out, "max_last", "out");
  require_float(x, "max_last", "x");
  require_contiguous(x, "max_last", "x");
  require_contiguous(out, "max_last", "out");
  require_reduced(x, out, "max_last");
  const int64_t rows = rows_of(x, "max_last");
  activate();
  launch_max_last(x.data_ptr(), x.dtype(), static_cast<float*>(out.data_ptr()), rows, x.size(-1),
                  stream_);
}

void CudaBackend::sum_squares(const Tensor& x, Tensor& out, bool accumulate) {
  require_here(x, "sum_squares", "x");
  require_here(out, "sum_squares", "out");
  require_float(x, "sum_squares", "x");
  require_contiguous(x, "sum_squares", "x");
  ZT_ASSERT(out.dtype() == DType::F32 && out.numel() == 1,
            "sum_squares: out %s must be F32 with one element", out.str().c_str());
  activate();
  launch_sum_squares(x.data_ptr(), x.dtype(), x.numel(), static_cast<float*>(out.data_ptr()),
                     accumulate, sum_squares_partials_, stream_);
}

void CudaBackend::softmax_op(const Tensor& x, Tensor& out, bool log_softmax, const char* name) {
  require_here(x, name, "x");
  require_here(out, name, "out");
  require_float(x, name, "x");
  require_float(out, name, "out");
  require_contiguous(x, name, "x");
  require_contiguous(out, name, "out");
  ZT_ASSERT(out.shape() == x.shape(), "%s: out %s must have x's shape %s", name, out.str().c_str(),
            x.str().c_str());
  ZT_ASSERT(out.data_ptr() != x.data_ptr() || out.dtype() == x.dtype(),
            "%s: out aliases x with another dtype (%s, %s)", name, out.str().c_str(),
            x.str().c_str());
  const int64_t rows = rows_of(x, name);
  activate();
  launch_softmax_last(x.data_ptr(), x.dtype(), out.data_ptr(), out.dtype(), rows, x.size(-1),
                      log_softmax, stream_);
}

void CudaBackend::softmax_last(const Tensor& x, Tensor& out) {
  softmax_op(x, out, false, "softmax_last");
}

void CudaBackend::log_softmax_last(const Tensor& x, Tensor& out) {
  softmax_op(x, out, true, "log_softmax_last");
}

}  // namespace zeroth
