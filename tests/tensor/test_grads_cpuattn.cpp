// Finite-difference checks of attention_backward (CPU backend): the gradients of
// the scalar loss L = sum(W * attention(q, k, v)) that the backend's backward
// returns for dq, dk and dv, against central differences of a float64 forward.
//
// Owns: these cases and their float64 forward. Must not: difference the fp32 op
// itself (fp32 rounding would swamp the step), nor check against any analytic
// gradient formula: the only reference here is the forward.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "op_harness.h"
#include "zeroth/error.h"

using namespace zeroth;
using namespace zeroth::testing;

namespace {

struct GradCase {
  int64_t B, T, H, dqk, dv;
  float scale;
  bool packed;  // q, k, v (and dq, dk, dv) side by side in one (B, T, H, 2*dqk + dv) buffer
};

// L = sum(w * out) in float64 for dense (B, T, H, D) q, k, v and w (B, T, H, dv).
double loss(const GradCase& c, const std::vector<double>& q, const std::vector<double>& k,
            const std::vector<double>& v, const std::vector<double>& w) {
  const int64_t T = c.T, H = c.H;
  double total = 0.0;
  std::vector<double> s(static_cast<size_t>(T));
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T; ++t) {
        const double* qt = q.data() + ((b * T + t) * H + h) * c.dqk;
        double m = -INFINITY;
        for (int64_t j = 0; j <= t; ++j) {
          const double* kj = k.data() + ((b * T + j) * H + h) * c.dqk;
          double dot = 0.0;
          for (int64_t d = 0; d < c.dqk; ++d) dot += qt[d] * kj[d];
          s[size_t(j)] = double(c.scale) * dot;
          m = std::max(m, s[size_t(j)]);
        }
        double sum = 0.0;
        for (int64_t j = 0; j <= t; ++j) sum += std::exp(s[size_t(j)] - m);
        const double* wt = w.data() + ((b * T + t) * H + h) * c.dv;
        for (int64_t j = 0; j <= t; ++j) {
          const double p = std::exp(s[size_t(j)] - m) / sum;
          const double* vj = v.data() + ((b * T + j) * H + h) * c.dv;
          for (int64_t d = 0; d < c.dv; ++d) total += p * vj[d] * wt[d];
        }
      }
  return total;
}

// Uploads dense (B, T, H, D) values as tensors: three separate contiguous tensors,
// or three views of one packed parent (returned in *parent to keep it alive).
std::vector<Tensor> place(Backend& be, const GradCase& c, const std::vector<double>* vals,
                          Tensor* parent) {
  const int64_t widths[3] = {c.dqk, c.dqk, c.dv};
  std::vector<Tensor> out;
  if (!c.packed) {
    for (int i = 0; i < 3; ++i) out.push_back(upload(be, vals[i], {c.B, c.T, c.H, widths[i]}, DType::F32));
    return out;
  }
  const int64_t total = 2 * c.dqk + c.dv, rows = c.B * c.T * c.H;
  std::vector<double> packed(size_t(rows * total));
  int64_t start = 0;
  for (int i = 0; i < 3; ++i) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t d = 0; d < widths[i]; ++d)
        packed[size_t(r * total + start + d)] = vals[i][size_t(r * widths[i] + d)];
    start += widths[i];
  }
  *parent = upload(be, packed, {c.B, c.T, c.H, total}, DType::F32);
  start = 0;
  for (int i = 0; i < 3; ++i) {
    out.push_back(parent->narrow(3, start, widths[i]));
    start += widths[i];
  }
  return out;
}

// A view's values, row-major, as float64 (copied through a contiguous tensor).
std::vector<double> fetch(Backend& be, const Tensor& view) {
  Tensor dense = Tensor::empty(be, view.shape(), view.dtype());
  be.copy(view, dense);
  return download(dense);
}

void check_case(const GradCase& c) {
  auto be = make_cpu_backend(0);
  Rng rng(2201 + uint64_t(c.T));
  const Shape sq{c.B, c.T, c.H, c.dqk}, sv{c.B, c.T, c.H, c.dv};
  std::vector<double> in[3] = {random_values(rng, shape_numel(sq), DType::F32, -1, 1),
                               random_values(rng, shape_numel(sq), DType::F32, -1, 1),
                               random_values(rng, shape_numel(sv), DType::F32, -1, 1)};
  const std::vector<double> w = random_values(rng, shape_numel(sv), DType::F32, -1, 1);

  Tensor in_parent, grad_parent;
  std::vector<Tensor> tin = place(*be, c, in, &in_parent);
  std::vector<double> zeros[3] = {std::vector<double>(in[0].size()), std::vector<double>(in[1].size()),
                                  std::vector<double>(in[2].size())};
  std::vector<Tensor> tgrad = place(*be, c, zeros, &grad_parent);
  Tensor tw = upload(*be, w, sv, DType::F32);
  Tensor out = Tensor::empty(*be, sv, DType::F32);
  Tensor lse = Tensor::empty(*be, {c.B, c.H, c.T}, DType::F32);
  be->attention_forward(tin[0], tin[1], tin[2], c.scale, out, lse);
  be->attention_backward(tw, tin[0], tin[1], tin[2], out, lse, c.scale, tgrad[0], tgrad[1], tgrad[2]);

  const char* names[3] = {"dq", "dk", "dv"};
  const double h = 1e-5;
  for (int i = 0; i < 3; ++i) {
    std::vector<double> got = fetch(*be, tgrad[i]);
    std::vector<double> fd(in[i].size());
    for (size_t j = 0; j < in[i].size(); ++j) {
      const double x0 = in[i][j];
      in[i][j] = x0 + h;
      const double lp = loss(c, in[0], in[1], in[2], w);
      in[i][j] = x0 - h;
      const double lm = loss(c, in[0], in[1], in[2], w);
      in[i][j] = x0;
      fd[j] = (lp - lm) / (2.0 * h);
    }
    // fp32 op vs float64 differences (truncation error ~h^2, far below fp32 rounding).
    expect_close(got, fd, 2e-5,
                 strformat("attention %s by finite differences: B %lld T %lld H %lld Dqk %lld "
                           "Dv %lld scale %g%s",
                           names[i], (long long)c.B, (long long)c.T, (long long)c.H,
                           (long long)c.dqk, (long long)c.dv, double(c.scale),
                           c.packed ? " packed" : ""));
  }
}

}  // namespace

TEST_CASE("attention_backward matches finite differences", "[cpu][grads]") {
  check_case({2, 5, 2, 3, 2, 0.7f, false});
  check_case({1, 1, 3, 4, 5, 0.5f, true});
  check_case({1, 9, 2, 6, 4, 2.0f, true});
  // Crosses the CPU backend's 64-query tiles, so dk and dv sum over two tiles.
  check_case({1, 70, 1, 4, 3, 0.9f, false});
}
