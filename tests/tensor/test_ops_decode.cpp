// Op harness cases for the inference ops (backend.h, "inference"): scatter_rows,
// mla_decode_attention, expert_rows_gemm and sample_tokens, on every backend (scheme: test_ops.cpp).
//
// References: scatter_rows, mla_decode_attention and expert_rows_gemm in float64 here; sample_tokens
// against the host sampler (sampler.h's sample_token, the rules' reference), token for
// token, over greedy, unfiltered and every filter, with ties, NaN and -inf logits.
// Must not: share code with the implementations.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "op_harness.h"
#include "zeroth/error.h"
#include "zeroth/sampler.h"

using namespace zeroth;
using namespace zeroth::testing;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
const DType F32 = DType::F32, BF16 = DType::BF16;

void test_scatter_rows(Backend& be) {
  Rng rng(4101);
  const int64_t shapes[][3] = {{1, 1, 1}, {5, 9, 3}, {40, 17, 40}, {3, 5000, 2}};  // M, D, N
  for (auto& s : shapes)
    for (DType sdt : {F32, BF16})
      for (DType ddt : {F32, BF16}) {
        const int64_t m = s[0], d = s[1], n = s[2];
        Strided src = make_strided(be, rng, {n, d}, sdt, {2, 3}, false, -3.0, 3.0);
        Strided dst = make_strided(be, rng, {m, d}, ddt, {1, 2}, false, -3.0, 3.0);
        std::vector<int64_t> perm(static_cast<size_t>(m));
        std::iota(perm.begin(), perm.end(), 0);
        std::shuffle(perm.begin(), perm.end(), rng);
        std::vector<double> rows(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) rows[size_t(i)] = double(perm[size_t(i)]);
        std::vector<double> ref = download_view(dst);
        for (int64_t i = 0; i < n; ++i)
          for (int64_t j = 0; j < d; ++j)
            ref[size_t(perm[size_t(i)] * d + j)] = round_to(ddt, src.at({i, j}));
        be.scatter_rows(src.view, upload(be, rows, {n}, DType::I32), dst.view);
        const std::string what = strformat("scatter_rows %s -> %s on %s", dt_str(sdt).c_str(),
                                           shape_str({m, d}).c_str(), be.name().c_str());
        expect_close(download_view(dst), ref, 0.0, what);
        expect_outside_unchanged(dst, what);
      }
}

void test_mla_decode_attention(Backend& be) {
  Rng rng(4102);
  struct Case {
    int64_t n, h, r, rv, slots, tmax;
  };
  const Case cases[] = {{1, 1, 8, 4, 2, 5},       {7, 8, 144, 128, 9, 70},
                        {3, 16, 576, 512, 4, 300}, {5, 3, 40, 40, 5, 1},
                        {64, 8, 80, 64, 64, 33}};
  for (const Case& k : cases) {
    std::vector<double> qv = random_values(rng, k.n * k.h * k.r, F32, -1.0, 1.0);
    std::vector<double> cv = random_values(rng, k.slots * k.tmax * k.r, F32, -1.0, 1.0);
    std::vector<double> slots(static_cast<size_t>(k.n)), lens(static_cast<size_t>(k.n));
    std::uniform_int_distribution<int64_t> len_dist(1, k.tmax);
    std::vector<int64_t> perm(static_cast<size_t>(k.slots));
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int64_t i = 0; i < k.n; ++i) {
      slots[size_t(i)] = double(perm[size_t(i % k.slots)]);
      lens[size_t(i)] = double(len_dist(rng));
    }
    lens[0] = double(k.tmax);  // one row uses the whole cache
    // Positions past every reader's length hold NaN: they must never be read.
    std::vector<int64_t> longest(size_t(k.slots), 0);
    for (int64_t i = 0; i < k.n; ++i)
      longest[size_t(slots[size_t(i)])] =
          std::max(longest[size_t(slots[size_t(i)])], int64_t(lens[size_t(i)]));
    for (int64_t s = 0; s < k.slots; ++s)
      for (int64_t t = longest[size_t(s)]; t < k.tmax; ++t)
        for (int64_t c = 0; c < k.r; ++c) cv[size_t((s * k.tmax + t) * k.r + c)] = kNaN;
    const float scale = 0.125f;
    std::vector<double> ref(size_t(k.n * k.h * k.rv));
    for (int64_t i = 0; i < k.n; ++i)
      for (int64_t h = 0; h < k.h; ++h) {
        const int64_t slot = int64_t(slots[size_t(i)]), len = int64_t(lens[size_t(i)]);
        std::vector<double> sc(static_cast<size_t>(len));
        double mx = -INFINITY;
        for (int64_t t = 0; t < len; ++t) {
          double dot = 0.0;
          for (int64_t c = 0; c < k.r; ++c)
            dot += qv[size_t((i * k.h + h) * k.r + c)] * cv[size_t((slot * k.tmax + t) * k.r + c)];
          sc[size_t(t)] = double(scale) * dot;
          mx = std::max(mx, sc[size_t(t)]);
        }
        double sum = 0.0;
        for (double& x : sc) sum += (x = std::exp(x - mx));
        for (int64_t c = 0; c < k.rv; ++c) {
          double acc = 0.0;
          for (int64_t t = 0; t < len; ++t)
            acc += sc[size_t(t)] * cv[size_t((slot * k.tmax + t) * k.r + c)];
          ref[size_t((i * k.h + h) * k.rv + c)] = acc / sum;
        }
      }
    Tensor out = upload(be, std::vector<double>(ref.size(), kNaN), {k.n, k.h, k.rv}, F32);
    be.mla_decode_attention(upload(be, qv, {k.n, k.h, k.r}, F32),
                            upload(be, cv, {k.slots, k.tmax, k.r}, F32),
                            upload(be, slots, {k.n}, DType::I32), upload(be, lens, {k.n}, DType::I32),
                            scale, out);
    expect_close(download(out), ref, tolerance(F32),
                 strformat("mla_decode_attention N %lld H %lld R %lld Rv %lld Tmax %lld on %s",
                           (long long)k.n, (long long)k.h, (long long)k.r, (long long)k.rv,
                           (long long)k.tmax, be.name().c_str()));
  }
}

