// Code rewards: extract the program from a completion, run its tests in the sandbox
// (sandbox.h), and turn the verdicts into a reward.
//
// Owns: last-fenced-block extraction, the Python assert harness (MBPP/HumanEval
// style), stdin/stdout cases for Python and C++ (g++ inside the sandbox), verdicts,
// all-or-nothing / fractional rewards and verdict counters. Must not: run anything
// outside the Sandbox, or trust anything the program prints except result lines that
// carry the run's secret nonce.
//
// Assert-style tests: one sandbox run of harness.py, which reads a fresh random nonce
// from stdin, compiles and executes setup + imports + solution, then runs every assert
// separately and writes "<nonce> <i> PASS|FAIL|ERROR|MEM" per test and "<nonce> DONE"
// at the end to a private dup of stdout. A test without a line did not pass: a program
// that exits (even with status 0) before the tests, or prints fake lines without the
// nonce, scores 0. The nonce defeats printing and early exits; it is not a defence
// against a program that introspects the harness's interpreter frames (docs/sandbox.md).
// Stdio tests: one run per case; output matches when the whitespace-separated tokens
// are equal. C++ is compiled once per check (its own limits), the binary is returned
// through stdout and placed in each case's sandbox.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <future>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "zeroth/sandbox.h"

namespace zeroth {

enum class CodeLanguage { Python, Cpp };

// Parses "python" or "cpp"; false otherwise.
bool parse_code_language(const std::string& s, CodeLanguage* out);
const char* code_language_name(CodeLanguage lang);

enum class CodeVerdict {
  Passed = 0,
  WrongAnswer,
  RuntimeError,
  CompileError,
  Timeout,
  MemoryLimit,
  OutputLimit,
  NoCode,  // no fenced block in the wanted language
};
constexpr int kNumCodeVerdicts = 8;
const char* code_verdict_name(CodeVerdict v);  // "passed", "wrong_answer", ...

struct ExtractedCode {
  CodeLanguage language = CodeLanguage::Python;
  std::string code;
};

// The last closed fenced block (``` or ~~~, 3 or more, optionally indented up to 3
// spaces) whose info string names `want` ("python", "py", "python3" / "cpp", "c++",
// "cc", "cxx"), or that has no info string when `accept_unlabelled`. Blocks in other
// languages are skipped. nullopt when there is none.
std::optional<ExtractedCode> extract_last_code_block(std::string_view completion, CodeLanguage want,
                                                     bool accept_unlabelled = true);

struct StdioCase {
  std::string input;
  std::string expected_output;
};

// One problem's tests: asserts (Python only) or stdio cases, not both.
struct CodeProblem {
  CodeLanguage language = CodeLanguage::Python;
  std::string test_setup_code;            // run before the solution (MBPP test_setup_code)
  std::vector<std::string> test_imports;  // lines run before the solution
  std::vector<std::string> asserts;       // each a Python statement, e.g. "assert f(1) == 2"
  std::vector<StdioCase> stdio_cases;
};

struct CodeRewardConfig {
  bool fractional = false;       // reward = fraction of tests passed; else all-or-nothing
  bool accept_unlabelled = true;  // an unlabelled fenced block counts as the problem's language
  std::string python_path = "/usr/bin/python3";
  std::string gxx_path = "/usr/bin/g++";
  std::vector<std::string> gxx_flags = {"-O2", "-std=c++17", "-pipe"};
  SandboxLimits run_limits = default_run_limits();
  SandboxLimits compile_limits = default_compile_limits();

  static SandboxLimits default_run_limits();
  static SandboxLimits default_compile_limits();
};

// Throws ConfigError naming the key on bad limits or empty paths.
void validate_code_reward_config(const CodeRewardConfig& cfg);

struct CodeTestResult {
  CodeVerdict verdict = CodeVerdict::RuntimeError;
  std::string detail;  // short reason ("expected 3 tokens, found 2", stderr tail)
};

struct CodeReward {
  double reward = 0.0;
  CodeVerdict verdict = CodeVerdict::NoCode;  // Passed, or the first failing test's verdict
  int passed = 0;
  int total = 0;
  std::vector<CodeTestResult> tests;  // one per assert or stdio case (empty for NoCode/CompileError)
  std::string detail;                 // why the whole check failed, when it did
};

// Per-verdict counts since construction (metrics).
using CodeVerdictCounts = std::array<int64_t, kNumCodeVerdicts>;

// Thread-safe. Runs through a SandboxPool so several checks share the bounded pool.
class CodeChecker {
 public:
  CodeChecker(SandboxPool& pool, CodeRewardConfig config);

  // Extracts the last code block of `completion` and checks it.
  CodeReward check(std::string_view completion, const CodeProblem& problem) const;
  // Checks already-extracted source code.
  CodeReward check_code(const std::string& code, const CodeProblem& problem) const;
  // check() on its own thread: returns at once, so checking overlaps generation.
  std::future<CodeReward> check_async(std::string completion, CodeProblem problem) const;

  CodeVerdictCounts verdict_counts() const;
  const CodeRewardConfig& config() const { return config_; }

 private:
  CodeReward check_asserts(const std::string& code, const CodeProblem& problem) const;
  CodeReward check_stdio(const std::string& code, const CodeProblem& problem) const;
  CodeReward finish(CodeReward r) const;  // reward from tests, counts the verdict
  SandboxPool& pool_;
  CodeRewardConfig config_;
  mutable std::array<std::atomic<int64_t>, kNumCodeVerdicts> counts_{};
};

// The harness program for assert-style tests (exposed for tests): reads the nonce
// from stdin, then runs `setup`, `imports`, `solution` and each assert.
std::string build_assert_harness(const std::string& solution, const CodeProblem& problem);

// True when `output` and `expected` have the same whitespace-separated tokens.
bool stdio_output_matches(std::string_view output, std::string_view expected);

}  // namespace zeroth
