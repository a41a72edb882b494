// Linear layers (nn.Linear without bias) and the RoPE tables of the model.
// Owns: y = x w^T and its backward as GEMMs on the Backend; inv_freq (default and
// yarn, HF's rules) and the cos/sin tables. Must not: allocate per call (except the
// tables, built once per shape) or call BLAS directly.
#include <cmath>
#include <vector>

#include "model/layers.h"
#include "zeroth/error.h"

namespace zeroth {
namespace model {

void linear_forward(Backend& be, const Tensor& x, const Tensor& w, Tensor& y) {
  be.gemm(x, false, w, true, y);
}

void linear_backward(Backend& be, const Tensor& dy, const Tensor& x, const Tensor& w, Tensor& dw,
                     Tensor* dx, bool accumulate_dx) {
  be.gemm(dy, true, x, false, dw, 1.0f, 1.0f);
  if (dx) be.gemm(dy, false, w, false, *dx, 1.0f, accumulate_dx ? 1.0f : 0.0f);
}

static double yarn_mscale(double scale, double mscale) {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

void build_rope_tables(Backend& be, const ModelConfig& cfg, int64_t B, int64_t T, RopeTables& out) {
  const int64_t dim = cfg.qk_rope_head_dim;
  const int64_t half = dim / 2;
  const double base = cfg.rope_theta;
  std::vector<double> inv(static_cast<size_t>(half));
  double attention_factor = 1.0;
  for (int64_t j = 0; j < half; ++j) inv[j] = 1.0 / std::pow(base, double(2 * j) / double(dim));
  if (cfg.rope_scaling) {
    // HF (and scripts/reference/deepseek_v3_ref.py): with original_max_position_embeddings
    // the factor is max_position_embeddings / original; the ramp blends interpolated and
    // extrapolated frequencies between the beta_fast and beta_slow correction dims.
    const RopeScaling& rs = *cfg.rope_scaling;
    const double orig = double(rs.original_max_position_embeddings);
    const double factor = double(cfg.max_position_embeddings) / orig;
    if (rs.mscale != 0.0 && rs.mscale_all_dim != 0.0)
      attention_factor = yarn_mscale(factor, rs.mscale) / yarn_mscale(factor, rs.mscale_all_dim);
    else
      attention_factor = yarn_mscale(factor, 1.0);
    const double beta_fast = rs.beta_fast != 0.0 ? rs.beta_fast : 32.0;
    const double beta_slow = rs.beta_slow != 0.0 ? rs.beta_slow : 1.0;
    auto corr_dim = [&](double rot) {
      return double(dim) * std::log(orig / (rot * 2.0 * M_PI)) / (2.0 * std::log(base));
    };
    double low = std::floor(corr_dim(beta_fast)), high = std::ceil(corr_dim(beta_slow));
    low = std::max(low, 0.0);
    high = std::min(high, double(dim - 1));
    if (low == high) high += 0.001;
    for (int64_t j = 0; j < half; ++j) {
      double ramp = std::min(1.0, std::max(0.0, (double(j) - low) / (high - low)));
      double pos = std::pow(base, double(2 * j) / double(dim));
      inv[j] = (1.0 / (factor * pos)) * ramp + (1.0 / pos) * (1.0 - ramp);
    }
  }
  std::vector<float> c(size_t(T * half)), s(size_t(T * half));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < half; ++j) {
      double a = double(t) * inv[j];
      c[t * half + j] = float(std::cos(a) * attention_factor);
      s[t * half + j] = float(std::sin(a) * attention_factor);
    }
  std::vector<int32_t> pos(size_t(B * T));
  for (int64_t n = 0; n < B * T; ++n) pos[n] = int32_t(n % T);
  out.cos = Tensor::empty(be, {T, half}, DType::F32);
  out.sin = Tensor::empty(be, {T, half}, DType::F32);
  out.positions = Tensor::empty(be, {B * T}, DType::I32);
  out.cos.copy_from_host(c.data(), c.size() * sizeof(float));
  out.sin.copy_from_host(s.data(), s.size() * sizeof(float));
  out.positions.copy_from_host(pos.data(), pos.size() * sizeof(int32_t));
}

}  // namespace model
}  // namespace zeroth
