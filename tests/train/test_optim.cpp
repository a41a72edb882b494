// Tests of optim.h and grad_sync.h on one process: the `optim:` section (keys,
// constraints, cross-field checks), learning-rate schedules against hand-computed
// values, AdamW against a float64 reference over several steps (clipping, no-decay
// entries, the untrained router bias), non-finite gradients, checkpoint state round
// trips, the bf16 weight copy, gradient buckets and the local-communicator reductions.
// The multi-rank equivalence test is test_train_dp.cpp.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "zeroth/backend.h"
#include "zeroth/comm.h"
#include "zeroth/config_node.h"
#include "zeroth/error.h"
#include "zeroth/grad_sync.h"
#include "zeroth/model_config.h"
#include "zeroth/model_params.h"
#include "zeroth/optim.h"

using namespace zeroth;

namespace {

Backend& cpu() {
  static std::unique_ptr<Backend> be = make_cpu_backend();
  return *be;
}

ModelConfig tiny_config() {
  return read_model_config(std::string(ZEROTH_SOURCE_DIR) + "/configs/models/tiny.json");
}

struct OptimOnly {  // a whole config holding only `optim:`
  OptimConfig optim;
  template <class V>
  void visit(V& v) {
    v.field("optim", optim, "optimizer");
  }
};

OptimOnly parse(const std::string& yaml) {
  OptimOnly out;
  read_config_tree(parse_config_yaml(yaml, "test.yaml"), out);
  return out;
}

int64_t offset_of(const ParamSet& ps, const ParamEntry& e) {
  return (static_cast<const char*>(e.view.data_ptr()) - static_cast<const char*>(ps.flat.data_ptr())) /
         int64_t(sizeof(float));
}

// Per flat element: -1 gap, 0 not trainable, 1 trainable without decay, 2 with decay.
std::vector<int> element_kinds(const ParamSet& ps) {
  std::vector<int> kind(size_t(ps.flat.numel()), -1);
  for (const ParamEntry& e : ps.entries) {
    const int k = !e.trainable ? 0 : e.weight_decay ? 2 : 1;
    const int64_t off = offset_of(ps, e);
    for (int64_t i = 0; i < e.view.numel(); ++i) kind[size_t(off + i)] = k;
  }
  return kind;
}

// Fills every entry of `ps` (gaps stay zero) with normal(0, sigma) values.
void fill_random(ParamSet& ps, std::mt19937_64& rng, double sigma) {
  std::normal_distribution<double> nd(0.0, sigma);
  std::vector<float> host(size_t(ps.flat.numel()), 0.0f);
  for (const ParamEntry& e : ps.entries) {
    const int64_t off = offset_of(ps, e);
    for (int64_t i = 0; i < e.view.numel(); ++i) host[size_t(off + i)] = float(nd(rng));
  }
  ps.flat.copy_from_host(host.data(), host.size() * sizeof(float));
}

void set_element(Tensor& flat, int64_t i, float value) {
  std::vector<float> host = flat.to_float_vector();
  host[size_t(i)] = value;
  flat.copy_from_host(host.data(), host.size() * sizeof(float));
}

const ParamEntry& entry_named(const ParamSet& ps, const std::string& suffix) {
  for (const ParamEntry& e : ps.entries)
    if (e.name.size() >= suffix.size() &&
        e.name.compare(e.name.size() - suffix.size(), suffix.size(), suffix) == 0)
      return e;
  FAIL("no entry ending in " << suffix);
  return ps.entries.front();
}

}  // namespace

TEST_CASE("optim config: defaults, keys and constraints") {
  OptimOnly d = parse("optim: {}\n");
  CHECK(d.optim.lr == 3e-4);
  CHECK(d.optim.beta2 == 0.95);
  CHECK(d.optim.schedule == "constant");

  OptimOnly c = parse("optim:\n  lr: 3.0e-6\n  schedule: cosine\n  warmup_steps: 10\n  total_steps: 100\n");
  CHECK(c.optim.lr == 3e-6);
  CHECK(c.optim.schedule == "cosine");

  CHECK_THROWS_WITH(parse("optim:\n  schedule: exponential\n"),
                    Catch::Contains("optim.schedule") && Catch::Contains("exponential"));
  CHECK_THROWS_WITH(parse("optim:\n  lr: -1\n"), Catch::Contains("optim.lr"));
  CHECK_THROWS_WITH(parse("optim:\n  min_lr_ratio: 1.5\n"), Catch::Contains("optim.min_lr_ratio"));
  CHECK_THROWS_WITH(parse("optim:\n  weight_decy: 0.1\n"), Catch::Contains("weight_decay"));
  CHECK_THROWS_WITH(parse("optim:\n  schedule: linear\n  warmup_steps: 10\n  total_steps: 10\n"),
                    Catch::Contains("optim.total_steps") && Catch::Contains("test.yaml"));
  // A constant schedule does not use total_steps.
  CHECK_NOTHROW(parse("optim:\n  warmup_steps: 10\n  total_steps: 5\n"));
}

