// Golden test of the whole model (llm.c's test_gpt2 idea): for every directory in
// tests/golden/ (written by scripts/reference/make_golden.py from an independent
// PyTorch implementation in float64), load config + weights, run forward/backward on
// the golden batch and compare logits, losses, log-probabilities (T = 1 and 0.7),
// routing and every parameter gradient with the bounds of tests/golden/README.md.
// Also: the GRPO path (token_logprobs + backward_from_logprob_grad) gives the same
// gradients as cross_entropy_step, runs are bit-identical, MoE statistics and the
// aux-loss-free bias update, and `zeroth score` (cli::cmd_score, compiled in).
// Must not: loosen a bound of the README without saying why.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "zeroth/backend.h"
#include "zeroth/error.h"
#include "zeroth/model.h"
#include "zeroth/model_config.h"
#include "zeroth/model_params.h"
#include "zeroth/safetensors.h"

using namespace zeroth;

namespace {

std::vector<std::string> golden_dirs() {
  std::vector<std::string> dirs;
  for (const auto& e : std::filesystem::directory_iterator(ZEROTH_TEST_DATA_DIR "/golden"))
    if (e.is_directory() && std::filesystem::exists(e.path() / "golden.safetensors"))
      dirs.push_back(e.path().string());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

std::vector<float> read_f32(const SafetensorsFile& f, const std::string& name) {
  const SafetensorsInfo& info = f.info(name);
  std::vector<float> v(size_t(shape_numel(info.shape)));
  f.read_into(name, v.data(), DType::F32, info.shape);
  return v;
}

std::vector<int64_t> read_i64(const SafetensorsFile& f, const std::string& name) {
  const SafetensorsInfo& info = f.info(name);
  std::vector<int64_t> v(size_t(shape_numel(info.shape)));
  f.read_into(name, v.data(), DType::I64, info.shape);
  return v;
}

// max|got - want| / max|want|
double rel_err(const std::vector<float>& got, const std::vector<float>& want) {
  REQUIRE(got.size() == want.size());
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    num = std::max(num, std::fabs(double(got[i]) - double(want[i])));
    den = std::max(den, std::fabs(double(want[i])));
  }
  return den > 0.0 ? num / den : num;
}

struct Golden {
  std::string dir;
  ModelConfig cfg;
  SafetensorsFile file;
  int64_t B = 0, T = 0;
  std::vector<int32_t> ids;   // (B, T)
  std::vector<float> mask;    // (B, T); last column 0
  float alpha = 0.0f;
};

Golden load_golden(const std::string& dir) {
  Golden g{dir, read_model_config(dir), SafetensorsFile::open(dir + "/golden.safetensors"), 0, 0,
           {}, {}, 0.0f};
  const SafetensorsInfo& info = g.file.info("input_ids");
  g.B = info.shape[0];
  g.T = info.shape[1];
  for (int64_t v : read_i64(g.file, "input_ids")) g.ids.push_back(int32_t(v));
  std::vector<float> m = read_f32(g.file, "loss_mask");  // (B, T-1)
  g.mask.assign(size_t(g.B * g.T), 0.0f);
  for (int64_t b = 0; b < g.B; ++b)
    for (int64_t t = 0; t + 1 < g.T; ++t) g.mask[size_t(b * g.T + t)] = m[size_t(b * (g.T - 1) + t)];
  auto it = g.file.metadata().find("aux_loss_alpha");
  if (it != g.file.metadata().end()) g.alpha = std::stof(it->second);
  return g;
}

Tensor ids_tensor(Backend& be, const Golden& g) {
  Tensor t = Tensor::empty(be, {g.B, g.T}, DType::I32);
  t.copy_from_host(g.ids.data(), g.ids.size() * sizeof(int32_t));
  return t;
}

Tensor mask_tensor(Backend& be, const Golden& g) {
  Tensor t = Tensor::empty(be, {g.B, g.T}, DType::F32);
  t.copy_from_host(g.mask.data(), g.mask.size() * sizeof(float));
  return t;
}

// Log-probabilities of the last forward at `temperature`, as (B, T-1).
std::vector<float> logprobs_bt1(Model& m, const Golden& g, float temperature) {
  Backend& be = m.backend();
  const int64_t N = g.B * g.T;
  std::vector<int32_t> targets(size_t(N), -1);
  for (int64_t b = 0; b < g.B; ++b)
    for (int64_t t = 0; t + 1 < g.T; ++t) targets[size_t(b * g.T + t)] = g.ids[size_t(b * g.T + t + 1)];
  Tensor tt = Tensor::empty(be, {N}, DType::I32);
  tt.copy_from_host(targets.data(), targets.size() * sizeof(int32_t));
  Tensor lp = Tensor::empty(be, {N}, DType::F32);
  m.token_logprobs(tt, temperature, lp, nullptr);
  std::vector<float> all = lp.to_float_vector(), out;
  for (int64_t b = 0; b < g.B; ++b)
    for (int64_t t = 0; t + 1 < g.T; ++t) out.push_back(all[size_t(b * g.T + t)]);
  return out;
}

}  // namespace

