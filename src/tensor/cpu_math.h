// Vectorisable fp32 math shared by the CPU ops: exp without a libm call, so that
// `#pragma omp simd` loops over it compile to AVX2 (the attention softmax, training
// and decode).
//
// Owns: exp_f32_clamped, exp_args. Must not: allocate, thread.
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

}  // namespace cpu
}  // namespace zeroth
