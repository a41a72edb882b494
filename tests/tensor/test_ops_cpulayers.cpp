// Op harness cases for the layer ops: embedding, rmsnorm, rope, swiglu, logprob and
// adamw_step (backend.h, "model ops" and "optimizer"), each against a float64
// reference computed here, on every backend (see test_ops.cpp for the scheme:
// "<op>" [cpu] and "<op> (cuda)" [.cuda]). Also: the CPU results of the reducing
// ops are bit-identical for 1 and 2 threads.
//
// Owns: these cases only (other ops' cases live in test_ops.cpp and test_ops_<name>.cpp).
// Must not: share references with the op implementations; finite-difference checks
// of the backward ops live in test_grads_cpulayers.cpp.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "op_harness.h"
#include "zeroth/error.h"

using namespace zeroth;
using namespace zeroth::testing;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
const DType F32 = DType::F32, BF16 = DType::BF16;

std::string shape_dt(const Shape& s, DType dt) { return dt_str(dt) + shape_str(s); }

std::vector<double> rounded(std::vector<double> v, DType dt) {
  for (double& x : v) x = round_to(dt, x);
  return v;
}

// n ids uniform in [lo, hi) as I32 values.
std::vector<double> random_ids(Rng& rng, int64_t n, int64_t lo, int64_t hi) {
  std::uniform_int_distribution<int64_t> dist(lo, hi - 1);
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) x = double(dist(rng));
  return v;
}

// ---- embedding ----

void test_embedding_forward(Backend& be) {
  Rng rng(2001);
  const int64_t shapes[][3] = {{1, 1, 1}, {7, 5, 11}, {50, 33, 9}, {3, 4100, 2}};  // V, C, N
  for (auto& s : shapes)
    for (DType tdt : {F32, BF16})
      for (DType odt : {F32, BF16}) {
        const int64_t v = s[0], c = s[1], n = s[2];
        std::vector<double> tv = random_values(rng, v * c, tdt, -2.0, 2.0);
        std::vector<double> iv = random_ids(rng, n, 0, v);
        Tensor table = upload(be, tv, {v, c}, tdt);
        Tensor ids = upload(be, iv, {n}, DType::I32);
        Tensor out = upload(be, std::vector<double>(size_t(n * c), kNaN), {n, c}, odt);
        be.embedding_forward(ids, table, out);
        std::vector<double> ref(size_t(n * c));
        for (int64_t r = 0; r < n; ++r)
          for (int64_t j = 0; j < c; ++j)
            ref[size_t(r * c + j)] = round_to(odt, tv[size_t(int64_t(iv[size_t(r)]) * c + j)]);
        expect_close(download(out), ref, 0.0,
                     strformat("embedding_forward table %s ids (%lld) -> %s on %s",
                               shape_dt({v, c}, tdt).c_str(), (long long)n, dt_str(odt).c_str(),
                               be.name().c_str()));
      }
}

void test_embedding_backward(Backend& be) {
  Rng rng(2002);
  // Few rows and many tokens: every row is hit several times (accumulation order).
  const int64_t shapes[][3] = {{1, 1, 1}, {5, 7, 40}, {300, 16, 37}, {4, 4100, 9}};  // V, C, N
  for (auto& s : shapes)
    for (DType gdt : {F32, BF16}) {
      const int64_t v = s[0], c = s[1], n = s[2];
      std::vector<double> gv = random_values(rng, n * c, gdt, -1.0, 1.0);
      std::vector<double> iv = random_ids(rng, n, 0, v);
      std::vector<double> d0 = random_values(rng, v * c, F32, -1.0, 1.0);
      Tensor dout = upload(be, gv, {n, c}, gdt);
      Tensor ids = upload(be, iv, {n}, DType::I32);
      Tensor dtable = upload(be, d0, {v, c}, F32);
      be.embedding_backward(ids, dout, dtable);
      std::vector<double> ref = d0;
      for (int64_t r = 0; r < n; ++r)
        for (int64_t j = 0; j < c; ++j)
          ref[size_t(int64_t(iv[size_t(r)]) * c + j)] += gv[size_t(r * c + j)];
      expect_close(
          download(dtable), ref, tolerance(F32),
          strformat("embedding_backward dout %s into f32[%lld, %lld] on %s",
                    shape_dt({n, c}, gdt).c_str(), (long long)v, (long long)c, be.name().c_str()));
    }
}

