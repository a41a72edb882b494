// Reward composition: the `rewards:` config section and the RewardComposer that turns
// one completion into a scalar reward (R1-Zero: accuracy + format), routed per sample
// by the dataset's kind (math or code), with every component reported separately.
//
//   total = sum_i weight_i * value_i   over rewards.functions
//
// Functions: accuracy (math: verify_math, 1 or 0; code: CodeChecker's reward, 1/0 or
// the fraction of tests passed), format (strict or lenient, format_reward.h),
// tag_count (0.25 per tag present once), language (share of reasoning words in the
// target script), all in [0, 1]; and the length/repetition shaping of long traces:
// cosine (correctness scaled by length, between its four end values),
// repetition_penalty (minus the repeated n-gram share, in [-1, 0]) and length_penalty
// (Kimi k1.5, relative to the prompt's group, in [-0.5, 0.5]; length_reward.h).
// docs/rewards.md has the exact definitions, verdicts and the JSONL schema of
// `zeroth reward`.
//
// Owns: the config structs (visitable, validated with ConfigErrors naming keys), their
// mapping onto MathVerifyOptions / FormatTags / SandboxConfig / CodeRewardConfig, the
// composition, routing, per-verdict counters. Must not: verify answers or run code
// itself (math_verify.h, format_reward.h, code_reward.h do), or throw on model output.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "zeroth/code_reward.h"
#include "zeroth/config_reflect.h"
#include "zeroth/format_reward.h"
#include "zeroth/length_reward.h"
#include "zeroth/math_verify.h"
#include "zeroth/python_reward.h"
#include "zeroth/sandbox.h"

namespace zeroth {

// One entry of `rewards.functions`.
struct RewardFunctionConfig {
  std::string name = "accuracy";
  double weight = 1.0;
  std::string variant = "strict";  // format only
  std::string script = "en";       // language only (parse_script names)
  int ngram_size = 3;              // repetition_penalty only
  int64_t max_len = 0;             // cosine only: tokens; 0 = rollout.max_new_tokens
  double correct_short = 1.0;      // cosine only: the four end values (CosineLengthParams)
  double correct_long = 0.5;
  double wrong_short = -1.0;
  double wrong_long = -0.5;

  template <class V>
  void visit(V& v) {
    v.field("name", name, "Reward function")
        .one_of({"accuracy", "format", "tag_count", "language", "cosine", "repetition_penalty", "length_penalty",
                 "python"})
        .required();
    v.field("weight", weight, "Weight of this function's value in the total reward");
    v.field("variant", variant, "format only: whole completion must match (strict) or contain the blocks (lenient)")
        .one_of({"strict", "lenient"});
    v.field("script", script, "language only: target script of the reasoning (en/latin, zh/han, ru, ar, hi, ko, ja)");
    v.field("ngram_size", ngram_size, "repetition_penalty only: words per n-gram, 1 to 64").min(1).max(64);
    v.field("max_len", max_len,
            "cosine only: completion tokens at which the long end values are reached (0 = rollout.max_new_tokens)")
        .min(0);
    v.field("correct_short", correct_short, "cosine only: value of a correct completion of length 0");
    v.field("correct_long", correct_long, "cosine only: value of a correct completion of max_len tokens or more");
    v.field("wrong_short", wrong_short, "cosine only: value of a wrong completion of length 0");
    v.field("wrong_long", wrong_long, "cosine only: value of a wrong completion of max_len tokens or more");
  }

  CosineLengthParams cosine_params() const;
};

// `rewards.math`: the answer verifier's options.
struct RewardsMathConfig {
  std::vector<std::string> extractors = {"boxed", "answer_tag", "the_answer_is", "gsm8k"};
  double rel_tol = 1e-6;
  double abs_tol = 1e-9;
  bool ordered_lists = false;

  template <class V>
  void visit(V& v) {
    v.field("extractors", extractors,
            "Answer extractors tried in order: boxed, answer_tag, the_answer_is, gsm8k, last_number");
    v.field("rel_tol", rel_tol, "Relative tolerance of numeric comparisons, in (0, 1)");
    v.field("abs_tol", abs_tol, "Absolute tolerance near zero").min(0);
    v.field("ordered_lists", ordered_lists, "Bare comma lists '1, 2, 3' compare in order");
  }
};

// `rewards.format`: the R1-Zero template's tags.
struct RewardsFormatConfig {
  std::string think_open = "<think>";
  std::string think_close = "</think>";
  std::string answer_open = "<answer>";
  std::string answer_close = "</answer>";
  bool think_open_in_prompt = false;