TEST_CASE("lr schedule: warmup, constant, linear and cosine against hand values") {
  OptimConfig c;
  c.lr = 1.0;
  c.warmup_steps = 4;
  c.schedule = "constant";
  LrSchedule s = LrSchedule::from_config(c, 100);
  CHECK(s.lr_at(1) == Approx(0.25).epsilon(1e-15));
  CHECK(s.lr_at(3) == Approx(0.75).epsilon(1e-15));
  CHECK(s.lr_at(4) == 1.0);
  CHECK(s.lr_at(1000) == 1.0);

  c.warmup_steps = 2;
  c.total_steps = 10;
  c.min_lr_ratio = 0.1;
  c.schedule = "linear";
  s = LrSchedule::from_config(c, 1000);  // total_steps given: the run's count is unused
  CHECK(s.total_steps == 10);
  CHECK(s.lr_at(1) == Approx(0.5).epsilon(1e-15));
  CHECK(s.lr_at(2) == Approx(1.0).epsilon(1e-15));
  CHECK(s.lr_at(6) == Approx(0.55).epsilon(1e-14));   // p = 4/8: 0.1 + 0.9 * 0.5
  CHECK(s.lr_at(8) == Approx(0.325).epsilon(1e-14));  // p = 6/8: 0.1 + 0.9 * 0.25
  CHECK(s.lr_at(10) == Approx(0.1).epsilon(1e-14));
  CHECK(s.lr_at(50) == Approx(0.1).epsilon(1e-14));

  c.schedule = "cosine";
  s = LrSchedule::from_config(c, 1000);
  CHECK(s.lr_at(2) == Approx(1.0).epsilon(1e-15));
  CHECK(s.lr_at(4) == Approx(0.1 + 0.45 * (1.0 + std::sqrt(0.5))).epsilon(1e-14));  // p = 1/4
  CHECK(s.lr_at(6) == Approx(0.55).epsilon(1e-14));                                 // p = 1/2
  CHECK(s.lr_at(10) == Approx(0.1).epsilon(1e-14));
  CHECK(s.lr_at(11) == Approx(0.1).epsilon(1e-14));

  c.total_steps = 0;  // the run's step count
  c.warmup_steps = 0;
  c.min_lr_ratio = 0.0;
  s = LrSchedule::from_config(c, 20);
  CHECK(s.total_steps == 20);
  CHECK(s.lr_at(10) == Approx(0.5).epsilon(1e-14));
  CHECK(s.lr_at(20) == Approx(0.0).margin(1e-15));
  CHECK_THROWS_AS(LrSchedule::from_config(c, 0), ConfigError);
  c.warmup_steps = 30;
  CHECK_THROWS_WITH(LrSchedule::from_config(c, 20), Catch::Contains("optim.total_steps"));
}