// ---- rmsnorm ----

struct NormCase {
  int64_t n, c;
  DType xdt, wdt, odt;
  bool view;
  float eps;
};

// With C = 1 the backward is 0 up to rounding (xhat = +-1): it starts at C = 3 there.
std::vector<NormCase> norm_cases(bool backward) {
  std::vector<NormCase> cases;
  const int64_t shapes[][2] = {{1, backward ? 3 : 1}, {5, 7}, {17, 64}, {3, 4097}};
  for (auto& s : shapes)
    for (DType xdt : {F32, BF16})
      for (DType wdt : {F32, BF16})
        for (bool view : {false, true})
          cases.push_back(
              {s[0], s[1], xdt, wdt, xdt == wdt ? F32 : BF16, view, view ? 1e-2f : 1e-6f});
  return cases;
}

// float64 rstd of each row of x (the view's values).
std::vector<double> ref_rstd(const std::vector<double>& x, int64_t n, int64_t c, float eps) {
  std::vector<double> r(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double ss = 0.0;
    for (int64_t j = 0; j < c; ++j) ss += x[size_t(i * c + j)] * x[size_t(i * c + j)];
    r[size_t(i)] = 1.0 / std::sqrt(ss / double(c) + double(eps));
  }
  return r;
}

void test_rmsnorm_forward(Backend& be) {
  Rng rng(2003);
  for (const NormCase& k : norm_cases(false)) {
    const Shape s{k.n, k.c};
    // A view: rows strided (a padded last dimension) and an offset start.
    Strided x = make_strided(be, rng, s, k.xdt, k.view ? Shape{1, 3} : Shape{}, false, -2.0, 2.0);
    std::vector<double> wv = random_values(rng, k.c, k.wdt, 0.5, 1.5);
    Tensor w = upload(be, wv, {k.c}, k.wdt);
    Tensor out = upload(be, std::vector<double>(size_t(k.n * k.c), kNaN), s, k.odt);
    Tensor rstd = upload(be, std::vector<double>(size_t(k.n), kNaN), {k.n}, F32);
    be.rmsnorm_forward(x.view, w, k.eps, out, rstd);
    const std::vector<double> xv = download_view(x);
    const std::vector<double> r = ref_rstd(xv, k.n, k.c, k.eps);
    std::vector<double> ref(xv.size());
    for (int64_t i = 0; i < k.n; ++i)
      for (int64_t j = 0; j < k.c; ++j)
        ref[size_t(i * k.c + j)] = xv[size_t(i * k.c + j)] * r[size_t(i)] * wv[size_t(j)];
    const std::string what =
        strformat("rmsnorm_forward x %s%s w %s eps %g -> %s on %s", shape_dt(s, k.xdt).c_str(),
                  k.view ? " (view)" : "", dt_str(k.wdt).c_str(), double(k.eps),
                  dt_str(k.odt).c_str(), be.name().c_str());
    expect_close(download(out), ref, tolerance(k.odt), what);
    expect_close(download(rstd), r, tolerance(F32), what + " (rstd)");
    expect_outside_unchanged(x, what);
  }
}

