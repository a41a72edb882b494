// Tests of Tensor bookkeeping (tensor.h), dtype conversions (dtype.h) as the CPU
// backend applies them, and thread-count independence of the CPU reductions.
//
// Owns: views, narrow/select strides, storage lifetime, misuse aborts (checked in a
// forked child), bf16/f16 round-to-nearest-even with NaN/inf/subnormals, and
// bit-identical sum_squares for 1, 2 and 3 threads.
// Must not: check op numerics against a reference (test_ops.cpp does).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "tensor/cpu_backend.h"
#include "tensor/cpu_math.h"
#include "zeroth/backend.h"
#include "zeroth/tensor.h"

using namespace zeroth;

namespace {

float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Runs fn in a forked child; returns its stderr when it died of SIGABRT, or
// "<no abort>" otherwise.
std::string abort_message(const std::function<void()>& fn) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 2);
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, 1);
    std::signal(SIGABRT, SIG_DFL);  // not Catch's handler: die quietly, the parent reports
    fn();
    _exit(0);
  }
  close(fds[1]);
  std::string text;
  char buf[512];
  ssize_t got;
  while ((got = read(fds[0], buf, sizeof buf)) > 0) text.append(buf, size_t(got));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT)) return "<no abort>";
  return text;
}

// A CPU backend that counts its allocations, to watch Storage's lifetime.
class CountingBackend : public CpuBackend {
 public:
  CountingBackend() : CpuBackend(1) {}
  void* allocate(size_t bytes) override {
    ++allocs;
    return CpuBackend::allocate(bytes);
  }
  void deallocate(void* p) override {
    ++frees;
    CpuBackend::deallocate(p);
  }
  int allocs = 0, frees = 0;
};

std::vector<float> iota(int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i);
  return v;
}

}  // namespace

TEST_CASE("shape helpers", "[tensor]") {
  CHECK(contiguous_strides({2, 3, 4}) == Shape{12, 4, 1});
  CHECK(contiguous_strides({}).empty());
  CHECK(shape_str({2, 3, 4}) == "[2, 3, 4]");
  CHECK(shape_str({}) == "[]");
  CHECK(shape_numel({}) == 1);
  CHECK(shape_numel({2, 0, 3}) == 0);
  CHECK(Device::cpu().str() == "cpu");
  CHECK(Device::cuda(3).str() == "cuda:3");
  CHECK(Device::cuda(0) != Device::cpu());
}

TEST_CASE("empty, zeros and view_of", "[tensor]") {
  auto be = make_cpu_backend(1);
  Tensor z = Tensor::zeros(*be, {2, 3}, DType::F32);
  CHECK(z.defined());
  CHECK(z.str() == "f32[2, 3] cpu");
  CHECK(z.backend() == be.get());
  CHECK(z.device() == Device::cpu());
  CHECK(z.nbytes() == 24);
  CHECK(z.is_contiguous());
  for (int i = 0; i < 6; ++i) CHECK(z.data<float>()[i] == 0.0f);
  CHECK(Tensor::zeros(*be, {4}, DType::BF16).str() == "bf16[4] cpu");

  std::vector<int32_t> host = {1, 2, 3, 4, 5, 6};
  Tensor v = Tensor::view_of(host.data(), {3, 2}, DType::I32);
  CHECK(v.backend() == nullptr);
  CHECK(v.data<int32_t>() == host.data());
  std::vector<int32_t> back(6);
  v.copy_to_host(back.data(), 24);
  CHECK(back == host);
  CHECK_FALSE(Tensor().defined());
  CHECK(Tensor().str() == "undefined");
}

