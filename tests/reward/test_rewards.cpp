// Reward composition (rewards.h) and `zeroth reward` / `zeroth bench reward` (compiled
// in from src/cli): weights, routing by kind, components, format_ok, counters, config
// parsing and its errors, the JSONL schema and its DataErrors, the CLI on small files.
// Cases tagged [rewards_code] run programs in the sandbox: CTest runs them through
// tests/sandbox/run_contained.sh (entry rewards_code), never by discovery.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "zeroth/config_reflect.h"
#include "zeroth/error.h"
#include "zeroth/length_reward.h"
#include "zeroth/rewards.h"

namespace zeroth {
namespace cli {
int cmd_reward(const std::vector<std::string>& args);
int bench_reward(const std::vector<std::string>& args);
}  // namespace cli
}  // namespace zeroth

using namespace zeroth;
namespace fs = std::filesystem;

namespace {

struct RewardsOnly {  // what `zeroth reward --config` reads
  RewardsConfig rewards;
  template <class V>
  void visit(V& v) {
    v.field("rewards", rewards, "rewards");
  }
};

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("zeroth_rewards_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(std::rand()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name) << text;
    return (path / name).string();
  }
};

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

RewardsConfig load_rewards_yaml(const TempDir& dir, const std::string& yaml) {
  return load_config_as<RewardsOnly>(dir.write("rewards.yaml", yaml), {}).rewards;
}