TEST_CASE("model forward and backward match the PyTorch golden files", "[model][golden]") {
  auto be = make_cpu_backend();
  const std::vector<std::string> dirs = golden_dirs();
  REQUIRE(dirs.size() >= 3);
  for (const std::string& dir : dirs) {
    SECTION(std::filesystem::path(dir).filename().string()) {
      Golden g = load_golden(dir);
      Model m(g.cfg, *be);
      load_hf_weights(dir, g.cfg, m.params());
      m.set_aux_loss_alpha(g.alpha);
      const float loss = m.cross_entropy_step(ids_tensor(*be, g), mask_tensor(*be, g));

      double e_logits = rel_err(m.logits().to_float_vector(), read_f32(g.file, "logits"));
      CHECK(e_logits <= 1e-5);
      double e_loss = rel_err({loss}, read_f32(g.file, "loss"));
      double e_ce = rel_err({m.last_ce_loss()}, read_f32(g.file, "ce_loss"));
      CHECK(e_loss <= 1e-5);
      CHECK(e_ce <= 1e-5);
      double e_aux = 0.0;
      if (g.alpha > 0.0f) {
        e_aux = rel_err({m.aux_loss()}, read_f32(g.file, "aux_loss"));
        CHECK(e_aux <= 1e-5);
      } else {
        CHECK_FALSE(g.file.has("aux_loss"));
      }

      // Routing: expert ids exactly (in order: both sides order by biased score).
      double e_route = 0.0;
      for (int64_t l = 0; l < g.cfg.num_hidden_layers; ++l) {
        if (!g.cfg.is_moe_layer(l)) continue;
        const std::string pre = "routing.layers." + std::to_string(l) + ".";
        std::vector<int64_t> want_idx = read_i64(g.file, pre + "topk_idx");
        std::vector<int32_t> got_idx(want_idx.size());
        m.routing_topk_idx(l).copy_to_host(got_idx.data(), got_idx.size() * sizeof(int32_t));
        for (size_t i = 0; i < want_idx.size(); ++i) {
          INFO(pre << "topk_idx[" << i << "]");
          REQUIRE(int64_t(got_idx[i]) == want_idx[i]);
        }
        e_route = std::max(e_route, rel_err(m.routing_topk_weight(l).to_float_vector(),
                                            read_f32(g.file, pre + "topk_weight")));
        e_route = std::max(e_route, rel_err(m.routing_scores(l).to_float_vector(),
                                            read_f32(g.file, pre + "scores")));
      }
      CHECK(e_route <= 1e-5);

      // Every parameter gradient; all-zero golden gradients must be exactly zero.
      double e_grad = 0.0;
      std::string worst;
      size_t n_grads = 0, n_zero = 0;
      for (const ParamEntry& e : m.grads().entries) {
        const std::string key = "grad." + e.name;
        if (!e.trainable) {
          CHECK_FALSE(g.file.has(key));  // router_bias: no gradient
          continue;
        }
        INFO(key);
        REQUIRE(g.file.has(key));
        std::vector<float> want = read_f32(g.file, key);
        Tensor view = e.view;
        std::vector<float> got(size_t(view.numel()));
        view.copy_to_host(got.data(), got.size() * sizeof(float));
        ++n_grads;
        if (std::all_of(want.begin(), want.end(), [](float v) { return v == 0.0f; })) {
          ++n_zero;
          CHECK(std::all_of(got.begin(), got.end(), [](float v) { return v == 0.0f; }));
          continue;
        }
        double err = rel_err(got, want);
        CHECK(err <= 5e-5);
        if (err > e_grad) {
          e_grad = err;
          worst = e.name;
        }
      }
      size_t golden_grads = 0;
      for (const std::string& name : g.file.names()) golden_grads += name.rfind("grad.", 0) == 0;
      CHECK(n_grads == golden_grads);
      CHECK(n_zero > 0);  // the README promises unchosen experts in every config

      // Log-probabilities at T = 1 and 0.7 from the same forward.
      double e_lp = rel_err(logprobs_bt1(m, g, 1.0f), read_f32(g.file, "logprobs"));
      double e_lp07 = rel_err(logprobs_bt1(m, g, 0.7f), read_f32(g.file, "logprobs_t0.7"));
      CHECK(e_lp <= 1e-5);
      CHECK(e_lp07 <= 1e-5);
      std::printf(
          "golden %-20s logits %.2e loss %.2e ce %.2e aux %.2e logprobs %.2e/%.2e routing %.2e "
          "grads %.2e (worst %s; %zu grads, %zu all-zero)\n",
          std::filesystem::path(dir).filename().string().c_str(), e_logits, e_loss, e_ce, e_aux,
          e_lp, e_lp07, e_route, e_grad, worst.c_str(), n_grads, n_zero);
    }
  }
}