TEST_CASE("view, narrow and select share memory with the right strides", "[tensor]") {
  auto be = make_cpu_backend(1);
  Tensor t = Tensor::empty(*be, {4, 5, 6}, DType::F32);
  std::vector<float> vals = iota(120);
  t.copy_from_host(vals.data(), vals.size() * 4);
  CHECK(t.size(-1) == 6);
  CHECK(t.stride(-2) == 6);
  CHECK(t.stride(0) == 30);

  Tensor n = t.narrow(1, 2, 3);  // (4, 3, 6)
  CHECK(n.shape() == Shape{4, 3, 6});
  CHECK(n.strides() == Shape{30, 6, 1});
  CHECK_FALSE(n.is_contiguous());
  CHECK(n.data<float>() == t.data<float>() + 12);
  CHECK(n.data<float>()[1 * 30 + 2 * 6 + 5] == 30.0f + (2 + 2) * 6 + 5);

  CHECK(t.narrow(0, 1, 2).is_contiguous());         // (2, 5, 6): whole rows
  CHECK(t.narrow(0, 3, 1).narrow(1, 4, 1).is_contiguous());  // (1, 1, 6)
  CHECK_FALSE(t.narrow(2, 0, 5).is_contiguous());
  CHECK(t.narrow(1, 5, 0).numel() == 0);

  Tensor s = t.select(-1, 3);  // (4, 5), strides (30, 6)
  CHECK(s.shape() == Shape{4, 5});
  CHECK(s.strides() == Shape{30, 6});
  CHECK(s.data<float>()[2 * 30 + 4 * 6] == 2 * 30 + 4 * 6 + 3);
  Tensor s0 = t.select(0, 2);  // (5, 6), contiguous
  CHECK(s0.is_contiguous());
  CHECK(s0.data<float>() == t.data<float>() + 60);

  Tensor v = s0.view({-1});
  CHECK(v.shape() == Shape{30});
  CHECK(v.data<float>() == s0.data<float>());
  CHECK(t.view({2, -1, 3}).shape() == Shape{2, 20, 3});
  v.data<float>()[7] = -1.0f;  // writes through to the parent
  CHECK(t.data<float>()[67] == -1.0f);
}

TEST_CASE("host copies and to_float_vector convert bf16 and f16", "[tensor]") {
  auto be = make_cpu_backend(1);
  std::vector<uint16_t> bits = {float_to_bf16(1.5f), float_to_bf16(-3.0f), float_to_bf16(0.1f)};
  Tensor b = Tensor::empty(*be, {3}, DType::BF16);
  b.copy_from_host(bits.data(), 6);
  std::vector<float> f = b.to_float_vector();
  CHECK(f[0] == 1.5f);
  CHECK(f[1] == -3.0f);
  CHECK(f[2] == bf16_to_float(float_to_bf16(0.1f)));
  Tensor h = Tensor::empty(*be, {2}, DType::F16);
  std::vector<uint16_t> hb = {float_to_f16(0.5f), float_to_f16(65504.0f)};
  h.copy_from_host(hb.data(), 4);
  CHECK(h.to_float_vector() == std::vector<float>{0.5f, 65504.0f});
}

TEST_CASE("storage frees through the backend once the last view is gone", "[tensor]") {
  CountingBackend be;
  {
    Tensor a = Tensor::empty(be, {8, 8}, DType::F32);
    Tensor view;
    {
      Tensor b = a;
      view = b.narrow(0, 2, 3).select(1, 4);
      CHECK(be.allocs == 1);
    }
    a = Tensor();
    CHECK(be.frees == 0);  // `view` still holds the storage
    Tensor e = Tensor::empty(be, {0, 3}, DType::F32);  // nothing to allocate
    CHECK(e.defined());
    CHECK(e.backend() == &be);
    CHECK(be.allocs == 1);
  }
  CHECK(be.frees == 1);
}

