// Op test harness: every op of backend.h, on every available backend, against a
// float64 reference computed here (in the spirit of ggml's test-backend-ops).
//
// A case: fresh inputs from a seeded RNG, rounded to the input dtype (so the
// reference sees exactly what the backend sees), uploaded to the backend under test
// (plain, or as narrowed / strided views of a larger parent where the op accepts
// strides), the op run, results copied back and compared with the float64
// reference: max |got - ref| / max |ref| must stay within the output dtype's
// tolerance (op_harness.h: F32 1e-5, BF16 1e-2, F16 2e-3; pure data movement and
// ints exact). Outputs written through a view also prove nothing outside the view
// changed.
//
// Backends: OP_TEST(name, fn) defines two Catch test cases:
//   "<name>"          [cpu]    fn on the CPU backend (the reference implementation);
//   "<name> (cuda)"   [.cuda]  fn on CUDA device 0; hidden unless asked for. CTest
//                              runs these as `ops_cuda` (test_ops --require-gpu
//                              "[cuda]"), skipped (exit 77) where no GPU is present.
//
// Adding an op:
//   1. write `static void test_<op>(Backend& be)` that loops over shapes (odd sizes,
//      sizes crossing the CPU backend's 4096-element blocks), every dtype the op
//      accepts, and views where the op accepts strides; compute the reference in
//      double and call expect_close with tolerance(<output dtype>) or a stated bound;
//   2. register it with OP_TEST("<op>", test_<op>) at the bottom of this file.
#include <catch2/catch.hpp>

#include <algorithm>
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

std::string shape_dt(const Shape& s, DType dt) { return dt_str(dt) + shape_str(s); }

// Pads for a strided view: 1 or 2 extra elements on every dimension.
Shape pads_for(const Shape& s) {
  Shape p(s.size());
  for (size_t i = 0; i < s.size(); ++i) p[i] = 1 + int64_t(i % 2);
  return p;
}

// ---- gemm ----

struct GemmCase {
  int64_t batch, m, n, k;
  bool a3, b3, c3, ta, tb;
  DType ab, c;
  float alpha, beta;
  Shape pad_a, pad_b, pad_c;  // empty: contiguous
};

void run_gemm(Backend& be, Rng& rng, const GemmCase& g) {
  Shape sa = g.ta ? Shape{g.k, g.m} : Shape{g.m, g.k};
  Shape sb = g.tb ? Shape{g.n, g.k} : Shape{g.k, g.n};
  Shape sc{g.m, g.n};
  if (g.a3) sa.insert(sa.begin(), g.batch);
  if (g.b3) sb.insert(sb.begin(), g.batch);
  if (g.c3) sc.insert(sc.begin(), g.batch);
  Strided A = make_strided(be, rng, sa, g.ab, g.pad_a, false, -1.0, 1.0);
  Strided B = make_strided(be, rng, sb, g.ab, g.pad_b, false, -1.0, 1.0);
  // With beta == 0 the old C is NaN: it must be ignored, not multiplied by zero.
  Strided C = g.beta == 0.0f ? make_filled(be, sc, g.c, g.pad_c, false, kNaN)
                             : make_strided(be, rng, sc, g.c, g.pad_c, false, -1.0, 1.0);
  std::string what = strformat(
      "gemm batch %lld M %lld N %lld K %lld: A %s%s%s, B %s%s%s, C %s%s, alpha %g beta %g on %s",
      (long long)g.batch, (long long)g.m, (long long)g.n, (long long)g.k,
      shape_dt(sa, g.ab).c_str(), g.ta ? " (T)" : "", g.pad_a.empty() ? "" : " view",
      shape_dt(sb, g.ab).c_str(), g.tb ? " (T)" : "", g.pad_b.empty() ? "" : " view",
      shape_dt(sc, g.c).c_str(), g.pad_c.empty() ? "" : " view", double(g.alpha),
      double(g.beta), be.name().c_str());

  be.gemm(A.view, g.ta, B.view, g.tb, C.view, g.alpha, g.beta);

  // Dense float64 copies of op(A) (batch_a, M, K) and op(B) (batch_b, K, N).
  auto dense_op = [](const Strided& s, bool batched, bool trans, int64_t rows, int64_t cols) {
    std::vector<double> d(size_t(shape_numel(s.view.shape())));
    for_each_index(s.view.shape(), [&](const Index& i) {
      int64_t b = batched ? i[0] : 0, r = i[batched ? 1 : 0], c = i[batched ? 2 : 1];
      if (trans) std::swap(r, c);
      d[size_t((b * rows + r) * cols + c)] = s.at(i);
    });
    return d;
  };
  const std::vector<double> opa = dense_op(A, g.a3, g.ta, g.m, g.k);
  const std::vector<double> opb = dense_op(B, g.b3, g.tb, g.k, g.n);
  const int64_t nb = g.c3 ? g.batch : 1;
  std::vector<double> ref(size_t(nb * g.m * g.n));
  for (int64_t bi = 0; bi < nb; ++bi) {
    const double* pa = opa.data() + (g.a3 ? bi : 0) * g.m * g.k;
    const double* pb = opb.data() + (g.b3 ? bi : 0) * g.k * g.n;
    for (int64_t i = 0; i < g.m; ++i) {
      for (int64_t j = 0; j < g.n; ++j) {
        double s = 0.0;
        for (int64_t kk = 0; kk < g.k; ++kk) s += pa[i * g.k + kk] * pb[kk * g.n + j];
        ref[size_t((bi * g.m + i) * g.n + j)] = double(g.alpha) * s;
      }
    }
  }
  if (g.beta != 0.0f) {
    size_t pos = 0;
    for_each_index(C.view.shape(), [&](const Index& i) { ref[pos++] += double(g.beta) * C.at(i); });
  }
  expect_close(download_view(C), ref, tolerance(g.c), what);
  expect_outside_unchanged(C, what);
}