void test_rmsnorm_backward(Backend& be) {
  Rng rng(2004);
  for (const NormCase& k : norm_cases(true)) {
    const Shape s{k.n, k.c};
    Strided x = make_strided(be, rng, s, k.xdt, k.view ? Shape{2, 1} : Shape{}, false, -2.0, 2.0);
    std::vector<double> wv = random_values(rng, k.c, k.wdt, 0.5, 1.5);
    std::vector<double> gv = random_values(rng, k.n * k.c, k.xdt, -1.0, 1.0);
    std::vector<double> dw0 = random_values(rng, k.c, F32, -1.0, 1.0);
    const std::vector<double> xv = download_view(x);
    // The saved rstd as the forward stores it (f32); the reference uses the same values.
    const std::vector<double> r = rounded(ref_rstd(xv, k.n, k.c, k.eps), F32);
    Tensor w = upload(be, wv, {k.c}, k.wdt);
    Tensor dout = upload(be, gv, s, k.xdt);
    Tensor rstd = upload(be, r, {k.n}, F32);
    Tensor dx = upload(be, std::vector<double>(size_t(k.n * k.c), kNaN), s, k.odt);
    Tensor dw = upload(be, dw0, {k.c}, F32);
    be.rmsnorm_backward(dout, x.view, w, rstd, dx, dw);
    std::vector<double> rdx(xv.size()), rdw = dw0;
    for (int64_t i = 0; i < k.n; ++i) {
      double m = 0.0;
      for (int64_t j = 0; j < k.c; ++j) {
        const size_t p = size_t(i * k.c + j);
        m += gv[p] * wv[size_t(j)] * xv[p] * r[size_t(i)];
        rdw[size_t(j)] += gv[p] * xv[p] * r[size_t(i)];
      }
      m /= double(k.c);
      for (int64_t j = 0; j < k.c; ++j) {
        const size_t p = size_t(i * k.c + j);
        rdx[p] = r[size_t(i)] * (gv[p] * wv[size_t(j)] - xv[p] * r[size_t(i)] * m);
      }
    }
    const std::string what = strformat(
        "rmsnorm_backward x %s%s w %s -> dx %s on %s", shape_dt(s, k.xdt).c_str(),
        k.view ? " (view)" : "", dt_str(k.wdt).c_str(), dt_str(k.odt).c_str(), be.name().c_str());
    expect_close(download(dx), rdx, tolerance(k.odt), what + " (dx)");
    expect_close(download(dw), rdw, tolerance(F32), what + " (dw)");
  }
}

// ---- rope ----

// The forward map of one head, written as Hugging Face writes it
// (scripts/reference/deepseek_v3_ref.py, apply_rope): with `interleaved` the input
// is first regrouped to [x0, x2, .., x1, x3, ..]; then out = y * cat(c, c) +
// rotate_half(y) * cat(s, s). The output stays in the regrouped layout.
std::vector<double> hf_rope(const std::vector<double>& x, const double* c, const double* s,
                            bool interleaved) {
  const size_t d = x.size(), h = d / 2;
  std::vector<double> y(d), out(d);
  for (size_t i = 0; i < d; ++i)
    y[i] = interleaved ? (i < h ? x[2 * i] : x[2 * (i - h) + 1]) : x[i];
  for (size_t i = 0; i < d; ++i) {
    const double rot = i < h ? -y[i + h] : y[i - h];  // rotate_half
    out[i] = y[i] * c[i % h] + rot * s[i % h];
  }
  return out;
}

// out = M^T x where M is hf_rope's (linear) map: the backward.
std::vector<double> hf_rope_transposed(const std::vector<double>& x, const double* c,
                                       const double* s, bool interleaved) {
  const size_t d = x.size();
  std::vector<double> out(d, 0.0), e(d, 0.0);
  for (size_t j = 0; j < d; ++j) {  // column j of M = M e_j; out[j] = dot(M e_j, x)
    e[j] = 1.0;
    std::vector<double> col = hf_rope(e, c, s, interleaved);
    e[j] = 0.0;
    for (size_t i = 0; i < d; ++i) out[j] += col[i] * x[i];
  }
  return out;
}