TEST_CASE("misuse aborts with a message", "[tensor]") {
  auto be = make_cpu_backend(1);
  Tensor t = Tensor::zeros(*be, {4, 5}, DType::F32);
  CHECK_THAT(abort_message([&] { t.narrow(1, 3, 3); }),
             Catch::Contains("narrow") && Catch::Contains("out of range"));
  CHECK_THAT(abort_message([&] { t.data<int32_t>(); }), Catch::Contains("data<I32>() on tensor f32[4, 5]"));
  CHECK_THAT(abort_message([&] { t.narrow(1, 0, 2).view({-1}); }), Catch::Contains("non-contiguous"));
  CHECK_THAT(abort_message([&] { t.select(2, 0); }), Catch::Contains("dimension 2 out of range"));
  Tensor b = Tensor::zeros(*be, {6, 3}, DType::F32);
  Tensor c = Tensor::zeros(*be, {4, 3}, DType::F32);
  CHECK_THAT(abort_message([&] { be->gemm(t, false, b, false, c); }), Catch::Contains("gemm: op(A)"));
  Tensor y = Tensor::zeros(*be, {4}, DType::F32);
  CHECK_THAT(abort_message([&] { be->add(t, y, t); }), Catch::Contains("trailing dimensions"));
  Tensor i = Tensor::zeros(*be, {4, 5}, DType::I32);
  CHECK_THAT(abort_message([&] { be->copy(t, i); }), Catch::Contains("cannot convert"));
  CHECK(abort_message([&] { t.narrow(1, 2, 3); }) == "<no abort>");
}

TEST_CASE("bf16 conversion rounds to nearest even and keeps NaN and inf", "[dtype]") {
  CHECK(float_to_bf16(1.0f) == 0x3f80);
  CHECK(float_to_bf16(bits_to_float(0x3f808000u)) == 0x3f80);  // tie, even stays
  CHECK(float_to_bf16(bits_to_float(0x3f818000u)) == 0x3f82);  // tie, odd rounds up
  CHECK(float_to_bf16(bits_to_float(0x3f808001u)) == 0x3f81);  // just above the tie
  CHECK(float_to_bf16(bits_to_float(0xbf818000u)) == 0xbf82);  // sign symmetric
  CHECK(float_to_bf16(std::numeric_limits<float>::infinity()) == 0x7f80);
  CHECK(float_to_bf16(-std::numeric_limits<float>::infinity()) == 0xff80);
  CHECK(float_to_bf16(std::numeric_limits<float>::max()) == 0x7f80);  // rounds up to inf
  CHECK(std::isnan(bf16_to_float(float_to_bf16(bits_to_float(0x7f800001u)))));  // sNaN stays NaN
  CHECK(std::isnan(bf16_to_float(float_to_bf16(std::nanf("")))));
  CHECK(float_to_bf16(bits_to_float(0x00010000u)) == 0x0001);  // f32 subnormals carry over
  for (uint32_t b = 0; b < 0x10000u; ++b) {
    float f = bf16_to_float(uint16_t(b));
    if (std::isnan(f)) continue;
    if (float_to_bf16(f) != b) FAIL("bf16 round trip of 0x" << std::hex << b);
  }
}

TEST_CASE("f16 conversion: rounding, overflow, subnormals, NaN", "[dtype]") {
  CHECK(float_to_f16(1.0f) == 0x3c00);
  CHECK(float_to_f16(-2.0f) == 0xc000);
  CHECK(float_to_f16(-0.0f) == 0x8000);
  CHECK(float_to_f16(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);      // tie, even stays
  CHECK(float_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3c02);  // tie, odd rounds up
  CHECK(float_to_f16(65504.0f) == 0x7bff);
  CHECK(float_to_f16(65519.0f) == 0x7bff);
  CHECK(float_to_f16(65520.0f) == 0x7c00);  // the tie above the max rounds to inf
  CHECK(float_to_f16(1e10f) == 0x7c00);
  CHECK(float_to_f16(-std::numeric_limits<float>::infinity()) == 0xfc00);
  CHECK(std::isnan(f16_to_float(float_to_f16(std::nanf("")))));
  CHECK(std::isnan(f16_to_float(0x7e00)));
  CHECK(std::isinf(f16_to_float(0x7c00)));
  // Subnormals: 2^-24 is the smallest; ties go to even.
  CHECK(float_to_f16(std::ldexp(1.0f, -24)) == 0x0001);
  CHECK(f16_to_float(0x0001) == std::ldexp(1.0f, -24));
  CHECK(float_to_f16(std::ldexp(1.0f, -25)) == 0x0000);       // tie between 0 and 1
  CHECK(float_to_f16(3 * std::ldexp(1.0f, -25)) == 0x0002);   // tie between 1 and 2
  CHECK(float_to_f16(std::ldexp(1.0f, -26)) == 0x0000);
  CHECK(float_to_f16(1023 * std::ldexp(1.0f, -24)) == 0x03ff);
  CHECK(f16_to_float(0x03ff) == 1023 * std::ldexp(1.0f, -24));
  CHECK(float_to_f16(std::ldexp(1.0f, -14)) == 0x0400);  // smallest normal
  CHECK(float_to_f16(2047 * std::ldexp(1.0f, -25)) == 0x0400);  // rounds up into the normals
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    float f = f16_to_float(uint16_t(h));
    if (std::isnan(f)) continue;
    if (float_to_f16(f) != h) FAIL("f16 round trip of 0x" << std::hex << h);
  }
}

