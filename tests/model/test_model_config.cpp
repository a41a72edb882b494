// Tests of ModelConfig: config.json reading (HF defaults, golden configs, type errors),
// writing (round trip), every validation error, yarn scale/frequencies against the
// reference formulas, and parameter counts against an independent count.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <unistd.h>

#include "zeroth/error.h"
#include "zeroth/model_config.h"

using namespace zeroth;
using nlohmann::json;

namespace {

const std::string kGolden = std::string(ZEROTH_TEST_DATA_DIR) + "/golden/";

std::string temp_path(const std::string& name) {
  return "/tmp/zeroth_test_model_config_" + std::to_string(getpid()) + "_" + name;
}

std::string write_text(const std::string& name, const std::string& text) {
  const std::string path = temp_path(name);
  std::ofstream(path) << text;
  return path;
}

json golden_json(const std::string& name) {
  std::ifstream in(kGolden + name + "/config.json");
  return json::parse(in);
}

// The ConfigError message of reading `j` (as a file), or "" if it loads.
std::string read_error(const json& j) {
  const std::string path = write_text("bad.json", j.dump());
  try {
    read_model_config(path);
  } catch (const ConfigError& e) {
    std::remove(path.c_str());
    return e.what();
  }
  std::remove(path.c_str());
  return "";
}

}  // namespace

TEST_CASE("missing keys take HF DeepseekV3Config defaults", "[model_config]") {
  const std::string path = write_text("empty.json", "{}");
  const ModelConfig c = read_model_config(path);
  std::remove(path.c_str());
  CHECK(c.vocab_size == 129280);
  CHECK(c.hidden_size == 7168);
  CHECK(c.num_hidden_layers == 61);
  CHECK(c.n_routed_experts == 256);
  CHECK(c.q_lora_rank == std::optional<int64_t>(1536));
  CHECK(c.first_k_dense_replace == 3);
  CHECK(c.bos_token_id == std::optional<int64_t>(0));
  CHECK(!c.pad_token_id);
  CHECK(!c.rope_scaling);
  CHECK(c.qk_head_dim() == 192);
  CHECK(c.softmax_scale() == Approx(1.0 / std::sqrt(192.0)));
  // DeepSeek-V3 (671B total, 37B activated) without the MTP layer: the published
  // totals are 671B (+14B MTP) and 37B activated.
  CHECK(c.num_parameters() == Approx(671.0e9).epsilon(0.01));
  CHECK(c.num_active_parameters() == Approx(37.5e9).epsilon(0.02));
}

TEST_CASE("golden configs load with their values", "[model_config]") {
  const ModelConfig a = read_model_config(kGolden + "tiny_q_full_tied");  // a directory
  CHECK(!a.q_lora_rank);
  CHECK(a.tie_word_embeddings);
  CHECK(a.hidden_size == 32);
  CHECK(a.vocab_size == 64);
  CHECK(a.n_routed_experts == 8);
  const ModelConfig b = read_model_config(kGolden + "tiny_q_lora_untied/config.json");
  CHECK(b.q_lora_rank == std::optional<int64_t>(24));
  CHECK(b.n_routed_experts == 12);
  CHECK(b.num_experts_per_tok == 3);
  CHECK(!b.tie_word_embeddings);
  const ModelConfig y = read_model_config(kGolden + "tiny_yarn_aux");
  REQUIRE(y.rope_scaling);
  CHECK(y.rope_scaling->factor == 4.0);
  CHECK(y.rope_scaling->mscale == 0.9);
  CHECK(y.rope_scaling->mscale_all_dim == 1.0);
  CHECK(y.rope_scaling->original_max_position_embeddings == 32);
}