  template <class V>
  void visit(V& v) {
    v.field("think_open", think_open, "Opening tag of the reasoning");
    v.field("think_close", think_close, "Closing tag of the reasoning");
    v.field("answer_open", answer_open, "Opening tag of the answer");
    v.field("answer_close", answer_close, "Closing tag of the answer");
    v.field("think_open_in_prompt", think_open_in_prompt,
            "The prompt already ends with think_open: the completion must not repeat it");
  }
};

// Sandbox limits of one run (maps onto SandboxLimits, same names and units).
struct RewardsLimitsConfig {
  double wall_seconds = 10.0;
  int cpu_seconds = 5;
  int64_t memory_bytes = int64_t(1) << 30;
  int max_processes = 32;
  int64_t file_size_bytes = int64_t(16) << 20;
  int open_files = 64;
  int64_t tmp_bytes = int64_t(64) << 20;
  int64_t output_bytes = int64_t(1) << 20;

  static RewardsLimitsConfig from(const SandboxLimits& l);
  SandboxLimits to_limits() const;

  template <class V>
  void visit(V& v) {
    v.field("wall_seconds", wall_seconds, "Wall-clock limit; the whole sandbox is killed after it");
    v.field("cpu_seconds", cpu_seconds, "CPU seconds per process (RLIMIT_CPU)").min(1);
    v.field("memory_bytes", memory_bytes, "Address space per process (RLIMIT_AS), >= 16 MiB").min(16 << 20);
    v.field("max_processes", max_processes, "Processes + threads of one run (RLIMIT_NPROC)").min(1);
    v.field("file_size_bytes", file_size_bytes, "Largest file written (RLIMIT_FSIZE)").min(1);
    v.field("open_files", open_files, "Open files per process (RLIMIT_NOFILE)").min(16);
    v.field("tmp_bytes", tmp_bytes, "Size of the private /tmp (bwrap mode)").min(1);
    v.field("output_bytes", output_bytes, "Cap on captured stdout, and on stderr").min(1);
  }
};

// `rewards.code`: sandbox and code-checker settings.
struct RewardsCodeConfig {
  std::string sandbox = "bwrap";
  std::string language = "python";
  bool fractional = false;
  bool accept_unlabelled = true;
  int max_concurrent = 0;
  RewardsLimitsConfig limits = RewardsLimitsConfig::from(CodeRewardConfig::default_run_limits());
  RewardsLimitsConfig compile_limits = RewardsLimitsConfig::from(CodeRewardConfig::default_compile_limits());

  template <class V>
  void visit(V& v) {
    v.field("sandbox", sandbox, "Isolation of generated code: bwrap, or none (NO isolation: trusted code only)")
        .one_of({"bwrap", "none"});
    v.field("language", language, "Language of stdio tests that do not name one").one_of({"python", "cpp"});
    v.field("fractional", fractional, "Accuracy = fraction of tests passed (else all-or-nothing)");
    v.field("accept_unlabelled", accept_unlabelled, "An unlabelled fenced block counts as the problem's language");
    v.field("max_concurrent", max_concurrent, "Concurrent sandbox runs (0 = 4 x hardware threads)").min(0);
    v.field("limits", limits, "Limits of each test run");
    v.field("compile_limits", compile_limits, "Limits of a C++ compilation");
  }
};

// `rewards.python`: the user's Python reward function (python_reward.h), the value of
// the `python` entry of rewards.functions.
struct RewardsPythonConfig {
  std::string path;
  std::string function = "compute_score";
  std::string interpreter = "python3";
  int workers = 4;
  double timeout_seconds = 30.0;
  std::map<std::string, std::string> kwargs;
  std::vector<std::string> metrics;