TEST_CASE("cpu copy converts exactly as dtype.h does", "[dtype][cpu]") {
  auto be = make_cpu_backend(2);
  std::vector<float> vals = {1.0f,
                             bits_to_float(0x3f808000u),
                             bits_to_float(0x3f818000u),
                             65519.0f,
                             65520.0f,
                             std::ldexp(1.0f, -25),
                             3 * std::ldexp(1.0f, -25),
                             std::numeric_limits<float>::infinity(),
                             -std::numeric_limits<float>::infinity(),
                             std::nanf(""),
                             -0.0f,
                             std::numeric_limits<float>::max()};
  // Repeat past one 4096-element block so the bulk paths run, not only the tail.
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-70000.0f, 70000.0f);
  while (vals.size() < 5000) vals.push_back(dist(rng) * (rng() % 2 ? 1.0f : 1e-9f));
  const int64_t n = int64_t(vals.size());
  Tensor src = Tensor::empty(*be, {n}, DType::F32);
  src.copy_from_host(vals.data(), vals.size() * 4);
  for (DType dt : {DType::BF16, DType::F16}) {
    Tensor dst = Tensor::empty(*be, {n}, dt);
    be->copy(src, dst);
    std::vector<uint16_t> got(vals.size());
    dst.copy_to_host(got.data(), got.size() * 2);
    for (size_t i = 0; i < vals.size(); ++i) {
      uint16_t want = dt == DType::BF16 ? float_to_bf16(vals[i]) : float_to_f16(vals[i]);
      if (got[i] != want)
        FAIL(dtype_name(dt) << " element " << i << " (" << vals[i] << "): got 0x" << std::hex
                            << got[i] << ", want 0x" << want);
    }
    // And back: every 16-bit value widens exactly.
    Tensor wide = Tensor::empty(*be, {n}, DType::F32);
    be->copy(dst, wide);
    std::vector<float> w = wide.to_float_vector();
    for (size_t i = 0; i < vals.size(); ++i) {
      float want = dt == DType::BF16 ? bf16_to_float(got[i]) : f16_to_float(got[i]);
      if (float_to_bits(w[i]) != float_to_bits(want) && !(std::isnan(w[i]) && std::isnan(want)))
        FAIL(dtype_name(dt) << " widening element " << i);
    }
  }
}

