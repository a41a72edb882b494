// CpuBackend SwiGLU: swiglu_forward (silu(gate) * up) and swiglu_backward.
//
// Owns: blocked elementwise loops over contiguous (N, I) data, each block converted
// to f32, computed and converted back. Every output element depends only on its own
// inputs, so results never depend on the thread count. Outputs may alias inputs.
// Must not: reduce or handle strides.
#include <algorithm>
#include <cmath>

#include "tensor/cpu_backend.h"
#include "tensor/cpu_math.h"
#include "zeroth/error.h"

namespace zeroth {
namespace {

void check_ew(const Tensor& t, const Tensor& like, const char* op, const char* arg) {
  cpu::check_float(t, op, arg);
  cpu::check_contiguous(t, op, arg);
  ZT_ASSERT(t.shape() == like.shape(), "%s: %s is %s, expected gate's shape %s", op, arg,
            t.str().c_str(), shape_str(like.shape()).c_str());
}

// f32 copy of elements [begin, begin + n) of t into buf.
void load(const Tensor& t, int64_t begin, int64_t n, float* buf) {
  cpu::to_f32(static_cast<const char*>(t.data_ptr()) + size_t(begin) * t.element_size(), t.dtype(),
              n, buf);
}

void store(Tensor& t, int64_t begin, int64_t n, const float* buf) {
  cpu::from_f32(buf, t.dtype(), n,
                static_cast<char*>(t.data_ptr()) + size_t(begin) * t.element_size());
}

// sig[i] = sigmoid(g[i]) = 1 / (1 + exp(-g[i])) for i < m, vectorised: cpu_math.h's exp
// (about 1 ulp of expf), its argument clamped to [-87, 88] in a loop of its own (beyond
// that sigmoid is 0 or 1 to fp32 precision anyway; NaN stays NaN).
void sigmoid_block(const float* g, int64_t m, float* sig) {
#pragma omp simd
  for (int64_t i = 0; i < m; ++i) sig[i] = std::min(std::max(-g[i], -87.0f), 88.0f);
#pragma omp simd
  for (int64_t i = 0; i < m; ++i) sig[i] = 1.0f / (1.0f + cpu::exp_f32_clamped(sig[i]));
}

// SwiGLU costs an exp per element (~10x an add), so it pays to wake the threads from
// two blocks on, not from kSerialElements like the cheap element-wise ops (a decode
// step's SwiGLU calls at batch 64: 1.5x faster on 2 threads, with libm's exp).
constexpr int64_t kSwigluSerial = cpu::kBlock;

}  // namespace

void CpuBackend::swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) {
  const char* op = "swiglu_forward";
  check_ew(gate, gate, op, "gate");
  check_ew(up, gate, op, "up");
  check_ew(out, gate, op, "out");
  // f32 operands are read and written in place (the copies cost as much as the math
  // at decode sizes); other dtypes through f32 blocks.
  const bool f32 = gate.dtype() == DType::F32 && up.dtype() == DType::F32 &&
                   out.dtype() == DType::F32;
  cpu::parallel_blocks(threads_, gate.numel(), cpu::kBlock, [&](int64_t b, int64_t e) {
    float g[cpu::kBlock], u[cpu::kBlock], sg[cpu::kBlock];
    const int64_t m = e - b;
    if (f32) {
      const float* gp = gate.data<float>() + b;
      const float* upp = up.data<float>() + b;
      float* outp = out.data<float>() + b;
      sigmoid_block(gp, m, sg);
#pragma omp simd
      for (int64_t i = 0; i < m; ++i) outp[i] = gp[i] * sg[i] * upp[i];
      return;
    }
    load(gate, b, m, g);
    load(up, b, m, u);
    sigmoid_block(g, m, sg);
#pragma omp simd
    for (int64_t i = 0; i < m; ++i) g[i] = g[i] * sg[i] * u[i];
    store(out, b, m, g);
  }, kSwigluSerial);
}

void CpuBackend::swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up,
                                 Tensor& dgate, Tensor& dup) {
  const char* op = "swiglu_backward";
  check_ew(gate, gate, op, "gate");
  check_ew(dout, gate, op, "dout");
  check_ew(up, gate, op, "up");
  check_ew(dgate, gate, op, "dgate");
  check_ew(dup, gate, op, "dup");
  ZT_ASSERT(dgate.data_ptr() != dup.data_ptr() || gate.numel() == 0, "%s: dgate and dup alias", op);
  cpu::parallel_blocks(threads_, gate.numel(), cpu::kBlock, [&](int64_t b, int64_t e) {
    float d[cpu::kBlock], g[cpu::kBlock], u[cpu::kBlock], sig[cpu::kBlock];
    const int64_t m = e - b;
    load(dout, b, m, d);
    load(gate, b, m, g);
    load(up, b, m, u);
    sigmoid_block(g, m, sig);
#pragma omp simd
    for (int64_t i = 0; i < m; ++i) {
      // d silu(g)/dg = sig(g) * (1 + g * (1 - sig(g))).
      const float sg = sig[i];
      const float silu = g[i] * sg;
      g[i] = d[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
      u[i] = d[i] * silu;
    }
    store(dgate, b, m, g);
    store(dup, b, m, u);
  }, kSwigluSerial);
}

}  // namespace zeroth
