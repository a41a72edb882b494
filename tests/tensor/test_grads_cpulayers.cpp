// Finite-difference checks of the layer ops' backward: embedding, rmsnorm (dx, dw),
// rope (the inverse is the transpose), swiglu, logprob (with temperature, ignored
// targets and the entropy term).
//
// Each case defines a scalar loss L = sum(W * f(inputs)) with random weights W, where
// f is a float64 re-statement of the op's forward semantics (backend.h), takes
// central differences of L in float64 (step 1e-6, truncation error ~1e-12), and
// compares them with the backend's backward op run on dout = W in f32. The op
// harness (test_ops_cpulayers.cpp) separately checks each forward against the same
// semantics, so together they prove forward and backward consistent.
//
// Owns: these cases only. Must not: call a forward reference that reuses code from
// the implementation.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "op_harness.h"
#include "zeroth/error.h"

using namespace zeroth;
using namespace zeroth::testing;

namespace {

const DType F32 = DType::F32;
constexpr double kStep = 1e-6;
constexpr double kTol = 1e-4;  // f32 backward vs float64 differences, relative to max |grad|

using Loss = std::function<double(const std::vector<double>&)>;

// Central differences of loss at x, one coordinate at a time.
std::vector<double> numeric_grad(const Loss& loss, std::vector<double> x) {
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i];
    x[i] = x0 + kStep;
    const double up = loss(x);
    x[i] = x0 - kStep;
    const double down = loss(x);
    x[i] = x0;
    g[i] = (up - down) / (2.0 * kStep);
  }
  return g;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

std::vector<double> random_ids(Rng& rng, int64_t n, int64_t lo, int64_t hi) {
  std::uniform_int_distribution<int64_t> dist(lo, hi - 1);
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) x = double(dist(rng));
  return v;
}

void grad_embedding(Backend& be) {
  Rng rng(3001);
  const int64_t v = 6, c = 5, n = 13;
  std::vector<double> table = random_values(rng, v * c, F32, -1.0, 1.0);
  std::vector<double> ids = random_ids(rng, n, 0, v);
  std::vector<double> w = random_values(rng, n * c, F32, -1.0, 1.0);
  Loss loss = [&](const std::vector<double>& t) {
    double s = 0.0;
    for (int64_t r = 0; r < n; ++r)
      for (int64_t j = 0; j < c; ++j)
        s += w[size_t(r * c + j)] * t[size_t(int64_t(ids[size_t(r)]) * c + j)];
    return s;
  };
  Tensor dtable = Tensor::zeros(be, {v, c}, F32);
  be.embedding_backward(upload(be, ids, {n}, DType::I32), upload(be, w, {n, c}, F32), dtable);
  expect_close(download(dtable), numeric_grad(loss, table), kTol,
               "embedding_backward vs finite differences on " + be.name());
}

void grad_rmsnorm(Backend& be) {
  Rng rng(3002);
  const int64_t n = 4, c = 9;
  const float eps = 1e-5f;
  std::vector<double> x = random_values(rng, n * c, F32, -2.0, 2.0);
  std::vector<double> wt = random_values(rng, c, F32, 0.5, 1.5);
  std::vector<double> w = random_values(rng, n * c, F32, -1.0, 1.0);
  // L(x, weight) = sum W * x * rstd(x) * weight.
  auto loss_of = [&](const std::vector<double>& xs, const std::vector<double>& ws) {
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      double ss = 0.0;
      for (int64_t j = 0; j < c; ++j) ss += xs[size_t(i * c + j)] * xs[size_t(i * c + j)];
      const double r = 1.0 / std::sqrt(ss / double(c) + double(eps));
      for (int64_t j = 0; j < c; ++j)
        s += w[size_t(i * c + j)] * xs[size_t(i * c + j)] * r * ws[size_t(j)];
    }
    return s;
  };
  Tensor tx = upload(be, x, {n, c}, F32), tw = upload(be, wt, {c}, F32);
  Tensor out = Tensor::empty(be, {n, c}, F32), rstd = Tensor::empty(be, {n}, F32);
  Tensor dx = Tensor::empty(be, {n, c}, F32), dw = Tensor::zeros(be, {c}, F32);
  be.rmsnorm_forward(tx, tw, eps, out, rstd);
  be.rmsnorm_backward(upload(be, w, {n, c}, F32), tx, tw, rstd, dx, dw);
  expect_close(download(dx),
               numeric_grad([&](const std::vector<double>& xs) { return loss_of(xs, wt); }, x),
               kTol, "rmsnorm_backward dx vs finite differences on " + be.name());
  expect_close(download(dw),
               numeric_grad([&](const std::vector<double>& ws) { return loss_of(x, ws); }, wt),
               kTol, "rmsnorm_backward dw vs finite differences on " + be.name());
}