TEST_CASE("logprob-gradient backward equals cross_entropy_step and runs are bit-identical",
          "[model][golden]") {
  auto be = make_cpu_backend();
  const std::string dir = ZEROTH_TEST_DATA_DIR "/golden/tiny_yarn_aux";
  Golden g = load_golden(dir);
  Model m(g.cfg, *be);
  load_hf_weights(dir, g.cfg, m.params());
  m.set_aux_loss_alpha(g.alpha);
  const float loss1 = m.cross_entropy_step(ids_tensor(*be, g), mask_tensor(*be, g));
  const std::vector<float> grads1 = m.grads().flat.to_float_vector();

  // Same forward again: bit-identical loss and gradients (deterministic CPU).
  m.zero_grad();
  const float loss2 = m.cross_entropy_step(ids_tensor(*be, g), mask_tensor(*be, g));
  CHECK(loss1 == loss2);
  CHECK(m.grads().flat.to_float_vector() == grads1);

  // The GRPO path: dlogprob = -mask / sum(mask) through backward_from_logprob_grad.
  m.zero_grad();
  m.forward(ids_tensor(*be, g));
  const int64_t N = g.B * g.T;
  std::vector<int32_t> targets(size_t(N), -1);
  double msum = 0.0;
  for (int64_t b = 0; b < g.B; ++b)
    for (int64_t t = 0; t + 1 < g.T; ++t) {
      targets[size_t(b * g.T + t)] = g.ids[size_t(b * g.T + t + 1)];
      msum += g.mask[size_t(b * g.T + t)];
    }
  std::vector<float> dlp(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) dlp[size_t(n)] = float(-double(g.mask[size_t(n)]) / msum);
  Tensor tt = Tensor::empty(*be, {N}, DType::I32), lp = Tensor::empty(*be, {N}, DType::F32);
  Tensor dl = Tensor::empty(*be, {N}, DType::F32);
  tt.copy_from_host(targets.data(), targets.size() * sizeof(int32_t));
  dl.copy_from_host(dlp.data(), dlp.size() * sizeof(float));
  m.token_logprobs(tt, 1.0f, lp, nullptr);
  m.backward_from_logprob_grad(dl, nullptr);
  CHECK(m.grads().flat.to_float_vector() == grads1);

  // Accumulation: a second backward doubles every gradient.
  m.token_logprobs(tt, 1.0f, lp, nullptr);
  m.backward_from_logprob_grad(dl, nullptr);
  std::vector<float> twice = m.grads().flat.to_float_vector();
  double worst = 0.0;
  for (size_t i = 0; i < twice.size(); ++i)
    worst = std::max(worst, std::fabs(double(twice[i]) - 2.0 * double(grads1[i])));
  CHECK(worst <= 1e-6);
}

