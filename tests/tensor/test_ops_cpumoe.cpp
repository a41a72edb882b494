// Op harness cases for the mixture-of-experts ops of backend.h: moe_router_forward /
// backward, moe_sort_by_expert, moe_gather / moe_gather_backward, moe_combine /
// moe_combine_backward, grouped_gemm and grouped_gemm_wgrad. Same rules as
// test_ops.cpp (whose header says how to add an op): every backend against a float64
// reference computed here, CPU as "[cpu]", CUDA as the hidden "[.cuda]" twin.
//
// Owns: the MoE cases only, including hand-made routing cases whose answers are written
// out (group ranking by top-2 sums, ties to the lower index, masked groups never chosen
// even when every kept score is negative) and the permute -> unpermute identities.
// Must not: compute references in anything but float64 from the exact (rounded) inputs.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "op_harness.h"
#include "zeroth/error.h"

using namespace zeroth;
using namespace zeroth::testing;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
const DType F32 = DType::F32, BF16 = DType::BF16, I32 = DType::I32;

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// ---- router reference (float64) ----

struct RouterRef {
  std::vector<double> scores;   // (N, E)
  std::vector<double> idx;      // (N, k)
  std::vector<double> weight;   // (N, k)
};

// Indices of the `count` largest of v among `allowed`, descending, ties to the lower index.
std::vector<int> ranked(const std::vector<double>& v, const std::vector<bool>& allowed, int count) {
  std::vector<int> ids;
  for (int i = 0; i < int(v.size()); ++i)
    if (allowed[size_t(i)]) ids.push_back(i);
  std::stable_sort(ids.begin(), ids.end(), [&](int a, int b) { return v[size_t(a)] > v[size_t(b)]; });
  REQUIRE(int(ids.size()) >= count);
  ids.resize(size_t(count));
  return ids;
}

RouterRef router_ref(const std::vector<double>& logits, const std::vector<double>& bias, int64_t n,
                     int e, int n_group, int topk_group, int top_k, bool norm, double scaling) {
  RouterRef r;
  r.scores.resize(size_t(n * e));
  const int per = e / n_group;
  for (int64_t t = 0; t < n; ++t) {
    std::vector<double> biased(static_cast<size_t>(e));
    for (int i = 0; i < e; ++i) {
      double s = sigmoid(logits[size_t(t * e + i)]);
      r.scores[size_t(t * e + i)] = s;
      biased[size_t(i)] = s + bias[size_t(i)];
    }
    std::vector<double> gscore(static_cast<size_t>(n_group));
    for (int g = 0; g < n_group; ++g) {
      std::vector<double> m(biased.begin() + g * per, biased.begin() + (g + 1) * per);
      std::sort(m.begin(), m.end(), std::greater<double>());
      gscore[size_t(g)] = m[0] + m[1];
    }
    std::vector<int> groups = ranked(gscore, std::vector<bool>(size_t(n_group), true), topk_group);
    std::vector<bool> allowed(size_t(e), false);
    for (int g : groups)
      for (int i = 0; i < per; ++i) allowed[size_t(g * per + i)] = true;
    std::vector<int> chosen = ranked(biased, allowed, top_k);
    double sum = 0.0;
    for (int c : chosen) sum += r.scores[size_t(t * e + c)];
    for (int c : chosen) {
      r.idx.push_back(c);
      double w = r.scores[size_t(t * e + c)];
      r.weight.push_back((norm ? w / (sum + 1e-20) : w) * scaling);
    }
  }
  return r;
}

// Router inputs drawn from small sets of levels so that exact ties are common: logit
// level i and bias level j give the same float value for every expert that draws
// them. Rows where two *different* (i, j) choices, or two groups with different top-2
// choices, land within 1e-5 of each other are redrawn, so float32 and float64 rank alike.
struct RouterInputs {
  std::vector<double> logits, bias;
};