TEST_CASE("cpu row-invariant gemm (decode): a row's result depends on neither the other rows nor the threads",
          "[cpu][determinism]") {
  std::mt19937 rng(12);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const int64_t n = 301, k = 517, rows = 40;
  std::vector<float> w(size_t(n * k)), x(size_t(rows * k));
  for (float& v : w) v = dist(rng);
  for (float& v : x) v = dist(rng);
  std::vector<uint32_t> first_row;  // row 0 of every product: the same bits each time
  for (int threads = 1; threads <= 3; ++threads) {
    auto be = make_cpu_backend(threads);
    be->set_row_invariant_gemm(true);
    Tensor W = Tensor::empty(*be, {n, k}, DType::F32);
    W.copy_from_host(w.data(), w.size() * 4);
    for (int64_t m : {1, 6, 16, 40}) {
      Tensor X = Tensor::empty(*be, {m, k}, DType::F32);
      X.copy_from_host(x.data(), size_t(m * k) * 4);
      Tensor Y = Tensor::empty(*be, {m, n}, DType::F32);
      be->gemm(X, false, W, true, Y);
      std::vector<uint32_t> bits;
      for (int64_t j = 0; j < n; ++j) bits.push_back(float_to_bits(Y.data<float>()[j]));
      if (first_row.empty()) first_row = bits;
      CHECK(bits == first_row);
      double err = 0.0;  // and it is the product
      for (int64_t j = 0; j < n; ++j) {
        double ref = 0.0;
        for (int64_t kk = 0; kk < k; ++kk) ref += double(x[size_t(kk)]) * double(w[size_t(j * k + kk)]);
        err = std::max(err, std::abs(ref - double(Y.data<float>()[j])));
      }
      CHECK(err < 1e-3);
    }
  }
}

TEST_CASE("cpu expert_rows_gemm: the same bits whatever the thread count and the split",
          "[cpu][determinism]") {
  // 1 thread; 2 and 3 threads over runs of whole experts (>= 2 used experts a thread);
  // 5 threads, where 9 used experts are too few and the outputs are split instead.
  std::mt19937 rng(14);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const int64_t e = 9, n = 101, k = 133, tokens = 23, per_token = 3;
  std::vector<float> w(size_t(e * n * k)), x(size_t(tokens * k));
  for (float& v : w) v = dist(rng);
  for (float& v : x) v = dist(rng);
  std::vector<int32_t> experts(size_t(tokens * per_token));
  for (size_t i = 0; i < experts.size(); ++i) experts[i] = int32_t((i * 7 + i / 5) % size_t(e));
  std::vector<uint32_t> first;
  for (int threads : {1, 2, 3, 5}) {
    auto be = make_cpu_backend(threads);
    Tensor W = Tensor::empty(*be, {e, n, k}, DType::F32), X = Tensor::empty(*be, {tokens, k}, DType::F32);
    Tensor E = Tensor::empty(*be, {tokens * per_token}, DType::I32);
    Tensor O = Tensor::empty(*be, {tokens * per_token, n}, DType::F32);
    W.copy_from_host(w.data(), w.size() * 4);
    X.copy_from_host(x.data(), x.size() * 4);
    E.copy_from_host(experts.data(), experts.size() * 4);
    be->expert_rows_gemm(X, W, E, int(per_token), O);
    std::vector<uint32_t> bits;
    for (int64_t i = 0; i < O.numel(); ++i) bits.push_back(float_to_bits(O.data<float>()[i]));
    if (first.empty()) first = bits;
    INFO("threads " << threads);
    CHECK(bits == first);
  }
}