  template <class V>
  void visit(V& v) {
    v.field("path", path,
            "The Python file defining the reward function (relative paths: to the working directory); required by "
            "a `python` function");
    v.field("function", function,
            "Its name; called by keyword with the parameters it declares of data_source, solution_str, ground_truth, "
            "extra_info, prompt, num_tokens, kind; returns a number or a dict with score (and optionally correct)");
    v.field("interpreter", interpreter, "Python 3 interpreter: a path, or a name looked up on PATH");
    v.field("workers", workers, "Worker processes per rank (calls at once)").min(1).max(256);
    v.field("timeout_seconds", timeout_seconds,
            "Per call; a slower call scores 0 as an error and its worker is killed and started again");
    v.field("kwargs", kwargs,
            "More keyword arguments of every call ({format_score: 0.1}): numbers, true/false and null pass as "
            "such, other values as strings; each must be a parameter of the function");
    v.field("metrics", metrics,
            "Keys of the returned dict to log: metric python/KEY, their mean over the step's completions that "
            "return a number for them (verl's reward_extra_info)");
  }
  // kwargs as a JSON object (numbers, bools and null typed, the rest strings).
  std::string kwargs_json() const;
};

// The `rewards:` section. Default: R1-Zero, accuracy 1.0 + strict format 1.0.
struct RewardsConfig {
  std::vector<RewardFunctionConfig> functions = {{"accuracy", 1.0, "strict", "en"},
                                                 {"format", 1.0, "strict", "en"}};
  RewardsMathConfig math;
  RewardsFormatConfig format;
  RewardsCodeConfig code;
  RewardsPythonConfig python;

  template <class V>
  void visit(V& v) {
    v.field("functions", functions, "Reward functions and their weights: total = sum of weight x value");
    v.field("math", math, "Math answer verifier");
    v.field("format", format, "Tags of the <think>/<answer> template");
    v.field("code", code, "Code execution (sandbox) for code samples");
    v.field("python", python, "The user's Python reward function (the `python` entry of functions)");
  }
  // Cross-field checks (unique function names, known extractors and scripts, finite
  // weights and cosine values, non-empty distinct tags, limits). Throws ConfigError
  // "key 'rewards.<key>': ...".
  void validate() const;
  // Sets every cosine max_len of 0 to `max_new_tokens` (the rollout's cap). zeroth train
  // and eval call it; the RewardComposer rejects a 0 that is left.
  void resolve_lengths(int64_t max_new_tokens);
  // True when a function needs RewardSample::num_tokens (cosine, length_penalty).
  bool needs_num_tokens() const;
  // True when rewards.functions has the `python` entry.
  bool has_python() const;

  MathVerifyOptions math_options() const;
  FormatTags format_tags() const;
  SandboxConfig sandbox_config() const;
  CodeRewardConfig code_reward_config() const;
};

enum class RewardKind { Math, Code };

// Parses "math" or "code"; false otherwise.
bool parse_reward_kind(const std::string& s, RewardKind* out);
const char* reward_kind_name(RewardKind kind);

// One completion to score and what it is checked against.
struct RewardSample {
  RewardKind kind = RewardKind::Math;
  std::string completion;
  std::string gold;         // math: the reference answer
  CodeProblem problem;      // code: the tests
  int64_t num_tokens = -1;  // the completion's length in tokens; -1 = unknown (cosine and
                            // length_penalty need it)
  // What only a `python` function sees (python_reward.h): the prompt's source name, the
  // text the model continued, and the prompt's JSONL record as JSON text ("" = null).
  std::string source;
  std::string prompt;
  std::string extra_info;
};

// Parses one line of the reward JSONL schema (docs/rewards.md):
//   {"kind": "math", "completion": "...", "gold": "..."}            (gold: string or number)
//   {"kind": "code", "completion": "...", "tests": {"asserts": ["assert f(1) == 2", ...],
//                                                   "setup": "...", "imports": ["import math"]}}
//   {"kind": "code", "completion": "...", "tests": {"stdio": [{"input": "...", "output": "..."}],
//                                                   "language": "python" | "cpp"}}
// An optional "tokens" (a non-negative integer) is the completion's token count
// (num_tokens); optional "source" and "prompt" (strings) and "extra_info" (any JSON) are
// what a `python` reward function receives (the rollout dumps write them). Other keys
// are ignored. `default_language` is used by stdio tests without "language".
// Throws DataError "<where>: <key>: expected ..., found ..." (where is e.g. "file.jsonl:12").
RewardSample parse_reward_sample(const std::string& json_line, const std::string& where,
                                 CodeLanguage default_language = CodeLanguage::Python);

// The "tests" object of that schema for a code problem, as JSON text (the inverse of
// the parse: parse_reward_sample reads it back to an equal CodeProblem). The rollout
// dumps use it, so `zeroth reward` can score a dump again.
std::string code_tests_json(const CodeProblem& problem);

struct RewardComponent {
  std::string name;  // the function's name ("accuracy", "format", ...)
  double weight = 0.0;
  double value = 0.0;  // in [0, 1], except the shaping functions (see the top of this file)
};

struct RewardResult {
  double reward = 0.0;    // sum of weight x value
  std::string verdict;    // math: correct|wrong_answer|no_answer; code: code_verdict_name
  bool correct = false;   // math: answer equal to gold; code: every test passed
  bool format_ok = false;  // the configured format check (strict unless a format function says lenient) passed
  std::vector<RewardComponent> components;  // one per rewards.functions entry, in order
  std::string extracted;  // math: the extracted answer (empty when none)
  std::string detail;     // code: why the check failed, when it did
  // A `python` function's call failed (an exception, a bad return value, a crash or a
  // timeout; its value is then 0): what happened, else empty.
  std::string reward_error;
  // The python function's rewards.python.metrics values, in that order (NaN: not returned),
  // and every finite number of its returned dict besides score and correct.
  std::vector<double> python_metrics;
  std::map<std::string, double> python_extra;