TEST_CASE("MoE statistics and the aux-loss-free router-bias update", "[model][golden]") {
  auto be = make_cpu_backend();
  const std::string dir = ZEROTH_TEST_DATA_DIR "/golden/tiny_q_lora_untied";
  Golden g = load_golden(dir);
  Model m(g.cfg, *be);
  load_hf_weights(dir, g.cfg, m.params());
  m.forward(ids_tensor(*be, g));
  const int64_t E = g.cfg.n_routed_experts, k = g.cfg.num_experts_per_tok;
  std::vector<MoeLayerStats> stats = m.moe_stats();
  REQUIRE(int64_t(stats.size()) == g.cfg.num_hidden_layers - g.cfg.first_k_dense_replace);
  std::vector<std::vector<int64_t>> loads;
  for (const MoeLayerStats& s : stats) {
    std::vector<int64_t> want(size_t(E), 0);
    for (int64_t e : read_i64(g.file, "routing.layers." + std::to_string(s.layer) + ".topk_idx"))
      ++want[size_t(e)];
    CHECK(s.load == want);
    CHECK(s.min_load == *std::min_element(want.begin(), want.end()));
    CHECK(s.max_load == *std::max_element(want.begin(), want.end()));
    CHECK(s.imbalance == Approx(double(s.max_load) * E / double(g.B * g.T * k)));
    loads.push_back(s.load);
  }
  // With row lengths (the rest of a row is padding) the loads count the real tokens only;
  // the logits do not change.
  {
    const std::vector<float> logits = m.logits().to_float_vector();
    std::vector<int64_t> lengths(size_t(g.B));
    for (int64_t b = 0; b < g.B; ++b) lengths[size_t(b)] = std::max<int64_t>(0, g.T - 3 * b - 1);
    m.forward(ids_tensor(*be, g), &lengths);
    CHECK(m.logits().to_float_vector() == logits);
    const std::vector<MoeLayerStats> real = m.moe_stats();
    REQUIRE(real.size() == stats.size());
    for (const MoeLayerStats& s : real) {
      const std::vector<int64_t> idx = read_i64(g.file, "routing.layers." + std::to_string(s.layer) + ".topk_idx");
      std::vector<int64_t> want(size_t(E), 0);
      int64_t total = 0;
      for (int64_t b = 0; b < g.B; ++b)
        for (int64_t t = 0; t < lengths[size_t(b)]; ++t)
          for (int64_t j = 0; j < k; ++j, ++total) ++want[size_t(idx[size_t((b * g.T + t) * k + j)])];
      INFO("layer " << s.layer);
      CHECK(s.load == want);
      CHECK(total < g.B * g.T * k);  // some padding was left out
    }
    m.forward(ids_tensor(*be, g));  // back to the whole rows for the bias update below
  }
  std::vector<std::vector<float>> before;
  for (const MoeLayerStats& s : stats)
    before.push_back(m.params().params.layers[size_t(s.layer)].moe.router_bias.to_float_vector());
  const float gamma = 0.01f;
  m.update_router_bias(gamma, loads);
  for (size_t i = 0; i < stats.size(); ++i) {
    std::vector<float> after =
        m.params().params.layers[size_t(stats[i].layer)].moe.router_bias.to_float_vector();
    const double mean = double(g.B * g.T * k) / double(E);
    for (int64_t e = 0; e < E; ++e) {
      const double load = double(loads[i][size_t(e)]);
      const float step = load < mean ? gamma : (load > mean ? -gamma : 0.0f);
      CHECK(after[size_t(e)] == before[i][size_t(e)] + step);
    }
  }
}