void test_gemm(Backend& be) {
  Rng rng(1001);
  const DType F32 = DType::F32, BF16 = DType::BF16;
  const std::pair<DType, DType> all_dtypes[] = {{F32, F32}, {BF16, F32}, {BF16, BF16}, {F32, BF16}};
  const int64_t shapes[][3] = {{1, 1, 1}, {7, 5, 3}, {33, 17, 65}, {64, 48, 96}, {3, 130, 129}};
  // Plain 2-D, every transpose and dtype combination, NaN in C with beta = 0.
  for (auto& s : shapes)
    for (int t = 0; t < 4; ++t)
      for (auto& d : all_dtypes)
        run_gemm(be, rng, {1, s[0], s[1], s[2], false, false, false, (t & 1) != 0, (t & 2) != 0, d.first,
                           d.second, 1.0f, 0.0f, {}, {}, {}});
  // The decode step's row-invariant products (set_row_invariant_gemm; the CPU's
  // rows_gemm_nt): every row count of its 4-row blocks, outputs not a multiple of its 3, K
  // with and without an 8-lane tail, sizes split over threads, views, alpha and beta, and
  // the folded 3-D A. Only A @ B^T changes path; the rest must be unaffected.
  // {24, 150, 40}: 6 row passes over several 48-output blocks (the next block's prefetch
  // runs in the last 4 passes only).
  const int64_t few_rows[][3] = {{2, 50, 37},   {4, 96, 64}, {13, 7, 200}, {16, 50, 515},
                                 {1, 301, 517}, {70, 9, 8},  {24, 150, 40}};
  be.set_row_invariant_gemm(true);
  for (auto& s : few_rows)
    for (int t = 0; t < 4; ++t)
      for (auto& d : all_dtypes)
        for (float beta : {0.0f, 1.5f})
          run_gemm(be, rng, {1, s[0], s[1], s[2], false, false, false, (t & 1) != 0, (t & 2) != 0, d.first,
                             d.second, 0.5f, beta, {}, {}, {}});
  for (auto& d : all_dtypes) {
    run_gemm(be, rng, {1, 7, 33, 19, false, false, false, false, true, d.first, d.second, 1.0f, 0.5f, {2, 3},
                       {1, 2}, {3, 1}});
    run_gemm(be, rng, {3, 5, 7, 6, true, false, true, false, true, d.first, d.second, 1.0f, 0.0f, {0, 0, 3}, {},
                       {0, 0, 2}});
  }
  be.set_row_invariant_gemm(false);
  // Narrowed views (row stride > cols, offset start) for every operand; alpha and beta.
  for (int si = 1; si < 3; ++si)
    for (int t = 0; t < 4; ++t)
      for (auto& d : all_dtypes)
        for (float beta : {0.0f, 1.5f})
          run_gemm(be, rng, {1, shapes[si][0], shapes[si][1], shapes[si][2], false, false, false,
                             (t & 1) != 0, (t & 2) != 0, d.first, d.second, 0.5f, beta, {2, 3}, {1, 2},
                             {3, 1}});
  // Batched: A, B or both carry the batch (a 2-D operand is broadcast); plain and views.
  const int64_t bshapes[][3] = {{9, 11, 13}, {16, 8, 32}};
  const bool batch_kinds[][2] = {{true, false}, {false, true}, {true, true}};
  for (auto& s : bshapes)
    for (auto& bk : batch_kinds)
      for (int t = 0; t < 4; ++t)
        for (auto& d : {all_dtypes[0], all_dtypes[1], all_dtypes[2]})
          for (bool view : {false, true})
            run_gemm(be, rng,
                     {3, s[0], s[1], s[2], bk[0], bk[1], true, (t & 1) != 0, (t & 2) != 0, d.first,
                      d.second, 1.0f, view ? 0.25f : 0.0f,
                      view ? (bk[0] ? Shape{1, 2, 3} : Shape{2, 3}) : Shape{},
                      view ? (bk[1] ? Shape{2, 1, 2} : Shape{1, 2}) : Shape{},
                      view ? Shape{1, 1, 2} : Shape{}});
  // A (batch, M, K) with rows contiguous across the batch and a padded row stride,
  // B shared: the shape the CPU backend folds into one (batch*M, K) GEMM.
  for (bool tb : {false, true})
    for (auto& d : all_dtypes)
      run_gemm(be, rng, {4, 5, 7, 6, true, false, true, false, tb, d.first, d.second, 1.0f, 0.0f,
                         {0, 0, 3}, {}, {0, 0, 2}});
  // K == 0: C = beta * C (and 0 for beta == 0, NaNs dropped).
  for (float beta : {0.0f, 0.5f})
    run_gemm(be, rng, {1, 4, 3, 0, false, false, false, false, false, F32, F32, 1.0f, beta, {}, {}, {}});
}

