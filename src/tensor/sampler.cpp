// Sampler (sampler.h): filtering (top-k, top-p, min-p), greedy, and the counter-based
// uniform draws. Must not: touch the device or hold state between calls.
#include "zeroth/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "cpu_math.h"
#include "zeroth/error.h"

namespace zeroth {

void SamplingParams::validate(const char* where) const {
  check_sampling_temperature(double(temperature), std::string(where) + ": key 'temperature'");
  ZT_THROW_IF_NOT(top_k >= 0, ConfigError, "%s: key 'top_k': expected >= 0 (0 = off), found %lld",
                  where, (long long)top_k);
  ZT_THROW_IF_NOT(top_p > 0.0f && top_p <= 1.0f, ConfigError,
                  "%s: key 'top_p': expected a number in (0, 1], found %g", where, double(top_p));
  ZT_THROW_IF_NOT(min_p >= 0.0f && min_p <= 1.0f, ConfigError,
                  "%s: key 'min_p': expected a number in [0, 1], found %g", where, double(min_p));
}

static uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

double sampling_uniform(uint64_t seed, uint64_t sequence_id, uint64_t step) {
  const uint64_t h = splitmix64(splitmix64(splitmix64(seed) ^ sequence_id) ^ step);
  return double(h >> 11) * 0x1.0p-53;  // 53 random bits
}

static int32_t argmax(const float* logits, int64_t vocab) {
  int64_t best = -1;
  for (int64_t i = 0; i < vocab; ++i)
    if (!std::isnan(logits[i]) && (best < 0 || logits[i] > logits[best])) best = i;
  ZT_ASSERT(best >= 0, "sampler: logits are all NaN");
  return int32_t(best);
}

// The largest non-NaN logit (-inf when there is none), vectorised.
static float max_logit(const float* logits, int64_t vocab) {
  float m = -INFINITY;
#pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < vocab; ++i) m = logits[i] > m ? logits[i] : m;  // NaN: false
  return m;
}

// p_i = exp(z_i - zmax) with z_i = logit_i / T, in fp64 (0 for NaN), for n logits.
static void unfiltered_probs(const float* x, int64_t n, double inv_t, double zmax, double* p) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) p[i] = cpu::exp_f64_nonpos(double(x[i]) * inv_t - zmax);
}

// The draw without filters: the full distribution in id order (no sort). The ids go in
// blocks of kSampleBlock; a block's mass is one vectorised sum, the total is the block
// masses summed in order, and the token is the first one, walking the block where the
// running sum of block masses passes u * total id by id, whose cumulative mass exceeds
// u * total. Where rounding leaves that walk short, the block's last token with p > 0;
// where it leaves every block short, the last such token of the vocabulary.
constexpr int64_t kSampleBlock = 64;
static int32_t sample_unfiltered(const float* logits, int64_t vocab, float temperature,
                                 double u) {
  float xmax = max_logit(logits, vocab);
  if (xmax == -INFINITY) xmax = logits[argmax(logits, vocab)];  // asserts: not all NaN
  const double inv_t = 1.0 / double(temperature);
  const double zmax = double(xmax) * inv_t;
  ZT_ASSERT(std::isfinite(zmax), "sampler: the largest logit is not finite (%g)", zmax);
  const int64_t blocks = (vocab + kSampleBlock - 1) / kSampleBlock;
  thread_local std::vector<double> mass;
  mass.resize(size_t(blocks));
  double p[kSampleBlock];
  double total = 0.0;
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t j0 = b * kSampleBlock, n = std::min(kSampleBlock, vocab - j0);
    unfiltered_probs(logits + j0, n, inv_t, zmax, p);
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) s += p[i];
    mass[size_t(b)] = s;
    total += s;
  }
  const double target = u * total;
  double before = 0.0;
  int64_t pick = -1;  // the block the walk goes through
  bool passes = false;
  for (int64_t b = 0; b < blocks && !passes; ++b) {
    const double s = mass[size_t(b)];
    if (s <= 0.0) continue;
    pick = b;
    passes = target < before + s;
    if (!passes) before += s;
  }
  // Every probability rounded to 0 (logits so large that x / T - zmax loses all precision,
  // e.g. a diverging model): the distribution's limit, its most probable token.
  if (pick < 0) return argmax(logits, vocab);
  const int64_t j0 = pick * kSampleBlock, n = std::min(kSampleBlock, vocab - j0);
  unfiltered_probs(logits + j0, n, inv_t, zmax, p);
  double cum = before;
  int32_t last = -1;
  for (int64_t i = 0; i < n; ++i) {
    if (p[i] <= 0.0) continue;
    cum += p[i];
    last = int32_t(j0 + i);
    if (passes && target < cum) break;
  }
  return last;
}