void test_rope(Backend& be) {
  Rng rng(2005);
  const int64_t shapes[][3] = {
      {1, 1, 2}, {5, 3, 8}, {7, 1, 64}, {3, 2, 128}, {40, 3, 36}};  // N, H, D
  for (auto& sh : shapes)
    for (DType dt : {F32, BF16})
      for (bool interleaved : {false, true})
        for (bool inverse : {false, true})
          for (bool view : {false, true}) {
            const int64_t n = sh[0], h = sh[1], d = sh[2], half = d / 2, npos = n + 3;
            const Shape s{n, h, d};
            // A view strided in rows and heads (a qk head narrowed to its rope part).
            Strided x =
                make_strided(be, rng, s, dt, view ? Shape{1, 2, 5} : Shape{}, false, -2.0, 2.0);
            std::vector<double> pv = random_ids(rng, n, 0, npos);
            // An attention factor != 1 (yarn): the map is a scaled rotation, inverse = transpose.
            std::vector<double> cv(size_t(npos * half)), sv(size_t(npos * half));
            for (size_t i = 0; i < cv.size(); ++i) {
              const double ang = std::uniform_real_distribution<double>(-3.2, 3.2)(rng);
              cv[i] = round_to(F32, 1.25 * std::cos(ang));
              sv[i] = round_to(F32, 1.25 * std::sin(ang));
            }
            Tensor pos = upload(be, pv, {n}, DType::I32);
            Tensor cos = upload(be, cv, {npos, half}, F32);
            Tensor sin = upload(be, sv, {npos, half}, F32);
            const std::vector<double> xv = download_view(x);
            be.rope(x.view, pos, cos, sin, interleaved, inverse);
            std::vector<double> ref(xv.size());
            for (int64_t r = 0; r < n; ++r)
              for (int64_t hh = 0; hh < h; ++hh) {
                const size_t o = size_t((r * h + hh) * d);
                std::vector<double> v(xv.begin() + long(o), xv.begin() + long(o) + d);
                const double* c = cv.data() + size_t(pv[size_t(r)]) * size_t(half);
                const double* sn = sv.data() + size_t(pv[size_t(r)]) * size_t(half);
                std::vector<double> y = inverse ? hf_rope_transposed(v, c, sn, interleaved)
                                                : hf_rope(v, c, sn, interleaved);
                std::copy(y.begin(), y.end(), ref.begin() + long(o));
              }
            const std::string what =
                strformat("rope x %s%s %s%s on %s", shape_dt(s, dt).c_str(), view ? " (view)" : "",
                          interleaved ? "interleaved" : "halves", inverse ? " inverse" : "",
                          be.name().c_str());
            expect_close(download_view(x), ref, tolerance(dt), what);
            expect_outside_unchanged(x, what);
          }
}

// ---- swiglu ----

double silu(double g) { return g / (1.0 + std::exp(-g)); }

void test_swiglu_forward(Backend& be) {
  Rng rng(2006);
  const Shape shapes[] = {{1, 1}, {7, 13}, {3, 4100}};
  for (const Shape& s : shapes)
    for (DType in : {F32, BF16})
      for (DType odt : {F32, BF16}) {
        std::vector<double> gv = random_values(rng, shape_numel(s), in, -8.0, 8.0);
        std::vector<double> uv = random_values(rng, shape_numel(s), in, -2.0, 2.0);
        std::vector<double> ref(gv.size());
        for (size_t i = 0; i < gv.size(); ++i) ref[i] = silu(gv[i]) * uv[i];
        // Into a separate output, and in place over gate (outputs may alias inputs).
        for (bool alias : {false, true}) {
          if (alias && odt != in) continue;
          Tensor gate = upload(be, gv, s, in), up = upload(be, uv, s, in);
          Tensor out = alias ? gate : upload(be, std::vector<double>(gv.size(), kNaN), s, odt);
          be.swiglu_forward(gate, up, out);
          expect_close(download(out), ref, tolerance(odt),
                       strformat("swiglu_forward %s -> %s%s on %s", shape_dt(s, in).c_str(),
                                 dt_str(odt).c_str(), alias ? " (in place)" : "",
                                 be.name().c_str()));
        }
      }
}