// ---- fill ----

void test_fill(Backend& be) {
  Rng rng(1002);
  const Shape shapes[] = {{1}, {17}, {3, 4097}};
  struct FillCase { DType dt; double value; };
  const FillCase cases[] = {{DType::F32, -2.718281828}, {DType::BF16, -2.718281828},
                            {DType::F16, -2.718281828}, {DType::F16, 70000.0},
                            {DType::F32, 0.0},          {DType::I32, 42.0},
                            {DType::I32, -7.0},         {DType::I64, 1099511627776.0}};
  for (const Shape& s : shapes)
    for (const FillCase& c : cases) {
      Tensor t = upload(be, random_values(rng, shape_numel(s), c.dt, -9, 9), s, c.dt);
      be.fill(t, c.value);
      std::vector<double> ref(size_t(shape_numel(s)), round_to(c.dt, c.value));
      expect_close(download(t), ref, 0.0,
                   strformat("fill %s with %g on %s", shape_dt(s, c.dt).c_str(), c.value,
                             be.name().c_str()));
    }
}

// ---- copy ----

void test_copy(Backend& be) {
  Rng rng(1003);
  const DType F32 = DType::F32, BF16 = DType::BF16, F16 = DType::F16, I32 = DType::I32,
              I64 = DType::I64;
  const std::pair<DType, DType> dtypes[] = {{F32, F32}, {F32, BF16}, {BF16, F32}, {F32, F16},
                                            {F16, F32}, {BF16, F16}, {BF16, BF16}, {I32, I64},
                                            {I64, I32}, {I32, F32},  {I64, BF16},  {I32, I32}};
  const Shape shapes[] = {{5},          {3, 7},          {2, 3, 4}, {2, 1, 3, 5},
                          {2, 3, 1, 2, 3, 4}, {1, 2, 2, 3, 2, 5}, {3, 4100}};
  // (src pads, src interleaved, dst pads, dst interleaved)
  for (const Shape& s : shapes)
    for (auto& d : dtypes)
      for (int layout = 0; layout < 4; ++layout) {
        bool src_view = layout == 1 || layout == 3, dst_view = layout >= 2;
        bool interleave = layout == 3;
        double lo = dtype_is_float(d.first) ? -100.0 : -1000.0;
        Strided src = make_strided(be, rng, s, d.first, src_view ? pads_for(s) : Shape{},
                                   interleave, lo, -lo);
        Strided dst = make_filled(be, s, d.second, dst_view ? pads_for(s) : Shape{}, interleave,
                                  dtype_is_float(d.second) ? kNaN : -1.0);
        std::string what = strformat("copy %s%s -> %s%s on %s", shape_dt(s, d.first).c_str(),
                                     src_view ? (interleave ? " (strided)" : " (view)") : "",
                                     shape_dt(s, d.second).c_str(),
                                     dst_view ? (interleave ? " (strided)" : " (view)") : "",
                                     be.name().c_str());
        be.copy(src.view, dst.view);
        std::vector<double> ref;
        for_each_index(s, [&](const Index& i) { ref.push_back(round_to(d.second, src.at(i))); });
        expect_close(download_view(dst), ref, 0.0, what);
        expect_outside_unchanged(dst, what);
      }
}