TEST_CASE("adamw: matches a float64 reference over steps with clipping and no-decay entries") {
  const ModelConfig cfg = tiny_config();
  OptimConfig oc;
  oc.lr = 1e-2;
  oc.beta1 = 0.9;
  oc.beta2 = 0.95;
  oc.eps = 1e-8;
  oc.weight_decay = 0.1;
  oc.grad_clip = 1.0;
  oc.schedule = "cosine";
  oc.warmup_steps = 1;
  oc.total_steps = 4;
  const LrSchedule sched = LrSchedule::from_config(oc, 4);

  ParamSet params = make_param_set(cfg, cpu());
  ParamSet grads = make_param_set(cfg, cpu());
  init_params(cfg, params, 11);
  std::mt19937_64 rng(5);
  fill_random(params, rng, 0.5);  // non-trivial norms and router biases too
  const std::vector<int> kind = element_kinds(params);
  const size_t P = kind.size();
  std::vector<double> p(P), m(P, 0.0), v(P, 0.0);
  {
    std::vector<float> p0 = params.flat.to_float_vector();
    for (size_t i = 0; i < P; ++i) p[i] = p0[i];
  }
  const std::vector<float> initial = params.flat.to_float_vector();

  AdamW opt(oc, cfg, cpu());
  // Gradient scales: steps 2 and 4 have global norms far above grad_clip = 1.
  const double scales[] = {1e-3, 0.05, 1e-3, 0.2};
  int clipped = 0;
  for (int step = 1; step <= 4; ++step) {
    fill_random(grads, rng, scales[step - 1]);
    // The router bias gets no gradient-based update: a huge value there must change
    // neither the norm nor anything else.
    const ParamEntry& rb = entry_named(grads, "mlp.gate.e_score_correction_bias");
    set_element(grads.flat, offset_of(grads, rb), 1e6f);
    const std::vector<float> g = grads.flat.to_float_vector();

    double sq = 0.0;
    for (size_t i = 0; i < P; ++i)
      if (kind[i] >= 1) sq += double(g[i]) * g[i];
    const double norm = std::sqrt(sq);
    double gs = 1.0;
    if (oc.grad_clip / (norm + 1e-6) < 1.0) {
      gs = oc.grad_clip / (norm + 1e-6);
      ++clipped;
    }
    const double lr = sched.lr_at(step);
    const double bc1 = 1.0 - std::pow(oc.beta1, step), bc2 = 1.0 - std::pow(oc.beta2, step);
    for (size_t i = 0; i < P; ++i) {
      if (kind[i] < 1) continue;
      const double gi = g[i] * gs;
      m[i] = oc.beta1 * m[i] + (1 - oc.beta1) * gi;
      v[i] = oc.beta2 * v[i] + (1 - oc.beta2) * gi * gi;
      const double wd = kind[i] == 2 ? oc.weight_decay : 0.0;
      p[i] -= lr * (m[i] / bc1 / (std::sqrt(v[i] / bc2) + oc.eps) + wd * p[i]);
    }

    const float got_norm = opt.step(params, grads, lr);
    CHECK(got_norm == Approx(norm).epsilon(1e-5));
    CHECK(opt.step_count() == step);

    const std::vector<float> got = params.flat.to_float_vector();
    const std::vector<float> got_m = opt.state().m.to_float_vector();
    double worst = 0.0;
    size_t bad = 0;
    for (size_t i = 0; i < P; ++i) {
      const double err = std::fabs(got[i] - p[i]) / (1e-6 + 1e-5 * std::fabs(p[i]));
      const double err_m = std::fabs(got_m[i] - m[i]) / (1e-9 + 1e-5 * std::fabs(m[i]));
      worst = std::max({worst, err, err_m});
      if (err > 1.0 || err_m > 1.0) ++bad;
      if (kind[i] <= 0) REQUIRE(got[i] == initial[i]);  // gaps and router bias untouched
    }
    INFO("step " << step << ": worst error / tolerance " << worst);
    CHECK(bad == 0);
  }
  CHECK(clipped == 2);
}

TEST_CASE("adamw: no decay on norms, decay elsewhere, router bias never moves") {
  const ModelConfig cfg = tiny_config();
  OptimConfig oc;
  oc.lr = 0.5;
  oc.weight_decay = 0.2;
  ParamSet params = make_param_set(cfg, cpu());
  ParamSet grads = make_param_set(cfg, cpu());  // zero gradients: only decay acts
  std::mt19937_64 rng(3);
  fill_random(params, rng, 1.0);
  const std::vector<float> before = params.flat.to_float_vector();
  AdamW opt(oc, cfg, cpu());
  CHECK(opt.step(params, grads, oc.lr) == 0.0f);
  const std::vector<float> after = params.flat.to_float_vector();
  int decayed = 0, kept = 0;
  for (const ParamEntry& e : params.entries) {
    const int64_t off = offset_of(params, e);
    const float b = before[size_t(off)], a = after[size_t(off)];
    if (e.trainable && e.weight_decay) {
      CHECK(a == Approx(b * (1.0 - 0.5 * 0.2)).epsilon(1e-6));
      ++decayed;
    } else {
      INFO(e.name);
      CHECK(a == b);
      ++kept;
    }
  }
  CHECK(decayed > 0);
  CHECK(kept > 0);
}

