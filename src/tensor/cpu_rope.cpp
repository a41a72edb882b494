// CpuBackend rotary position embedding: rope, in place on (N, H, D) with strided rows
// and heads.
//
// Owns: the four maps of backend.h's rope contract (halves or interleaved, forward
// or transposed). Interleaved forward reads pairs (x[2i], x[2i+1]) and writes the
// rotated pair to (x[i], x[i + D/2]) (Hugging Face's de-interleaved output layout);
// interleaved inverse reads halves and writes pairs, so it is the exact transpose.
// Must not: build cos/sin tables (the model does: rope_theta, yarn, attention factor).
#include <algorithm>
#include <vector>

#include "tensor/cpu_backend.h"
#include "zeroth/error.h"

namespace zeroth {

void CpuBackend::rope(Tensor& x, const Tensor& positions, const Tensor& cos, const Tensor& sin,
                      bool interleaved, bool inverse) {
  const char* op = "rope";
  cpu::check_float(x, op, "x");
  ZT_ASSERT(
      x.dim() == 3 && x.size(2) % 2 == 0 && (x.size(2) <= 1 || x.stride(2) == 1),
      "%s: x is %s (strides %s), expected (N, H, D) with D even and a contiguous last dimension",
      op, x.str().c_str(), shape_str(x.strides()).c_str());
  const int64_t n = x.size(0), h = x.size(1), d = x.size(2), half = d / 2;
  cpu::check_cpu(positions, op, "positions");
  cpu::check_contiguous(positions, op, "positions");
  ZT_ASSERT(positions.dtype() == DType::I32 && positions.shape() == Shape{n},
            "%s: positions is %s, expected I32 (%lld)", op, positions.str().c_str(), (long long)n);
  for (const Tensor* t : {&cos, &sin}) {
    cpu::check_cpu(*t, op, "cos/sin");
    cpu::check_contiguous(*t, op, "cos/sin");
    ZT_ASSERT(t->dtype() == DType::F32 && t->dim() == 2 && t->size(1) == half,
              "%s: cos/sin is %s, expected F32 (P, %lld)", op, t->str().c_str(), (long long)half);
  }
  ZT_ASSERT(cos.shape() == sin.shape(), "%s: cos %s and sin %s differ", op, cos.str().c_str(),
            sin.str().c_str());
  const int64_t npos = cos.size(0);
  const int32_t* pos = positions.data<int32_t>();
  for (int64_t r = 0; r < n; ++r)
    ZT_ASSERT(pos[r] >= 0 && pos[r] < npos, "%s: positions[%lld] = %d is outside [0, %lld)", op,
              (long long)r, pos[r], (long long)npos);
  if (n == 0 || h == 0 || d == 0) return;

  const float* ct = cos.data<float>();
  const float* st = sin.data<float>();
  char* base = static_cast<char*>(x.data_ptr());
  const size_t es = x.element_size();
  const bool f32 = x.dtype() == DType::F32;
  const int64_t rows = std::max<int64_t>(1, cpu::kBlock / (h * d));
  cpu::parallel_blocks(threads_, n, rows, [&](int64_t b, int64_t e) {
    std::vector<float> in(static_cast<size_t>(d)), out(static_cast<size_t>(d));
    for (int64_t r = b; r < e; ++r) {
      const float* c = ct + size_t(pos[r]) * size_t(half);
      const float* s = st + size_t(pos[r]) * size_t(half);
      for (int64_t hh = 0; hh < h; ++hh) {
        char* p = base + size_t(r * x.stride(0) + hh * x.stride(1)) * es;
        float* v = f32 ? reinterpret_cast<float*>(p) : in.data();
        if (!f32) cpu::to_f32(p, x.dtype(), d, in.data());
        // a, b: the two members of pair i as read; results go to out (then back to v).
        if (!interleaved && !inverse) {
          for (int64_t i = 0; i < half; ++i) {
            const float a = v[i], bb = v[i + half];
            out[size_t(i)] = a * c[i] - bb * s[i];
            out[size_t(i + half)] = bb * c[i] + a * s[i];
          }
        } else if (!interleaved && inverse) {
          for (int64_t i = 0; i < half; ++i) {
            const float a = v[i], bb = v[i + half];
            out[size_t(i)] = a * c[i] + bb * s[i];
            out[size_t(i + half)] = bb * c[i] - a * s[i];
          }
        } else if (!inverse) {  // pairs in, halves out
          for (int64_t i = 0; i < half; ++i) {
            const float a = v[2 * i], bb = v[2 * i + 1];
            out[size_t(i)] = a * c[i] - bb * s[i];
            out[size_t(i + half)] = bb * c[i] + a * s[i];
          }
        } else {  // halves in, pairs out: the transpose of the above
          for (int64_t i = 0; i < half; ++i) {
            const float a = v[i], bb = v[i + half];
            out[size_t(2 * i)] = a * c[i] + bb * s[i];
            out[size_t(2 * i + 1)] = bb * c[i] - a * s[i];
          }
        }
        if (f32)
          std::copy(out.begin(), out.end(), v);
        else
          cpu::from_f32(out.data(), x.dtype(), d, p);
      }
    }
  });
}

}  // namespace zeroth
