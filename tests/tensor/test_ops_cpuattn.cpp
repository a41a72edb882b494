// Op harness cases for attention_forward and attention_backward (see test_ops.cpp
// for the harness's rules): every backend against a float64 reference computed
// here, on shapes with T = 1, odd T, T crossing the CPU backend's (and CUDA's) 64-row
// tiles, Dqk != Dv (MLA), the models' head dims, B > 1 and H > 1, in F32 and BF16
// (BF16 with head dims multiples of 16: CUDA's tensor-core path), with q, k, v (and dq, dk, dv)
// contiguous, as padded views, or side by side in one packed (B, T, H, 2*Dqk + Dv)
// buffer as MLA builds them. Plus a CPU-only check that results are bitwise the
// same on 1 and 2 threads.
//
// Owns: these cases and their float64 reference. Must not: reuse the backend's own
// results as a reference (the backward case runs the backend's forward only to
// produce the `out` and `lse` inputs the backward contract asks for).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "op_harness.h"
#include "zeroth/error.h"

using namespace zeroth;
using namespace zeroth::testing;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

enum class Layout { kContiguous, kPadded, kPacked };

const char* layout_str(Layout l) {
  switch (l) {
    case Layout::kContiguous: return "contiguous";
    case Layout::kPadded: return "padded views";
    case Layout::kPacked: return "packed qkv";
  }
  return "?";
}

struct AttnCase {
  int64_t B, T, H, dqk, dv;
  DType dt;
  Layout layout;
  float scale;
};

std::string case_str(const AttnCase& c, const Backend& be) {
  return strformat("B %lld T %lld H %lld Dqk %lld Dv %lld %s %s scale %g on %s", (long long)c.B,
                   (long long)c.T, (long long)c.H, (long long)c.dqk, (long long)c.dv,
                   dt_str(c.dt).c_str(), layout_str(c.layout), double(c.scale), be.name().c_str());
}

// Tensors (B, T, H, widths[i]) as views into parents whose host values are known:
// packed: one parent (B, T, H, sum of widths) with the views side by side;
// padded: one parent per view, (B+1, T+2, H+1, w+3), the view starting at 1 in
// every dimension; contiguous: each view is its own parent.
struct ViewGroup {
  std::vector<Tensor> parents;
  std::vector<std::vector<double>> hosts;  // each parent's values
  std::vector<Tensor> views;
  std::vector<size_t> parent_of;

  // Element offset of view i's first element in its parent.
  int64_t offset(size_t i) const {
    const Tensor& p = parents[parent_of[i]];
    return (static_cast<const char*>(views[i].data_ptr()) - static_cast<const char*>(p.data_ptr())) /
           int64_t(p.element_size());
  }
  // View i's values (row-major, float64) from its parent's host values.
  std::vector<double> dense(size_t i) const {
    const std::vector<double>& h = hosts[parent_of[i]];
    const Tensor& v = views[i];
    std::vector<double> out;
    out.reserve(size_t(v.numel()));
    const int64_t base = offset(i);
    for_each_index(v.shape(), [&](const Index& idx) {
      int64_t p = base;
      for (size_t d = 0; d < idx.size(); ++d) p += idx[d] * v.stride(int(d));
      out.push_back(h[size_t(p)]);
    });
    return out;
  }
  // Re-reads every parent from the backend (after an op wrote into the views).
  void refresh() {
    for (size_t i = 0; i < parents.size(); ++i) hosts[i] = download(parents[i]);
  }
  // Every parent element outside the views must still be NaN (the initial fill).
  void expect_outside_untouched(const std::string& what) const {
    std::vector<std::vector<char>> inside(parents.size());
    for (size_t i = 0; i < parents.size(); ++i) inside[i].assign(hosts[i].size(), 0);
    for (size_t i = 0; i < views.size(); ++i) {
      const int64_t base = offset(i);
      for_each_index(views[i].shape(), [&](const Index& idx) {
        int64_t p = base;
        for (size_t d = 0; d < idx.size(); ++d) p += idx[d] * views[i].stride(int(d));
        inside[parent_of[i]][size_t(p)] = 1;
      });
    }
    size_t changed = 0;
    for (size_t i = 0; i < parents.size(); ++i)
      for (size_t j = 0; j < hosts[i].size(); ++j)
        if (!inside[i][j] && !std::isnan(hosts[i][j])) ++changed;
    INFO(what << ": " << changed << " elements outside the output views changed");
    CHECK(changed == 0);
  }
};