RouterInputs router_inputs(Rng& rng, int64_t n, int e, int n_group, int logit_levels,
                           bool with_bias) {
  RouterInputs in;
  std::uniform_int_distribution<int> pick_l(0, logit_levels - 1), pick_b(0, 8);
  auto level = [&](int i) {
    return round_to(F32, -2.0 + 4.0 * i / std::max(1, logit_levels - 1) + 0.013);
  };
  std::vector<int> bias_level(static_cast<size_t>(e));
  for (int i = 0; i < e; ++i) {
    bias_level[size_t(i)] = with_bias ? pick_b(rng) : 0;
    in.bias.push_back(with_bias ? round_to(F32, -0.1 + 0.025 * bias_level[size_t(i)] + 0.0031) : 0.0);
  }
  const int per = e / n_group;
  for (int64_t t = 0; t < n; ++t) {
    for (int attempt = 0;; ++attempt) {
      REQUIRE(attempt < 1000);
      std::vector<int> key(static_cast<size_t>(e));
      std::vector<double> biased(static_cast<size_t>(e));
      for (int i = 0; i < e; ++i) {
        int li = pick_l(rng);
        key[size_t(i)] = li * 16 + bias_level[size_t(i)];
        biased[size_t(i)] = sigmoid(level(li)) + in.bias[size_t(i)];
      }
      bool ok = true;
      for (int i = 0; i < e && ok; ++i)
        for (int j = i + 1; j < e && ok; ++j)
          if (key[size_t(i)] != key[size_t(j)] && std::fabs(biased[size_t(i)] - biased[size_t(j)]) < 1e-5)
            ok = false;
      // Each group's top-2 as (sum, sorted keys of the two).
      std::vector<double> gsum(static_cast<size_t>(n_group));
      std::vector<std::pair<int, int>> gkeys(static_cast<size_t>(n_group));
      for (int g = 0; g < n_group && ok; ++g) {
        std::vector<int> ids(static_cast<size_t>(per));
        std::iota(ids.begin(), ids.end(), g * per);
        std::stable_sort(ids.begin(), ids.end(),
                         [&](int a, int b) { return biased[size_t(a)] > biased[size_t(b)]; });
        gsum[size_t(g)] = biased[size_t(ids[0])] + biased[size_t(ids[1])];
        gkeys[size_t(g)] = {key[size_t(ids[0])], key[size_t(ids[1])]};
      }
      for (int g = 0; g < n_group && ok; ++g)
        for (int h = g + 1; h < n_group && ok; ++h)
          if (gkeys[size_t(g)] != gkeys[size_t(h)] && std::fabs(gsum[size_t(g)] - gsum[size_t(h)]) < 1e-5)
            ok = false;
      if (!ok) continue;
      for (int i = 0; i < e; ++i) in.logits.push_back(level(key[size_t(i)] / 16));
      break;
    }
  }
  return in;
}

struct RouterOut {
  std::vector<double> scores, idx, weight;
};

RouterOut run_router(Backend& be, const std::vector<double>& logits, const std::vector<double>& bias,
                     int64_t n, int e, int n_group, int topk_group, int top_k, bool norm,
                     float scaling) {
  Tensor tl = upload(be, logits, {n, e}, F32);
  Tensor tb = upload(be, bias, {int64_t(e)}, F32);
  Tensor ts = upload(be, std::vector<double>(size_t(n * e), kNaN), {n, e}, F32);
  Tensor ti = upload(be, std::vector<double>(size_t(n * top_k), -1.0), {n, top_k}, I32);
  Tensor tw = upload(be, std::vector<double>(size_t(n * top_k), kNaN), {n, top_k}, F32);
  be.moe_router_forward(tl, tb, n_group, topk_group, top_k, norm, scaling, ts, ti, tw);
  return {download(ts), download(ti), download(tw)};
}

void test_moe_router_forward(Backend& be) {
  Rng rng(2001);
  struct Case { int64_t n; int e, n_group, topk_group, top_k, levels; bool bias; };
  const Case cases[] = {
      {1, 8, 4, 2, 2, 17, true},   {37, 12, 4, 2, 3, 17, true},  {50, 16, 1, 1, 4, 5, false},
      {64, 16, 8, 3, 1, 3, false}, {33, 20, 5, 2, 4, 9, true},   {29, 12, 3, 3, 4, 2, true},
      {9, 256, 8, 4, 8, 33, true}, {300, 64, 8, 4, 6, 17, true}, {17, 2, 1, 1, 2, 4, false}};
  for (const Case& c : cases)
    for (bool norm : {true, false}) {
      const float scaling = norm ? 2.5f : 1.0f;
      RouterInputs in = router_inputs(rng, c.n, c.e, c.n_group, c.levels, c.bias);
      RouterOut got = run_router(be, in.logits, in.bias, c.n, c.e, c.n_group, c.topk_group,
                                 c.top_k, norm, scaling);
      RouterRef ref = router_ref(in.logits, in.bias, c.n, c.e, c.n_group, c.topk_group, c.top_k,
                                 norm, scaling);
      std::string what = strformat("moe_router_forward N %lld E %d groups %d/%d top_k %d%s%s on %s",
                                   (long long)c.n, c.e, c.n_group, c.topk_group, c.top_k,
                                   norm ? " norm" : "", c.bias ? " bias" : "", be.name().c_str());
      expect_close(got.scores, ref.scores, tolerance(F32), what + " scores");
      expect_close(got.idx, ref.idx, 0.0, what + " topk_idx");
      expect_close(got.weight, ref.weight, tolerance(F32), what + " topk_weight");
    }
}