// rope forward (float64, from backend.h's description): with `interleaved`, pair i is
// (x[2i], x[2i+1]) and its rotation is written to (out[i], out[i + D/2]); else pair i is
// (x[i], x[i + D/2]) in place. Rotation: (a, b) -> (a c - b s, b c + a s).
std::vector<double> rope_ref(const std::vector<double>& x, const std::vector<double>& pos,
                             const std::vector<double>& cs, const std::vector<double>& sn,
                             int64_t n, int64_t h, int64_t d, bool interleaved) {
  std::vector<double> out(x.size());
  const int64_t half = d / 2;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t hh = 0; hh < h; ++hh) {
      const size_t o = size_t((r * h + hh) * d);
      for (int64_t i = 0; i < half; ++i) {
        const double c = cs[size_t(int64_t(pos[size_t(r)]) * half + i)];
        const double s = sn[size_t(int64_t(pos[size_t(r)]) * half + i)];
        const double a = interleaved ? x[o + size_t(2 * i)] : x[o + size_t(i)];
        const double b = interleaved ? x[o + size_t(2 * i + 1)] : x[o + size_t(i + half)];
        out[o + size_t(i)] = a * c - b * s;
        out[o + size_t(i + half)] = b * c + a * s;
      }
    }
  return out;
}

void grad_rope(Backend& be) {
  Rng rng(3003);
  const int64_t n = 3, h = 2, d = 6, npos = 5, half = d / 2;
  for (bool interleaved : {false, true}) {
    std::vector<double> x = random_values(rng, n * h * d, F32, -1.0, 1.0);
    std::vector<double> w = random_values(rng, n * h * d, F32, -1.0, 1.0);
    std::vector<double> pos = random_ids(rng, n, 0, npos);
    std::vector<double> cs(size_t(npos * half)), sn(size_t(npos * half));
    for (size_t i = 0; i < cs.size(); ++i) {  // a scaled rotation (yarn attention factor 1.2)
      const double ang = std::uniform_real_distribution<double>(-3.2, 3.2)(rng);
      cs[i] = round_to(F32, 1.2 * std::cos(ang));
      sn[i] = round_to(F32, 1.2 * std::sin(ang));
    }
    Loss loss = [&](const std::vector<double>& xs) {
      return dot(w, rope_ref(xs, pos, cs, sn, n, h, d, interleaved));
    };
    // The backward: the inverse (transposed) rope applied to dout = W.
    Tensor g = upload(be, w, {n, h, d}, F32);
    Tensor tp = upload(be, pos, {n}, DType::I32);
    Tensor tc = upload(be, cs, {npos, half}, F32), ts = upload(be, sn, {npos, half}, F32);
    be.rope(g, tp, tc, ts, interleaved, true);
    const std::string what = strformat("rope %s inverse vs finite differences of the forward on %s",
                                       interleaved ? "interleaved" : "halves", be.name().c_str());
    expect_close(download(g), numeric_grad(loss, x), kTol, what);
    // And the forward op then the inverse of a pure rotation (factor 1) is the identity.
    std::vector<double> c1(cs.size()), s1(sn.size());
    for (size_t i = 0; i < cs.size(); ++i) {
      const double norm = std::hypot(cs[i], sn[i]);
      c1[i] = cs[i] / norm;
      s1[i] = sn[i] / norm;
    }
    Tensor y = upload(be, x, {n, h, d}, F32);
    Tensor tc1 = upload(be, c1, {npos, half}, F32), ts1 = upload(be, s1, {npos, half}, F32);
    be.rope(y, tp, tc1, ts1, interleaved, false);
    be.rope(y, tp, tc1, ts1, interleaved, true);
    expect_close(download(y), x, kTol, what + " (round trip)");
  }
}