// random: values uniform in [-1, 1); else NaN everywhere (outputs to be overwritten).
ViewGroup make_group(Backend& be, Rng& rng, const AttnCase& c, const std::vector<int64_t>& widths,
                     bool random) {
  ViewGroup g;
  auto add_parent = [&](const Shape& s) {
    std::vector<double> host = random ? random_values(rng, shape_numel(s), c.dt, -1.0, 1.0)
                                      : std::vector<double>(size_t(shape_numel(s)), kNaN);
    g.parents.push_back(upload(be, host, s, c.dt));
    g.hosts.push_back(std::move(host));
  };
  if (c.layout == Layout::kPacked) {
    int64_t total = 0;
    for (int64_t w : widths) total += w;
    add_parent({c.B, c.T, c.H, total});
    int64_t start = 0;
    for (int64_t w : widths) {
      g.views.push_back(g.parents[0].narrow(3, start, w));
      g.parent_of.push_back(0);
      start += w;
    }
    return g;
  }
  for (int64_t w : widths) {
    if (c.layout == Layout::kContiguous) {
      add_parent({c.B, c.T, c.H, w});
      g.views.push_back(g.parents.back());
    } else {
      add_parent({c.B + 1, c.T + 2, c.H + 1, w + 3});
      g.views.push_back(
          g.parents.back().narrow(0, 1, c.B).narrow(1, 1, c.T).narrow(2, 1, c.H).narrow(3, 1, w));
    }
    g.parent_of.push_back(g.parents.size() - 1);
  }
  return g;
}

// ---- float64 reference ----

// P[t, s] of pair (b, h) (T, T), causal softmax of scale * q[t].k[s]; lse[t].
void ref_probs(const AttnCase& c, const std::vector<double>& q, const std::vector<double>& k,
               int64_t b, int64_t h, std::vector<double>* p, std::vector<double>* lse) {
  const int64_t T = c.T, H = c.H, D = c.dqk;
  p->assign(size_t(T * T), 0.0);
  lse->assign(size_t(T), 0.0);
  for (int64_t t = 0; t < T; ++t) {
    const double* qt = q.data() + ((b * T + t) * H + h) * D;
    double m = -INFINITY;
    for (int64_t s = 0; s <= t; ++s) {
      const double* ks = k.data() + ((b * T + s) * H + h) * D;
      double dot = 0.0;
      for (int64_t d = 0; d < D; ++d) dot += qt[d] * ks[d];
      (*p)[size_t(t * T + s)] = double(c.scale) * dot;
      m = std::max(m, double(c.scale) * dot);
    }
    double sum = 0.0;
    for (int64_t s = 0; s <= t; ++s) sum += std::exp((*p)[size_t(t * T + s)] - m);
    for (int64_t s = 0; s <= t; ++s)
      (*p)[size_t(t * T + s)] = std::exp((*p)[size_t(t * T + s)] - m) / sum;
    (*lse)[size_t(t)] = m + std::log(sum);
  }
}

// out (B, T, H, dv) and lse (B, H, T).
void ref_forward(const AttnCase& c, const std::vector<double>& q, const std::vector<double>& k,
                 const std::vector<double>& v, std::vector<double>* out, std::vector<double>* lse) {
  const int64_t B = c.B, T = c.T, H = c.H, Dv = c.dv;
  out->assign(size_t(B * T * H * Dv), 0.0);
  lse->assign(size_t(B * H * T), 0.0);
  std::vector<double> p, l;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      ref_probs(c, q, k, b, h, &p, &l);
      for (int64_t t = 0; t < T; ++t) {
        (*lse)[size_t((b * H + h) * T + t)] = l[size_t(t)];
        double* o = out->data() + ((b * T + t) * H + h) * Dv;
        for (int64_t s = 0; s <= t; ++s) {
          const double* vs = v.data() + ((b * T + s) * H + h) * Dv;
          for (int64_t d = 0; d < Dv; ++d) o[d] += p[size_t(t * T + s)] * vs[d];
        }
      }
    }
}