double logit_of(double p) { return std::log(p / (1.0 - p)); }

// Hand-made routing cases with the answer written out.
void test_moe_router_cases(Backend& be) {
  struct Case {
    const char* what;
    std::vector<double> probs, bias;  // one token: sigmoid scores (E) and bias (E)
    int n_group, topk_group, top_k;
    bool norm;
    std::vector<double> idx;
  };
  const Case cases[] = {
      {"all tied: lowest groups, then lowest experts", {0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5},
       {0, 0, 0, 0, 0, 0, 0, 0}, 4, 2, 3, true, {0, 1, 2}},
      {"groups ranked by top-2 sum, not by their best expert",
       {0.95, 0.05, 0.6, 0.61, 0.55, 0.56, 0.5, 0.1}, {0, 0, 0, 0, 0, 0, 0, 0}, 4, 2, 3, true,
       {3, 2, 5}},
      {"masked groups are never chosen, even over negative kept scores",
       {0.2, 0.3, 0.1, 0.1}, {-0.5, -0.5, -0.8, -0.8}, 2, 1, 2, true, {1, 0}},
      {"tied groups: the lower group index is kept", {0.2, 0.3, 0.7, 0.7, 0.7, 0.7}, {0, 0, 0, 0, 0, 0},
       3, 1, 2, false, {2, 3}},
      {"the bias decides the order, the weights ignore it", {0.5, 0.4, 0.3, 0.2},
       {0.0, 0.2, 0.0, 0.0}, 1, 1, 2, true, {1, 0}},
      {"tied experts inside a group: lower index first", {0.3, 0.8, 0.8, 0.1, 0.8, 0.2},
       {0, 0, 0, 0, 0, 0}, 1, 1, 3, false, {1, 2, 4}},
  };
  for (const Case& c : cases) {
    const int e = int(c.probs.size());
    std::vector<double> logits;
    for (double p : c.probs) logits.push_back(round_to(F32, logit_of(p)));
    std::vector<double> bias;
    for (double b : c.bias) bias.push_back(round_to(F32, b));
    RouterOut got = run_router(be, logits, bias, 1, e, c.n_group, c.topk_group, c.top_k, c.norm, 2.5f);
    std::string what = strformat("moe_router_forward: %s on %s", c.what, be.name().c_str());
    expect_close(got.idx, c.idx, 0.0, what);
    double sum = 0.0;
    for (double i : c.idx) sum += sigmoid(logits[size_t(i)]);
    std::vector<double> w;
    for (double i : c.idx) w.push_back(sigmoid(logits[size_t(i)]) / (c.norm ? sum : 1.0) * 2.5);
    expect_close(got.weight, w, tolerance(F32), what + " (weights)");
  }
}

// ---- router backward ----