std::vector<Candidate> sampling_candidates(const float* logits, int64_t vocab,
                                           const SamplingParams& params) {
  ZT_ASSERT(vocab > 0, "sampler: empty vocabulary");
  if (params.temperature == 0.0f) return {{argmax(logits, vocab), 1.0}};
  const double inv_t = 1.0 / double(params.temperature);
  const double zmax = double(logits[argmax(logits, vocab)]) * inv_t;
  ZT_ASSERT(std::isfinite(zmax), "sampler: the largest logit is not finite (%g)", zmax);
  std::vector<double> p(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) {
    const double z = double(logits[i]) * inv_t;
    p[size_t(i)] = std::isnan(z) ? 0.0 : std::exp(z - zmax);
  }
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  auto more_probable = [&](int32_t a, int32_t b) {
    return p[size_t(a)] > p[size_t(b)] || (p[size_t(a)] == p[size_t(b)] && a < b);
  };
  size_t kept = order.size();
  if (params.top_k > 0 && params.top_k < vocab) {
    kept = size_t(params.top_k);
    std::partial_sort(order.begin(), order.begin() + std::ptrdiff_t(kept), order.end(),
                      more_probable);
  } else {
    std::sort(order.begin(), order.end(), more_probable);
  }
  double mass = 0.0;
  for (size_t i = 0; i < kept; ++i) mass += p[size_t(order[i])];
  if (params.top_p < 1.0f) {
    const double target = double(params.top_p) * mass;
    double cum = 0.0;
    size_t n = 0;
    while (n < kept) {
      cum += p[size_t(order[n++])];
      if (cum >= target) break;
    }
    kept = std::max<size_t>(n, 1);
  }
  if (params.min_p > 0.0f) {
    const double floor = double(params.min_p) * p[size_t(order[0])];
    size_t n = 1;
    while (n < kept && p[size_t(order[n])] >= floor) ++n;
    kept = n;
  }
  double total = 0.0;
  for (size_t i = 0; i < kept; ++i) total += p[size_t(order[i])];
  std::vector<Candidate> out;
  out.reserve(kept);
  for (size_t i = 0; i < kept; ++i) {
    const double q = p[size_t(order[i])] / total;
    if (q > 0.0) out.push_back({order[i], q});
  }
  return out;
}

int32_t sample_token(const float* logits, int64_t vocab, const SamplingParams& params,
                     uint64_t sequence_id, uint64_t step) {
  if (params.temperature == 0.0f) return argmax(logits, vocab);
  const double u = sampling_uniform(params.seed, sequence_id, step);
  if ((params.top_k == 0 || params.top_k >= vocab) && params.top_p >= 1.0f &&
      params.min_p == 0.0f)
    return sample_unfiltered(logits, vocab, params.temperature, u);
  const std::vector<Candidate> c = sampling_candidates(logits, vocab, params);
  double cum = 0.0;
  for (const Candidate& x : c) {
    cum += x.prob;
    if (u < cum) return x.id;
  }
  return c.back().id;  // u within rounding of 1
}

}  // namespace zeroth