  // Value of the component `name`; 0 when there is none.
  double component(const std::string& name) const;
};

// Scores completions. Thread-safe. Math and format run on the calling thread; code runs
// in the sandbox, which is created on the first code sample (or by prepare_code()), so a
// math-only run needs no bubblewrap. A `python` function's workers start in the
// constructor (a file that does not import is a ConfigError there); score_batch calls it
// for the whole batch first, over its workers. A code sample whose correctness the python
// function decides is not run in the sandbox when no `accuracy` function is configured.
class RewardComposer {
 public:
  // Validates `config` (ConfigError), and that every cosine max_len is resolved (> 0);
  // starts the python function's workers (ConfigError when they cannot start).
  explicit RewardComposer(RewardsConfig config);
  ~RewardComposer();
  RewardComposer(const RewardComposer&) = delete;
  RewardComposer& operator=(const RewardComposer&) = delete;

  // Never throws on model output. Throws DataError when a code sample's tests are
  // malformed (none, or both asserts and stdio), or its num_tokens is unknown (< 0) and
  // a function needs it, and ConfigError when the sandbox cannot be created (bwrap
  // missing). A length_penalty component is 0 here: it needs the group (score_batch).
  RewardResult score(const RewardSample& sample) const;
  // Scores a batch: code samples run concurrently through the sandbox pool while math
  // samples are scored on this thread. Results in input order. `groups` (one id per
  // sample, or empty: every sample its own group) says which samples answer the same
  // prompt; length_penalty is computed within each group.
  std::vector<RewardResult> score_batch(const std::vector<RewardSample>& samples,
                                        const std::vector<int64_t>& groups = {}) const;

  // Creates the sandbox now (ConfigError if it cannot be).
  void prepare_code() const;

  // Number of results per "<kind>.<verdict>" ("math.correct", "code.timeout", ...)
  // since construction; with a python function also "python.ok", "python.error" and
  // "python.timeout".
  std::map<std::string, int64_t> verdict_counts() const;
  const RewardsConfig& config() const { return config_; }

 private:
  const CodeChecker& code_checker() const;
  // score() with the python function's result for this sample (null: none configured).
  RewardResult score_with(const RewardSample& sample, const PythonRewardResult* py) const;
  std::vector<PythonRewardResult> call_python(const std::vector<RewardSample>& samples) const;
  void count(const RewardResult& r, RewardKind kind) const;
  // Fills the length_penalty component (when configured) group by group.
  void add_group_functions(const std::vector<RewardSample>& samples, const std::vector<int64_t>& groups,
                           std::vector<RewardResult>& out) const;

  RewardsConfig config_;
  MathVerifyOptions math_opts_;
  FormatTags tags_;
  std::vector<Script> scripts_;  // per function (language only)
  mutable std::mutex code_mu_;
  mutable std::unique_ptr<Sandbox> sandbox_;
  mutable std::unique_ptr<SandboxPool> pool_;
  mutable std::unique_ptr<CodeChecker> checker_;
  std::unique_ptr<PythonRewardPool> python_;
  bool has_accuracy_ = false;  // rewards.functions has accuracy
  mutable std::atomic<bool> python_error_logged_{false};
  mutable std::mutex count_mu_;
  mutable std::map<std::string, int64_t> counts_;
};

}  // namespace zeroth