void test_moe_router_backward(Backend& be) {
  Rng rng(2002);
  struct Case { int64_t n; int e, k; };
  for (const Case& c : {Case{1, 4, 1}, Case{23, 8, 2}, Case{70, 16, 4}, Case{5, 256, 8}})
    for (bool norm : {true, false}) {
      const double scaling = norm ? 2.5 : 1.0;
      std::vector<double> scores = random_values(rng, c.n * c.e, F32, 0.02, 0.98);
      std::vector<double> dw = random_values(rng, c.n * c.k, F32, -1.0, 1.0);
      std::vector<double> idx;
      for (int64_t t = 0; t < c.n; ++t) {
        std::vector<int> perm(size_t(c.e));
        std::iota(perm.begin(), perm.end(), 0);
        std::shuffle(perm.begin(), perm.end(), rng);
        for (int j = 0; j < c.k; ++j) idx.push_back(perm[size_t(j)]);
      }
      // d w_j / d s_m = c (delta_jm / S - s_j / S^2) (normalised) or c delta_jm; then
      // d s / d logit = s (1 - s).
      std::vector<double> ref(size_t(c.n * c.e), 0.0);
      for (int64_t t = 0; t < c.n; ++t) {
        double sum = 1e-20;
        for (int j = 0; j < c.k; ++j) sum += scores[size_t(t * c.e + int64_t(idx[size_t(t * c.k + j)]))];
        for (int m = 0; m < c.k; ++m) {
          const int64_t em = int64_t(idx[size_t(t * c.k + m)]);
          const double sm = scores[size_t(t * c.e + em)];
          double ds = 0.0;
          for (int j = 0; j < c.k; ++j) {
            const double sj = scores[size_t(t * c.e + int64_t(idx[size_t(t * c.k + j)]))];
            const double jac = norm ? scaling * ((j == m ? 1.0 : 0.0) / sum - sj / (sum * sum))
                                    : (j == m ? scaling : 0.0);
            ds += dw[size_t(t * c.k + j)] * jac;
          }
          ref[size_t(t * c.e + em)] = ds * sm * (1.0 - sm);
        }
      }
      Tensor ts = upload(be, scores, {c.n, c.e}, F32);
      Tensor ti = upload(be, idx, {c.n, c.k}, I32);
      Tensor tdw = upload(be, dw, {c.n, c.k}, F32);
      Tensor tdl = upload(be, std::vector<double>(size_t(c.n * c.e), kNaN), {c.n, c.e}, F32);
      be.moe_router_backward(ts, ti, tdw, norm, float(scaling), tdl);
      expect_close(download(tdl), ref, tolerance(F32),
                   strformat("moe_router_backward N %lld E %d k %d%s on %s", (long long)c.n, c.e,
                             c.k, norm ? " norm" : "", be.name().c_str()));
    }
}

// ---- sort, gather, combine ----

// topk_idx (N, k) with k distinct experts per row drawn from [0, e_used) (so experts
// e_used..E-1, and often others, get no rows).
std::vector<double> random_topk(Rng& rng, int64_t n, int k, int e_used) {
  std::vector<double> idx;
  std::vector<int> perm(static_cast<size_t>(e_used));
  std::iota(perm.begin(), perm.end(), 0);
  for (int64_t t = 0; t < n; ++t) {
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int j = 0; j < k; ++j) idx.push_back(perm[size_t(j)]);
  }
  return idx;
}

struct SortRef {
  std::vector<double> sorted_to_slot, slot_to_sorted, counts;
};

SortRef sort_ref(const std::vector<double>& idx, int e) {
  SortRef r;
  std::vector<int> slots(idx.size());
  std::iota(slots.begin(), slots.end(), 0);
  std::stable_sort(slots.begin(), slots.end(),
                   [&](int a, int b) { return idx[size_t(a)] < idx[size_t(b)]; });
  r.slot_to_sorted.assign(idx.size(), 0.0);
  for (size_t p = 0; p < slots.size(); ++p) {
    r.sorted_to_slot.push_back(slots[p]);
    r.slot_to_sorted[size_t(slots[p])] = double(p);
  }
  r.counts.assign(size_t(e), 0.0);
  for (double v : idx) r.counts[size_t(v)] += 1.0;
  return r;
}

struct Sorted {
  Tensor sorted_to_slot, slot_to_sorted, counts;
};

Sorted run_sort(Backend& be, const std::vector<double>& idx, int64_t n, int k, int e) {
  Tensor ti = upload(be, idx, {n, k}, I32);
  Sorted s{upload(be, std::vector<double>(size_t(n * k), -7.0), {n * k}, I32),
           upload(be, std::vector<double>(size_t(n * k), -7.0), {n * k}, I32),
           upload(be, std::vector<double>(size_t(e), -7.0), {int64_t(e)}, I32)};
  be.moe_sort_by_expert(ti, e, s.sorted_to_slot, s.slot_to_sorted, s.counts);
  return s;
}

void test_moe_sort_by_expert(Backend& be) {
  Rng rng(2003);
  struct Case { int64_t n; int k, e, e_used; bool repeats; };
  const Case cases[] = {{1, 1, 4, 4, false},    {13, 2, 8, 5, false},   {100, 4, 16, 16, false},
                        {257, 3, 64, 40, false}, {2000, 8, 256, 256, false}, {31, 4, 6, 6, true},
                        {0, 2, 4, 4, false}};
  for (const Case& c : cases) {
    std::vector<double> idx = c.repeats ? random_values(rng, c.n * c.k, I32, 0, c.e_used)
                                        : random_topk(rng, c.n, c.k, c.e_used);
    Sorted got = run_sort(be, idx, c.n, c.k, c.e);
    SortRef ref = sort_ref(idx, c.e);
    std::string what = strformat("moe_sort_by_expert N %lld k %d E %d (%d used)%s on %s",
                                 (long long)c.n, c.k, c.e, c.e_used,
                                 c.repeats ? " with repeats" : "", be.name().c_str());
    expect_close(download(got.sorted_to_slot), ref.sorted_to_slot, 0.0, what + " sorted_to_slot");
    expect_close(download(got.slot_to_sorted), ref.slot_to_sorted, 0.0, what + " slot_to_sorted");
    expect_close(download(got.counts), ref.counts, 0.0, what + " counts");
  }
}