// ---- axpby, scale ----

const Shape kElementwiseShapes[] = {{1}, {17}, {4, 1000}, {3, 5, 4097}};

void test_axpby(Backend& be) {
  Rng rng(1004);
  const DType F32 = DType::F32, BF16 = DType::BF16, F16 = DType::F16;
  const std::pair<DType, DType> dtypes[] = {{F32, F32},  {BF16, F32}, {F32, BF16}, {BF16, BF16},
                                            {F16, F32},  {F32, F16},  {F16, F16}};
  const std::pair<float, float> coefs[] = {{0.75f, -1.25f}, {2.0f, 0.0f}, {0.0f, 1.0f}};
  for (const Shape& s : kElementwiseShapes)
    for (auto& d : dtypes)
      for (auto& ab : coefs) {
        std::vector<double> xv = random_values(rng, shape_numel(s), d.first, -2, 2);
        std::vector<double> yv = random_values(rng, shape_numel(s), d.second, -2, 2);
        Tensor x = upload(be, xv, s, d.first), y = upload(be, yv, s, d.second);
        be.axpby(ab.first, x, ab.second, y);
        std::vector<double> ref(xv.size());
        for (size_t i = 0; i < ref.size(); ++i)
          ref[i] = double(ab.first) * xv[i] + double(ab.second) * yv[i];
        expect_close(download(y), ref, tolerance(d.second),
                     strformat("axpby a %g x %s, b %g y %s on %s", double(ab.first),
                               shape_dt(s, d.first).c_str(), double(ab.second),
                               dt_str(d.second).c_str(), be.name().c_str()));
      }
}

void test_scale(Backend& be) {
  Rng rng(1005);
  for (const Shape& s : kElementwiseShapes)
    for (DType dt : {DType::F32, DType::BF16, DType::F16})
      for (float a : {-0.5f, 3.0f, 0.0f}) {
        std::vector<double> xv = random_values(rng, shape_numel(s), dt, -4, 4);
        Tensor x = upload(be, xv, s, dt);
        be.scale(x, a);
        std::vector<double> ref(xv.size());
        for (size_t i = 0; i < ref.size(); ++i) ref[i] = double(a) * xv[i];
        expect_close(download(x), ref, tolerance(dt),
                     strformat("scale %s by %g on %s", shape_dt(s, dt).c_str(), double(a),
                               be.name().c_str()));
      }
}