TEST_CASE("cpu decode attention: a sequence's output depends on neither the other rows nor the threads",
          "[cpu][determinism]") {
  std::mt19937 rng(13);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const int64_t h = 8, r = 144, rv = 128, slots = 9, tmax = 70;
  std::vector<float> q(size_t(slots * h * r)), cache(size_t(slots * tmax * r));
  for (float& v : q) v = dist(rng);
  for (float& v : cache) v = dist(rng);
  std::vector<uint32_t> first;  // sequence 0 (slot 4, 61 tokens): the same bits each time
  for (int threads = 1; threads <= 3; ++threads) {
    auto be = make_cpu_backend(threads);
    Tensor C = Tensor::empty(*be, {slots, tmax, r}, DType::F32);
    C.copy_from_host(cache.data(), cache.size() * 4);
    for (int64_t n : {1, 2, 5, 9}) {
      std::vector<int32_t> sl(static_cast<size_t>(n)), len(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        sl[size_t(i)] = int32_t((4 + i) % slots);
        len[size_t(i)] = int32_t(i == 0 ? 61 : 1 + (i * 13) % tmax);
      }
      Tensor Q = Tensor::empty(*be, {n, h, r}, DType::F32), S = Tensor::empty(*be, {n}, DType::I32);
      Tensor L = Tensor::empty(*be, {n}, DType::I32), O = Tensor::empty(*be, {n, h, rv}, DType::F32);
      Q.copy_from_host(q.data(), size_t(n * h * r) * 4);
      S.copy_from_host(sl.data(), sl.size() * 4);
      L.copy_from_host(len.data(), len.size() * 4);
      be->mla_decode_attention(Q, C, S, L, 0.1f, O);
      std::vector<uint32_t> bits;
      for (int64_t j = 0; j < h * rv; ++j) bits.push_back(float_to_bits(O.data<float>()[j]));
      if (first.empty()) first = bits;
      CHECK(bits == first);
    }
  }
}

TEST_CASE("cpu few-row kernels: AVX-512 and AVX2 give the same bits", "[cpu][determinism]") {
  if (!cpu::rows_gemm_avx512_available()) {
    WARN("SKIPPED: this CPU has no AVX512F + AVX512DQ; only the AVX2 kernels run here");
    return;
  }
  std::mt19937 rng(14);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  auto fill = [&](std::vector<float>& v, size_t n) {
    v.resize(n);
    for (float& f : v) f = dist(rng);
  };
  struct Restore {
    bool prev;
    ~Restore() { cpu::set_rows_gemm_avx512(prev); }
  } restore{cpu::set_rows_gemm_avx512(true)};
  // nt: every row count of the 8-row passes (odd ones too), 11-12 rows in one pass of
  // 6 pairs and 13 in passes of 4, output counts around the
  // 6-wide micro-kernel, K with and without an 8-lane tail, accumulate and alpha, a
  // `next` block to prefetch.
  for (int64_t rows : {1, 2, 3, 5, 8, 9, 11, 12, 13, 16, 17, 33})
    for (int64_t n : {1, 5, 6, 7, 13, 48, 301})
      for (int64_t k : {1, 8, 15, 144, 517}) {
        std::vector<float> x, w, init;
        fill(x, size_t(rows * k));
        fill(w, size_t((n + 48) * k));
        fill(init, size_t(rows * n));
        std::vector<const float*> xr;
        for (int64_t r = 0; r < rows; ++r) xr.push_back(x.data() + r * k);
        for (bool accumulate : {false, true}) {
          std::vector<uint32_t> bits[2];
          for (int isa = 0; isa < 2; ++isa) {
            cpu::set_rows_gemm_avx512(isa == 1);
            std::vector<float> out = init;
            std::vector<float*> orow;
            for (int64_t r = 0; r < rows; ++r) orow.push_back(out.data() + r * n);
            cpu::rows_gemm_nt_serial(rows, xr.data(), w.data(), k, 0, n, k, 0.5f, orow.data(),
                                     accumulate, w.data() + n * k, 48 * k);
            for (float f : out) bits[isa].push_back(float_to_bits(f));
          }
          INFO("nt rows " << rows << " n " << n << " k " << k << " accumulate " << accumulate);
          CHECK(bits[0] == bits[1]);
        }
      }
  // nn: P (rows, len) @ V (len, ldv), columns around the 32- and 16-wide blocks.
  for (int64_t rows : {1, 3, 8, 9, 17})
    for (int64_t len : {1, 7, 70})
      for (int64_t n : {1, 15, 16, 17, 31, 32, 33, 128, 130}) {
        const int64_t ldv = n + 3;
        std::vector<float> p, v;
        fill(p, size_t(rows * len));
        fill(v, size_t(len * ldv));
        std::vector<const float*> pr;
        for (int64_t r = 0; r < rows; ++r) pr.push_back(p.data() + r * len);
        std::vector<uint32_t> bits[2];
        for (int isa = 0; isa < 2; ++isa) {
          cpu::set_rows_gemm_avx512(isa == 1);
          std::vector<float> out(size_t(rows * n), -1.0f);
          std::vector<float*> orow;
          for (int64_t r = 0; r < rows; ++r) orow.push_back(out.data() + r * n);
          cpu::rows_gemm_nn_serial(rows, pr.data(), len, v.data(), ldv, n, orow.data());
          for (float f : out) bits[isa].push_back(float_to_bits(f));
        }
        INFO("nn rows " << rows << " len " << len << " n " << n);
        CHECK(bits[0] == bits[1]);
      }
}