TEST_CASE("yarn softmax scale, attention factor and inverse frequencies follow HF", "[model_config]") {
  const ModelConfig y = read_model_config(kGolden + "tiny_yarn_aux");
  auto m = [](double f, double s) { return 0.1 * s * std::log(f) + 1.0; };
  CHECK(y.softmax_scale() == Approx(std::pow(12.0, -0.5) * m(4.0, 1.0) * m(4.0, 1.0)).epsilon(1e-14));
  CHECK(y.rope_attention_factor() == Approx(m(4.0, 0.9) / m(4.0, 1.0)).epsilon(1e-14));
  // dim 4, base 1e4, orig 32: corr_dim(32) = 4 ln(32/(64 pi)) / (2 ln 1e4) < 0 -> low 0;
  // corr_dim(1) = 4 ln(32/(2 pi)) / (2 ln 1e4) = 0.353 -> ceil 1. Ramp j/1 clamped.
  const std::vector<double> inv = y.rope_inv_freq();
  REQUIRE(inv.size() == 2);
  CHECK(inv[0] == Approx(1.0).epsilon(1e-15));                  // ramp 0: extrapolation
  CHECK(inv[1] == Approx(1.0 / (4.0 * 100.0)).epsilon(1e-15));  // ramp 1: interpolation
  ModelConfig plain = y;
  plain.rope_scaling.reset();
  CHECK(plain.rope_inv_freq()[1] == Approx(0.01).epsilon(1e-15));
  CHECK(plain.rope_attention_factor() == 1.0);
  // Only mscale_all_dim given: HF uses m(f, 1) for cos/sin.
  json j = golden_json("tiny_yarn_aux");
  j["rope_scaling"].erase("mscale");
  const std::string path = write_text("nomscale.json", j.dump());
  const ModelConfig z = read_model_config(path);
  std::remove(path.c_str());
  CHECK(z.rope_attention_factor() == Approx(m(4.0, 1.0)).epsilon(1e-14));
}

TEST_CASE("write then read gives the same config", "[model_config]") {
  for (const char* name : {"tiny_q_full_tied", "tiny_q_lora_untied", "tiny_yarn_aux"}) {
    const ModelConfig a = read_model_config(kGolden + name);
    const std::string path = temp_path("roundtrip.json");
    write_model_config(a, path);
    const ModelConfig b = read_model_config(path);
    const json written = json::parse(std::ifstream(path));
    std::remove(path.c_str());
    CHECK(written["model_type"] == "deepseek_v3");
    CHECK(written["architectures"] == json::array({"DeepseekV3ForCausalLM"}));
    // Every key of the golden (reference-written) file has the same value.
    const json g = golden_json(name);
    for (auto it = g.begin(); it != g.end(); ++it) {
      INFO(name << " key " << it.key());
      REQUIRE(written.contains(it.key()));
      if (it.key() == "rope_scaling" && !it->is_null()) {
        for (auto r = it->begin(); r != it->end(); ++r) CHECK(written["rope_scaling"][r.key()] == *r);
      } else {
        CHECK(written[it.key()] == *it);
      }
    }
    CHECK(b.num_parameters() == a.num_parameters());
    CHECK(b.softmax_scale() == a.softmax_scale());
    CHECK(b.rope_inv_freq() == a.rope_inv_freq());
  }
}

TEST_CASE("parameter counts match an explicit count", "[model_config]") {
  const ModelConfig c = read_model_config(kGolden + "tiny_q_lora_untied");
  // C 32, H 4, Dqk 12, Dv 8, Rq 24, Rkv 16, Dr 4, I 64, Im 8, E 12, Ns 1, V 64, L 3, 1 dense.
  const int64_t attn = 24 * 32 + 24 + 48 * 24 + 20 * 32 + 16 + 4 * 16 * 16 + 32 * 32;
  const int64_t dense = 3 * 64 * 32;
  const int64_t moe_fixed = 12 * 32 + 12 + 3 * 8 * 32;
  const int64_t expert = 3 * 8 * 32;
  const int64_t base = 2 * 64 * 32 + 32 + 3 * (attn + 64) + dense;
  CHECK(c.num_parameters() == base + 2 * (moe_fixed + 12 * expert));
  CHECK(c.num_active_parameters() == base + 2 * (moe_fixed + 3 * expert));
  const ModelConfig t = read_model_config(kGolden + "tiny_q_full_tied");
  const int64_t attn_t = 48 * 32 + 20 * 32 + 16 + 4 * 16 * 16 + 32 * 32;
  CHECK(t.num_parameters() ==
        64 * 32 + 32 + 3 * (attn_t + 64) + dense + 2 * (8 * 32 + 8 + 3 * 8 * 32 + 8 * expert));
}