// ---- add, mul ----

void test_binary(Backend& be, bool is_add) {
  Rng rng(is_add ? 1006 : 1007);
  const DType F32 = DType::F32, BF16 = DType::BF16, F16 = DType::F16;
  const std::pair<Shape, Shape> shapes[] = {{{7}, {7}},       {{4, 33}, {33}},  {{2, 3, 8}, {3, 8}},
                                            {{2, 3, 8}, {8}}, {{5, 4100}, {5, 4100}},
                                            {{3, 4097}, {4097}}};
  struct Dt { DType x, y, out; };
  const Dt dtypes[] = {{F32, F32, F32}, {BF16, BF16, BF16}, {BF16, F32, F32},
                       {F32, BF16, BF16}, {F16, F16, F16},  {F16, BF16, F32}};
  const char* op = is_add ? "add" : "mul";
  for (auto& sh : shapes)
    for (const Dt& d : dtypes)
      for (bool alias : {false, true}) {
        if (alias && d.out != d.x) continue;
        std::vector<double> xv = random_values(rng, shape_numel(sh.first), d.x, -3, 3);
        std::vector<double> yv = random_values(rng, shape_numel(sh.second), d.y, -3, 3);
        Tensor x = upload(be, xv, sh.first, d.x), y = upload(be, yv, sh.second, d.y);
        Tensor out = alias ? x : upload(be, std::vector<double>(xv.size(), kNaN), sh.first, d.out);
        if (is_add) be.add(x, y, out);
        else be.mul(x, y, out);
        std::vector<double> ref(xv.size());
        for (size_t i = 0; i < ref.size(); ++i) {
          double b = yv[i % yv.size()];
          ref[i] = is_add ? xv[i] + b : xv[i] * b;
        }
        expect_close(download(out), ref, tolerance(d.out),
                     strformat("%s x %s, y %s -> %s%s on %s", op, shape_dt(sh.first, d.x).c_str(),
                               shape_dt(sh.second, d.y).c_str(), dt_str(d.out).c_str(),
                               alias ? " (in place)" : "", be.name().c_str()));
      }
}

void test_add(Backend& be) { test_binary(be, true); }
void test_mul(Backend& be) { test_binary(be, false); }

// ---- sum_last, max_last, sum_squares ----

const Shape kRowShapes[] = {{1, 1}, {5, 7}, {3, 4, 33}, {2, 5000}, {300, 3}, {1, 4097}};

void test_reduce_last(Backend& be, bool is_sum) {
  Rng rng(is_sum ? 1008 : 1009);
  for (const Shape& s : kRowShapes)
    for (DType dt : {DType::F32, DType::BF16, DType::F16}) {
      std::vector<double> xv = random_values(rng, shape_numel(s), dt, -1, 1);
      Tensor x = upload(be, xv, s, dt);
      Shape so(s.begin(), s.end() - 1);
      Tensor out = upload(be, std::vector<double>(size_t(shape_numel(so)), kNaN), so, DType::F32);
      if (is_sum) be.sum_last(x, out);
      else be.max_last(x, out);
      const int64_t d = s.back();
      std::vector<double> ref(size_t(shape_numel(so)));
      for (size_t r = 0; r < ref.size(); ++r) {
        double acc = is_sum ? 0.0 : -INFINITY;
        for (int64_t i = 0; i < d; ++i) {
          double v = xv[r * size_t(d) + size_t(i)];
          acc = is_sum ? acc + v : std::max(acc, v);
        }
        ref[r] = acc;
      }
      expect_close(download(out), ref, tolerance(DType::F32),
                   strformat("%s %s on %s", is_sum ? "sum_last" : "max_last",
                             shape_dt(s, dt).c_str(), be.name().c_str()));
    }
}

void test_sum_last(Backend& be) { test_reduce_last(be, true); }
void test_max_last(Backend& be) { test_reduce_last(be, false); }