// The message of the ConfigError that loading `yaml` throws ("" if none).
std::string config_error(const std::string& yaml) {
  TempDir dir;
  try {
    load_rewards_yaml(dir, yaml);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

RewardSample math(const std::string& completion, const std::string& gold) {
  RewardSample s;
  s.kind = RewardKind::Math;
  s.completion = completion;
  s.gold = gold;
  return s;
}

// Captures stdout of `fn` into a string.
template <class F>
std::string capture_stdout(F fn, int* rc) {
  std::fflush(stdout);
  char tmpl[] = "/tmp/zeroth_rewards_out_XXXXXX";
  int fd = ::mkstemp(tmpl);
  REQUIRE(fd >= 0);
  int saved = ::dup(1);
  ::dup2(fd, 1);
  *rc = fn();
  std::fflush(stdout);
  ::dup2(saved, 1);
  ::close(saved);
  ::close(fd);
  std::ifstream in(tmpl);
  std::stringstream ss;
  ss << in.rdbuf();
  ::unlink(tmpl);
  return ss.str();
}

}  // namespace

TEST_CASE("default composition is R1-Zero: accuracy 1 + strict format 1", "[rewards]") {
  RewardComposer c{RewardsConfig{}};
  RewardResult both = c.score(math("<think>2+2=4</think><answer>\\boxed{4}</answer>", "4"));
  CHECK(both.reward == 2.0);
  CHECK(both.verdict == "correct");
  CHECK(both.correct);
  CHECK(both.format_ok);
  CHECK(both.extracted == "4");
  REQUIRE(both.components.size() == 2);
  CHECK(both.components[0].name == "accuracy");
  CHECK(both.components[0].value == 1.0);
  CHECK(both.components[1].name == "format");
  CHECK(both.components[1].value == 1.0);

  RewardResult wrong = c.score(math("<think>hmm</think><answer>5</answer>", "4"));
  CHECK(wrong.reward == 1.0);
  CHECK(wrong.verdict == "wrong_answer");
  CHECK(wrong.component("accuracy") == 0.0);
  CHECK(wrong.component("format") == 1.0);

  RewardResult unformatted = c.score(math("The answer is 4.", "4"));
  CHECK(unformatted.reward == 1.0);
  CHECK_FALSE(unformatted.format_ok);

  RewardResult none = c.score(math("I give up", "4"));
  CHECK(none.reward == 0.0);
  CHECK(none.verdict == "no_answer");
  CHECK(none.extracted.empty());

  auto counts = c.verdict_counts();
  CHECK(counts["math.correct"] == 2);
  CHECK(counts["math.wrong_answer"] == 1);
  CHECK(counts["math.no_answer"] == 1);
  CHECK(counts.size() == 3);
}

TEST_CASE("weights, variants, tag_count and language components from YAML", "[rewards]") {
  TempDir dir;
  RewardsConfig cfg = load_rewards_yaml(dir, R"(
rewards:
  functions:
    - {name: accuracy, weight: 1.0}
    - {name: format, weight: 0.1, variant: lenient}
    - {name: tag_count, weight: 0.5}
    - {name: language, weight: 0.2, script: zh}
  math:
    extractors: [answer_tag, last_number]
)");
  REQUIRE(cfg.functions.size() == 4);
  RewardComposer c(cfg);
  // Lenient format accepts text around the blocks; tag count sees each tag once; the
  // reasoning is Latin, not Han: language 0.
  RewardResult r = c.score(math("Sure. <think>two plus two</think> so <answer>4</answer>", "4"));
  CHECK(r.component("accuracy") == 1.0);
  CHECK(r.component("format") == 1.0);
  CHECK(r.format_ok);
  CHECK(r.component("tag_count") == 1.0);
  CHECK(r.component("language") == 0.0);
  CHECK(r.reward == Approx(1.0 + 0.1 + 0.5));
  // Han reasoning: language 1; no answer tag, last_number finds 4; one tag missing.
  RewardResult zh = c.score(math("<think>二加二等于四</think> 4", "4"));
  CHECK(zh.component("language") == 1.0);
  CHECK(zh.component("accuracy") == 1.0);
  CHECK(zh.component("format") == 0.0);
  CHECK(zh.component("tag_count") == 0.5);
  CHECK(zh.reward == Approx(1.0 + 0.5 * 0.5 + 0.2));
  // \boxed is not among the configured extractors.
  CHECK(c.score(math("\\boxed{4}", "4")).verdict == "correct");  // last_number finds the 4
  CHECK(c.score(math("\\boxed{x}", "4")).verdict == "no_answer");
}

TEST_CASE("format tags and think_open_in_prompt come from the config", "[rewards]") {
  TempDir dir;
  RewardsConfig cfg = load_rewards_yaml(dir, R"(
rewards:
  format: {think_open: "<reason>", think_close: "</reason>", think_open_in_prompt: true}
)");
  RewardComposer c(cfg);
  CHECK(c.score(math("I add.</reason><answer>4</answer>", "4")).reward == 2.0);
  CHECK(c.score(math("<think>I add.</think><answer>4</answer>", "4")).reward == 1.0);
}

TEST_CASE("math tolerances reach the verifier", "[rewards]") {
  RewardsConfig loose;
  loose.math.rel_tol = 1e-2;
  RewardComposer strict_c{RewardsConfig{}}, loose_c{loose};
  CHECK(strict_c.score(math("\\boxed{3.14}", "\\pi")).verdict == "wrong_answer");
  CHECK(loose_c.score(math("\\boxed{3.14}", "\\pi")).verdict == "correct");
}

// Uncontained on purpose: under run_contained.sh the test process is its PID namespace's
// init, for which the kernel drops a SIGPIPE with no handler, which hid this. The program
// is the test's own (sandbox none).
TEST_CASE("a program that exits without reading a big stdin does not end the scorer with SIGPIPE", "[rewards]") {
  RewardsConfig cfg;
  cfg.code.sandbox = "none";
  cfg.code.max_concurrent = 2;
  RewardComposer c(cfg);
  RewardSample s;
  s.kind = RewardKind::Code;
  s.problem.language = CodeLanguage::Python;
  s.problem.stdio_cases.push_back({std::string(4 << 20, '7') + "\n", "1"});
  s.completion = "```python\nprint(1)\n```";  // the right output, without reading the input
  RewardResult r = c.score(s);
  INFO(r.detail);
  CHECK(r.verdict == "passed");
  s.completion = "```python\nthis is not python\n```";  // a syntax error: it never reads its input
  r = c.score(s);
  CHECK(r.verdict == "runtime_error");
}

TEST_CASE("model output never throws", "[rewards]") {
  RewardComposer c{RewardsConfig{}};
  const std::string nasty[] = {std::string(100000, '{'), "\\boxed{", "<answer>", std::string("\0\xff\xfe", 3),
                               "\\boxed{" + std::string(5000, '(') + "}", "\\boxed{10^{10^{10^{10}}}}"};
  for (const auto& s : nasty) {
    RewardResult r;
    REQUIRE_NOTHROW(r = c.score(math(s, "1")));
    CHECK(r.reward >= 0.0);
    CHECK(r.reward <= 2.0);
  }
}

TEST_CASE("config errors name the key", "[rewards]") {
  CHECK_THAT(config_error("rewards:\n  functions:\n    - {name: acuracy}\n"),
             Catch::Contains("rewards.functions[0].name") && Catch::Contains("accuracy"));
  CHECK_THAT(config_error("rewards:\n  functions:\n    - {weight: 1}\n"),
             Catch::Contains("rewards.functions[0].name"));
  CHECK_THAT(config_error("rewards:\n  functions:\n    - {name: format}\n    - {name: format, variant: lenient}\n"),
             Catch::Contains("rewards.functions[1].name") && Catch::Contains("once"));
  CHECK_THAT(config_error("rewards:\n  functions:\n    - {name: format, variant: loose}\n"),
             Catch::Contains("rewards.functions[0].variant") && Catch::Contains("lenient"));
  CHECK_THAT(config_error("rewards:\n  functions:\n    - {name: language, script: klingon}\n"),
             Catch::Contains("rewards.functions[0].script") && Catch::Contains("klingon"));
  CHECK_THAT(config_error("rewards:\n  math: {extractors: [boxed, lastnumber]}\n"),
             Catch::Contains("rewards.math") && Catch::Contains("lastnumber"));
  CHECK_THAT(config_error("rewards:\n  math: {rel_tol: 0}\n"), Catch::Contains("rewards.math") && Catch::Contains("rel_tol"));
  CHECK_THAT(config_error("rewards:\n  math: {rel_tl: 0.1}\n"), Catch::Contains("rel_tol"));
  CHECK_THAT(config_error("rewards:\n  format: {answer_open: \"<think>\"}\n"),
             Catch::Contains("rewards.format.answer_open") && Catch::Contains("distinct"));
  CHECK_THAT(config_error("rewards:\n  format: {think_close: \"\"}\n"), Catch::Contains("rewards.format.think_close"));
  CHECK_THAT(config_error("rewards:\n  code: {sandbox: docker}\n"),
             Catch::Contains("rewards.code.sandbox") && Catch::Contains("bwrap"));
  CHECK_THAT(config_error("rewards:\n  code: {limits: {wall_seconds: 0}}\n"),
             Catch::Contains("rewards.code.limits.wall_seconds"));
  CHECK_THAT(config_error("rewards:\n  code: {limits: {memory_bytes: 1000}}\n"),
             Catch::Contains("rewards.code.limits.memory_bytes"));
  CHECK_THAT(config_error("rewards:\n  code: {max_concurrent: -1}\n"), Catch::Contains("rewards.code.max_concurrent"));
  // The error points at the file and line.
  CHECK_THAT(config_error("rewards:\n  functions:\n    - {name: format}\n    - {name: format}\n"),
             Catch::Contains("rewards.yaml:"));
  // No function, or only zero weights: every completion would score 0 (nothing to learn).
  CHECK_THAT(config_error("rewards:\n  functions: []\n"),
             Catch::Contains("key 'rewards.functions': expected at least one reward function"));
  CHECK_THAT(config_error("rewards:\n  functions:\n    - {name: format, weight: 0}\n"),
             Catch::Contains("expected a non-zero weight on at least one function"));
  CHECK_THAT(config_error("rewards:\n  math: {extractors: []}\n"),
             Catch::Contains("rewards.math") && Catch::Contains("expected at least one math extractor"));
}

TEST_CASE("length shaping formulas: cosine and the Kimi group penalty", "[rewards]") {
  const CosineLengthParams p;  // open-r1's defaults, max_len 1000
  CHECK(cosine_length_reward(true, 0, p) == 1.0);
  CHECK(cosine_length_reward(true, 1000, p) == Approx(0.5));
  CHECK(cosine_length_reward(true, 500, p) == Approx(0.75));
  CHECK(cosine_length_reward(false, 0, p) == -1.0);
  CHECK(cosine_length_reward(false, 500, p) == Approx(-0.75));
  CHECK(cosine_length_reward(false, 5000, p) == Approx(-0.5));  // past max_len: the long value
  CHECK(cosine_length_reward(true, -3, p) == 1.0);
  // A correct trace always beats a wrong one; shorter correct and longer wrong are preferred.
  for (int64_t n = 0; n < 1000; n += 100) {
    CHECK(cosine_length_reward(true, n, p) > cosine_length_reward(true, n + 100, p));
    CHECK(cosine_length_reward(false, n, p) < cosine_length_reward(false, n + 100, p));
    CHECK(cosine_length_reward(true, n, p) > cosine_length_reward(false, n, p));
  }
  // Kimi k1.5: lambda = 0.5 - (len - min) / (max - min); wrong ones get min(0, lambda).
  const std::vector<double> v = group_length_penalty({10, 20, 30, 50}, {1, 1, 0, 0});
  REQUIRE(v.size() == 4);
  CHECK(v[0] == 0.5);
  CHECK(v[1] == Approx(0.25));
  CHECK(v[2] == 0.0);  // lambda 0.0
  CHECK(v[3] == -0.5);
  CHECK(group_length_penalty({10, 20}, {0, 1}) == std::vector<double>{0.0, -0.5});
  CHECK(group_length_penalty({7, 7, 7}, {1, 0, 1}) == std::vector<double>{0, 0, 0});  // equal lengths
  CHECK(group_length_penalty({}, {}).empty());
}

TEST_CASE("shaping functions from YAML (cosine and repetition_penalty and length_penalty) with groups in score_batch", "[rewards]") {
  TempDir dir;
  RewardsConfig cfg = load_rewards_yaml(dir, R"(
rewards:
  functions:
    - {name: cosine, max_len: 100, correct_short: 2, correct_long: 1, wrong_short: -2, wrong_long: 0}
    - {name: format, weight: 0.5}
    - {name: repetition_penalty, weight: 2, ngram_size: 1}
    - {name: length_penalty, weight: 0.1}
)");
  CHECK(cfg.needs_num_tokens());
  RewardComposer c(cfg);
  RewardSample s = math("<think>x x</think><answer>4</answer>", "4");
  s.num_tokens = 50;
  RewardResult r = c.score(s);
  // Words: "<think>x", "x</think><answer>4</answer>": distinct, so no repetition.
  CHECK(r.component("cosine") == Approx(1.5));
  CHECK(r.component("repetition_penalty") == 0.0);
  CHECK_FALSE(std::signbit(r.component("repetition_penalty")));
  CHECK(r.component("length_penalty") == 0.0);  // a single sample has no group
  CHECK(r.reward == Approx(1.5 + 0.5));
  RewardSample rep = math("<think> x x x x </think><answer>5</answer>", "4");
  rep.num_tokens = 100;
  r = c.score(rep);
  CHECK(r.component("cosine") == Approx(0.0));
  CHECK(r.component("repetition_penalty") == Approx(-0.5));  // 6 words, 3 distinct
  CHECK(r.reward == Approx(0.5 - 2 * 0.5));

  // Groups: prompts 7 and 9, in mixed order; lengths 10/30 and 20/20.
  std::vector<RewardSample> batch;
  for (int64_t n : {10, 20, 30, 20}) {
    batch.push_back(math("<think>a</think><answer>4</answer>", "4"));
    batch.back().num_tokens = n;
  }
  batch[2].completion = "<think>a</think><answer>3</answer>";  // wrong
  const std::vector<RewardResult> out = c.score_batch(batch, {7, 9, 7, 9});
  CHECK(out[0].component("length_penalty") == 0.5);
  CHECK(out[2].component("length_penalty") == -0.5);
  CHECK(out[1].component("length_penalty") == 0.0);
  CHECK(out[3].component("length_penalty") == 0.0);
  for (const RewardResult& x : out) {  // the total is the weighted sum, in config order
    double sum = 0;
    for (const RewardComponent& k : x.components) sum += k.weight * k.value;
    CHECK(x.reward == sum);
  }
  CHECK(out[0].reward == c.score(batch[0]).reward + 0.1 * 0.5);
  // Without groups every sample stands alone.
  CHECK(c.score_batch(batch)[0].component("length_penalty") == 0.0);

  // The token count is needed; its absence is the caller's error, not the model's.
  CHECK_THROWS_WITH(c.score(math("x", "4")), Catch::Contains("token count"));
  CHECK_THROWS_WITH(c.score_batch({batch[0], math("x", "4")}), Catch::Contains("batch sample 1"));
  // The R1-Zero default needs none.
  CHECK_FALSE(RewardsConfig{}.needs_num_tokens());
  CHECK_NOTHROW(RewardComposer{RewardsConfig{}}.score(math("x", "4")));
}

TEST_CASE("cosine max_len: 0 is the rollout's max_new_tokens and errors name the key", "[rewards]") {
  TempDir dir;
  RewardsConfig cfg = load_rewards_yaml(dir, "rewards:\n  functions:\n    - {name: cosine}\n");
  CHECK(cfg.functions[0].max_len == 0);
  CHECK_THROWS_WITH(RewardComposer{cfg}, Catch::Contains("rewards.functions[0].max_len") &&
                                             Catch::Contains("rollout.max_new_tokens"));
  cfg.resolve_lengths(64);
  CHECK(cfg.functions[0].max_len == 64);
  cfg.resolve_lengths(32);  // only a 0 is resolved
  CHECK(cfg.functions[0].max_len == 64);
  CHECK_NOTHROW(RewardComposer{cfg});
  CHECK_THAT(config_error("rewards:\n  functions:\n    - {name: cosine, max_len: -1}\n"),
             Catch::Contains("rewards.functions[0].max_len"));
  CHECK_THAT(config_error("rewards:\n  functions:\n    - {name: cosine, wrong_long: .inf}\n"),
             Catch::Contains("rewards.functions[0].wrong_long") && Catch::Contains("finite"));
  CHECK_THAT(config_error("rewards:\n  functions:\n    - {name: repetition_penalty, ngram_size: 0}\n"),
             Catch::Contains("rewards.functions[0].ngram_size"));
  CHECK_THAT(config_error("rewards:\n  functions:\n    - {name: repetition_penalty, ngram_size: 65}\n"),
             Catch::Contains("rewards.functions[0].ngram_size"));
  CHECK_THAT(config_error("rewards:\n  functions:\n    - {name: length}\n"),
             Catch::Contains("rewards.functions[0].name") && Catch::Contains("length_penalty"));
}

TEST_CASE("the config maps onto the verifiers' own structs", "[rewards]") {
  TempDir dir;
  RewardsConfig cfg = load_rewards_yaml(dir, R"(
rewards:
  code:
    sandbox: none
    fractional: true
    accept_unlabelled: false
    max_concurrent: 3
    limits: {wall_seconds: 2.5, memory_bytes: 268435456}
)");
  SandboxConfig s = cfg.sandbox_config();
  CHECK(s.mode == SandboxMode::None);
  CHECK(s.max_concurrent == 3);
  CHECK(s.limits.wall_seconds == 2.5);
  CodeRewardConfig c = cfg.code_reward_config();
  CHECK(c.fractional);
  CHECK_FALSE(c.accept_unlabelled);
  CHECK(c.run_limits.memory_bytes == 268435456);
  CHECK(c.run_limits.cpu_seconds == CodeRewardConfig::default_run_limits().cpu_seconds);
  CHECK(c.compile_limits.wall_seconds == CodeRewardConfig::default_compile_limits().wall_seconds);
  // Dumped and reloaded: the same values.
  RewardsOnly wrapped{cfg};
  RewardsConfig back = load_rewards_yaml(dir, dump_config_as(wrapped));
  CHECK(back.code.limits.wall_seconds == 2.5);
  CHECK(back.functions.size() == 2);
  CHECK(back.code.sandbox == "none");
}

TEST_CASE("the example configs/rewards-*.yaml load", "[rewards]") {
  const std::string dir = std::string(ZEROTH_SOURCE_DIR) + "/configs/";
  RewardsConfig r1 = load_config_as<RewardsOnly>(dir + "rewards-r1zero.yaml", {}).rewards;
  CHECK(r1.functions.size() == 2);
  CHECK(r1.math.extractors.front() == "answer_tag");
  RewardsConfig code = load_config_as<RewardsOnly>(dir + "rewards-code.yaml", {}).rewards;
  REQUIRE(code.functions.size() == 3);
  CHECK(code.functions[2].name == "tag_count");
  CHECK(code.math.extractors.front() == "answer_tag");  // from its defaults
  RewardsConfig lang = load_config_as<RewardsOnly>(dir + "rewards-language.yaml", {}).rewards;
  REQUIRE(lang.functions.size() == 3);
  CHECK(lang.functions[2].script == "en");
  RewardComposer c(lang);
  CHECK(c.score(math("<think>two and two</think><answer>4</answer>", "4")).reward == Approx(2.1));
  RewardsConfig len = load_config_as<RewardsOnly>(dir + "rewards-length.yaml", {}).rewards;
  REQUIRE(len.functions.size() == 4);
  CHECK(len.functions[0].name == "cosine");
  CHECK(len.functions[0].max_len == 0);
  len.resolve_lengths(1000);
  RewardSample s = math("<think>two and two</think><answer>4</answer>", "4");
  s.num_tokens = 0;
  CHECK(RewardComposer(len).score(s).reward == Approx(1.0 + 1.0));
}

TEST_CASE("parse_reward_sample: the JSONL schema and its errors", "[rewards]") {
  RewardSample m = parse_reward_sample(R"({"kind": "math", "completion": "x", "gold": 42})", "f:1");
  CHECK(m.kind == RewardKind::Math);
  CHECK(m.gold == "42");
  RewardSample a = parse_reward_sample(
      R"J({"kind": "code", "completion": "c", "tests": {"asserts": ["assert f()"], "setup": "K=1", "imports": ["import os"]}})J",
      "f:2");
  CHECK(a.kind == RewardKind::Code);
  CHECK(a.problem.asserts == std::vector<std::string>{"assert f()"});
  CHECK(a.problem.test_setup_code == "K=1");
  CHECK(a.problem.test_imports == std::vector<std::string>{"import os"});
  RewardSample io = parse_reward_sample(
      R"({"kind": "code", "completion": "c", "tests": {"stdio": [{"input": "1", "output": "2"}]}})", "f:3",
      CodeLanguage::Cpp);
  CHECK(io.problem.language == CodeLanguage::Cpp);  // the default language
  REQUIRE(io.problem.stdio_cases.size() == 1);
  CHECK(io.problem.stdio_cases[0].expected_output == "2");

  auto error = [](const std::string& line) {
    try {
      parse_reward_sample(line, "data.jsonl:7");
    } catch (const DataError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK_THAT(error("{bad json"), Catch::StartsWith("data.jsonl:7: invalid JSON"));
  CHECK_THAT(error("[1]"), Catch::Contains("expected a JSON object"));
  CHECK_THAT(error(R"({"kind": "text", "completion": "x"})"), Catch::Contains("\"kind\"") && Catch::Contains("text"));
  CHECK_THAT(error(R"({"kind": "math", "gold": "1"})"), Catch::Contains("\"completion\"") && Catch::Contains("missing"));
  CHECK_THAT(error(R"({"kind": "math", "completion": "x"})"), Catch::Contains("\"gold\""));
  CHECK_THAT(error(R"({"kind": "code", "completion": "x"})"), Catch::Contains("\"tests\""));
  CHECK_THAT(error(R"({"kind": "code", "completion": "x", "tests": {}})"), Catch::Contains("neither"));
  CHECK_THAT(error(R"({"kind": "code", "completion": "x", "tests": {"asserts": ["a"], "stdio": []}})"),
             Catch::Contains("both"));
  CHECK_THAT(error(R"({"kind": "code", "completion": "x", "tests": {"asserts": []}})"),
             Catch::Contains("tests.asserts"));
  CHECK_THAT(error(R"({"kind": "code", "completion": "x", "tests": {"asserts": [1]}})"),
             Catch::Contains("tests.asserts[0]"));
  CHECK_THAT(error(R"({"kind": "code", "completion": "x", "tests": {"stdio": [{"input": "1"}]}})"),
             Catch::Contains("tests.stdio[0].output"));
  CHECK_THAT(error(R"({"kind": "code", "completion": "x", "tests": {"stdio": [{"input": "1", "output": "1"}], "language": "rust"}})"),
             Catch::Contains("tests.language"));
  CHECK_THAT(error(R"({"kind": "code", "completion": "x", "tests": {"asserts": ["a"], "timeout": 3}})"),
             Catch::Contains("unknown key \"timeout\""));
  CHECK_THAT(error(R"({"kind": "math", "completion": "x", "gold": 1, "tokens": -1})"), Catch::Contains("\"tokens\""));
  CHECK_THAT(error(R"({"kind": "math", "completion": "x", "gold": 1, "tokens": 2.5})"), Catch::Contains("\"tokens\""));
  CHECK(parse_reward_sample(R"({"kind": "math", "completion": "x", "gold": 1, "tokens": 12})", "f").num_tokens == 12);
  CHECK(m.num_tokens == -1);  // absent: unknown
}

TEST_CASE("code_tests_json reads back to the same problem", "[rewards]") {
  CodeProblem a;
  a.asserts = {"assert f(1) == 2", "assert f(\"\\n\") == 0"};
  a.test_setup_code = "K = 1";
  a.test_imports = {"import math"};
  CodeProblem io;
  io.language = CodeLanguage::Cpp;
  io.stdio_cases = {{"1 2\n", "3\n"}, {"", "0"}};
  for (const CodeProblem& p : {a, io}) {
    nlohmann::json line = {{"kind", "code"}, {"completion", "c"}};
    line["tests"] = nlohmann::json::parse(code_tests_json(p));
    const CodeProblem back = parse_reward_sample(line.dump(), "f", CodeLanguage::Python).problem;
    CHECK(back.language == p.language);
    CHECK(back.asserts == p.asserts);
    CHECK(back.test_setup_code == p.test_setup_code);
    CHECK(back.test_imports == p.test_imports);
    REQUIRE(back.stdio_cases.size() == p.stdio_cases.size());
    for (size_t i = 0; i < p.stdio_cases.size(); ++i) {
      CHECK(back.stdio_cases[i].input == p.stdio_cases[i].input);
      CHECK(back.stdio_cases[i].expected_output == p.stdio_cases[i].expected_output);
    }
  }
}

TEST_CASE("zeroth reward: single math check and usage errors", "[rewards][cli]") {
  int rc = -1;
  std::string out = capture_stdout(
      [] { return cli::cmd_reward({"--completion", "<think>r</think><answer>\\frac{1}{2}</answer>", "--gold", "0.5"}); },
      &rc);
  CHECK(rc == 0);
  CHECK_THAT(out, Catch::Contains("verdict    correct") && Catch::Contains("reward     2"));
  out = capture_stdout([] { return cli::cmd_reward({"--completion", "4", "--gold", "4", "--format", "none",
                                                    "--extractors", "last_number"}); },
                       &rc);
  CHECK_THAT(out, Catch::Contains("verdict    correct") && Catch::Contains("reward     1"));
  CHECK_FALSE(Catch::Contains("format ").match(out));
  CHECK_THROWS_AS(cli::cmd_reward({}), UsageError);
  CHECK_THROWS_AS(cli::cmd_reward({"--completion", "x", "--gold", "1", "--input", "a.jsonl"}), UsageError);
  CHECK_THROWS_AS(cli::cmd_reward({"--completion", "x"}), UsageError);  // no --gold
  CHECK_THROWS_AS(cli::cmd_reward({"--completion", "x", "--gold", "1", "--format", "loose"}), UsageError);
  CHECK_THROWS_AS(cli::cmd_reward({"--completion", "x", "--gold", "1", "--set", "run.seed=3"}), UsageError);
  CHECK_THROWS_AS(cli::cmd_reward({"--completion", "x", "--gold", "1", "--extractors", "boxd"}), ConfigError);
}

TEST_CASE("zeroth reward: math batch, --config with a full run config, bad lines", "[rewards][cli]") {
  TempDir dir;
  const std::string input = dir.write("in.jsonl",
      "{\"id\": 1, \"kind\": \"math\", \"completion\": \"<think>a</think><answer>3</answer>\", \"gold\": \"3\"}\n"
      "\n"
      "{\"id\": 2, \"kind\": \"math\", \"completion\": \"The answer is 5.\", \"gold\": 3}\n"
      "{\"id\": 3, \"kind\": \"math\", \"completion\": \"no idea\", \"gold\": \"3\"}\n");
  const std::string config = dir.write("run.yaml",
      "run: {name: x}\n"
      "rewards:\n  functions:\n    - {name: accuracy, weight: 1.0}\n    - {name: format, weight: 0.1}\n");
  const std::string output = (dir.path / "out.jsonl").string();
  int rc = -1;
  std::string out = capture_stdout(
      [&] { return cli::cmd_reward({"--input", input, "--output", output, "--config", config}); }, &rc);
  CHECK(rc == 0);
  auto lines = read_jsonl(output);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0]["id"] == 1);  // other keys kept
  CHECK(lines[0]["reward"].get<double>() == Approx(1.1));
  CHECK(lines[0]["verdict"] == "correct");
  CHECK(lines[0]["components"]["format"].get<double>() == 1.0);
  CHECK(lines[1]["verdict"] == "wrong_answer");
  CHECK(lines[1]["extracted"] == "5");
  CHECK(lines[1]["reward"].get<double>() == 0.0);
  CHECK(lines[2]["verdict"] == "no_answer");
  CHECK_THAT(out, Catch::Contains("math.correct") && Catch::Contains("math.no_answer") &&
                      Catch::Contains("mean reward 0.3667"));

  // --set on top of the config.
  capture_stdout([&] { return cli::cmd_reward({"--input", input, "--output", output, "--config", config,
                                               "--set", "rewards.functions[1].weight=0.5"}); },
                 &rc);
  CHECK(read_jsonl(output)[0]["reward"].get<double>() == Approx(1.5));

  // A bad line names file:line; nothing is written.
  fs::remove(output);
  const std::string bad = dir.write("bad.jsonl",
      "{\"kind\": \"math\", \"completion\": \"x\", \"gold\": \"3\"}\n"
      "{\"kind\": \"math\", \"completion\": \"x\", \"gold\": [3]}\n");
  try {
    cli::cmd_reward({"--input", bad, "--output", output});
    FAIL("expected a DataError");
  } catch (const DataError& e) {
    CHECK_THAT(e.what(), Catch::Contains("bad.jsonl:2") && Catch::Contains("\"gold\""));
  }
  CHECK_FALSE(fs::exists(output));
  CHECK_THROWS_AS(cli::cmd_reward({"--input", (dir.path / "missing.jsonl").string(), "--output", output}), DataError);
  const std::string bad_cfg = dir.write("bad.yaml", "rewards:\n  math: {rel_tol: 2}\n");
  CHECK_THROWS_AS(cli::cmd_reward({"--input", input, "--output", output, "--config", bad_cfg}), ConfigError);

  // Paths checked before the work: a directory as input or output, the input as output,
  // an output in a missing directory. Nothing is left behind (no OUT.tmp).
  CHECK_THROWS_WITH(cli::cmd_reward({"--input", dir.path.string(), "--output", output}),
                    Catch::Contains(dir.path.string() + ": is a directory (expected a JSONL file)"));
  const fs::path sub = dir.path / "sub";
  fs::create_directories(sub);
  CHECK_THROWS_WITH(cli::cmd_reward({"--input", input, "--output", sub.string()}),
                    Catch::Contains("--output " + sub.string() + ": is a directory"));
  CHECK_FALSE(fs::exists(sub.string() + ".tmp"));
  CHECK_THROWS_WITH(cli::cmd_reward({"--input", input, "--output", (dir.path / "nosuch" / "o.jsonl").string()}),
                    Catch::Contains("does not exist"));
  // The output may be the input (read whole, then replaced atomically).
  const std::string copy = dir.write("inplace.jsonl", read_text(input));
  capture_stdout([&] { return cli::cmd_reward({"--input", copy, "--output", copy}); }, &rc);
  CHECK(rc == 0);
  CHECK(read_jsonl(copy).size() == 3);
  CHECK(read_jsonl(copy)[0].contains("reward"));
}

TEST_CASE("zeroth reward: --tokens and --group-by and the cosine max_len of a run config", "[rewards][cli]") {
  TempDir dir;
  // Two prompts (p), the second answered twice; lengths in "tokens".
  const std::string input = dir.write("in.jsonl",
      "{\"p\": 1, \"r\": 0, \"kind\": \"math\", \"completion\": \"<answer>3</answer>\", \"gold\": 3, \"tokens\": 8}\n"
      "{\"p\": 2, \"r\": 0, \"kind\": \"math\", \"completion\": \"<answer>3</answer>\", \"gold\": 3, \"tokens\": 8}\n"
      "{\"p\": 2, \"r\": 0, \"kind\": \"math\", \"completion\": \"<answer>3</answer>\", \"gold\": 3, \"tokens\": 16}\n"
      "{\"p\": 1, \"r\": 1, \"kind\": \"math\", \"completion\": \"<answer>3</answer>\", \"gold\": 3, \"tokens\": 16}\n");
  const std::string config = dir.write("run.yaml",
      "run: {name: x}\n"
      "rollout: {max_new_tokens: 16, temperature: 0.7}\n"
      "rewards:\n  functions:\n    - {name: cosine}\n    - {name: length_penalty, weight: 1}\n");
  const std::string output = (dir.path / "out.jsonl").string();
  int rc = -1;
  capture_stdout([&] { return cli::cmd_reward({"--input", input, "--output", output, "--config", config,
                                               "--group-by", "p"}); }, &rc);
  CHECK(rc == 0);
  auto lines = read_jsonl(output);
  REQUIRE(lines.size() == 4);
  // cosine max_len = rollout.max_new_tokens = 16: 8 tokens is halfway, 16 the long end.
  CHECK(lines[0]["components"]["cosine"].get<double>() == Approx(0.75));
  CHECK(lines[2]["components"]["cosine"].get<double>() == Approx(0.5));
  for (size_t i : {0, 1}) CHECK(lines[i]["components"]["length_penalty"].get<double>() == 0.5);
  for (size_t i : {2, 3}) CHECK(lines[i]["components"]["length_penalty"].get<double>() == -0.5);
  // Grouped by both keys, prompt 1's answers are in different groups of one.
  capture_stdout([&] { return cli::cmd_reward({"--input", input, "--output", output, "--config", config,
                                               "--group-by", "p,r"}); }, &rc);
  lines = read_jsonl(output);
  CHECK(lines[0]["components"]["length_penalty"].get<double>() == 0.0);
  CHECK(lines[2]["components"]["length_penalty"].get<double>() == -0.5);
  CHECK(lines[3]["components"]["length_penalty"].get<double>() == 0.0);
  // A missing group key or token count names the line.
  CHECK_THROWS_WITH(cli::cmd_reward({"--input", input, "--output", output, "--config", config, "--group-by", "q"}),
                    Catch::Contains("in.jsonl:1") && Catch::Contains("\"q\""));
  CHECK_THROWS_AS(cli::cmd_reward({"--input", input, "--output", output, "--group-by", "p,"}), UsageError);
  const std::string no_tokens = dir.write("nt.jsonl", "{\"kind\": \"math\", \"completion\": \"3\", \"gold\": 3}\n");
  CHECK_THROWS_WITH(cli::cmd_reward({"--input", no_tokens, "--output", output, "--config", config}),
                    Catch::Contains("nt.jsonl:1") && Catch::Contains("\"tokens\""));
  // Without a rollout section, the rollout default (1024) applies; --tokens in single mode.
  const std::string rewards_only = dir.write("r.yaml", "rewards:\n  functions:\n    - {name: cosine}\n");
  std::string out = capture_stdout([&] { return cli::cmd_reward({"--completion", "<answer>3</answer>", "--gold", "3",
                                                                 "--tokens", "1024", "--config", rewards_only}); },
                                   &rc);
  CHECK_THAT(out, Catch::Contains("cosine     0.5 "));
  CHECK_THROWS_AS(cli::cmd_reward({"--completion", "3", "--gold", "3", "--tokens", "x"}), UsageError);
  CHECK_THROWS_AS(cli::cmd_reward({"--input", input, "--output", output, "--tokens", "3"}), UsageError);
  CHECK_THROWS_AS(cli::cmd_reward({"--completion", "3", "--gold", "3", "--group-by", "p"}), UsageError);
  const std::string bad_rollout = dir.write("b.yaml", "rollout: {max_new_tokens: many}\nrewards: {}\n");
  CHECK_THROWS_WITH(cli::cmd_reward({"--completion", "3", "--gold", "3", "--config", bad_rollout}),
                    Catch::Contains("rollout.max_new_tokens") && Catch::Contains("b.yaml"));
}

// A python reward function through `zeroth reward`: the line's source, prompt and
// extra_info reach it; a failed call writes reward_error, a dict's numbers python_extra,
// and what an input line (a dump) already had of either is replaced, not kept.
TEST_CASE("zeroth reward: a python function's errors and extras in the output", "[rewards][cli]") {
  TempDir dir;
  const std::string py = dir.write("judge.py",
      "def compute_score(data_source, solution_str, extra_info, prompt):\n"
      "    if solution_str == 'boom':\n"
      "        raise ValueError('boom')\n"
      "    assert data_source == 'gsm8k' and prompt == 'Q' and extra_info == {'id': 3}\n"
      "    return {'score': 1.0, 'hits': 2}\n");
  const std::string input = dir.write("in.jsonl",
      "{\"kind\": \"math\", \"completion\": \"4\", \"gold\": \"4\", \"source\": \"gsm8k\", \"prompt\": \"Q\", "
      "\"extra_info\": {\"id\": 3}, \"reward_error\": \"old\"}\n"
      "{\"kind\": \"math\", \"completion\": \"boom\", \"gold\": \"4\", \"python_extra\": {\"old\": 1}}\n");
  const std::string config = dir.write("r.yaml", "rewards:\n  functions: [{name: python}]\n  python: {path: " + py +
                                                      ", workers: 1}\n");
  const std::string output = (dir.path / "out.jsonl").string();
  int rc = -1;
  const std::string out = capture_stdout(
      [&] { return cli::cmd_reward({"--input", input, "--output", output, "--config", config}); }, &rc);
  REQUIRE(rc == 0);
  const auto lines = read_jsonl(output);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0]["reward"].get<double>() == 1.0);
  CHECK(!lines[0].contains("reward_error"));
  CHECK(lines[0]["python_extra"]["hits"].get<double>() == 2.0);
  CHECK(lines[1]["reward"].get<double>() == 0.0);
  CHECK_THAT(lines[1]["reward_error"].get<std::string>(), Catch::Contains("ValueError: boom"));
  CHECK(!lines[1].contains("python_extra"));
  CHECK_THAT(out, Catch::Contains("python.failed_calls"));
}