TEST_CASE("cpu reductions are bit-identical for 1, 2 and 3 threads", "[cpu][determinism]") {
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  const int64_t n = 300001;  // many blocks and a ragged tail
  std::vector<float> vals(static_cast<size_t>(n));
  for (float& v : vals) v = dist(rng);
  std::vector<uint32_t> results[3];
  for (int threads = 1; threads <= 3; ++threads) {
    auto be = make_cpu_backend(threads);
    CHECK_THAT(be->name(), Catch::StartsWith(std::string("cpu (") + std::to_string(threads) +
                                             " thread") &&
                               Catch::Contains("OpenBLAS"));
    Tensor x = Tensor::empty(*be, {n}, DType::F32);
    x.copy_from_host(vals.data(), vals.size() * 4);
    Tensor xb = Tensor::empty(*be, {n}, DType::BF16);
    be->copy(x, xb);
    Tensor out = Tensor::zeros(*be, {1}, DType::F32);
    be->sum_squares(x, out, false);
    results[threads - 1].push_back(float_to_bits(out.data<float>()[0]));
    be->sum_squares(xb, out, true);  // accumulates onto the f32 result
    results[threads - 1].push_back(float_to_bits(out.data<float>()[0]));
    Tensor rows = Tensor::empty(*be, {7}, DType::F32);
    be->sum_last(x.narrow(0, 0, 7 * 42857).view({7, 42857}), rows);
    for (int i = 0; i < 7; ++i) results[threads - 1].push_back(float_to_bits(rows.data<float>()[i]));
  }
  CHECK(results[0] == results[1]);
  CHECK(results[0] == results[2]);
  // The value itself is right to f32 precision.
  double ref = 0.0;
  for (float v : vals) ref += double(v) * double(v);
  CHECK(double(bits_to_float(results[0][0])) == Approx(ref).epsilon(1e-6));
}

TEST_CASE("cpu fp64 exp of the sampler: within 2 ulp of libm for x <= 0, 0 below -708",
          "[cpu][math]") {
  std::mt19937_64 g(3);
  std::uniform_real_distribution<double> d(-708.0, 0.0);
  double worst = 0.0;
  for (int i = 0; i < 200000; ++i) {
    const double x = i < 100000 ? d(g) : d(g) / 700.0;  // also many near 0
    const double want = std::exp(x), got = cpu::exp_f64_nonpos(x);
    worst = std::max(worst, std::fabs(got - want) / want);
  }
  CHECK(worst <= 2.5 * std::numeric_limits<double>::epsilon() / 2);
  CHECK(cpu::exp_f64_nonpos(0.0) == 1.0);
  CHECK(cpu::exp_f64_nonpos(-0.0) == 1.0);
  CHECK(cpu::exp_f64_nonpos(std::log(0.5)) == Approx(0.5).epsilon(1e-15));
  CHECK(cpu::exp_f64_nonpos(-708.0) > 0.0);
  CHECK(cpu::exp_f64_nonpos(-708.5) == 0.0);
  CHECK(cpu::exp_f64_nonpos(-1e300) == 0.0);
  CHECK(cpu::exp_f64_nonpos(-std::numeric_limits<double>::infinity()) == 0.0);
  CHECK(cpu::exp_f64_nonpos(std::numeric_limits<double>::quiet_NaN()) == 0.0);
}