namespace zeroth {
namespace cli {
int cmd_score(const std::vector<std::string>& args);  // src/cli/cmd_score.cpp
}  // namespace cli
}  // namespace zeroth

TEST_CASE("zeroth score writes the golden log-probabilities and names bad lines",
          "[model][golden][cli]") {
  const std::string dir = ZEROTH_TEST_DATA_DIR "/golden/tiny_q_lora_untied";
  Golden g = load_golden(dir);
  const std::filesystem::path tmp =
      std::filesystem::temp_directory_path() / ("zeroth_score_" + std::to_string(::getpid()));
  std::filesystem::create_directories(tmp);
  const std::string in = (tmp / "in.jsonl").string(), out = (tmp / "out.jsonl").string();
  {
    std::ofstream f(in);
    for (int64_t b = 0; b < g.B; ++b) {
      f << "{\"name\": \"row" << b << "\", \"ids\": [";
      for (int64_t t = 0; t < g.T; ++t) f << (t ? ", " : "") << g.ids[size_t(b * g.T + t)];
      f << "]}\n";
    }
  }
  REQUIRE(cli::cmd_score({"--model", dir, "--input", in, "--output", out}) == 0);
  std::vector<float> want = read_f32(g.file, "logprobs"), got;
  std::ifstream f(out);
  std::string line;
  int64_t rows = 0;
  while (std::getline(f, line)) {
    auto j = nlohmann::json::parse(line);
    CHECK(j["name"] == "row" + std::to_string(rows));
    REQUIRE(j["logprobs"].size() == size_t(g.T - 1));
    for (const auto& v : j["logprobs"]) got.push_back(v.get<float>());
    ++rows;
  }
  CHECK(rows == g.B);
  CHECK(rel_err(got, want) <= 1e-5);

  // Bad lines: DataErrors naming file:line.
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"{\"ids\": [1, 2, 64]}", "in [0, 64)"},
      {"{\"ids\": []}", "non-empty"},
      {"{\"tokens\": [1]}", "\"ids\""},
      {"{\"ids\": [1, 2.5]}", "integer"},
      {"not json", "invalid JSON"},
      {"{\"ids\": [" + [] {
         std::string s = "1";
         for (int i = 1; i < 129; ++i) s += ", 1";
         return s;
       }() + "]}",
       "129 tokens, the model takes at most 128 (max_position_embeddings)"}};
  for (const auto& [text, what] : bad) {
    {
      std::ofstream bf(in);
      bf << "{\"ids\": [1, 2]}\n\n" << text << "\n";
    }
    INFO(text);
    try {
      cli::cmd_score({"--model", dir, "--input", in, "--output", out});
      FAIL("no error");
    } catch (const DataError& e) {
      const std::string msg = e.what();
      CHECK(msg.find(in + ":3:") != std::string::npos);
      CHECK(msg.find(what) != std::string::npos);
    }
  }
  CHECK_THROWS_AS(cli::cmd_score({"--model", dir, "--input", in, "--output", out, "--temperature",
                                  "0"}),
                  UsageError);
  std::filesystem::remove_all(tmp);
}
