// Tests of config_reflect.h on the test-only sections of test_structs.h: every field
// type, every error kind with its exact file:line:col and suggestion, --set on typed
// configs, validate(), dump -> load round trips and the docs tables.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "test_structs.h"
#include "zeroth/config_reflect.h"

using namespace zeroth;
using zeroth::test::TestConfig;

static TestConfig parse(const std::string& text, const std::vector<std::string>& overrides = {}) {
  ConfigNode root = parse_config_yaml(text, "t.yaml");
  for (const auto& o : overrides) apply_config_override(root, o);
  TestConfig c;
  read_config_tree(root, c);
  return c;
}

static std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  try {
    parse(text, overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

static const std::string kModel = "model: {path: /m}\n";

TEST_CASE("absent keys keep their defaults", "[config]") {
  TestConfig c = parse(kModel);
  CHECK(c.algo.kl_coef == 0.001);
  CHECK(c.algo.group_size == 8);
  CHECK_FALSE(c.algo.q_lora_rank.has_value());
  CHECK(c.algo.weights == std::vector<double>{1.0, 0.1});
  CHECK(c.algo.clip.high == 0.28);
  CHECK(c.model.path == "/m");
  CHECK(c.model.vocab == 32000);
  CHECK(c.rewards.empty());
}

TEST_CASE("every field type parses", "[config]") {
  TestConfig c = parse(
      "algo:\n"
      "  kl_coef: 1e-3\n"
      "  group_size: 16\n"
      "  max_tokens: -0\n"
      "  seed: 18446744073709551615\n"
      "  q_lora_rank: 64\n"
      "  weights: [0.5, 2]\n"
      "  stages: [main, cooldown]\n"
      "  mode: ppo\n"
      "  normalize: false\n"
      "  clip: {low: 0.1, high: 0.3}\n"
      "model:\n"
      "  path: \"123\"\n"
      "rewards:\n"
      "  - name: acc\n"
      "    weight: 2\n"
      "  - {name: fmt, kind: regex, pattern: '^<think>'}\n",
      {"algo.max_tokens=9223372036854775807"});
  CHECK(c.algo.kl_coef == 1e-3);
  CHECK(c.algo.group_size == 16);
  CHECK(c.algo.max_tokens == std::numeric_limits<int64_t>::max());
  CHECK(c.algo.seed == std::numeric_limits<uint64_t>::max());
  REQUIRE(c.algo.q_lora_rank.has_value());
  CHECK(*c.algo.q_lora_rank == 64);
  CHECK(c.algo.weights == std::vector<double>{0.5, 2.0});
  CHECK(c.algo.stages == std::vector<std::string>{"main", "cooldown"});
  CHECK(c.algo.mode == "ppo");
  CHECK_FALSE(c.algo.normalize);
  CHECK(c.algo.clip.low == 0.1);
  CHECK(c.model.path == "123");
  REQUIRE(c.rewards.size() == 2);
  CHECK(c.rewards[0].name == "acc");
  CHECK(c.rewards[0].weight == 2.0);
  CHECK(c.rewards[0].kind == "exact");
  CHECK(c.rewards[1].kind == "regex");
  CHECK(c.rewards[1].pattern == std::optional<std::string>("^<think>"));
}

TEST_CASE("unknown keys name file:line:col and the nearest valid key", "[config]") {
  CHECK(error_of("algo:\n  kl_coeff: 0.1\n" + kModel) ==
        "t.yaml:2:3: key 'algo.kl_coeff': unknown key; did you mean 'kl_coef'?");
  CHECK(error_of(kModel + "algo:\n  clip:\n    hihg: 0.3\n") ==
        "t.yaml:4:5: key 'algo.clip.hihg': unknown key; did you mean 'high'?");
  CHECK(error_of(kModel + "algo:\n  zzz: 1\n") ==
        "t.yaml:3:3: key 'algo.zzz': unknown key; keys of 'algo' are: kl_coef, group_size, "
        "max_tokens, seed, q_lora_rank, weights, stages, mode, normalize, clip");
  CHECK(error_of(kModel + "algorithm_settings: {}\n") ==
        "t.yaml:2:1: key 'algorithm_settings': unknown key; sections are: algo, model, rewards");
  CHECK(error_of(kModel + "modle: {}\n") == "t.yaml:2:1: key 'modle': unknown key; did you mean 'model'?");
}

TEST_CASE("wrong types name the expected and found value", "[config]") {
  CHECK(error_of(kModel + "algo:\n  kl_coef: abc\n") ==
        "t.yaml:3:12: key 'algo.kl_coef': expected a number >= 0, found 'abc'");
  CHECK(error_of(kModel + "algo:\n  weights: {a: 1}\n") ==
        "t.yaml:3:12: key 'algo.weights': expected a list of numbers >= 0, found a map");
  CHECK(error_of(kModel + "algo:\n  group_size: 1.5\n") ==
        "t.yaml:3:15: key 'algo.group_size': expected an integer in [1, 1024], found 1.5");
  CHECK(error_of(kModel + "algo:\n  normalize: yes\n") ==
        "t.yaml:3:14: key 'algo.normalize': expected true or false, found 'yes'");
  CHECK(error_of(kModel + "algo: 3\n") == "t.yaml:2:7: key 'algo': expected a map (a section), found 3");
  CHECK(error_of("model:\n  path: [a]\n") == "t.yaml:2:9: key 'model.path': expected a string, found a list");
  CHECK(error_of("model:\n  path:\n") == "t.yaml:2:3: key 'model.path': expected a string, found null");
  CHECK(error_of(kModel + "algo: {stages: warmup}\n") ==
        "t.yaml:2:16: key 'algo.stages': expected a list of strings, each one of 'warmup', 'main', "
        "'cooldown', found 'warmup'");
  CHECK(error_of(kModel + "algo: {kl_coef: nan}\n") ==
        "t.yaml:2:17: key 'algo.kl_coef': expected a number >= 0, found 'nan'");
  CHECK(error_of(kModel + "rewards: {name: x}\n") ==
        "t.yaml:2:10: key 'rewards': expected a list of maps, found a map");
}

TEST_CASE("out-of-range values and integer overflow", "[config]") {
  CHECK(error_of(kModel + "algo:\n  group_size: 0\n") ==
        "t.yaml:3:15: key 'algo.group_size': expected an integer in [1, 1024], found 0");
  CHECK(error_of(kModel + "algo:\n  clip:\n    low: 1.5\n") ==
        "t.yaml:4:10: key 'algo.clip.low': expected a number in [0, 1], found 1.5");
  // .gt(x): the minimum is excluded, and the message says so
  CHECK(error_of(kModel + "algo:\n  clip:\n    low: 0\n    high: 0\n") ==
        "t.yaml:5:11: key 'algo.clip.high': expected a number in (0, 1], found 0");
  CHECK(error_of(kModel + "algo:\n  clip:\n    high: 1.5\n") ==
        "t.yaml:4:11: key 'algo.clip.high': expected a number in (0, 1], found 1.5");
  CHECK(error_of(kModel + "algo:\n  weights: [1, -0.5]\n") ==
        "t.yaml:3:16: key 'algo.weights[1]': expected a number >= 0, found -0.5");
  CHECK(error_of(kModel + "algo:\n  seed: -1\n") ==
        "t.yaml:3:9: key 'algo.seed': expected an integer in [0, 18446744073709551615], found -1");
  CHECK(error_of(kModel + "algo:\n  max_tokens: 9223372036854775808\n") ==
        "t.yaml:3:15: key 'algo.max_tokens': expected an integer in [-9223372036854775808, "
        "9223372036854775807], found 9223372036854775808");
  CHECK(error_of(kModel + "algo:\n  q_lora_rank: 0\n") ==
        "t.yaml:3:16: key 'algo.q_lora_rank': expected an integer >= 1, found 0");
  // Float keys are finite and fit a float: .inf or 1e300 would pass a ">= 0".
  CHECK(error_of(kModel + "algo:\n  kl_coef: .inf\n") ==
        "t.yaml:3:12: key 'algo.kl_coef': expected a finite number >= 0, found '.inf'");
  CHECK(error_of(kModel + "algo:\n  kl_coef: 1e300\n") ==
        "t.yaml:3:12: key 'algo.kl_coef': expected a finite number >= 0, found 1e300");
  CHECK(error_of(kModel + "algo:\n  weights: [1, -.inf]\n") ==
        "t.yaml:3:16: key 'algo.weights[1]': expected a finite number >= 0, found '-.inf'");
  CHECK(error_of(kModel + "model: {vocab: 0}\n").find("key 'model': key given twice") != std::string::npos);
}

TEST_CASE("enums suggest the nearest allowed value", "[config]") {
  CHECK(error_of(kModel + "algo:\n  mode: ppo2\n") ==
        "t.yaml:3:9: key 'algo.mode': expected one of 'grpo', 'ppo', found 'ppo2'; did you mean 'ppo'?");
  CHECK(error_of(kModel + "algo:\n  stages: [warmup, mian]\n") ==
        "t.yaml:3:20: key 'algo.stages[1]': expected one of 'warmup', 'main', 'cooldown', found "
        "'mian'; did you mean 'main'?");
  CHECK(error_of(kModel + "algo:\n  mode: sgd\n") ==
        "t.yaml:3:9: key 'algo.mode': expected one of 'grpo', 'ppo', found 'sgd'");
}

TEST_CASE("missing required keys name the key and the section's position", "[config]") {
  CHECK(error_of("algo: {}\n") == "t.yaml:1:1: missing required key 'model.path'");
  CHECK(error_of("algo: {}\nmodel:\n  vocab: 5\n") == "t.yaml:3:3: missing required key 'model.path'");
  CHECK(error_of(kModel + "rewards:\n  - weight: 1\n") == "t.yaml:3:5: missing required key 'rewards[0].name'");
}

TEST_CASE("a list of sections checks each item", "[config]") {
  CHECK(error_of(kModel + "rewards:\n  - name: a\n  - name: b\n    wieght: 2\n") ==
        "t.yaml:5:5: key 'rewards[1].wieght': unknown key; did you mean 'weight'?");
  CHECK(error_of(kModel + "rewards:\n  - name: a\n    kind: regex\n") ==
        "t.yaml:3:5: reward 'a': key 'pattern' is required when kind is 'regex'");
  CHECK(error_of(kModel + "rewards:\n  - 3\n") == "t.yaml:3:5: key 'rewards[0]': expected a map (a section), found 3");
}

TEST_CASE("validate() errors point at the key they name", "[config]") {
  CHECK(error_of(kModel + "algo:\n  clip:\n    high: 0.1\n") ==
        "t.yaml:4:5: key 'algo.clip.low': expected at most algo.clip.high (0.1), found 0.2");
  CHECK(error_of(kModel + "algo:\n  clip:\n    low: 0.5\n    high: 0.3\n") ==
        "t.yaml:4:10: key 'algo.clip.low': expected at most algo.clip.high (0.3), found 0.5");
  // The key named is not in the files: the section's position (a --set of another key is
  // not blamed for it).
  CHECK(error_of(kModel + "algo:\n  clip:\n    high: 0.3\n", {"algo.clip.high=0.1"}) ==
        "t.yaml:4:5: key 'algo.clip.low': expected at most algo.clip.high (0.1), found 0.2");
}

TEST_CASE("overrides (--set) set typed keys, lists, optional null and list items", "[config]") {
  std::string text = kModel + "algo:\n  q_lora_rank: 8\nrewards:\n  - name: a\n  - name: b\n";
  TestConfig c = parse(text, {"algo.kl_coef=0.01", "algo.weights=[1,0.1]", "algo.q_lora_rank=null",
                              "algo.clip.high=0.5", "rewards[1].weight=3", "algo.kl_coef=0.02"});
  CHECK(c.algo.kl_coef == 0.02);
  CHECK(c.algo.weights == std::vector<double>{1.0, 0.1});
  CHECK_FALSE(c.algo.q_lora_rank.has_value());
  CHECK(c.algo.clip.high == 0.5);
  CHECK(c.algo.clip.low == 0.2);
  CHECK(c.rewards[1].weight == 3.0);
  CHECK(c.rewards[0].weight == 1.0);
  TestConfig d = parse("algo: {}\n", {"model.path=/x", "rewards=[{name: r, kind: length}]"});
  CHECK(d.model.path == "/x");
  REQUIRE(d.rewards.size() == 1);
  CHECK(d.rewards[0].kind == "length");
}

TEST_CASE("override (--set) errors name the override", "[config]") {
  CHECK(error_of(kModel, {"algo.kl_coeff=1"}) ==
        "--set algo.kl_coeff=1: key 'algo.kl_coeff': unknown key; did you mean 'kl_coef'?");
  CHECK(error_of(kModel, {"nosuchsection.x=1"}) ==
        "--set nosuchsection.x=1: key 'nosuchsection': unknown key; sections are: algo, model, rewards");
  CHECK(error_of(kModel, {"algo.kl_coef=abc"}) ==
        "--set algo.kl_coef=abc: key 'algo.kl_coef': expected a number >= 0, found 'abc'");
  CHECK(error_of(kModel, {"algo.kl_coef.x=1"}) ==
        "--set algo.kl_coef.x=1: key 'algo.kl_coef': expected a number >= 0, found a map");
  CHECK(error_of(kModel, {"algo.weights=[1, x]"}) ==
        "--set algo.weights=[1, x]: key 'algo.weights[1]': expected a number >= 0, found 'x'");
  CHECK(error_of(kModel, {"model.path=null"}) == "--set model.path=null: key 'model.path': expected a string, found null");
}

TEST_CASE("dump -> load round-trips every key", "[config]") {
  TestConfig c;
  c.algo.kl_coef = 1.0 / 3.0;
  c.algo.group_size = 3;
  c.algo.max_tokens = std::numeric_limits<int64_t>::max();
  c.algo.seed = std::numeric_limits<uint64_t>::max();
  c.algo.q_lora_rank = 512;
  c.algo.weights = {0.1, 1e-300, 2.0};
  c.algo.stages = {};
  c.algo.normalize = false;
  c.algo.clip.low = 0.0;
  c.model.path = "true";
  c.rewards.push_back({"a: b # not a comment", 0.25, "regex", std::string("")});
  c.rewards.push_back({"null", 1.0, "exact", std::nullopt});
  const std::string text = dump_config_as(c);
  TestConfig back = parse(text);
  CHECK(dump_config_as(back) == text);
  CHECK(back.algo.kl_coef == c.algo.kl_coef);
  CHECK(back.algo.max_tokens == c.algo.max_tokens);
  CHECK(back.algo.seed == c.algo.seed);
  CHECK(back.algo.q_lora_rank == c.algo.q_lora_rank);
  CHECK(back.algo.weights == c.algo.weights);
  CHECK(back.algo.stages.empty());
  CHECK(back.model.path == "true");
  REQUIRE(back.rewards.size() == 2);
  CHECK(back.rewards[0].name == c.rewards[0].name);
  CHECK(back.rewards[0].pattern == std::optional<std::string>(""));
  CHECK(back.rewards[1].name == "null");
  CHECK_FALSE(back.rewards[1].pattern.has_value());
  // Every key is written, defaults included.
  std::string defaults = dump_config_as(parse(kModel));
  CHECK(defaults.find("  q_lora_rank: null\n") != std::string::npos);
  CHECK(defaults.find("  kl_coef: 0.001\n") != std::string::npos);
  CHECK(defaults.find("  weights: [1.0, 0.1]\n") != std::string::npos);
  CHECK(defaults.find("rewards: []\n") != std::string::npos);
}

TEST_CASE("docs tables list key, type, default, allowed values and description", "[config]") {
  std::string md = config_docs_markdown_as<TestConfig>();
  // The top level has a plain key (the list `rewards`), so it has a table.
  CHECK(md.find("### `(top level)`\n\n| key | type | default | allowed | description |\n|---|---|---|---|---|\n"
                "| `algo` | section |  |  | Algorithm (section `algo`) |\n"
                "| `model` | section |  |  | Model (section `model`) |\n"
                "| `rewards` | list of section | `[]` |  | Reward functions (items: section `rewards[]`) |\n") == 0);
  CHECK(md.find("### `algo`\n\n| key | type | default | allowed | description |\n|---|---|---|---|---|\n"
                "| `kl_coef` | float | `0.001` | >= 0 | KL weight |\n") != std::string::npos);
  CHECK(md.find("| `group_size` | int | `8` | in [1, 1024] | Samples per prompt |\n") != std::string::npos);
  CHECK(md.find("| `q_lora_rank` | int or null | `null` | >= 1 | Low-rank query (null = full) |\n") != std::string::npos);
  CHECK(md.find("| `stages` | list of string | `[warmup]` | `warmup`, `main`, `cooldown` | Stages to run |\n") !=
        std::string::npos);
  CHECK(md.find("| `normalize` | bool | `true` |  | Normalize advantages \\| per group |\n") != std::string::npos);
  CHECK(md.find("| `clip` | section |  |  | Ratio clipping (section `algo.clip`) |\n") != std::string::npos);
  CHECK(md.find("### `algo.clip`\n") != std::string::npos);
  CHECK(md.find("| `path` | string | (required) |  | Model directory |\n") != std::string::npos);
  CHECK(md.find("### `rewards[]`\n") != std::string::npos);
  CHECK(md.find("### `model`") < md.find("### `rewards[]`"));
}
