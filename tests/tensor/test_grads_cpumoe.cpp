// Finite-difference checks of the MoE backward ops on the CPU backend: each backward is
// compared with central differences of its own forward op through a scalar loss
// L = sum(G * forward(...)) (G fixed random), accumulated in float64.
//
// Owns: the cases for moe_router_backward (through topk_weight, selection held fixed),
// moe_combine_backward (both outputs), moe_gather_backward and the grouped GEMM
// backward (dx through grouped_gemm with the other weight layout, dw through
// grouped_gemm_wgrad). Must not: check forward values (test_ops_cpumoe.cpp does).
//
// Step sizes: gather, combine and the grouped GEMM are linear in each input, so a
// central difference is exact up to float32 rounding of the forward and a large step
// (h = 0.5) is used; the router is smooth and its inputs are spaced so that no
// selection changes within the step (h = 1e-2).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "op_harness.h"
#include "zeroth/error.h"

using namespace zeroth;
using namespace zeroth::testing;

namespace {

const DType F32 = DType::F32, I32 = DType::I32;

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Central differences of loss(x) for every element of x (x is restored afterwards).
std::vector<double> numeric_grad(std::vector<double>& x, double h,
                                 const std::function<double()>& loss) {
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i];
    x[i] = x0 + h;
    const double lp = loss();
    x[i] = x0 - h;
    const double lm = loss();
    x[i] = x0;
    g[i] = (lp - lm) / (2.0 * h);
  }
  return g;
}

std::vector<double> random_topk(Rng& rng, int64_t n, int k, int e) {
  std::vector<double> idx;
  std::vector<int> perm(static_cast<size_t>(e));
  std::iota(perm.begin(), perm.end(), 0);
  for (int64_t t = 0; t < n; ++t) {
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int j = 0; j < k; ++j) idx.push_back(perm[size_t(j)]);
  }
  return idx;
}

struct SortT {
  Tensor sorted_to_slot, slot_to_sorted, counts;
};

SortT sort_slots(Backend& be, const std::vector<double>& idx, int64_t n, int k, int e) {
  SortT s{Tensor::empty(be, {n * k}, I32), Tensor::empty(be, {n * k}, I32),
          Tensor::empty(be, {int64_t(e)}, I32)};
  be.moe_sort_by_expert(upload(be, idx, {n, k}, I32), e, s.sorted_to_slot, s.slot_to_sorted,
                        s.counts);
  return s;
}

// Router inputs with well-separated biased scores and group sums, so that moving one
// logit by h = 1e-2 (a score by at most 2.5e-3) never changes the selection.
void spaced_router_inputs(Rng& rng, int64_t n, int e, int n_group, std::vector<double>* logits,
                          std::vector<double>* bias) {
  std::uniform_real_distribution<double> ub(-0.1, 0.1), jitter(0.0, 0.005);
  bias->clear();
  for (int i = 0; i < e; ++i) bias->push_back(round_to(F32, ub(rng)));
  const int per = e / n_group;
  logits->clear();
  std::vector<int> perm(static_cast<size_t>(e));
  std::iota(perm.begin(), perm.end(), 0);
  for (int64_t t = 0; t < n; ++t) {
    for (int attempt = 0;; ++attempt) {
      REQUIRE(attempt < 1000);
      std::shuffle(perm.begin(), perm.end(), rng);
      std::vector<double> target(static_cast<size_t>(e));
      for (int i = 0; i < e; ++i) target[size_t(i)] = 0.2 + 0.03 * perm[size_t(i)] + jitter(rng);
      std::vector<double> gsum;
      for (int g = 0; g < n_group; ++g) {
        std::vector<double> m(target.begin() + g * per, target.begin() + (g + 1) * per);
        std::sort(m.begin(), m.end(), std::greater<double>());
        gsum.push_back(m[0] + m[1]);
      }
      std::sort(gsum.begin(), gsum.end());
      bool ok = true;
      for (size_t g = 1; g < gsum.size(); ++g) ok = ok && gsum[g] - gsum[g - 1] > 0.012;
      if (!ok) continue;
      for (int i = 0; i < e; ++i) {
        const double s = target[size_t(i)] - (*bias)[size_t(i)];
        logits->push_back(round_to(F32, std::log(s / (1.0 - s))));
      }
      break;
    }
  }
}

}  // namespace