void test_expert_rows_gemm(Backend& be) {
  Rng rng(4104);
  struct Case {
    int64_t rows_x, div, e, n, k;
  };
  // {40, 1, 2, 150, 24}: ~20 rows an expert (passes of 8) over several 48-output blocks.
  // {96, 6, 8, 40, 1024}: ~72 rows an expert at K 1024 (the CUDA kernel's float4 path,
  // nine passes of 8 rows, outputs not a multiple of its 16); {300, 1, 2, 20, 1536}: rows
  // over two of its 256-row chunks, K 1536 (passes of 7 rows in its 46 KiB for x rows).
  const Case cases[] = {{1, 1, 1, 1, 1},      {3, 4, 16, 256, 512}, {5, 1, 7, 70, 33},
                        {2, 2, 4, 130, 1000}, {40, 1, 2, 150, 24},  {96, 6, 8, 40, 1024},
                        {300, 1, 2, 20, 1536}};
  for (const Case& c : cases)
    for (DType dt : {F32, BF16}) {
      const int64_t m = c.rows_x * c.div;
      std::vector<double> xv = random_values(rng, c.rows_x * c.k, dt, -1.0, 1.0);
      std::vector<double> wv = random_values(rng, c.e * c.n * c.k, dt, -1.0, 1.0);
      std::vector<double> ev = random_values(rng, m, DType::I32, 0.0, double(c.e));
      std::vector<double> ref(size_t(m * c.n));
      for (int64_t r = 0; r < m; ++r)
        for (int64_t j = 0; j < c.n; ++j) {
          double acc = 0.0;
          for (int64_t q = 0; q < c.k; ++q)
            acc += xv[size_t((r / c.div) * c.k + q)] *
                   wv[size_t((int64_t(ev[size_t(r)]) * c.n + j) * c.k + q)];
          ref[size_t(r * c.n + j)] = round_to(dt, acc);
        }
      Tensor out = upload(be, std::vector<double>(ref.size(), kNaN), {m, c.n}, dt);
      be.expert_rows_gemm(upload(be, xv, {c.rows_x, c.k}, dt), upload(be, wv, {c.e, c.n, c.k}, dt),
                          upload(be, ev, {m}, DType::I32), int(c.div), out);
      expect_close(download(out), ref, tolerance(dt),
                   strformat("expert_rows_gemm %s m %lld n %lld k %lld on %s", dt_str(dt).c_str(),
                             (long long)m, (long long)c.n, (long long)c.k, be.name().c_str()));
    }
}

