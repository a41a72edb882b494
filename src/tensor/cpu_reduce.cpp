// CpuBackend reductions and row-wise normalisations: sum_last, max_last,
// sum_squares, softmax_last, log_softmax_last.
//
// Owns: row loops (one row = the last dimension, handled by one thread, in order)
// and sum_squares' fixed-chunk reduction, so every result is bit-identical for any
// thread count.
// Must not: depend on OpenMP's reduction clause or scheduling for any sum.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "tensor/cpu_backend.h"
#include "zeroth/error.h"

namespace zeroth {
namespace {

// Calls fn(row, values) for each row of x (..., D) viewed as (rows, D), values
// converted to f32 (a private copy, so out may alias x).
void for_rows(int threads, const Tensor& x,
              const std::function<void(int64_t row, float* vals, int64_t d)>& fn) {
  const int64_t d = x.dim() > 0 ? x.size(-1) : 1;
  if (d == 0) return;
  const int64_t rows = x.numel() / d;
  const int64_t rows_per_block = std::max<int64_t>(1, cpu::kBlock / d);
  const char* base = static_cast<const char*>(x.data_ptr());
  cpu::parallel_blocks(threads, rows, rows_per_block, [&](int64_t b, int64_t e) {
    std::vector<float> buf(static_cast<size_t>(d));
    for (int64_t r = b; r < e; ++r) {
      cpu::to_f32(base + size_t(r * d) * x.element_size(), x.dtype(), d, buf.data());
      fn(r, buf.data(), d);
    }
  });
}

void check_row_op(const Tensor& x, const Tensor& out, const char* op) {
  cpu::check_float(x, op, "x");
  cpu::check_contiguous(x, op, "x");
  cpu::check_cpu(out, op, "out");
  cpu::check_contiguous(out, op, "out");
}

void check_reduce(const Tensor& x, const Tensor& out, const char* op) {
  check_row_op(x, out, op);
  ZT_ASSERT(out.dtype() == DType::F32, "%s: out is %s, expected F32", op, out.str().c_str());
  cpu::check_reduced_shape(x, out, op);
}

void check_softmax(const Tensor& x, const Tensor& out, const char* op) {
  check_row_op(x, out, op);
  cpu::check_float(out, op, "out");
  cpu::check_same_shape(x, out, op);
  ZT_ASSERT(x.dim() >= 1, "%s: x (%s) needs at least one dimension", op, x.str().c_str());
}

// Row max with NaN propagation; -inf for an empty row.
float row_max(const float* v, int64_t d) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < d; ++i) {
    if (std::isnan(v[i])) return v[i];
    m = std::max(m, v[i]);
  }
  return m;
}

}  // namespace

void CpuBackend::sum_last(const Tensor& x, Tensor& out) {
  check_reduce(x, out, "sum_last");
  float* o = out.data<float>();
  if (x.size(-1) == 0) {
    std::fill(o, o + out.numel(), 0.0f);
    return;
  }
  for_rows(threads_, x, [&](int64_t r, float* v, int64_t d) {
    double s = 0.0;
    for (int64_t i = 0; i < d; ++i) s += double(v[i]);
    o[r] = float(s);
  });
}

void CpuBackend::max_last(const Tensor& x, Tensor& out) {
  check_reduce(x, out, "max_last");
  float* o = out.data<float>();
  if (x.size(-1) == 0) {
    std::fill(o, o + out.numel(), -std::numeric_limits<float>::infinity());
    return;
  }
  for_rows(threads_, x, [&](int64_t r, float* v, int64_t d) { o[r] = row_max(v, d); });
}

void CpuBackend::sum_squares(const Tensor& x, Tensor& out, bool accumulate) {
  cpu::check_float(x, "sum_squares", "x");
  cpu::check_contiguous(x, "sum_squares", "x");
  cpu::check_cpu(out, "sum_squares", "out");
  ZT_ASSERT(out.dtype() == DType::F32 && out.numel() == 1,
            "sum_squares: out is %s, expected F32 with one element", out.str().c_str());
  const int64_t n = x.numel();
  const int64_t chunks = (n + cpu::kBlock - 1) / cpu::kBlock;
  std::vector<double> partial(size_t(chunks), 0.0);
  cpu::parallel_blocks(threads_, n, cpu::kBlock, [&](int64_t b, int64_t e) {
    float buf[cpu::kBlock];
    const float* v = buf;
    if (x.dtype() == DType::F32) {
      v = x.data<float>() + b;
    } else {
      cpu::to_f32(static_cast<const char*>(x.data_ptr()) + size_t(b) * x.element_size(), x.dtype(),
                  e - b, buf);
    }
    double s = 0.0;
    for (int64_t i = 0; i < e - b; ++i) s += double(v[i]) * double(v[i]);
    partial[size_t(b / cpu::kBlock)] = s;
  });
  double total = accumulate ? double(*out.data<float>()) : 0.0;
  for (double p : partial) total += p;  // fixed order: chunk 0, 1, 2, ...
  *out.data<float>() = float(total);
}

void CpuBackend::softmax_last(const Tensor& x, Tensor& out) {
  check_softmax(x, out, "softmax_last");
  char* obase = static_cast<char*>(out.data_ptr());
  for_rows(threads_, x, [&](int64_t r, float* v, int64_t d) {
    const float m = row_max(v, d);
    double s = 0.0;
    for (int64_t i = 0; i < d; ++i) {
      v[i] = std::exp(v[i] - m);
      s += double(v[i]);
    }
    const float inv = float(1.0 / s);
    for (int64_t i = 0; i < d; ++i) v[i] *= inv;
    cpu::from_f32(v, out.dtype(), d, obase + size_t(r * d) * out.element_size());
  });
}

void CpuBackend::log_softmax_last(const Tensor& x, Tensor& out) {
  check_softmax(x, out, "log_softmax_last");
  char* obase = static_cast<char*>(out.data_ptr());
  for_rows(threads_, x, [&](int64_t r, float* v, int64_t d) {
    const float m = row_max(v, d);
    double s = 0.0;
    for (int64_t i = 0; i < d; ++i) s += double(std::exp(v[i] - m));
    const float lse = float(std::log(s));
    for (int64_t i = 0; i < d; ++i) v[i] = (v[i] - m) - lse;
    cpu::from_f32(v, out.dtype(), d, obase + size_t(r * d) * out.element_size());
  });
}

}  // namespace zeroth