void test_swiglu_backward(Backend& be) {
  Rng rng(2007);
  const Shape shapes[] = {{1, 1}, {7, 13}, {3, 4100}};
  for (const Shape& s : shapes)
    for (DType in : {F32, BF16})
      for (DType odt : {F32, BF16}) {
        std::vector<double> dv = random_values(rng, shape_numel(s), in, -1.0, 1.0);
        std::vector<double> gv = random_values(rng, shape_numel(s), in, -8.0, 8.0);
        std::vector<double> uv = random_values(rng, shape_numel(s), in, -2.0, 2.0);
        Tensor dout = upload(be, dv, s, in), gate = upload(be, gv, s, in),
               up = upload(be, uv, s, in);
        Tensor dgate = upload(be, std::vector<double>(gv.size(), kNaN), s, odt);
        Tensor dup = upload(be, std::vector<double>(gv.size(), kNaN), s, odt);
        be.swiglu_backward(dout, gate, up, dgate, dup);
        std::vector<double> rg(gv.size()), ru(gv.size());
        for (size_t i = 0; i < gv.size(); ++i) {
          const double sg = 1.0 / (1.0 + std::exp(-gv[i]));
          rg[i] = dv[i] * uv[i] * sg * (1.0 + gv[i] * (1.0 - sg));
          ru[i] = dv[i] * silu(gv[i]);
        }
        const std::string what =
            strformat("swiglu_backward %s -> %s on %s", shape_dt(s, in).c_str(),
                      dt_str(odt).c_str(), be.name().c_str());
        expect_close(download(dgate), rg, tolerance(odt), what + " (dgate)");
        expect_close(download(dup), ru, tolerance(odt), what + " (dup)");
      }
}

// ---- logprob ----

struct RowStats {
  double lse, entropy;
};

// lse and entropy of softmax(x / temperature) for one row (float64; -inf entries allowed).
RowStats row_stats(const double* x, int64_t v, double temperature) {
  double m = -INFINITY;
  for (int64_t i = 0; i < v; ++i) m = std::max(m, x[i] / temperature);
  double s = 0.0, t = 0.0;
  for (int64_t i = 0; i < v; ++i) {
    const double z = x[i] / temperature - m;
    const double e = std::exp(z);
    s += e;
    if (e > 0.0) t += e * z;
  }
  return {m + std::log(s), std::log(s) - t / s};
}

struct LogprobCase {
  int64_t n, v;
  DType dt;
  float temperature;
  double lo, hi;
  bool masked;  // some logits (never a target) are -inf
};

// With V = 1 the gradient is 0 up to the rounding of lse: the backward starts at V = 2.
std::vector<LogprobCase> logprob_cases(bool backward) {
  std::vector<LogprobCase> cases;
  const int64_t shapes[][2] = {{1, backward ? 2 : 1}, {5, 7}, {4, 3000}, {3, 4099}, {2, 130000}};
  for (auto& s : shapes)
    for (DType dt : {F32, BF16})
      for (float temp : {1.0f, 0.7f}) {
        cases.push_back({s[0], s[1], dt, temp, -10.0, 10.0, false});
        if (s[1] < 10000) cases.push_back({s[0], s[1], dt, temp, 990.0, 1010.0, s[1] > 1});
      }
  return cases;
}

// Logits (with -inf entries where asked) and targets (some ignored: -1).
void make_logprob_inputs(Rng& rng, const LogprobCase& k, std::vector<double>* xv,
                         std::vector<double>* tv) {
  *xv = random_values(rng, k.n * k.v, k.dt, k.lo, k.hi);
  *tv = random_ids(rng, k.n, 0, k.v);
  for (int64_t r = 0; r < k.n; ++r) {
    if (r % 3 == 1) (*tv)[size_t(r)] = -1.0;
    if (k.masked)
      for (int64_t i = r % 2; i < k.v; i += 3)
        if (i != int64_t((*tv)[size_t(r)])) (*xv)[size_t(r * k.v + i)] = -INFINITY;
  }
  if (k.masked)  // keep at least one finite logit per row
    for (int64_t r = 0; r < k.n; ++r)
      if ((*tv)[size_t(r)] < 0)
        (*xv)[size_t(r * k.v + (r % 2 == 0 ? 1 : 0))] = round_to(k.dt, k.lo);
}