struct MoeShape { int64_t n, c; int k, e; };
const MoeShape kMoeShapes[] = {{1, 1, 1, 2}, {7, 5, 2, 4}, {33, 17, 3, 8}, {64, 96, 4, 16},
                               {5, 4100, 2, 3}, {130, 33, 8, 64}};

void test_moe_gather(Backend& be) {
  Rng rng(2004);
  for (const MoeShape& s : kMoeShapes)
    for (DType dt : {F32, BF16}) {
      std::vector<double> idx = random_topk(rng, s.n, s.k, s.e);
      SortRef sr = sort_ref(idx, s.e);
      std::vector<double> x = random_values(rng, s.n * s.c, dt, -2.0, 2.0);
      Tensor tx = upload(be, x, {s.n, s.c}, dt);
      Tensor ts = upload(be, sr.sorted_to_slot, {s.n * s.k}, I32);
      Tensor to = upload(be, std::vector<double>(size_t(s.n * s.k * s.c), kNaN), {s.n * s.k, s.c}, dt);
      be.moe_gather(tx, ts, s.k, to);
      std::vector<double> ref;
      for (int64_t r = 0; r < s.n * s.k; ++r) {
        const int64_t t = int64_t(sr.sorted_to_slot[size_t(r)]) / s.k;
        ref.insert(ref.end(), x.begin() + t * s.c, x.begin() + (t + 1) * s.c);
      }
      expect_close(download(to), ref, 0.0,
                   strformat("moe_gather %s k %d on %s", shape_str({s.n, s.c}).c_str(), s.k,
                             be.name().c_str()) + " " + dt_str(dt));
    }
}

void test_moe_gather_backward(Backend& be) {
  Rng rng(2005);
  const std::pair<DType, DType> dts[] = {{F32, F32}, {BF16, BF16}, {BF16, F32}, {F32, BF16}};
  for (const MoeShape& s : kMoeShapes)
    for (auto& d : dts) {
      std::vector<double> idx = random_topk(rng, s.n, s.k, s.e);
      SortRef sr = sort_ref(idx, s.e);
      std::vector<double> ds = random_values(rng, s.n * s.k * s.c, d.first, -1.0, 1.0);
      Tensor tds = upload(be, ds, {s.n * s.k, s.c}, d.first);
      Tensor tss = upload(be, sr.slot_to_sorted, {s.n * s.k}, I32);
      Tensor tdx = upload(be, std::vector<double>(size_t(s.n * s.c), kNaN), {s.n, s.c}, d.second);
      be.moe_gather_backward(tds, tss, s.k, tdx);
      std::vector<double> ref(size_t(s.n * s.c), 0.0);
      for (int64_t t = 0; t < s.n; ++t)
        for (int j = 0; j < s.k; ++j) {
          const int64_t r = int64_t(sr.slot_to_sorted[size_t(t * s.k + j)]);
          for (int64_t i = 0; i < s.c; ++i) ref[size_t(t * s.c + i)] += ds[size_t(r * s.c + i)];
        }
      expect_close(download(tdx), ref, tolerance(d.second),
                   strformat("moe_gather_backward dx %s k %d, %s -> %s on %s",
                             shape_str({s.n, s.c}).c_str(), s.k, dt_str(d.first).c_str(),
                             dt_str(d.second).c_str(), be.name().c_str()));
    }
}

