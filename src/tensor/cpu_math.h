// Vectorisable fp32 math shared by the CPU ops: exp without a libm call, so that
// `#pragma omp simd` loops over it compile to AVX2 (the attention softmax, training
// and decode).
//
// Owns: exp_f32_clamped, exp_args, exp_f64_nonpos. Must not: allocate, thread.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace zeroth {
namespace cpu {

// exp(x) in fp32 for x in [-87, 88], written so that loops over it vectorise (no
// libm call, no branch): Cody-Waite reduction x = n ln2 + r with n = round(x / ln2)
// taken from the bits of x / ln2 + 1.5 * 2^23, a degree-6 polynomial for exp(r)
// (Cephes expf, about 1 ulp), and 2^n built in the exponent bits. Callers clamp x
// first, in a separate loop: with the clamp inside, GCC (without
// -fno-trapping-math) does not if-convert it and the loop stays scalar. At x = -87
// this returns about 1.6e-38 instead of smaller values; attention only takes exp of
// x - max <= 0, so that is far below the fp32 resolution of the row sum (>= 1).
inline float exp_f32_clamped(float x) {
  union {
    float f;
    int32_t i;
  } t;  // GCC defines union type punning; memcpy here blocks vectorisation
  t.f = std::fma(x, 1.44269504088896341f, 12582912.0f);
  const float n = t.f - 12582912.0f;
  float r = std::fma(n, -0.693359375f, x);
  r = std::fma(n, 2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = std::fma(p, r, 1.3981999507e-3f);
  p = std::fma(p, r, 8.3334519073e-3f);
  p = std::fma(p, r, 4.1665795894e-2f);
  p = std::fma(p, r, 1.6666665459e-1f);
  p = std::fma(p, r, 5.0000001201e-1f);
  p = std::fma(p * r, r, r) + 1.0f;
  union {
    int32_t i;
    float f;
  } pow2;
  pow2.i = (t.i - 0x4B400000 + 127) << 23;  // n + 127 in the exponent field
  return p * pow2.f;
}

// x[j] = clamp(scale * x[j] - shift, -87, 88) for j < n: exp_f32_clamped's argument.
inline void exp_args(float* x, int64_t n, float scale, float shift) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) x[j] = std::min(std::max(scale * x[j] - shift, -87.0f), 88.0f);
}

// exp(x) in fp64 for x <= 0, vectorisable like exp_f32_clamped: Cody-Waite reduction
// x = n ln2 + r (|r| <= ln2 / 2, ln2 split fdlibm's way so n * ln2_hi is exact), the
// degree-13 Taylor polynomial of exp(r) (truncation < 1e-17 relative), 2^n in the
// exponent bits; within 2 ulp of libm's exp. NaN, -inf and x < -708 (exp < 3.3e-308,
// where 2^n would leave the normal range) give 0. The range test is on the bits (a
// floating-point compare may trap on NaN, and GCC then keeps the loop scalar).
inline double exp_f64_nonpos(double x) {
  union {
    double f;
    int64_t i;
  } in, t, out;
  in.f = x;
  // all ones where |x| <= 708 (the magnitude's bits order like the magnitudes; NaN is above)
  const int64_t keep = -int64_t((in.i & 0x7fffffffffffffffLL) <= 0x4086200000000000LL);
  in.i &= keep;  // 0 where the result will be 0
  t.f = std::fma(in.f, 1.4426950408889634074, 6755399441055744.0);  // + 1.5 * 2^52
  const double n = t.f - 6755399441055744.0;
  double r = std::fma(n, -6.93147180369123816490e-01, in.f);
  r = std::fma(n, -1.90821492927058770002e-10, r);
  double p = 1.0 / 6227020800.0;  // 1/13!
  p = std::fma(p, r, 1.0 / 479001600.0);
  p = std::fma(p, r, 1.0 / 39916800.0);
  p = std::fma(p, r, 1.0 / 3628800.0);
  p = std::fma(p, r, 1.0 / 362880.0);
  p = std::fma(p, r, 1.0 / 40320.0);
  p = std::fma(p, r, 1.0 / 5040.0);
  p = std::fma(p, r, 1.0 / 720.0);
  p = std::fma(p, r, 1.0 / 120.0);
  p = std::fma(p, r, 1.0 / 24.0);
  p = std::fma(p, r, 1.0 / 6.0);
  p = std::fma(p, r, 0.5);
  p = std::fma(p * r, r, r) + 1.0;
  union {
    int64_t i;
    double f;
  } pow2;
  pow2.i = (t.i - int64_t(0x4338000000000000LL) + 1023) << 52;  // n + 1023 in the exponent
  out.f = p * pow2.f;
  out.i &= keep;
  return out.f;
}

}  // namespace cpu
}  // namespace zeroth