std::string logprob_what(const char* op, const LogprobCase& k, const char* extra, Backend& be) {
  return strformat("%s logits %s in [%g, %g)%s T %g%s on %s", op,
                   shape_dt({k.n, k.v}, k.dt).c_str(), k.lo, k.hi, k.masked ? " with -inf" : "",
                   double(k.temperature), extra, be.name().c_str());
}

void test_logprob_forward(Backend& be) {
  Rng rng(2008);
  for (const LogprobCase& k : logprob_cases(false))
    for (bool with_entropy : {false, true}) {
      std::vector<double> xv, tv;
      make_logprob_inputs(rng, k, &xv, &tv);
      Tensor logits = upload(be, xv, {k.n, k.v}, k.dt);
      Tensor targets = upload(be, tv, {k.n}, DType::I32);
      const std::vector<double> nan(size_t(k.n), kNaN);
      Tensor lp = upload(be, nan, {k.n}, F32), lse = upload(be, nan, {k.n}, F32);
      Tensor ent = with_entropy ? upload(be, nan, {k.n}, F32) : Tensor();
      be.logprob_forward(logits, targets, k.temperature, lp, lse, ent);
      std::vector<double> rlp(size_t(k.n)), rlse(size_t(k.n)), rent(size_t(k.n));
      for (int64_t r = 0; r < k.n; ++r) {
        const double* x = xv.data() + r * k.v;
        const RowStats st = row_stats(x, k.v, double(k.temperature));
        const int64_t t = int64_t(tv[size_t(r)]);
        rlse[size_t(r)] = st.lse;
        rent[size_t(r)] = st.entropy;
        rlp[size_t(r)] = t < 0 ? 0.0 : x[t] / double(k.temperature) - st.lse;
      }
      const std::string what =
          logprob_what("logprob_forward", k, with_entropy ? " with entropy" : "", be);
      expect_close(download(lp), rlp, tolerance(F32), what + " (logprob)");
      // lse is ~1000 for the shifted range: compare it relative to its own scale.
      expect_close(download(lse), rlse, tolerance(F32), what + " (lse)");
      if (with_entropy) expect_close(download(ent), rent, tolerance(F32), what + " (entropy)");
    }
}