void test_moe_combine(Backend& be) {
  Rng rng(2006);
  const std::pair<DType, DType> dts[] = {{F32, F32}, {BF16, BF16}, {BF16, F32}};
  for (const MoeShape& s : kMoeShapes)
    for (auto& d : dts)
      for (bool accumulate : {false, true}) {
        std::vector<double> idx = random_topk(rng, s.n, s.k, s.e);
        SortRef sr = sort_ref(idx, s.e);
        std::vector<double> eo = random_values(rng, s.n * s.k * s.c, d.first, -1.0, 1.0);
        std::vector<double> w = random_values(rng, s.n * s.k, F32, 0.0, 1.0);
        std::vector<double> out0 = accumulate ? random_values(rng, s.n * s.c, d.second, -1.0, 1.0)
                                              : std::vector<double>(size_t(s.n * s.c), kNaN);
        Tensor teo = upload(be, eo, {s.n * s.k, s.c}, d.first);
        Tensor tss = upload(be, sr.slot_to_sorted, {s.n * s.k}, I32);
        Tensor tw = upload(be, w, {s.n, int64_t(s.k)}, F32);
        Tensor to = upload(be, out0, {s.n, s.c}, d.second);
        be.moe_combine(teo, tss, tw, to, accumulate);
        std::vector<double> ref(size_t(s.n * s.c));
        for (int64_t t = 0; t < s.n; ++t)
          for (int64_t i = 0; i < s.c; ++i) {
            double acc = accumulate ? out0[size_t(t * s.c + i)] : 0.0;
            for (int j = 0; j < s.k; ++j) {
              const int64_t r = int64_t(sr.slot_to_sorted[size_t(t * s.k + j)]);
              acc += w[size_t(t * s.k + j)] * eo[size_t(r * s.c + i)];
            }
            ref[size_t(t * s.c + i)] = acc;
          }
        expect_close(download(to), ref, tolerance(d.second),
                     strformat("moe_combine out %s k %d %s -> %s%s on %s",
                               shape_str({s.n, s.c}).c_str(), s.k, dt_str(d.first).c_str(),
                               dt_str(d.second).c_str(), accumulate ? " accumulate" : "",
                               be.name().c_str()));
      }
}

void test_moe_combine_backward(Backend& be) {
  Rng rng(2007);
  for (const MoeShape& s : kMoeShapes)
    for (DType dt : {F32, BF16}) {
      std::vector<double> idx = random_topk(rng, s.n, s.k, s.e);
      SortRef sr = sort_ref(idx, s.e);
      std::vector<double> dout = random_values(rng, s.n * s.c, dt, -1.0, 1.0);
      std::vector<double> eo = random_values(rng, s.n * s.k * s.c, dt, -1.0, 1.0);
      std::vector<double> w = random_values(rng, s.n * s.k, F32, 0.0, 1.0);
      Tensor tdo = upload(be, dout, {s.n, s.c}, dt);
      Tensor teo = upload(be, eo, {s.n * s.k, s.c}, dt);
      Tensor tss = upload(be, sr.slot_to_sorted, {s.n * s.k}, I32);
      Tensor tw = upload(be, w, {s.n, int64_t(s.k)}, F32);
      Tensor tde = upload(be, std::vector<double>(size_t(s.n * s.k * s.c), kNaN), {s.n * s.k, s.c}, dt);
      Tensor tdw = upload(be, std::vector<double>(size_t(s.n * s.k), kNaN), {s.n, int64_t(s.k)}, F32);
      be.moe_combine_backward(tdo, teo, tss, tw, tde, tdw);
      std::vector<double> ref_de(size_t(s.n * s.k * s.c)), ref_dw(size_t(s.n * s.k));
      for (int64_t t = 0; t < s.n; ++t)
        for (int j = 0; j < s.k; ++j) {
          const int64_t r = int64_t(sr.slot_to_sorted[size_t(t * s.k + j)]);
          double dot = 0.0;
          for (int64_t i = 0; i < s.c; ++i) {
            ref_de[size_t(r * s.c + i)] = w[size_t(t * s.k + j)] * dout[size_t(t * s.c + i)];
            dot += dout[size_t(t * s.c + i)] * eo[size_t(r * s.c + i)];
          }
          ref_dw[size_t(t * s.k + j)] = dot;
        }
      std::string what = strformat("moe_combine_backward dout %s k %d %s on %s",
                                   shape_str({s.n, s.c}).c_str(), s.k, dt_str(dt).c_str(),
                                   be.name().c_str());
      expect_close(download(tde), ref_de, tolerance(dt), what + " dexpert_out");
      expect_close(download(tdw), ref_dw, tolerance(F32), what + " dweight");
    }
}