TEST_CASE("zeroth bench reward: math rows print a table and JSON", "[rewards][cli]") {
  int rc = -1;
  std::string out = capture_stdout([] { return cli::bench_reward({"--seconds", "0.05", "--threads", "2", "--no-code"}); }, &rc);
  CHECK(rc == 0);
  CHECK_THAT(out, Catch::Contains("math checks, 1 thread"));
  auto json = nlohmann::json::parse(out.substr(out.find("{\"bench\"")));
  CHECK(json["bench"] == "reward");
  CHECK(json["math_checks_per_s_1_thread"].get<double>() > 0);
  CHECK(json["math_threads"] == 2);
  CHECK_THROWS_AS(cli::bench_reward({"--seconds", "x"}), UsageError);
}

// ---- code: these run programs in the sandbox (CTest entry rewards_code, contained) ----

namespace {

const char kSmallCode[] = R"(
rewards:
  code:
    max_concurrent: 2
    limits: {wall_seconds: 5, cpu_seconds: 3, memory_bytes: 268435456, max_processes: 16}
)";

RewardSample code_asserts(const std::string& completion) {
  RewardSample s;
  s.kind = RewardKind::Code;
  s.completion = completion;
  s.problem.asserts = {"assert add(1, 2) == 3", "assert add(-1, 1) == 0"};
  return s;
}

}  // namespace