// Rows of logits that exercise the sampler: wide and narrow distributions, ties, NaN,
// -inf, and rows that cannot be sampled.
std::vector<std::vector<float>> sample_rows(Rng& rng, int64_t v) {
  std::vector<std::vector<float>> rows;
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (float spread : {0.5f, 3.0f, 12.0f}) {
    std::vector<float> r(static_cast<size_t>(v));
    for (float& x : r) x = spread * nd(rng);
    rows.push_back(r);
  }
  std::vector<float> ties(static_cast<size_t>(v));
  for (int64_t j = 0; j < v; ++j) ties[size_t(j)] = float(int64_t(j * 7919) % 5);  // 5 levels
  rows.push_back(ties);
  std::vector<float> holes = rows[1];
  for (int64_t j = 0; j < v; j += 3) holes[size_t(j)] = -INFINITY;
  if (v > 2) holes[1] = std::numeric_limits<float>::quiet_NaN();
  rows.push_back(holes);
  return rows;
}

void test_sample_tokens(Backend& be) {
  Rng rng(4103);
  struct P {
    float t;
    int64_t k;
    float p, mp;
  };
  const P params[] = {{0.0f, 0, 1.0f, 0.0f},  {1.0f, 0, 1.0f, 0.0f},  {0.7f, 0, 1.0f, 0.0f},
                      {1.0f, 5, 1.0f, 0.0f},  {1.0f, 0, 0.9f, 0.0f},  {1.0f, 0, 1.0f, 0.1f},
                      {0.6f, 40, 0.8f, 0.02f}, {1.3f, 1, 1.0f, 0.0f}, {1.0f, 0, 0.01f, 0.0f}};
  int64_t compared = 0;
  for (int64_t v : {1, 7, 1000, 32000}) {
    std::vector<std::vector<float>> rows = sample_rows(rng, v);
    const int64_t b = int64_t(rows.size());
    std::vector<double> flat;
    for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
    Tensor logits = upload(be, flat, {b, v}, F32);
    for (const P& pp : params)
      for (uint64_t seed : {1ull, 99ull}) {
        SamplingParams sp;
        sp.temperature = pp.t;
        sp.top_k = pp.k;
        sp.top_p = pp.p;
        sp.min_p = pp.mp;
        sp.seed = seed;
        std::vector<uint64_t> seq(static_cast<size_t>(b)), step(static_cast<size_t>(b));
        for (int64_t i = 0; i < b; ++i) {
          seq[size_t(i)] = rng() % 1000;
          step[size_t(i)] = rng() % 100;
        }
        Tensor ids = upload(be, std::vector<double>(size_t(b), -7.0), {b}, DType::I32);
        be.sample_tokens(logits, sp, seq, step, ids);
        const std::vector<double> got = download(ids);
        for (int64_t i = 0; i < b; ++i) {
          const std::vector<float>& r = rows[size_t(i)];
          float mx = -INFINITY;
          bool any = false;
          for (float x : r)
            if (!std::isnan(x)) any = true, mx = std::max(mx, x);
          const bool samplable = any && (sp.temperature == 0.0f || std::isfinite(mx));
          const int32_t want =
              samplable ? sample_token(r.data(), v, sp, seq[size_t(i)], step[size_t(i)]) : -1;
          INFO("V " << v << " row " << i << " T " << pp.t << " top_k " << pp.k << " top_p "
                    << pp.p << " min_p " << pp.mp << " seed " << seed << " on " << be.name());
          CHECK(int32_t(got[size_t(i)]) == want);
          ++compared;
        }
      }
  }
  CHECK(compared > 300);
  // Rows that cannot be sampled: -1.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<double> bad = {nan, nan, nan, -INFINITY, -INFINITY, -INFINITY,
                                   1.0,  INFINITY, 2.0};
  Tensor logits = upload(be, bad, {3, 3}, F32);
  Tensor ids = upload(be, {5, 5, 5}, {3}, DType::I32);
  SamplingParams sp;
  be.sample_tokens(logits, sp, {0, 1, 2}, {0, 0, 0}, ids);
  CHECK(download(ids) == std::vector<double>{-1, -1, -1});
  sp.temperature = 0.0f;  // greedy: only the all-NaN row is refused
  be.sample_tokens(logits, sp, {0, 1, 2}, {0, 0, 0}, ids);
  CHECK(download(ids) == std::vector<double>{-1, 0, 1});
}

}  // namespace

#define OP_TEST(name, fn) ZT_BACKEND_TEST(name, "[ops]", fn)

OP_TEST("scatter_rows", test_scatter_rows)
OP_TEST("mla_decode_attention", test_mla_decode_attention)
OP_TEST("sample_tokens", test_sample_tokens)
OP_TEST("expert_rows_gemm", test_expert_rows_gemm)