// Permute then unpermute returns the input: with k = 1, gather then gather_backward
// is the identity, and so is gather then combine with weights 1; with k > 1 each
// token comes back k times (gather_backward) or weighted by the sum of its weights.
void test_moe_permute_roundtrip(Backend& be) {
  Rng rng(2008);
  for (int k : {1, 2, 4})
    for (DType dt : {F32, BF16}) {
      const int64_t n = 45, c = 19;
      const int e = 8;
      std::vector<double> idx = random_topk(rng, n, k, e);
      Sorted s = run_sort(be, idx, n, k, e);
      std::vector<double> x = random_values(rng, n * c, dt, -3.0, 3.0);
      Tensor tx = upload(be, x, {n, c}, dt);
      Tensor sorted = upload(be, std::vector<double>(size_t(n * k * c), kNaN), {n * k, c}, dt);
      be.moe_gather(tx, s.sorted_to_slot, k, sorted);
      Tensor back = upload(be, std::vector<double>(size_t(n * c), kNaN), {n, c}, dt);
      be.moe_gather_backward(sorted, s.slot_to_sorted, k, back);
      std::vector<double> ref(x);
      for (double& v : ref) v *= k;
      std::string what = strformat("moe permute/unpermute k %d %s on %s", k, dt_str(dt).c_str(),
                                   be.name().c_str());
      // k * x is exact in f32 and bf16 for k = 1, 2, 4 (powers of two).
      expect_close(download(back), ref, 0.0, what + " (gather_backward)");
      Tensor ones = upload(be, std::vector<double>(size_t(n * k), 1.0 / k), {n, int64_t(k)}, F32);
      Tensor comb = upload(be, std::vector<double>(size_t(n * c), kNaN), {n, c}, dt);
      be.moe_combine(sorted, s.slot_to_sorted, ones, comb, false);
      expect_close(download(comb), x, k == 1 ? 0.0 : tolerance(dt), what + " (combine)");
    }
}

// ---- grouped GEMM ----

// Random group sizes summing to m, with some zero-row groups.
std::vector<int64_t> random_groups(Rng& rng, int64_t m, int e) {
  std::vector<int64_t> g(size_t(e), 0);
  std::uniform_int_distribution<int> pick(0, e - 1);
  for (int64_t r = 0; r < m; ++r) {
    int x = pick(rng);
    if (e > 2 && x % 3 == 1) x = (x + 1) % e;  // leave experts 1, 4, 7, ... mostly empty
    ++g[size_t(x)];
  }
  return g;
}

void test_grouped_gemm(Backend& be) {
  Rng rng(2009);
  struct Case { int64_t m, n, k; int e; };
  const Case cases[] = {{1, 3, 2, 1}, {0, 4, 4, 3}, {37, 9, 13, 4}, {200, 64, 48, 8}, {65, 33, 130, 16}};
  const std::pair<DType, DType> dts[] = {{F32, F32}, {BF16, F32}, {BF16, BF16}};
  for (const Case& c : cases)
    for (bool trans_w : {true, false})
      for (auto& d : dts)
        for (float beta : {0.0f, 0.5f}) {
          const float alpha = beta == 0.0f ? 1.0f : 1.5f;
          std::vector<int64_t> groups = random_groups(rng, c.m, c.e);
          std::vector<double> x = random_values(rng, c.m * c.k, d.first, -1.0, 1.0);
          std::vector<double> w = random_values(rng, c.e * c.n * c.k, d.first, -1.0, 1.0);
          // Experts without rows hold NaN weights: they must be skipped, not multiplied.
          for (int e = 0; e < c.e; ++e)
            if (groups[size_t(e)] == 0)
              std::fill(w.begin() + e * c.n * c.k, w.begin() + (e + 1) * c.n * c.k, kNaN);
          std::vector<double> out0 = beta == 0.0f ? std::vector<double>(size_t(c.m * c.n), kNaN)
                                                  : random_values(rng, c.m * c.n, d.second, -1.0, 1.0);
          Shape ws = trans_w ? Shape{c.e, c.n, c.k} : Shape{c.e, c.k, c.n};
          Tensor tx = upload(be, x, {c.m, c.k}, d.first);
          Tensor tw = upload(be, w, ws, d.first);
          Tensor to = upload(be, out0, {c.m, c.n}, d.second);
          be.grouped_gemm(tx, tw, trans_w, groups, to, alpha, beta);
          std::vector<double> ref(size_t(c.m * c.n));
          int64_t row = 0;
          for (int e = 0; e < c.e; ++e)
            for (int64_t r = 0; r < groups[size_t(e)]; ++r, ++row)
              for (int64_t j = 0; j < c.n; ++j) {
                double acc = 0.0;
                for (int64_t q = 0; q < c.k; ++q) {
                  const double wv = trans_w ? w[size_t((e * c.n + j) * c.k + q)]
                                            : w[size_t((e * c.k + q) * c.n + j)];
                  acc += x[size_t(row * c.k + q)] * wv;
                }
                ref[size_t(row * c.n + j)] =
                    alpha * acc + (beta == 0.0f ? 0.0 : beta * out0[size_t(row * c.n + j)]);
              }
          expect_close(download(to), ref, tolerance(d.second),
                       strformat("grouped_gemm M %lld N %lld K %lld E %d%s %s -> %s alpha %g beta %g on %s",
                                 (long long)c.m, (long long)c.n, (long long)c.k, c.e,
                                 trans_w ? " trans_w" : "", dt_str(d.first).c_str(),
                                 dt_str(d.second).c_str(), double(alpha), double(beta),
                                 be.name().c_str()));
        }
}

