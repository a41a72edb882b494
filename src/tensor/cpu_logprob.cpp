// CpuBackend per-token log-probabilities: logprob_forward (logprob, lse, optional
// entropy of softmax(logits / temperature)) and logprob_backward.
//
// Owns: the row loops over the vocabulary (one row = one thread; rows spread over
// threads), done in fixed chunks converted to f32, with an exp that the compiler
// vectorises; sums are `omp simd` reductions over f32 lanes within a chunk, the chunks
// summed in double (the order is fixed by the compiled vector width, never by the
// thread count), so a row's result is bit-identical for any thread count.
// Numerically stable: every exponent is <= 0 up to rounding (z - max z, z - lse).
// Must not: materialise softmax for the whole batch; allocate per row.
//
// The exp loops vectorise only when GCC may assume float ops do not trap (nothing here
// reads floating-point exception flags); the pragma scopes that to this file.
#pragma GCC optimize("no-trapping-math")

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "tensor/cpu_backend.h"
#include "zeroth/error.h"

namespace zeroth {
namespace {

constexpr int64_t kChunk = 2048;  // vocabulary entries converted to f32 at a time
constexpr size_t kChunkSize = size_t(kChunk);
constexpr float kNaNf = std::numeric_limits<float>::quiet_NaN();

// exp(x) for x <= ~88 with a relative error of about 2e-7 (Cephes expf: Cody-Waite
// reduction by ln 2 and a degree-6 polynomial); 0 for x < -87.3 (and for -inf).
// Branch-free so loops over it vectorise. x must not be NaN.
inline float exp_poly(float x) {
  float xc = x < -87.3f ? -87.3f : x;
  xc = xc > 88.3f ? 88.3f : xc;
  const float k = std::floor(xc * 1.44269504088896341f + 0.5f);
  float r = xc - k * 0.693359375f;
  r = r - k * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  const int32_t bits = (int32_t(k) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  const float e = y * scale;
  return x < -87.3f ? 0.0f : e;
}

// Chunk [begin, begin + n) of row r of logits (N, V) as f32: the tensor's memory when
// F32, else converted into buf.
const float* chunk_f32(const Tensor& t, int64_t r, int64_t begin, int64_t n, float* buf) {
  const char* p =
      static_cast<const char*>(t.data_ptr()) + size_t(r * t.size(1) + begin) * t.element_size();
  if (t.dtype() == DType::F32) return reinterpret_cast<const float*>(p);
  cpu::to_f32(p, t.dtype(), n, buf);
  return buf;
}

void check_vec(const Tensor& t, int64_t n, const char* op, const char* arg) {
  cpu::check_cpu(t, op, arg);
  cpu::check_contiguous(t, op, arg);
  ZT_ASSERT(t.dtype() == DType::F32 && t.shape() == Shape{n}, "%s: %s is %s, expected F32 (%lld)",
            op, arg, t.str().c_str(), (long long)n);
}

void check_common(const Tensor& logits, const Tensor& targets, float temperature, const char* op) {
  cpu::check_float(logits, op, "logits");
  cpu::check_contiguous(logits, op, "logits");
  ZT_ASSERT(logits.dim() == 2 && logits.size(1) > 0, "%s: logits is %s, expected (N, V) with V > 0",
            op, logits.str().c_str());
  ZT_ASSERT(temperature > 0.0f && std::isfinite(temperature), "%s: temperature %g must be > 0", op,
            double(temperature));
  const int64_t n = logits.size(0), v = logits.size(1);
  cpu::check_cpu(targets, op, "targets");
  cpu::check_contiguous(targets, op, "targets");
  ZT_ASSERT(targets.dtype() == DType::I32 && targets.shape() == Shape{n},
            "%s: targets is %s, expected I32 (%lld)", op, targets.str().c_str(), (long long)n);
  const int32_t* t = targets.data<int32_t>();
  for (int64_t r = 0; r < n; ++r)
    ZT_ASSERT(t[r] < v, "%s: targets[%lld] = %d is >= V = %lld", op, (long long)r, t[r],
              (long long)v);
}

// max of row r of logits (raw, before the temperature); NaN if the row holds one.
float row_max(const Tensor& logits, int64_t r, float* buf) {
  const int64_t v = logits.size(1);
  float mx = -std::numeric_limits<float>::infinity();
  int nan = 0;
  for (int64_t b = 0; b < v; b += kChunk) {
    const int64_t n = std::min(kChunk, v - b);
    const float* x = chunk_f32(logits, r, b, n, buf);
#pragma omp simd reduction(max : mx) reduction(| : nan)
    for (int64_t i = 0; i < n; ++i) {
      mx = x[i] > mx ? x[i] : mx;
      nan |= x[i] != x[i];
    }
  }
  return nan ? kNaNf : mx;
}

int64_t rows_per_block(int64_t v) { return std::max<int64_t>(1, cpu::kBlock / v); }

}  // namespace

void CpuBackend::logprob_forward(const Tensor& logits, const Tensor& targets, float temperature,
                                 Tensor& logprob, Tensor& lse, Tensor& entropy) {
  const char* op = "logprob_forward";
  check_common(logits, targets, temperature, op);
  const int64_t n = logits.size(0), v = logits.size(1);
  check_vec(logprob, n, op, "logprob");
  check_vec(lse, n, op, "lse");
  const bool want_entropy = entropy.defined();
  if (want_entropy) check_vec(entropy, n, op, "entropy");
  const int32_t* tg = targets.data<int32_t>();
  float* lp = logprob.data<float>();
  float* ls = lse.data<float>();
  float* en = want_entropy ? entropy.data<float>() : nullptr;
  const float inv_t = 1.0f / temperature;
  cpu::parallel_blocks(threads_, n, rows_per_block(v), [&](int64_t b, int64_t e) {
    std::vector<float> buf(kChunkSize), za(kChunkSize), ea(kChunkSize);
    for (int64_t r = b; r < e; ++r) {
      const float xmax = row_max(logits, r, buf.data());
      if (!std::isfinite(xmax)) {  // NaN, or all -inf / any +inf: undefined, as in PyTorch
        lp[r] = ls[r] = kNaNf;
        if (en) en[r] = kNaNf;
        continue;
      }
      // s = sum exp(z - zmax), t = sum exp(z - zmax) * (z - zmax), z = x / temperature.
      double s = 0.0, t = 0.0;
      for (int64_t c0 = 0; c0 < v; c0 += kChunk) {
        const int64_t m = std::min(kChunk, v - c0);
        const float* x = chunk_f32(logits, r, c0, m, buf.data());
        float* zm = za.data();
        float* ex = ea.data();
        for (int64_t i = 0; i < m; ++i) {  // a plain map: vectorises
          zm[i] = (x[i] - xmax) * inv_t;
          ex[i] = exp_poly(zm[i]);
          zm[i] = ex[i] > 0.0f ? ex[i] * zm[i] : 0.0f;
        }
        float cs = 0.0f, ct = 0.0f;  // one chunk in f32 lanes, chunks summed in double
#pragma omp simd reduction(+ : cs, ct)
        for (int64_t i = 0; i < m; ++i) {
          cs += ex[i];
          ct += zm[i];
        }
        s += double(cs);
        t += double(ct);
      }
      const double sum = s, log_sum = std::log(sum);
      const double zmax = double(xmax) * double(inv_t);
      ls[r] = float(zmax + log_sum);
      if (tg[r] < 0) {
        lp[r] = 0.0f;
      } else {
        const float xt = chunk_f32(logits, r, tg[r], 1, buf.data())[0];
        lp[r] = float(double((xt - xmax) * inv_t) - log_sum);
      }
      if (en) en[r] = float(log_sum - t / sum);
    }
  });
}

void CpuBackend::logprob_backward(const Tensor& logits, const Tensor& targets, float temperature,
                                  const Tensor& lse, const Tensor& dlogprob, const Tensor& dentropy,
                                  Tensor& dlogits) {
  const char* op = "logprob_backward";
  check_common(logits, targets, temperature, op);
  const int64_t n = logits.size(0), v = logits.size(1);
  check_vec(lse, n, op, "lse");
  check_vec(dlogprob, n, op, "dlogprob");
  const bool with_entropy = dentropy.defined();
  if (with_entropy) check_vec(dentropy, n, op, "dentropy");
  cpu::check_float(dlogits, op, "dlogits");
  cpu::check_contiguous(dlogits, op, "dlogits");
  cpu::check_same_shape(logits, dlogits, op);
  const int32_t* tg = targets.data<int32_t>();
  const float* ls = lse.data<float>();
  const float* dlp = dlogprob.data<float>();
  const float* dent = with_entropy ? dentropy.data<float>() : nullptr;
  const float inv_t = 1.0f / temperature;
  const double inv_td = 1.0 / double(temperature);
  char* ob = static_cast<char*>(dlogits.data_ptr());
  const size_t oes = dlogits.element_size();
  cpu::parallel_blocks(threads_, n, rows_per_block(v), [&](int64_t b, int64_t e) {
    std::vector<float> buf(kChunkSize), out(kChunkSize);
    for (int64_t r = b; r < e; ++r) {
      // log p_i = z_i - lse is formed in double: z and lse may be large (|z| ~ 1e3)
      // while their difference needs f32 precision.
      const float lser = ls[r];
      const double lse_d = double(lser);
      // With an ignored target the logprob term is 0 (its value is the constant 0).
      const float a = tg[r] < 0 ? 0.0f : dlp[r] * inv_t;
      const float de = dent ? dent[r] * inv_t : 0.0f;
      const bool use_entropy = dent != nullptr && de != 0.0f;
      // Entropy H = -sum p log p (recomputed from lse), needed for its gradient
      // dH/dz_i = -p_i (log p_i + H).
      double h = 0.0;
      if (use_entropy && std::isfinite(lser)) {
        double acc = 0.0;
        for (int64_t c0 = 0; c0 < v; c0 += kChunk) {
          const int64_t m = std::min(kChunk, v - c0);
          const float* x = chunk_f32(logits, r, c0, m, buf.data());
          float* q = out.data();
          for (int64_t i = 0; i < m; ++i) {  // a plain map: vectorises
            const float lpi = float(double(x[i]) * inv_td - lse_d);
            const float p = exp_poly(lpi);
            q[i] = p > 0.0f ? p * lpi : 0.0f;
          }
          float ca = 0.0f;
#pragma omp simd reduction(+ : ca)
          for (int64_t i = 0; i < m; ++i) ca += q[i];
          acc += double(ca);
        }
        h = -acc;
      }
      const float hf = float(h);
      for (int64_t c0 = 0; c0 < v; c0 += kChunk) {
        const int64_t m = std::min(kChunk, v - c0);
        const float* x = chunk_f32(logits, r, c0, m, buf.data());
        float* o = dlogits.dtype() == DType::F32 ? dlogits.data<float>() + r * v + c0 : out.data();
        if (!std::isfinite(lser)) {
          std::fill(o, o + m, kNaNf);
        } else if (use_entropy) {
          for (int64_t i = 0; i < m; ++i) {
            const float lpi = float(double(x[i]) * inv_td - lse_d);
            const float p = exp_poly(lpi);
            const float ent = p > 0.0f ? p * (lpi + hf) : 0.0f;
            o[i] = -a * p - de * ent;
          }
        } else {
          for (int64_t i = 0; i < m; ++i)
            o[i] = -a * exp_poly(float(double(x[i]) * inv_td - lse_d));
        }
        const int64_t t = tg[r];
        if (t >= c0 && t < c0 + m && std::isfinite(lser)) o[t - c0] += a;
        if (dlogits.dtype() != DType::F32)
          cpu::from_f32(o, dlogits.dtype(), m, ob + size_t(r * v + c0) * oes);
      }
    }
  });
}

}  // namespace zeroth