TEST_CASE("moe_router_backward matches finite differences of moe_router_forward", "[cpu][grad]") {
  auto be = make_test_backend("cpu");
  Rng rng(3001);
  struct Case { int64_t n; int e, n_group, topk_group, top_k; };
  for (const Case& c : {Case{3, 8, 4, 2, 2}, Case{4, 12, 4, 2, 3}, Case{2, 16, 1, 1, 4}})
    for (bool norm : {true, false}) {
      const float scaling = norm ? 2.5f : 1.0f;
      std::vector<double> logits, bias;
      spaced_router_inputs(rng, c.n, c.e, c.n_group, &logits, &bias);
      std::vector<double> g = random_values(rng, c.n * c.top_k, F32, -1.0, 1.0);
      Tensor tb = upload(*be, bias, {int64_t(c.e)}, F32);
      Tensor ts = Tensor::empty(*be, {c.n, int64_t(c.e)}, F32);
      Tensor ti = Tensor::empty(*be, {c.n, int64_t(c.top_k)}, I32);
      Tensor tw = Tensor::empty(*be, {c.n, int64_t(c.top_k)}, F32);
      auto forward = [&]() {
        be->moe_router_forward(upload(*be, logits, {c.n, int64_t(c.e)}, F32), tb, c.n_group,
                               c.topk_group, c.top_k, norm, scaling, ts, ti, tw);
      };
      forward();
      const std::vector<double> idx0 = download(ti);
      Tensor scores = upload(*be, download(ts), {c.n, int64_t(c.e)}, F32);
      Tensor tdl = Tensor::empty(*be, {c.n, int64_t(c.e)}, F32);
      be->moe_router_backward(scores, ti, upload(*be, g, {c.n, int64_t(c.top_k)}, F32), norm,
                              scaling, tdl);
      std::vector<double> numeric = numeric_grad(logits, 1e-2, [&]() {
        forward();
        REQUIRE(download(ti) == idx0);  // the selection is held fixed
        return dot(g, download(tw));
      });
      expect_close(download(tdl), numeric, 2e-3,
                   strformat("moe_router_backward vs finite differences, N %lld E %d groups %d/%d "
                             "top_k %d%s", (long long)c.n, c.e, c.n_group, c.topk_group, c.top_k,
                             norm ? " norm" : ""));
    }
}

TEST_CASE("moe_gather_backward matches finite differences of moe_gather", "[cpu][grad]") {
  auto be = make_test_backend("cpu");
  Rng rng(3002);
  for (int k : {1, 2, 3}) {
    const int64_t n = 6, c = 5;
    const int e = 4;
    SortT s = sort_slots(*be, random_topk(rng, n, k, e), n, k, e);
    std::vector<double> x = random_values(rng, n * c, F32, -1.0, 1.0);
    std::vector<double> g = random_values(rng, n * k * c, F32, -1.0, 1.0);
    Tensor out = Tensor::empty(*be, {n * k, c}, F32);
    Tensor dx = Tensor::empty(*be, {n, c}, F32);
    be->moe_gather_backward(upload(*be, g, {n * k, c}, F32), s.slot_to_sorted, k, dx);
    std::vector<double> numeric = numeric_grad(x, 0.5, [&]() {
      be->moe_gather(upload(*be, x, {n, c}, F32), s.sorted_to_slot, k, out);
      return dot(g, download(out));
    });
    expect_close(download(dx), numeric, 1e-5,
                 strformat("moe_gather_backward vs finite differences, k %d", k));
  }
}