void test_grouped_gemm_wgrad(Backend& be) {
  Rng rng(2010);
  struct Case { int64_t m, n, k; int e; };
  const Case cases[] = {{1, 3, 2, 1}, {0, 4, 4, 3}, {37, 9, 13, 4}, {200, 64, 48, 8}, {65, 33, 130, 16}};
  for (const Case& c : cases)
    for (DType dt : {F32, BF16})
      for (bool accumulate : {false, true}) {
        std::vector<int64_t> groups = random_groups(rng, c.m, c.e);
        std::vector<double> dout = random_values(rng, c.m * c.n, dt, -1.0, 1.0);
        std::vector<double> x = random_values(rng, c.m * c.k, dt, -1.0, 1.0);
        std::vector<double> dw0 = accumulate ? random_values(rng, c.e * c.n * c.k, F32, -1.0, 1.0)
                                             : std::vector<double>(size_t(c.e * c.n * c.k), kNaN);
        Tensor tdo = upload(be, dout, {c.m, c.n}, dt);
        Tensor tx = upload(be, x, {c.m, c.k}, dt);
        Tensor tdw = upload(be, dw0, {int64_t(c.e), c.n, c.k}, F32);
        be.grouped_gemm_wgrad(tdo, tx, groups, tdw, accumulate);
        std::vector<double> ref(size_t(c.e * c.n * c.k));
        int64_t start = 0;
        for (int e = 0; e < c.e; ++e) {
          for (int64_t j = 0; j < c.n; ++j)
            for (int64_t q = 0; q < c.k; ++q) {
              double acc = accumulate ? dw0[size_t((e * c.n + j) * c.k + q)] : 0.0;
              for (int64_t r = start; r < start + groups[size_t(e)]; ++r)
                acc += dout[size_t(r * c.n + j)] * x[size_t(r * c.k + q)];
              ref[size_t((e * c.n + j) * c.k + q)] = acc;
            }
          start += groups[size_t(e)];
        }
        // Experts with no rows come out exactly 0 (or unchanged): checked by the
        // relative bound too, since their reference is exact.
        std::vector<double> got = download(tdw);
        std::string what = strformat("grouped_gemm_wgrad M %lld N %lld K %lld E %d %s%s on %s",
                                     (long long)c.m, (long long)c.n, (long long)c.k, c.e,
                                     dt_str(dt).c_str(), accumulate ? " accumulate" : "",
                                     be.name().c_str());
        expect_close(got, ref, tolerance(F32), what);
        start = 0;
        for (int e = 0; e < c.e; ++e)
          if (groups[size_t(e)] == 0)
            for (int64_t i = e * c.n * c.k; i < (e + 1) * c.n * c.k; ++i)
              REQUIRE(got[size_t(i)] == ref[size_t(i)]);
      }
}

}  // namespace

#define MOE_OP_TEST(name, fn) ZT_BACKEND_TEST(name, "[ops]", fn)

MOE_OP_TEST("moe_router_forward", test_moe_router_forward)
MOE_OP_TEST("moe_router_forward hand-made cases", test_moe_router_cases)
MOE_OP_TEST("moe_router_backward", test_moe_router_backward)
MOE_OP_TEST("moe_sort_by_expert", test_moe_sort_by_expert)
MOE_OP_TEST("moe_gather", test_moe_gather)
MOE_OP_TEST("moe_gather_backward", test_moe_gather_backward)
MOE_OP_TEST("moe_combine", test_moe_combine)
MOE_OP_TEST("moe_combine_backward", test_moe_combine_backward)
MOE_OP_TEST("moe permute/unpermute roundtrip", test_moe_permute_roundtrip)
MOE_OP_TEST("grouped_gemm", test_grouped_gemm)
MOE_OP_TEST("grouped_gemm_wgrad", test_grouped_gemm_wgrad)