void test_logprob_backward(Backend& be) {
  Rng rng(2009);
  for (const LogprobCase& k : logprob_cases(true))
    for (bool with_entropy : {false, true})
      for (DType odt : {F32, BF16}) {
        if (k.v > 10000 && (odt == BF16 || k.dt == BF16 || !with_entropy)) continue;  // time
        std::vector<double> xv, tv;
        make_logprob_inputs(rng, k, &xv, &tv);
        std::vector<double> dlp = random_values(rng, k.n, F32, -1.0, 1.0);
        std::vector<double> dent = random_values(rng, k.n, F32, -1.0, 1.0);
        const double temp = double(k.temperature);
        std::vector<double> lsev(size_t(k.n)), hv(size_t(k.n));
        for (int64_t r = 0; r < k.n; ++r) {
          const RowStats st = row_stats(xv.data() + r * k.v, k.v, temp);
          lsev[size_t(r)] = round_to(F32, st.lse);  // as the forward saves it
          // The entropy as the backward recomputes it from the saved lse (whose f32
          // rounding is ~6e-5 at |lse| ~ 1e3, the shifted range).
          double h = 0.0;
          for (int64_t i = 0; i < k.v; ++i) {
            const double lpi = xv[size_t(r * k.v + i)] / temp - lsev[size_t(r)];
            if (std::exp(lpi) > 0.0) h -= std::exp(lpi) * lpi;
          }
          hv[size_t(r)] = h;
        }
        Tensor logits = upload(be, xv, {k.n, k.v}, k.dt);
        Tensor targets = upload(be, tv, {k.n}, DType::I32);
        Tensor lse = upload(be, lsev, {k.n}, F32), dlogprob = upload(be, dlp, {k.n}, F32);
        Tensor dentropy = with_entropy ? upload(be, dent, {k.n}, F32) : Tensor();
        Tensor dlogits = upload(be, std::vector<double>(xv.size(), kNaN), {k.n, k.v}, odt);
        be.logprob_backward(logits, targets, k.temperature, lse, dlogprob, dentropy, dlogits);
        std::vector<double> ref(xv.size());
        // An f32 gradient is accurate relative to the terms it sums (|a| for the
        // target's a - a p, |b| (1 + H) for the entropy term), not to the result,
        // which cancels to ~0 in peaked rows: scale the tolerance up to the terms.
        double terms = 0.0, worst = 0.0;
        for (int64_t r = 0; r < k.n; ++r) {
          const int64_t t = int64_t(tv[size_t(r)]);
          const double a = t < 0 ? 0.0 : dlp[size_t(r)];
          const double b = with_entropy ? dent[size_t(r)] : 0.0;
          terms = std::max(terms, (std::fabs(a) + std::fabs(b) * (1.0 + hv[size_t(r)])) / temp);
          for (int64_t i = 0; i < k.v; ++i) {
            const double lpi = xv[size_t(r * k.v + i)] / temp - lsev[size_t(r)];
            const double p = std::exp(lpi);
            const double dh = p > 0.0 ? -p * (lpi + hv[size_t(r)]) : 0.0;  // dH/dz_i
            ref[size_t(r * k.v + i)] = (a * ((i == t ? 1.0 : 0.0) - p) + b * dh) / temp;
            worst = std::max(worst, std::fabs(ref[size_t(r * k.v + i)]));
          }
        }
        const double tol = tolerance(odt) * std::max(1.0, worst > 0.0 ? terms / worst : 1.0);
        expect_close(download(dlogits), ref, tol,
                     logprob_what("logprob_backward", k,
                                  strformat("%s -> %s", with_entropy ? " with entropy" : "",
                                            dt_str(odt).c_str())
                                      .c_str(),
                                  be));
      }
}

// ---- adamw ----

void test_adamw_step(Backend& be) {
  Rng rng(2010);
  const int64_t sizes[] = {1, 37, 4096 + 4100};
  for (int64_t n : sizes)
    for (DType gdt : {F32, BF16})
      for (bool with_copy : {false, true}) {
        Backend::AdamWArgs args{};
        args.lr = 1e-2f;
        args.beta1 = 0.9f;
        args.beta2 = 0.95f;
        args.eps = 1e-8f;
        args.weight_decay = 0.1f;
        args.grad_scale = 0.5f;
        std::vector<double> p = random_values(rng, n, F32, -1.0, 1.0);
        std::vector<double> m(size_t(n), 0.0), v(size_t(n), 0.0);
        Tensor param = upload(be, p, {n}, F32);
        Tensor tm = upload(be, m, {n}, F32), tv = upload(be, v, {n}, F32);
        Tensor copy =
            with_copy ? upload(be, std::vector<double>(size_t(n), kNaN), {n}, BF16) : Tensor();
        for (int step = 1; step <= 4; ++step) {
          args.bias_correction1 = float(1.0 - std::pow(double(args.beta1), step));
          args.bias_correction2 = float(1.0 - std::pow(double(args.beta2), step));
          std::vector<double> g = random_values(rng, n, gdt, -2.0, 2.0);
          if (step == 3) std::fill(g.begin(), g.end(), 0.0);  // a zero gradient: only decay moves
          Tensor grad = upload(be, g, {n}, gdt);
          be.adamw_step(param, grad, tm, tv, args, copy);
          const double b1 = args.beta1, b2 = args.beta2;
          for (size_t i = 0; i < size_t(n); ++i) {
            const double gi = g[i] * double(args.grad_scale);
            m[i] = b1 * m[i] + (1 - b1) * gi;
            v[i] = b2 * v[i] + (1 - b2) * gi * gi;
            p[i] -= double(args.lr) *
                    (m[i] / double(args.bias_correction1) /
                         (std::sqrt(v[i] / double(args.bias_correction2)) + double(args.eps)) +
                     double(args.weight_decay) * p[i]);
          }
          const std::string what = strformat(
              "adamw_step n %lld grad %s%s step %d on %s", (long long)n, dt_str(gdt).c_str(),
              with_copy ? " with bf16 copy" : "", step, be.name().c_str());
          const std::vector<double> got = download(param);
          expect_close(got, p, tolerance(F32), what + " (param)");
          expect_close(download(tm), m, tolerance(F32), what + " (m)");
          expect_close(download(tv), v, tolerance(F32), what + " (v)");
          if (with_copy)
            expect_close(download(copy), rounded(got, BF16), 0.0, what + " (param_copy)");
        }
      }
}

}  // namespace