// dq, dk (B, T, H, dqk), dv (B, T, H, dv) for the loss sum(dout * out).
void ref_backward(const AttnCase& c, const std::vector<double>& q, const std::vector<double>& k,
                  const std::vector<double>& v, const std::vector<double>& dout,
                  std::vector<double>* dq, std::vector<double>* dk, std::vector<double>* dv) {
  const int64_t B = c.B, T = c.T, H = c.H, Dq = c.dqk, Dv = c.dv;
  dq->assign(q.size(), 0.0);
  dk->assign(k.size(), 0.0);
  dv->assign(v.size(), 0.0);
  std::vector<double> p, l, dp(static_cast<size_t>(T));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      ref_probs(c, q, k, b, h, &p, &l);
      for (int64_t t = 0; t < T; ++t) {
        const double* g = dout.data() + ((b * T + t) * H + h) * Dv;
        double delta = 0.0;
        for (int64_t s = 0; s <= t; ++s) {
          const double* vs = v.data() + ((b * T + s) * H + h) * Dv;
          double* dvs = dv->data() + ((b * T + s) * H + h) * Dv;
          double dot = 0.0;
          for (int64_t d = 0; d < Dv; ++d) {
            dot += g[d] * vs[d];
            dvs[d] += p[size_t(t * T + s)] * g[d];
          }
          dp[size_t(s)] = dot;
          delta += p[size_t(t * T + s)] * dot;
        }
        const double* qt = q.data() + ((b * T + t) * H + h) * Dq;
        double* dqt = dq->data() + ((b * T + t) * H + h) * Dq;
        for (int64_t s = 0; s <= t; ++s) {
          const double ds = double(c.scale) * p[size_t(t * T + s)] * (dp[size_t(s)] - delta);
          const double* ks = k.data() + ((b * T + s) * H + h) * Dq;
          double* dks = dk->data() + ((b * T + s) * H + h) * Dq;
          for (int64_t d = 0; d < Dq; ++d) {
            dqt[d] += ds * ks[d];
            dks[d] += ds * qt[d];
          }
        }
      }
    }
}

// ---- cases ----

std::vector<AttnCase> attention_cases() {
  struct Dims { int64_t B, T, H, dqk, dv; };
  // BF16 with head dims multiples of 16 take CUDA's tensor-core kernels (64-row tiles,
  // cp.async for 16-byte aligned operands, plain loads for the padded views): the
  // model's shapes (Dqk 96 / Dv 64, 48 / 32), T = 1, T inside, at and across tiles, and
  // every head-dim bucket (Dqk <= 64, 96, 128, 192; Dv <= 64, 128).
  const Dims dims[] = {{1, 1, 1, 8, 8},     {2, 7, 3, 48, 32},    {1, 65, 2, 16, 24},
                       {2, 130, 2, 48, 32}, {3, 33, 4, 5, 3},     {1, 200, 1, 12, 12},
                       {1, 1, 2, 96, 64},   {1, 17, 2, 96, 64},   {2, 300, 2, 96, 64},
                       {1, 128, 3, 64, 64}, {1, 130, 2, 128, 128}, {1, 150, 1, 192, 128},
                       {2, 70, 1, 16, 112}};
  std::vector<AttnCase> cases;
  for (const Dims& d : dims)
    for (DType dt : {DType::F32, DType::BF16})
      for (Layout l : {Layout::kContiguous, Layout::kPadded, Layout::kPacked}) {
        // 1/sqrt(Dqk) as in the model; a larger scale sharpens the softmax.
        const float scale = l == Layout::kPadded ? 2.5f : float(1.0 / std::sqrt(double(d.dqk)));
        cases.push_back({d.B, d.T, d.H, d.dqk, d.dv, dt, l, scale});
      }
  return cases;
}

void test_attention_forward(Backend& be) {
  Rng rng(2101);
  for (const AttnCase& c : attention_cases()) {
    const std::string what = "attention_forward " + case_str(c, be);
    ViewGroup in = make_group(be, rng, c, {c.dqk, c.dqk, c.dv}, true);
    AttnCase oc = c;
    if (oc.layout == Layout::kPacked) oc.layout = Layout::kPadded;
    ViewGroup out = make_group(be, rng, oc, {c.dv}, false);
    Tensor lse = upload(be, std::vector<double>(size_t(c.B * c.H * c.T), kNaN), {c.B, c.H, c.T},
                        DType::F32);
    be.attention_forward(in.views[0], in.views[1], in.views[2], c.scale, out.views[0], lse);
    std::vector<double> ref_out, ref_lse;
    ref_forward(c, in.dense(0), in.dense(1), in.dense(2), &ref_out, &ref_lse);
    out.refresh();
    expect_close(out.dense(0), ref_out, tolerance(c.dt), what + ": out");
    expect_close(download(lse), ref_lse, tolerance(DType::F32), what + ": lse");
    out.expect_outside_untouched(what);
  }
}