TEST_CASE("code samples route to the sandbox; batches mix kinds in order", "[rewards_code]") {
  TempDir dir;
  RewardComposer c(load_rewards_yaml(dir, kSmallCode));
  RewardResult good = c.score(code_asserts(
      "<think>add them</think><answer>\n```python\ndef add(a, b):\n    return a + b\n```\n</answer>"));
  CHECK(good.verdict == "passed");
  CHECK(good.correct);
  CHECK(good.format_ok);
  CHECK(good.reward == 2.0);
  RewardResult wrong = c.score(code_asserts("```python\ndef add(a, b):\n    return a - b\n```"));
  CHECK(wrong.verdict == "wrong_answer");
  CHECK(wrong.reward == 0.0);
  CHECK(c.score(code_asserts("no code")).verdict == "no_code");

  RewardSample io;
  io.kind = RewardKind::Code;
  io.completion = "```python\na, b = map(int, input().split())\nprint(a * b)\n```";
  io.problem.stdio_cases = {{"3 4\n", "12\n"}, {"5 6\n", "30"}};
  std::vector<RewardSample> batch = {math("\\boxed{1}", "1"), io, code_asserts("```python\nraise SystemExit(1)\n```"),
                                     math("\\boxed{2}", "1"), code_asserts("```python\ndef add(a, b): return a+b\n```")};
  std::vector<RewardResult> r = c.score_batch(batch);
  REQUIRE(r.size() == 5);
  CHECK(r[0].verdict == "correct");
  CHECK(r[1].verdict == "passed");
  CHECK(r[2].verdict == "runtime_error");
  CHECK(r[3].verdict == "wrong_answer");
  CHECK(r[4].verdict == "passed");
  auto counts = c.verdict_counts();
  CHECK(counts["code.passed"] == 3);
  CHECK(counts["code.wrong_answer"] == 1);
  CHECK(counts["code.no_code"] == 1);
  CHECK(counts["code.runtime_error"] == 1);
  CHECK(counts["math.correct"] == 1);
  CHECK(counts["math.wrong_answer"] == 1);

  // A malformed problem is a data error, before anything runs.
  RewardSample empty;
  empty.kind = RewardKind::Code;
  CHECK_THROWS_AS(c.score_batch({math("1", "1"), empty}), DataError);
}