TEST_CASE("each invalid value is a ConfigError naming the file and key", "[model_config]") {
  const json base = golden_json("tiny_q_lora_untied");
  REQUIRE(read_error(base).empty());
  struct Case {
    const char* key;
    json value;
    const char* expect;  // a fragment of the message
  };
  const Case cases[] = {
      {"hidden_size", 0, "key 'hidden_size': expected a positive integer, found 0"},
      {"hidden_size", "32", "key 'hidden_size': expected an integer, found \"32\""},
      {"hidden_size", 32.5, "key 'hidden_size': expected an integer"},
      {"vocab_size", -1, "key 'vocab_size'"},
      {"num_key_value_heads", 2, "key 'num_key_value_heads': expected == num_attention_heads (4)"},
      {"qk_rope_head_dim", 5, "key 'qk_rope_head_dim': expected an even number, found 5"},
      {"n_group", 5, "key 'n_group': expected a divisor of n_routed_experts (12)"},
      {"n_group", 12, "key 'n_group': expected at most n_routed_experts / 2"},
      {"topk_group", 5, "key 'topk_group': expected <= n_group (4)"},
      {"num_experts_per_tok", 7, "key 'num_experts_per_tok': expected <= topk_group * experts per group (6)"},
      {"first_k_dense_replace", 4, "key 'first_k_dense_replace': expected in [0, 3]"},
      {"q_lora_rank", 0, "key 'q_lora_rank': expected null or a positive integer"},
      {"hidden_act", "gelu", "key 'hidden_act': expected \"silu\""},
      {"attention_bias", true, "key 'attention_bias'"},
      {"norm_topk_prob", 1, "key 'norm_topk_prob': expected true or false, found 1"},
      {"rms_norm_eps", 0.0, "key 'rms_norm_eps': expected a positive number"},
      {"rope_theta", "big", "key 'rope_theta': expected a number"},
      {"eos_token_id", 64, "key 'eos_token_id': expected null or an id in [0, vocab_size = 64)"},
      {"model_type", "llama", "key 'model_type': expected \"deepseek_v3\", found \"llama\""},
      {"scoring_func", "softmax", "key 'scoring_func'"},
      {"topk_method", "greedy", "key 'topk_method'"},
      {"quantization_config", json::object(), "key 'quantization_config.quant_method': expected \"fp8\""},
      {"quantization_config", json({{"quant_method", "fp8"}, {"fmt", "e5m2"}}),
       "key 'quantization_config.fmt': expected \"e4m3\", found \"e5m2\""},
      {"rope_scaling", json({{"type", "linear"}, {"factor", 2.0}}),
       "key 'rope_scaling.type': expected \"yarn\" or \"default\", found \"linear\""},
      {"rope_scaling", json({{"type", "yarn"}}), "key 'rope_scaling.factor': expected a number"},
      {"rope_scaling", json({{"type", "yarn"}, {"factor", 0.5}}), "key 'rope_scaling.factor': expected a number >= 1"},
      {"rope_scaling", json({{"type", "yarn"}, {"factor", 2.0}, {"beta_fast", 1}, {"beta_slow", 2}}),
       "key 'rope_scaling.beta_fast'"},
      {"rope_scaling", 3, "key 'rope_scaling': expected null or an object"},
  };
  for (const Case& c : cases) {
    json j = base;
    j[c.key] = c.value;
    const std::string msg = read_error(j);
    INFO("setting " << c.key << " = " << c.value.dump() << " gave: " << msg);
    CHECK(msg.find("zeroth_test_model_config_") != std::string::npos);  // names the file
    CHECK(msg.find(c.expect) != std::string::npos);
  }
  CHECK(read_error(json::array()).find("expected a JSON object") != std::string::npos);
  const std::string bad = write_text("notjson.json", "{\"hidden_size\": ");
  CHECK_THROWS_WITH(read_model_config(bad), Catch::Contains("not valid JSON"));
  std::remove(bad.c_str());
  CHECK_THROWS_AS(read_model_config("/nonexistent/config.json"), ConfigError);
}