// Gradient tolerance for F32: dS = P * (dP - delta) cancels, so the fp32 error
// relative to the largest gradient is a few 1e-6 rather than the forward's 1e-7.
double grad_tolerance(DType dt) { return dt == DType::F32 ? 2e-5 : tolerance(dt); }

void test_attention_backward(Backend& be) {
  Rng rng(2102);
  for (const AttnCase& c : attention_cases()) {
    const std::string what = "attention_backward " + case_str(c, be);
    ViewGroup in = make_group(be, rng, c, {c.dqk, c.dqk, c.dv}, true);
    AttnCase plain = c;
    plain.layout = Layout::kContiguous;
    ViewGroup dout = make_group(be, rng, plain, {c.dv}, true);
    // The backward's out and lse inputs come from the backend's own forward.
    Tensor out = Tensor::empty(be, {c.B, c.T, c.H, c.dv}, c.dt);
    Tensor lse = Tensor::empty(be, {c.B, c.H, c.T}, DType::F32);
    be.attention_forward(in.views[0], in.views[1], in.views[2], c.scale, out, lse);
    ViewGroup grads = make_group(be, rng, c, {c.dqk, c.dqk, c.dv}, false);
    be.attention_backward(dout.views[0], in.views[0], in.views[1], in.views[2], out, lse, c.scale,
                          grads.views[0], grads.views[1], grads.views[2]);
    std::vector<double> dq, dk, dv;
    ref_backward(c, in.dense(0), in.dense(1), in.dense(2), dout.dense(0), &dq, &dk, &dv);
    grads.refresh();
    expect_close(grads.dense(0), dq, grad_tolerance(c.dt), what + ": dq");
    expect_close(grads.dense(1), dk, grad_tolerance(c.dt), what + ": dk");
    expect_close(grads.dense(2), dv, grad_tolerance(c.dt), what + ": dv");
    grads.expect_outside_untouched(what);
  }
}

// Raw bytes of a tensor, for bitwise comparison.
std::vector<unsigned char> bytes_of(const Tensor& t) {
  std::vector<unsigned char> b(t.nbytes());
  t.copy_to_host(b.data(), b.size());
  return b;
}

}  // namespace

#define ATTN_OP_TEST(name, fn) ZT_BACKEND_TEST(name, "[ops]", fn)

ATTN_OP_TEST("attention_forward", test_attention_forward)
ATTN_OP_TEST("attention_backward", test_attention_backward)

// The CPU backend promises results independent of its thread count: the same
// inputs on 1 and 2 threads give the same bits, with many (batch, head) pairs (the
// pairs are shared out) and with one pair (only the forward's query tiles are).
// The 2-thread backend is made last, so it also sets the process-wide thread
// counts that the 1-thread backend must not rely on.
TEST_CASE("attention is bitwise independent of the thread count", "[cpu][ops]") {
  auto be1 = make_cpu_backend(1);
  auto be2 = make_cpu_backend(2);
  struct Dims { int64_t B, T, H, dqk, dv; };
  for (const Dims& d : {Dims{2, 150, 3, 48, 32}, Dims{1, 300, 1, 48, 32}}) {
    Rng rng(2103);
    const Shape sq{d.B, d.T, d.H, d.dqk}, sv{d.B, d.T, d.H, d.dv}, sl{d.B, d.H, d.T};
    const std::vector<double> q = random_values(rng, shape_numel(sq), DType::F32, -1, 1);
    const std::vector<double> k = random_values(rng, shape_numel(sq), DType::F32, -1, 1);
    const std::vector<double> v = random_values(rng, shape_numel(sv), DType::F32, -1, 1);
    const std::vector<double> g = random_values(rng, shape_numel(sv), DType::F32, -1, 1);
    std::vector<std::vector<unsigned char>> results[2];
    int which = 0;
    for (Backend* be : {be1.get(), be2.get()}) {
      Tensor tq = upload(*be, q, sq, DType::F32), tk = upload(*be, k, sq, DType::F32);
      Tensor tv = upload(*be, v, sv, DType::F32), tg = upload(*be, g, sv, DType::F32);
      Tensor out = Tensor::empty(*be, sv, DType::F32), lse = Tensor::empty(*be, sl, DType::F32);
      Tensor dq = Tensor::empty(*be, sq, DType::F32), dk = Tensor::empty(*be, sq, DType::F32);
      Tensor dv = Tensor::empty(*be, sv, DType::F32);
      be->attention_forward(tq, tk, tv, 0.125f, out, lse);
      be->attention_backward(tg, tq, tk, tv, out, lse, 0.125f, dq, dk, dv);
      for (const Tensor* t : {&out, &lse, &dq, &dk, &dv}) results[which].push_back(bytes_of(*t));
      ++which;
    }
    const char* names[] = {"out", "lse", "dq", "dk", "dv"};
    for (size_t i = 0; i < results[0].size(); ++i) {
      size_t differ = 0;
      for (size_t j = 0; j < results[0][i].size(); ++j) differ += results[0][i][j] != results[1][i][j];
      INFO("B " << d.B << " T " << d.T << " H " << d.H << ": " << names[i] << ", " << differ
                << " of " << results[0][i].size() << " bytes differ between 1 and 2 threads");
      CHECK(differ == 0);
    }
  }
}