#define OP_TEST(name, fn) ZT_BACKEND_TEST(name, "[ops]", fn)

OP_TEST("embedding_forward", test_embedding_forward)
OP_TEST("embedding_backward", test_embedding_backward)
OP_TEST("rmsnorm_forward", test_rmsnorm_forward)
OP_TEST("rmsnorm_backward", test_rmsnorm_backward)
OP_TEST("rope", test_rope)
OP_TEST("swiglu_forward", test_swiglu_forward)
OP_TEST("swiglu_backward", test_swiglu_backward)
OP_TEST("logprob_forward", test_logprob_forward)
OP_TEST("logprob_backward", test_logprob_backward)
OP_TEST("adamw_step", test_adamw_step)

// CPU only: the ops that reduce (embedding_backward, rmsnorm_backward's dw, logprob)
// give bit-identical results on 1 and 2 threads.
TEST_CASE("layer ops are thread-count independent on cpu", "[cpu][ops]") {
  Rng rng(2011);
  const int64_t n = 300, c = 96, v = 5000;
  std::vector<double> ids = random_ids(rng, n, 0, 7);
  std::vector<double> gv = random_values(rng, n * c, F32, -1.0, 1.0);
  std::vector<double> xv = random_values(rng, n * c, F32, -2.0, 2.0);
  std::vector<double> wv = random_values(rng, c, F32, 0.5, 1.5);
  std::vector<double> lv = random_values(rng, 40 * v, BF16, -8.0, 8.0);
  std::vector<double> tv = random_ids(rng, 40, 0, v);
  std::vector<std::vector<double>> results[2];
  for (int threads : {1, 2}) {
    auto be = make_cpu_backend(threads);
    Tensor dtable = Tensor::zeros(*be, {7, c}, F32);
    be->embedding_backward(upload(*be, ids, {n}, DType::I32), upload(*be, gv, {n, c}, F32), dtable);
    Tensor x = upload(*be, xv, {n, c}, F32), w = upload(*be, wv, {c}, F32);
    Tensor out = Tensor::empty(*be, {n, c}, F32), rstd = Tensor::empty(*be, {n}, F32);
    Tensor dx = Tensor::empty(*be, {n, c}, F32), dw = Tensor::zeros(*be, {c}, F32);
    be->rmsnorm_forward(x, w, 1e-6f, out, rstd);
    be->rmsnorm_backward(upload(*be, gv, {n, c}, F32), x, w, rstd, dx, dw);
    Tensor logits = upload(*be, lv, {40, v}, BF16), targets = upload(*be, tv, {40}, DType::I32);
    Tensor lp = Tensor::empty(*be, {40}, F32), lse = Tensor::empty(*be, {40}, F32);
    Tensor ent = Tensor::empty(*be, {40}, F32), dl = Tensor::empty(*be, {40, v}, F32);
    be->logprob_forward(logits, targets, 0.9f, lp, lse, ent);
    be->logprob_backward(logits, targets, 0.9f, lse, lp, ent, dl);
    results[threads - 1] = {download(dtable), download(out), download(dx),  download(dw),
                            download(lp),     download(lse), download(ent), download(dl)};
  }
  for (size_t i = 0; i < results[0].size(); ++i) {
    INFO("result " << i);
    CHECK(results[0][i] == results[1][i]);
  }
  make_cpu_backend(0);  // restore the default thread count for later cases
}
