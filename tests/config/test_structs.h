// Test-only config sections that exercise every feature of config_reflect.h: nested
// sections, optional values, lists of scalars, a list of sections, enums, ranges,
// required keys and cross-field validate(). Not part of the real Config.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "zeroth/config_reflect.h"
#include "zeroth/error.h"

namespace zeroth {
namespace test {

struct ClipCfg {
  double low = 0.2;
  double high = 0.28;
  template <class V>
  void visit(V& v) {
    v.field("low", low, "Lower clip").min(0).max(1);
    v.field("high", high, "Upper clip").gt(0).max(1);
  }
  void validate() const {
    if (low > high)
      throw ConfigError(strformat("key 'algo.clip.low': expected at most algo.clip.high (%g), found %g", high, low));
  }
};

struct AlgoCfg {
  double kl_coef = 0.001;
  int group_size = 8;
  int64_t max_tokens = 4096;
  uint64_t seed = 7;
  std::optional<int> q_lora_rank;
  std::vector<double> weights = {1.0, 0.1};
  std::vector<std::string> stages = {"warmup"};
  std::string mode = "grpo";
  bool normalize = true;
  ClipCfg clip;
  template <class V>
  void visit(V& v) {
    v.field("kl_coef", kl_coef, "KL weight").min(0);
    v.field("group_size", group_size, "Samples per prompt").min(1).max(1024);
    v.field("max_tokens", max_tokens, "Token budget").min(1);
    v.field("seed", seed, "Seed");
    v.field("q_lora_rank", q_lora_rank, "Low-rank query (null = full)").min(1);
    v.field("weights", weights, "Reward weights").min(0);
    v.field("stages", stages, "Stages to run").one_of({"warmup", "main", "cooldown"});
    v.field("mode", mode, "Algorithm").one_of({"grpo", "ppo"});
    v.field("normalize", normalize, "Normalize advantages | per group");
    v.field("clip", clip, "Ratio clipping");
  }
};

struct ModelCfg {
  std::string path;
  uint64_t vocab = 32000;
  template <class V>
  void visit(V& v) {
    v.field("path", path, "Model directory").required();
    v.field("vocab", vocab, "Vocabulary size").min(1);
  }
};

struct RewardFn {
  std::string name;
  double weight = 1.0;
  std::string kind = "exact";
  std::optional<std::string> pattern;
  template <class V>
  void visit(V& v) {
    v.field("name", name, "Reward name").required();
    v.field("weight", weight, "Weight").min(0);
    v.field("kind", kind, "Kind").one_of({"exact", "regex", "length"});
    v.field("pattern", pattern, "Regex for kind regex");
  }
  void validate() const {
    if (kind == "regex" && !pattern)
      throw ConfigError(strformat("reward '%s': key 'pattern' is required when kind is 'regex'", name.c_str()));
  }
};

struct TestConfig {
  AlgoCfg algo;
  ModelCfg model;
  std::vector<RewardFn> rewards;
  template <class V>
  void visit(V& v) {
    v.field("algo", algo, "Algorithm");
    v.field("model", model, "Model");
    v.field("rewards", rewards, "Reward functions");
  }
};

// The shape of the defaults-chain fixtures in tests/config/data.
struct TrainCfg {
  double lr = 1.0;
  int steps = 1;
  std::string name = "none";
  std::vector<std::string> tags;
  template <class V>
  void visit(V& v) {
    v.field("lr", lr, "Learning rate");
    v.field("steps", steps, "Steps").min(0);
    v.field("name", name, "Name");
    v.field("tags", tags, "Tags");
  }
};

struct TrainFile {
  TrainCfg train;
  template <class V>
  void visit(V& v) {
    v.field("train", train, "Training");
  }
};

}  // namespace test
}  // namespace zeroth