TEST_CASE("adamw: optim.frozen leaves the matching tensors as they are and out of the norm") {
  const ModelConfig cfg = tiny_config();
  OptimConfig oc;
  oc.lr = 0.1;
  oc.weight_decay = 0.1;
  oc.frozen = {"mlp\\.", "embed_tokens"};
  ParamSet params = make_param_set(cfg, cpu());
  ParamSet grads = make_param_set(cfg, cpu());
  std::mt19937_64 rng(7);
  fill_random(params, rng, 1.0);
  fill_random(grads, rng, 1.0);
  const std::vector<float> before = params.flat.to_float_vector();
  const std::vector<float> g = grads.flat.to_float_vector();
  AdamW opt(oc, cfg, cpu());
  const float norm = opt.step(params, grads, oc.lr);
  const std::vector<float> after = params.flat.to_float_vector();
  double norm_sq = 0.0;  // the trainable, unfrozen gradients only
  int64_t frozen = 0, moved = 0;
  for (const ParamEntry& e : params.entries) {
    const bool is_frozen = e.name.find("mlp.") != std::string::npos ||
                           e.name.find("embed_tokens") != std::string::npos;
    const int64_t off = offset_of(params, e);
    bool same = true;
    for (int64_t i = 0; i < e.view.numel(); ++i) same = same && after[size_t(off + i)] == before[size_t(off + i)];
    INFO(e.name);
    if (is_frozen) {
      CHECK(same);
      ++frozen;
    } else if (e.trainable) {
      CHECK_FALSE(same);
      ++moved;
      for (int64_t i = 0; i < e.view.numel(); ++i) norm_sq += double(g[size_t(off + i)]) * g[size_t(off + i)];
    }
  }
  CHECK(frozen == opt.frozen_tensors());
  CHECK(frozen > 0);
  CHECK(moved > 0);
  CHECK(norm == Approx(std::sqrt(norm_sq)).epsilon(1e-5));

  // A pattern that matches nothing (a typo) and one that is no regex are errors.
  oc.frozen = {"mlp\\.", "embed_token_s"};
  CHECK_THROWS_WITH(AdamW(oc, cfg, cpu()), Catch::Contains("optim.frozen") && Catch::Contains("embed_token_s"));
  CHECK_THROWS_WITH(parse("optim:\n  frozen: ['mlp(']\n"), Catch::Contains("optim.frozen"));
  CHECK(parse("optim:\n  frozen: ['layers\\.0\\.']\n").optim.frozen.size() == 1);
}

TEST_CASE("adamw: a non-finite gradient norm skips the update") {
  const ModelConfig cfg = tiny_config();
  OptimConfig oc;
  ParamSet params = make_param_set(cfg, cpu());
  ParamSet grads = make_param_set(cfg, cpu());
  std::mt19937_64 rng(9);
  fill_random(params, rng, 1.0);
  fill_random(grads, rng, 1.0);
  AdamW opt(oc, cfg, cpu());
  const std::vector<float> before = params.flat.to_float_vector();

  const ParamEntry& norm_entry = entry_named(grads, "model.norm.weight");
  set_element(grads.flat, offset_of(grads, norm_entry) + 3, std::numeric_limits<float>::quiet_NaN());
  CHECK(std::isnan(opt.step(params, grads, 1e-3)));
  CHECK(opt.step_count() == 0);
  CHECK(params.flat.to_float_vector() == before);

  set_element(grads.flat, offset_of(grads, norm_entry) + 3, std::numeric_limits<float>::infinity());
  CHECK(std::isinf(opt.step(params, grads, 1e-3)));
  CHECK(opt.step_count() == 0);

  // An inf in the (untrained) router bias gradient is not part of the norm.
  set_element(grads.flat, offset_of(grads, norm_entry) + 3, 0.5f);
  const ParamEntry& rb = entry_named(grads, "mlp.gate.e_score_correction_bias");
  set_element(grads.flat, offset_of(grads, rb), std::numeric_limits<float>::infinity());
  CHECK(std::isfinite(opt.step(params, grads, 1e-3)));
  CHECK(opt.step_count() == 1);
  CHECK(params.flat.to_float_vector() != before);
}