void test_sum_squares(Backend& be) {
  Rng rng(1010);
  const Shape shapes[] = {{1}, {1000}, {4097}, {7, 13, 11}, {100003}};
  for (const Shape& s : shapes)
    for (DType dt : {DType::F32, DType::BF16, DType::F16})
      for (bool accumulate : {false, true}) {
        std::vector<double> xv = random_values(rng, shape_numel(s), dt, -2, 2);
        Tensor x = upload(be, xv, s, dt);
        Tensor out = upload(be, {accumulate ? 3.5 : kNaN}, {1}, DType::F32);
        be.sum_squares(x, out, accumulate);
        double ref = accumulate ? 3.5 : 0.0;
        for (double v : xv) ref += v * v;
        expect_close(download(out), {ref}, tolerance(DType::F32),
                     strformat("sum_squares %s%s on %s", shape_dt(s, dt).c_str(),
                               accumulate ? " (accumulate onto 3.5)" : "", be.name().c_str()));
      }
}

// ---- softmax_last, log_softmax_last ----

void test_softmax_kind(Backend& be, bool log) {
  Rng rng(log ? 1011 : 1012);
  const Shape shapes[] = {{1, 1}, {4, 7}, {3, 5, 129}, {2, 5000}, {64, 33}};
  const DType F32 = DType::F32, BF16 = DType::BF16, F16 = DType::F16;
  const std::pair<DType, DType> dtypes[] = {{F32, F32}, {BF16, BF16}, {BF16, F32}, {F16, F16},
                                            {F32, BF16}};
  // The second range would overflow exp() without subtracting the row max.
  const std::pair<double, double> ranges[] = {{-5.0, 5.0}, {990.0, 1010.0}};
  for (const Shape& s : shapes)
    for (auto& d : dtypes)
      for (auto& range : ranges)
        for (bool alias : {false, true}) {
          if (alias && d.first != d.second) continue;
          std::vector<double> xv = random_values(rng, shape_numel(s), d.first, range.first,
                                                 range.second);
          Tensor x = upload(be, xv, s, d.first);
          Tensor out = alias ? x : upload(be, std::vector<double>(xv.size(), kNaN), s, d.second);
          if (log) be.log_softmax_last(x, out);
          else be.softmax_last(x, out);
          const size_t dim = size_t(s.back());
          std::vector<double> ref(xv.size());
          for (size_t r = 0; r < xv.size() / dim; ++r) {
            const double* v = xv.data() + r * dim;
            double m = -INFINITY, sum = 0.0;
            for (size_t i = 0; i < dim; ++i) m = std::max(m, v[i]);
            for (size_t i = 0; i < dim; ++i) sum += std::exp(v[i] - m);
            for (size_t i = 0; i < dim; ++i)
              ref[r * dim + i] = log ? (v[i] - m) - std::log(sum) : std::exp(v[i] - m) / sum;
          }
          expect_close(download(out), ref, tolerance(d.second),
                       strformat("%s %s in [%g, %g) -> %s%s on %s",
                                 log ? "log_softmax_last" : "softmax_last",
                                 shape_dt(s, d.first).c_str(), range.first, range.second,
                                 dt_str(d.second).c_str(), alias ? " (in place)" : "",
                                 be.name().c_str()));
        }
}

void test_softmax_last(Backend& be) { test_softmax_kind(be, false); }
void test_log_softmax_last(Backend& be) { test_softmax_kind(be, true); }

}  // namespace

#define OP_TEST(name, fn) ZT_BACKEND_TEST(name, "[ops]", fn)

OP_TEST("gemm", test_gemm)
OP_TEST("fill", test_fill)
OP_TEST("copy", test_copy)
OP_TEST("axpby", test_axpby)
OP_TEST("scale", test_scale)
OP_TEST("add", test_add)
OP_TEST("mul", test_mul)
OP_TEST("sum_last", test_sum_last)
OP_TEST("max_last", test_max_last)
OP_TEST("sum_squares", test_sum_squares)
OP_TEST("softmax_last", test_softmax_last)
OP_TEST("log_softmax_last", test_log_softmax_last)