TEST_CASE("moe_combine_backward matches finite differences of moe_combine", "[cpu][grad]") {
  auto be = make_test_backend("cpu");
  Rng rng(3003);
  for (int k : {1, 2, 4}) {
    const int64_t n = 5, c = 7;
    const int e = 6;
    SortT s = sort_slots(*be, random_topk(rng, n, k, e), n, k, e);
    std::vector<double> eo = random_values(rng, n * k * c, F32, -1.0, 1.0);
    std::vector<double> w = random_values(rng, n * k, F32, 0.0, 1.0);
    std::vector<double> g = random_values(rng, n * c, F32, -1.0, 1.0);
    Tensor out = Tensor::empty(*be, {n, c}, F32);
    auto loss = [&]() {
      be->moe_combine(upload(*be, eo, {n * k, c}, F32), s.slot_to_sorted,
                      upload(*be, w, {n, int64_t(k)}, F32), out, false);
      return dot(g, download(out));
    };
    Tensor de = Tensor::empty(*be, {n * k, c}, F32);
    Tensor dw = Tensor::empty(*be, {n, int64_t(k)}, F32);
    be->moe_combine_backward(upload(*be, g, {n, c}, F32), upload(*be, eo, {n * k, c}, F32),
                             s.slot_to_sorted, upload(*be, w, {n, int64_t(k)}, F32), de, dw);
    std::string what = strformat("moe_combine_backward vs finite differences, k %d", k);
    expect_close(download(de), numeric_grad(eo, 0.5, loss), 1e-5, what + " (dexpert_out)");
    expect_close(download(dw), numeric_grad(w, 0.5, loss), 1e-5, what + " (dweight)");
  }
}

TEST_CASE("grouped GEMM backward (dx, wgrad) matches finite differences", "[cpu][grad]") {
  auto be = make_test_backend("cpu");
  Rng rng(3004);
  const int64_t m = 9, n = 4, k = 3;
  const int e = 4;
  // Expert 2 gets no rows: its weight gradient must be exactly zero.
  const std::vector<int64_t> groups{3, 4, 0, 2};
  for (bool trans_w : {true, false}) {
    std::vector<double> x = random_values(rng, m * k, F32, -1.0, 1.0);
    std::vector<double> w = random_values(rng, e * n * k, F32, -1.0, 1.0);
    std::vector<double> g = random_values(rng, m * n, F32, -1.0, 1.0);
    const Shape ws = trans_w ? Shape{e, n, k} : Shape{e, k, n};
    Tensor out = Tensor::empty(*be, {m, n}, F32);
    auto loss = [&]() {
      be->grouped_gemm(upload(*be, x, {m, k}, F32), upload(*be, w, ws, F32), trans_w, groups, out);
      return dot(g, download(out));
    };
    // dx = dout @ op(w[e])^T: the same weights read in the other layout.
    Tensor dx = Tensor::empty(*be, {m, k}, F32);
    be->grouped_gemm(upload(*be, g, {m, n}, F32), upload(*be, w, ws, F32), !trans_w, groups, dx);
    std::string what = strformat("grouped_gemm%s backward vs finite differences",
                                 trans_w ? " trans_w" : "");
    expect_close(download(dx), numeric_grad(x, 0.5, loss), 1e-5, what + " (dx)");
    if (trans_w) {
      // wgrad's layout is the nn.Linear one, (E, N, K).
      Tensor dw = upload(*be, std::vector<double>(size_t(e * n * k), 7.0), ws, F32);
      be->grouped_gemm_wgrad(upload(*be, g, {m, n}, F32), upload(*be, x, {m, k}, F32), groups, dw,
                             false);
      std::vector<double> got = download(dw);
      expect_close(got, numeric_grad(w, 0.5, loss), 1e-5, what + " (dw)");
      for (int64_t i = 2 * n * k; i < 3 * n * k; ++i) REQUIRE(got[size_t(i)] == 0.0);
    }
  }
}