void grad_swiglu(Backend& be) {
  Rng rng(3004);
  const int64_t n = 3, k = 7;
  std::vector<double> gate = random_values(rng, n * k, F32, -5.0, 5.0);
  std::vector<double> up = random_values(rng, n * k, F32, -2.0, 2.0);
  std::vector<double> w = random_values(rng, n * k, F32, -1.0, 1.0);
  auto loss_of = [&](const std::vector<double>& g, const std::vector<double>& u) {
    double s = 0.0;
    for (size_t i = 0; i < g.size(); ++i) s += w[i] * g[i] / (1.0 + std::exp(-g[i])) * u[i];
    return s;
  };
  Tensor dgate = Tensor::empty(be, {n, k}, F32), dup = Tensor::empty(be, {n, k}, F32);
  be.swiglu_backward(upload(be, w, {n, k}, F32), upload(be, gate, {n, k}, F32),
                     upload(be, up, {n, k}, F32), dgate, dup);
  expect_close(download(dgate),
               numeric_grad([&](const std::vector<double>& g) { return loss_of(g, up); }, gate),
               kTol, "swiglu_backward dgate vs finite differences on " + be.name());
  expect_close(download(dup),
               numeric_grad([&](const std::vector<double>& u) { return loss_of(gate, u); }, up),
               kTol, "swiglu_backward dup vs finite differences on " + be.name());
}

void grad_logprob(Backend& be) {
  Rng rng(3005);
  const int64_t n = 5, v = 11;
  for (float temperature : {1.0f, 0.7f})
    for (bool with_entropy : {false, true}) {
      std::vector<double> x = random_values(rng, n * v, F32, -3.0, 3.0);
      std::vector<double> t = random_ids(rng, n, 0, v);
      t[1] = -1.0;  // an ignored position
      std::vector<double> a = random_values(rng, n, F32, -1.0, 1.0);
      std::vector<double> b = random_values(rng, n, F32, -1.0, 1.0);
      const double temp = double(temperature);
      // L = sum_n a[n] logprob[n] + b[n] entropy[n] (the entropy term when asked).
      Loss loss = [&](const std::vector<double>& xs) {
        double s = 0.0;
        for (int64_t r = 0; r < n; ++r) {
          const double* z = xs.data() + r * v;
          double m = -INFINITY, sum = 0.0;
          for (int64_t i = 0; i < v; ++i) m = std::max(m, z[i] / temp);
          for (int64_t i = 0; i < v; ++i) sum += std::exp(z[i] / temp - m);
          const double lse = m + std::log(sum);
          if (t[size_t(r)] >= 0) s += a[size_t(r)] * (z[int64_t(t[size_t(r)])] / temp - lse);
          if (with_entropy) {
            double h = 0.0;
            for (int64_t i = 0; i < v; ++i) {
              const double lp = z[i] / temp - lse;
              h -= std::exp(lp) * lp;
            }
            s += b[size_t(r)] * h;
          }
        }
        return s;
      };
      Tensor logits = upload(be, x, {n, v}, F32), targets = upload(be, t, {n}, DType::I32);
      Tensor lp = Tensor::empty(be, {n}, F32), lse = Tensor::empty(be, {n}, F32);
      Tensor ent = with_entropy ? Tensor::empty(be, {n}, F32) : Tensor();
      be.logprob_forward(logits, targets, temperature, lp, lse, ent);
      Tensor dlogits = Tensor::empty(be, {n, v}, F32);
      Tensor db = with_entropy ? upload(be, b, {n}, F32) : Tensor();
      be.logprob_backward(logits, targets, temperature, lse, upload(be, a, {n}, F32), db, dlogits);
      expect_close(download(dlogits), numeric_grad(loss, x), kTol,
                   strformat("logprob_backward T %g%s vs finite differences on %s", temp,
                             with_entropy ? " with entropy" : "", be.name().c_str()));
    }
}

}  // namespace

#define GRAD_TEST(name, fn) ZT_BACKEND_TEST(name, "[grads]", fn)

GRAD_TEST("embedding_backward finite differences", grad_embedding)
GRAD_TEST("rmsnorm_backward finite differences", grad_rmsnorm)
GRAD_TEST("rope inverse is the transpose", grad_rope)
GRAD_TEST("swiglu_backward finite differences", grad_swiglu)
GRAD_TEST("logprob_backward finite differences", grad_logprob)