TEST_CASE("HF variants are accepted: lists of ids, null kv heads, rope_parameters", "[model_config]") {
  json j = golden_json("tiny_q_lora_untied");
  j["eos_token_id"] = json::array({1, 2});
  j["num_key_value_heads"] = nullptr;
  j["some_future_key"] = 5;
  j["rope_parameters"] = {{"rope_theta", 50000.0}, {"rope_type", "default"}};
  j.erase("rope_scaling");
  j.erase("rope_theta");
  const std::string path = write_text("variants.json", j.dump());
  const ModelConfig c = read_model_config(path);
  std::remove(path.c_str());
  CHECK(c.eos_token_id == std::optional<int64_t>(1));
  CHECK(c.num_key_value_heads == 4);
  CHECK(c.rope_theta == 50000.0);
  CHECK(!c.rope_scaling);
}

TEST_CASE("repo model configs are valid and have the documented sizes", "[model_config]") {
  const std::string dir = std::string(ZEROTH_SOURCE_DIR) + "/configs/models/";
  const ModelConfig tiny = read_model_config(dir + "tiny.json");
  CHECK(tiny.vocab_size >= 259);  // bytes + <|bos|> <|eos|> <|pad|>
  const ModelConfig bench = read_model_config(dir + "bench-small.json");
  CHECK(bench.hidden_size == 512);
  CHECK(bench.num_hidden_layers == 8);
  CHECK(bench.qk_head_dim() == 48);
  CHECK(bench.v_head_dim == 32);
  const ModelConfig demo = read_model_config(dir + "demo-small.json");
  CHECK(demo.num_parameters() >= 5000000);
  CHECK(demo.num_parameters() <= 10000000);
  const ModelConfig big = read_model_config(dir + "r1zero-1b.json");
  CHECK(big.num_parameters() >= 900000000);
  CHECK(big.num_parameters() <= 1200000000);
}

TEST_CASE("yarn tables match the PyTorch reference at DeepSeek-V3 scale", "[model_config]") {
  // Expected values: scripts/reference/deepseek_v3_ref.py rope_tables() on this config
  // (tiny_yarn_aux with Dr 64, max positions 163840, original 4096, factor 40).
  json j = golden_json("tiny_yarn_aux");
  j["qk_rope_head_dim"] = 64;
  j["qk_nope_head_dim"] = 128;
  j["max_position_embeddings"] = 163840;
  j["rope_scaling"]["original_max_position_embeddings"] = 4096;
  j["rope_scaling"]["factor"] = 40;
  const std::string path = write_text("yarn64.json", j.dump());
  const ModelConfig c = read_model_config(path);
  std::remove(path.c_str());
  CHECK(c.rope_attention_factor() == Approx(0.9730519984014812).epsilon(1e-14));
  const std::vector<double> inv = c.rope_inv_freq();
  REQUIRE(inv.size() == 32);
  const std::pair<int, double> expected[] = {{0, 1.0},
                                             {5, 0.23713737056616555},
                                             {10, 0.056234132519034905},
                                             {20, 0.0007905694150420945},
                                             {31, 3.33380358040831e-06}};
  for (const auto& e : expected) CHECK(inv[size_t(e.first)] == Approx(e.second).epsilon(1e-13));
  auto m = [](double f, double s) { return 0.1 * s * std::log(f) + 1.0; };
  CHECK(c.softmax_scale() == Approx(std::pow(192.0, -0.5) * m(40, 1.0) * m(40, 1.0)).epsilon(1e-14));
}
