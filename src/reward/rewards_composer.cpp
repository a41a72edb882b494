// RewardComposer (rewards.h): routes each sample by kind, computes every configured
// function's value, sums the weighted values, keeps per-verdict counters, and runs
// the code samples of a batch concurrently through the sandbox pool.
// Must not: judge answers or programs itself (math_verify.h / code_reward.h do), or
// throw on anything the model wrote.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <map>
#include <thread>

#include "zeroth/error.h"
#include "zeroth/log.h"
#include "zeroth/rewards.h"

namespace zeroth {
namespace {

// Throws DataError when a code sample's tests cannot be run (a dataset problem).
void check_code_problem(const CodeProblem& p) {
  ZT_THROW_IF_NOT(p.asserts.empty() || p.stdio_cases.empty(), DataError,
                  "code sample: expected asserts or stdio cases, found both (%zu asserts, %zu cases)",
                  p.asserts.size(), p.stdio_cases.size());
  ZT_THROW_IF_NOT(!p.asserts.empty() || !p.stdio_cases.empty(), DataError,
                  "code sample: expected at least one assert or stdio case, found none");
  ZT_THROW_IF_NOT(p.asserts.empty() || p.language == CodeLanguage::Python, DataError,
                  "code sample: assert-style tests need language python, found %s",
                  code_language_name(p.language));
}

// Throws DataError when a function needs the token count and the sample has none.
void check_num_tokens(const RewardSample& s, const RewardsConfig& config) {
  ZT_THROW_IF_NOT(s.num_tokens >= 0 || !config.needs_num_tokens(), DataError,
                  "sample: the cosine and length_penalty rewards need the completion's token count "
                  "(zeroth reward: \"tokens\" in the JSONL, --tokens with --completion), found none");
}

PythonRewardCall python_call(const RewardSample& s) {
  PythonRewardCall c;
  c.data_source = s.source;
  c.solution_str = s.completion;
  c.ground_truth_json = s.kind == RewardKind::Math ? python_json_string(s.gold) : code_tests_json(s.problem);
  c.extra_info_json = s.extra_info;
  c.prompt = s.prompt;
  c.num_tokens = s.num_tokens;
  c.kind = reward_kind_name(s.kind);
  return c;
}

const char* python_status_name(PythonRewardResult::Status s) {
  switch (s) {
    case PythonRewardResult::Status::Ok: return "ok";
    case PythonRewardResult::Status::Error: return "error";
    case PythonRewardResult::Status::Timeout: return "timeout";
  }
  return "error";
}

// The traceback's last line ("ValueError: ..."), for one-line summaries.
std::string last_line(const std::string& s) {
  const size_t nl = s.find_last_of('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

}  // namespace

double RewardResult::component(const std::string& name) const {
  for (const auto& c : components)
    if (c.name == name) return c.value;
  return 0.0;
}

RewardComposer::RewardComposer(RewardsConfig config) : config_(std::move(config)) {
  config_.validate();
  for (size_t i = 0; i < config_.functions.size(); ++i)
    if (config_.functions[i].name == "cosine" && config_.functions[i].max_len <= 0)
      throw ConfigError(strformat("key 'rewards.functions[%zu].max_len': expected a positive number of tokens, "
                                  "found %lld (0 means rollout.max_new_tokens: zeroth train and eval resolve it, "
                                  "zeroth reward takes it from the config's rollout section)",
                                  i, (long long)config_.functions[i].max_len));
  math_opts_ = config_.math_options();
  tags_ = config_.format_tags();
  scripts_.assign(config_.functions.size(), Script::Latin);
  for (size_t i = 0; i < config_.functions.size(); ++i)
    if (config_.functions[i].name == "language") {
      bool ok = parse_script(config_.functions[i].script, &scripts_[i]);
      ZT_ASSERT(ok, "validate() accepted script '%s'", config_.functions[i].script.c_str());
    }
  for (const RewardFunctionConfig& f : config_.functions) has_accuracy_ = has_accuracy_ || f.name == "accuracy";
  if (config_.has_python()) {
    PythonRewardOptions o;
    o.path = config_.python.path;
    o.function = config_.python.function;
    o.interpreter = config_.python.interpreter;
    o.workers = config_.python.workers;
    o.timeout_seconds = config_.python.timeout_seconds;
    o.kwargs_json = config_.python.kwargs_json();
    python_ = std::make_unique<PythonRewardPool>(o);
  }
}

RewardComposer::~RewardComposer() {
  checker_.reset();
  pool_.reset();  // finishes queued runs before the sandbox goes
  sandbox_.reset();
}

void RewardComposer::prepare_code() const { code_checker(); }

const CodeChecker& RewardComposer::code_checker() const {
  std::lock_guard<std::mutex> lock(code_mu_);
  if (!checker_) {
    sandbox_ = std::make_unique<Sandbox>(config_.sandbox_config());
    pool_ = std::make_unique<SandboxPool>(*sandbox_);
    checker_ = std::make_unique<CodeChecker>(*pool_, config_.code_reward_config());
  }
  return *checker_;
}

std::vector<PythonRewardResult> RewardComposer::call_python(const std::vector<RewardSample>& samples) const {
  if (!python_) return {};
  std::vector<PythonRewardCall> calls;
  calls.reserve(samples.size());
  for (const RewardSample& s : samples) calls.push_back(python_call(s));
  std::vector<PythonRewardResult> out = python_->call_batch(calls);
  size_t failed = 0, timeouts = 0, first = out.size();
  for (size_t i = 0; i < out.size(); ++i)
    if (!out[i].ok()) {
      ++failed;
      timeouts += out[i].status == PythonRewardResult::Status::Timeout;
      if (first == out.size()) first = i;
    }
  if (failed > 0) {
    // The whole message once (a traceback), then a line per batch that has failures.
    const bool whole = !python_error_logged_.exchange(true);
    ZT_LOG_WARN("rewards: python: %zu of %zu calls of %s failed and score 0 (%zu timed out); %s:\n%s", failed,
                out.size(), config_.python.function.c_str(), timeouts, whole ? "the first" : "the first, last line",
                whole ? out[first].error.c_str() : last_line(out[first].error).c_str());
  }
  return out;
}

RewardResult RewardComposer::score(const RewardSample& sample) const {
  std::vector<PythonRewardResult> py = call_python({sample});
  return score_with(sample, py.empty() ? nullptr : &py[0]);
}

RewardResult RewardComposer::score_with(const RewardSample& sample, const PythonRewardResult* py) const {
  check_num_tokens(sample, config_);
  RewardResult r;
  double accuracy = 0.0;
  if (sample.kind == RewardKind::Math) {
    MathVerdict v = verify_math(sample.completion, sample.gold, math_opts_);
    accuracy = v.correct ? 1.0 : 0.0;
    r.correct = v.correct;
    r.verdict = v.correct ? "correct" : v.extracted ? "wrong_answer" : "no_answer";
    r.extracted = std::move(v.extracted_answer);
  } else if (py != nullptr && py->correct >= 0 && !has_accuracy_) {
    // The python function judges this code sample and no accuracy component needs the
    // sandbox's verdict: the program is not run (such a run needs no bubblewrap).
    check_code_problem(sample.problem);
  } else {
    check_code_problem(sample.problem);
    CodeReward c = code_checker().check(sample.completion, sample.problem);
    accuracy = c.reward;
    r.correct = c.verdict == CodeVerdict::Passed;
    r.verdict = code_verdict_name(c.verdict);
    r.detail = std::move(c.detail);
    if (r.detail.empty())
      for (const auto& t : c.tests)
        if (t.verdict != CodeVerdict::Passed) {
          r.detail = t.detail;
          break;
        }
  }

  if (py != nullptr) {
    if (py->correct >= 0) {  // the function decides correctness
      r.correct = py->correct == 1;
      r.verdict = r.correct ? (sample.kind == RewardKind::Math ? "correct" : "passed") : "wrong_answer";
    }
    if (!py->ok()) r.reward_error = std::string("python ") + python_status_name(py->status) + ": " + py->error;
    r.python_extra = py->extra;
    for (const std::string& key : config_.python.metrics) {
      const auto it = py->extra.find(key);
      r.python_metrics.push_back(it == py->extra.end() ? std::nan("") : it->second);
    }
  }

  bool lenient = false;
  for (const auto& f : config_.functions)
    if (f.name == "format") {
      lenient = f.variant == "lenient";
      break;
    }
  r.format_ok = (lenient ? format_reward_lenient(sample.completion, tags_)
                         : format_reward_strict(sample.completion, tags_)) == 1.0;

  r.components.reserve(config_.functions.size());
  for (size_t i = 0; i < config_.functions.size(); ++i) {
    const RewardFunctionConfig& f = config_.functions[i];
    double value = 0.0;
    if (f.name == "accuracy") value = accuracy;
    else if (f.name == "format") value = r.format_ok ? 1.0 : 0.0;
    else if (f.name == "tag_count") value = tag_count_reward(sample.completion, tags_);
    else if (f.name == "language") value = language_consistency_reward(sample.completion, scripts_[i], tags_);
    else if (f.name == "cosine") value = cosine_length_reward(r.correct, sample.num_tokens, f.cosine_params());
    else if (f.name == "repetition_penalty") value = 0.0 - repetition_rate(sample.completion, f.ngram_size);  // no -0
    else if (f.name == "length_penalty") value = 0.0;  // needs the group: score_batch
    else if (f.name == "python") value = py != nullptr && py->ok() ? py->score : 0.0;
    else ZT_ASSERT(false, "unknown reward function '%s' passed validation", f.name.c_str());
    r.components.push_back(RewardComponent{f.name, f.weight, value});
    r.reward += f.weight * value;
  }
  count(r, sample.kind);
  if (py != nullptr) {
    std::lock_guard<std::mutex> lock(count_mu_);
    ++counts_[std::string("python.") + python_status_name(py->status)];
  }
  return r;
}

std::vector<RewardResult> RewardComposer::score_batch(const std::vector<RewardSample>& samples,
                                                      const std::vector<int64_t>& groups) const {
  ZT_ASSERT(groups.empty() || groups.size() == samples.size(),
            "score_batch: expected one group id per sample (%zu), found %zu", samples.size(), groups.size());
  std::vector<RewardResult> out(samples.size());
  for (size_t i = 0; i < samples.size(); ++i) {
    try {
      check_num_tokens(samples[i], config_);
      if (samples[i].kind == RewardKind::Code) check_code_problem(samples[i].problem);
    } catch (const DataError& e) {
      throw DataError(strformat("batch sample %zu: %s", i, e.what()));
    }
  }

  // The python function first, over its workers: the scores below may depend on its
  // "correct" (cosine, length_penalty, the verdict).
  const std::vector<PythonRewardResult> py = call_python(samples);
  auto py_of = [&](size_t i) { return py.empty() ? nullptr : &py[i]; };
  // The code samples that run in the sandbox (score_with: all but those the python
  // function judges when no accuracy function needs the program's verdict).
  auto sandboxed = [&](size_t i) {
    return samples[i].kind == RewardKind::Code && !(!py.empty() && py[i].correct >= 0 && !has_accuracy_);
  };
  std::vector<size_t> code;
  for (size_t i = 0; i < samples.size(); ++i)
    if (sandboxed(i)) code.push_back(i);
  std::vector<std::thread> threads;
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mu;
  if (!code.empty()) {
    // One thread per pool worker keeps every sandbox slot busy; the pool bounds the runs.
    code_checker();  // creates the sandbox and its pool
    size_t n_threads = std::min(code.size(), static_cast<size_t>(std::max(1, pool_->workers())));
    for (size_t t = 0; t < n_threads; ++t)
      threads.emplace_back([&] {
        for (size_t k = next++; k < code.size(); k = next++) {
          try {
            out[code[k]] = score_with(samples[code[k]], py_of(code[k]));
          } catch (...) {
            std::lock_guard<std::mutex> lock(error_mu);
            if (!error) error = std::current_exception();
          }
        }
      });
  }
  std::exception_ptr math_error;
  try {
    for (size_t i = 0; i < samples.size(); ++i)
      if (!sandboxed(i)) out[i] = score_with(samples[i], py_of(i));
  } catch (...) {
    math_error = std::current_exception();
  }
  for (auto& t : threads) t.join();
  if (math_error) std::rethrow_exception(math_error);
  if (error) std::rethrow_exception(error);
  if (!groups.empty()) add_group_functions(samples, groups, out);
  return out;
}

void RewardComposer::add_group_functions(const std::vector<RewardSample>& samples, const std::vector<int64_t>& groups,
                                         std::vector<RewardResult>& out) const {
  size_t f = 0;
  while (f < config_.functions.size() && config_.functions[f].name != "length_penalty") ++f;
  if (f == config_.functions.size()) return;
  std::map<int64_t, std::vector<size_t>> members;  // group id -> its samples, in input order
  for (size_t i = 0; i < samples.size(); ++i) members[groups[i]].push_back(i);
  for (const auto& [id, idx] : members) {
    std::vector<int64_t> lengths;
    std::vector<uint8_t> correct;
    for (size_t i : idx) {
      lengths.push_back(samples[i].num_tokens);
      correct.push_back(out[i].correct);
    }
    const std::vector<double> values = group_length_penalty(lengths, correct);
    for (size_t k = 0; k < idx.size(); ++k) {
      RewardResult& r = out[idx[k]];
      r.components[f].value = values[k];
      r.reward = 0.0;  // summed again in the config's order, as score() sums
      for (const RewardComponent& c : r.components) r.reward += c.weight * c.value;
    }
  }
}

void RewardComposer::count(const RewardResult& r, RewardKind kind) const {
  std::lock_guard<std::mutex> lock(count_mu_);
  ++counts_[std::string(reward_kind_name(kind)) + "." + r.verdict];
}

std::map<std::string, int64_t> RewardComposer::verdict_counts() const {
  std::lock_guard<std::mutex> lock(count_mu_);
  return counts_;
}

}  // namespace zeroth