// CUDA only: at a long sequence (many 64-row tiles, T not a multiple of 64, B * H > 1,
// q, k, v packed as MLA builds them) the BF16 tensor-core kernels agree with the fp32
// kernels run on the same values (uploaded as F32) to the BF16 tolerance, and two
// backward runs give the same bits.
TEST_CASE("attention BF16 tensor-core kernels match the F32 kernels at T = 1000", "[.cuda][ops]") {
  auto be = make_test_backend("cuda");
  const int64_t B = 2, T = 1000, H = 3, Dqk = 96, Dv = 64, W = 2 * Dqk + Dv;
  const float scale = float(1.0 / std::sqrt(double(Dqk)));
  Rng rng(2104);
  const std::vector<double> qkv = random_values(rng, B * T * H * W, DType::BF16, -1.5, 1.5);
  const std::vector<double> g = random_values(rng, B * T * H * Dv, DType::BF16, -1, 1);
  struct Result { std::vector<double> out, lse, dq, dk, dv; };
  auto run = [&](DType dt) {
    Tensor packed = upload(*be, qkv, {B, T, H, W}, dt);
    Tensor q = packed.narrow(3, 0, Dqk), k = packed.narrow(3, Dqk, Dqk);
    Tensor v = packed.narrow(3, 2 * Dqk, Dv);
    Tensor dout = upload(*be, g, {B, T, H, Dv}, dt);
    Tensor out = Tensor::empty(*be, {B, T, H, Dv}, dt);
    Tensor lse = Tensor::empty(*be, {B, H, T}, DType::F32);
    Tensor dq = Tensor::empty(*be, {B, T, H, Dqk}, dt), dk = Tensor::empty(*be, {B, T, H, Dqk}, dt);
    Tensor dv = Tensor::empty(*be, {B, T, H, Dv}, dt);
    be->attention_forward(q, k, v, scale, out, lse);
    be->attention_backward(dout, q, k, v, out, lse, scale, dq, dk, dv);
    Result r{download(out), download(lse), download(dq), download(dk), download(dv)};
    if (dt == DType::BF16) {  // deterministic: a second backward gives the same bits
      std::vector<unsigned char> first = bytes_of(dq), firstk = bytes_of(dk), firstv = bytes_of(dv);
      be->attention_backward(dout, q, k, v, out, lse, scale, dq, dk, dv);
      CHECK(bytes_of(dq) == first);
      CHECK(bytes_of(dk) == firstk);
      CHECK(bytes_of(dv) == firstv);
    }
    return r;
  };
  const Result ref = run(DType::F32), got = run(DType::BF16);
  expect_close(got.out, ref.out, tolerance(DType::BF16), "T 1000 out");
  expect_close(got.lse, ref.lse, 1e-4, "T 1000 lse");
  expect_close(got.dq, ref.dq, tolerance(DType::BF16), "T 1000 dq");
  expect_close(got.dk, ref.dk, tolerance(DType::BF16), "T 1000 dk");
  expect_close(got.dv, ref.dv, tolerance(DType::BF16), "T 1000 dv");
}