TEST_CASE("adamw: state round trip resumes bit-identically and bad state is refused") {
  const ModelConfig cfg = tiny_config();
  OptimConfig oc;
  oc.lr = 1e-2;
  ParamSet params = make_param_set(cfg, cpu());
  ParamSet grads = make_param_set(cfg, cpu());
  std::mt19937_64 rng(21);
  fill_random(params, rng, 0.1);
  AdamW a(oc, cfg, cpu());
  for (int s = 0; s < 2; ++s) {
    fill_random(grads, rng, 0.3);
    a.step(params, grads, oc.lr);
  }
  // Checkpoint: host copies of the state and the weights.
  const AdamWState st = a.state();
  CHECK(st.step == 2);
  std::vector<float> m_host = st.m.to_float_vector(), v_host = st.v.to_float_vector();
  const std::vector<float> w_host = params.flat.to_float_vector();

  fill_random(grads, rng, 0.3);
  a.step(params, grads, oc.lr);
  const std::vector<float> expected = params.flat.to_float_vector();

  ParamSet params2 = make_param_set(cfg, cpu());
  params2.flat.copy_from_host(w_host.data(), w_host.size() * sizeof(float));
  AdamW b(oc, cfg, cpu());
  AdamWState loaded;
  loaded.step = 2;
  loaded.m = Tensor::view_of(m_host.data(), {int64_t(m_host.size())}, DType::F32);
  loaded.v = Tensor::view_of(v_host.data(), {int64_t(v_host.size())}, DType::F32);
  b.load_state(loaded);
  CHECK(b.step_count() == 2);
  b.step(params2, grads, oc.lr);
  CHECK(params2.flat.to_float_vector() == expected);

  std::vector<float> short_m(m_host.size() - 1);
  loaded.m = Tensor::view_of(short_m.data(), {int64_t(short_m.size())}, DType::F32);
  CHECK_THROWS_AS(b.load_state(loaded), CheckpointError);
  loaded.m = Tensor::view_of(m_host.data(), {int64_t(m_host.size())}, DType::F32);
  loaded.step = -1;
  CHECK_THROWS_AS(b.load_state(loaded), CheckpointError);
}

TEST_CASE("adamw: the bf16 copy receives the rounded updated weights") {
  const ModelConfig cfg = tiny_config();
  OptimConfig oc;
  ParamSet params = make_param_set(cfg, cpu());
  ParamSet grads = make_param_set(cfg, cpu());
  ParamSet copy = make_param_set(cfg, cpu(), DType::BF16);
  std::mt19937_64 rng(2);
  fill_random(params, rng, 0.5);
  fill_random(grads, rng, 0.5);
  AdamW opt(oc, cfg, cpu());
  opt.step(params, grads, 1e-2, &copy);
  const std::vector<float> w = params.flat.to_float_vector();
  const std::vector<float> c = copy.flat.to_float_vector();
  const std::vector<int> kind = element_kinds(params);
  size_t checked = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    if (kind[i] >= 1) {
      REQUIRE(std::fabs(c[i] - w[i]) <= std::ldexp(std::fabs(w[i]), -8));
      ++checked;
    } else {
      REQUIRE(c[i] == 0.0f);  // untrained entries are not copied
    }
  }
  CHECK(checked > 0);
}

TEST_CASE("grad buckets cover the flat buffer in order within the size limit") {
  const ModelConfig cfg = tiny_config();
  ParamSet ps = make_param_set(cfg, cpu());
  const int64_t P = ps.flat.numel();
  std::vector<int64_t> starts;
  for (const ParamEntry& e : ps.entries) starts.push_back(offset_of(ps, e));
  for (int64_t limit : {int64_t(1000), int64_t(4096), int64_t(10240), int64_t(1) << 40}) {
    INFO("bucket_elems " << limit);
    const std::vector<GradBucket> b = make_grad_buckets(ps, limit);
    REQUIRE(!b.empty());
    int64_t next = 0;
    for (const GradBucket& x : b) {
      CHECK(x.offset == next);
      CHECK(x.numel > 0);
      CHECK(x.numel <= limit);
      next = x.offset + x.numel;
    }
    CHECK(next == P);
    if (limit > P) CHECK(b.size() == 1);
    // A bucket that starts inside a parameter does so only because it was split.
    for (size_t i = 1; i < b.size(); ++i) {
      const bool at_param = std::find(starts.begin(), starts.end(), b[i].offset) != starts.end();
      if (!at_param) CHECK(b[i - 1].numel == limit);
    }
  }
  GradSync sync(*make_local_communicator(), ps, 4096 * sizeof(float));
  CHECK(sync.buckets().size() == make_grad_buckets(ps, 4096).size());
}

TEST_CASE("grad sync and load reduction on a single rank are the identity") {
  const ModelConfig cfg = tiny_config();
  std::unique_ptr<Communicator> local = make_local_communicator(&cpu());
  ParamSet grads = make_param_set(cfg, cpu());
  std::mt19937_64 rng(4);
  fill_random(grads, rng, 1.0);
  const std::vector<float> before = grads.flat.to_float_vector();
  GradSync sync(*local, grads, 1024);
  sync.all_reduce(grads, ReduceOp::Sum);
  CHECK(grads.flat.to_float_vector() == before);
  sync.all_reduce(grads, ReduceOp::Avg);
  CHECK(grads.flat.to_float_vector() == before);
  std::vector<std::vector<int64_t>> loads{{1, 2, 3}, {4, 5, 6}};
  all_reduce_loads(*local, loads);
  CHECK(loads == std::vector<std::vector<int64_t>>{{1, 2, 3}, {4, 5, 6}});
}