TEST_CASE("fractional code accuracy", "[rewards_code]") {
  TempDir dir;
  RewardsConfig cfg = load_rewards_yaml(dir, kSmallCode);
  cfg.code.fractional = true;
  cfg.functions = {{"accuracy", 1.0, "strict", "en"}};
  RewardComposer c(cfg);
  RewardResult half = c.score(code_asserts("```python\ndef add(a, b):\n    return 3\n```"));
  CHECK(half.verdict == "wrong_answer");
  CHECK(half.reward == 0.5);
  CHECK_FALSE(half.correct);
}

TEST_CASE("zeroth reward: batch with math, code asserts, python and C++ stdio", "[rewards_code]") {
  TempDir dir;
  const std::string config = dir.write("rewards.yaml", kSmallCode);
  nlohmann::json lines[] = {
      {{"kind", "math"}, {"completion", "<think>x</think><answer>7</answer>"}, {"gold", "7"}},
      {{"kind", "code"},
       {"completion", "```python\ndef sq(x):\n    return x * x + K\n```"},
       {"tests", {{"asserts", {"assert sq(3) == 9", "assert sq(0) == 0"}}, {"setup", "K = 0"}}}},
      {{"kind", "code"},
       {"completion", "```python\nprint(sum(map(int, input().split())))\n```"},
       {"tests", {{"stdio", {{{"input", "1 2 3\n"}, {"output", "6\n"}}}}, {"language", "python"}}}},
      {{"kind", "code"},
       {"completion", "```cpp\n#include <iostream>\nint main(){long a,b;std::cin>>a>>b;std::cout<<a-b<<\"\\n\";}\n```"},
       {"tests", {{"stdio", {{{"input", "10 4"}, {"output", "6"}}, {{"input", "1 1"}, {"output", "0"}}}},
                  {"language", "cpp"}}}},
      {{"kind", "code"},
       {"completion", "```python\nwhile True: pass\n```"},
       {"tests", {{"stdio", {{{"input", ""}, {"output", "1"}}}}}}},
  };
  std::string text;
  for (const auto& l : lines) text += l.dump() + "\n";
  const std::string input = dir.write("in.jsonl", text);
  const std::string output = (dir.path / "out.jsonl").string();
  int rc = -1;
  std::string out = capture_stdout(
      [&] { return cli::cmd_reward({"--input", input, "--output", output, "--config", config}); }, &rc);
  CHECK(rc == 0);
  auto res = read_jsonl(output);
  REQUIRE(res.size() == 5);
  CHECK(res[0]["verdict"] == "correct");
  CHECK(res[0]["reward"].get<double>() == 2.0);
  CHECK(res[1]["verdict"] == "passed");
  CHECK(res[1]["reward"].get<double>() == 1.0);  // no format tags
  CHECK(res[2]["verdict"] == "passed");
  CHECK(res[3]["verdict"] == "passed");
  CHECK(res[4]["verdict"] == "timeout");
  CHECK(res[4]["components"]["accuracy"].get<double>() == 0.0);
  CHECK_THAT(out, Catch::Contains("code.passed") && Catch::Contains("code.timeout") && Catch::Contains("math.correct"));
}
