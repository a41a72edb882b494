// CodeChecker (code_reward.h): the assert harness, stdio cases, C++ compilation in
// the sandbox, verdicts and rewards. Must not: run code outside the SandboxPool, or
// count a test as passed without a nonce-bearing PASS line / a matching output.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <optional>
#include <random>

#include "zeroth/code_reward.h"
#include "zeroth/error.h"

namespace zeroth {
namespace {

// A Python bytes literal of `s`, decoded as UTF-8: safe for any content.
std::string py_str(const std::string& s) {
  std::string out = "b'";
  char hex[8];
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      std::snprintf(hex, sizeof(hex), "\\x%02x", c);
      out += hex;
    }
  }
  out += "'.decode('utf-8', 'replace')";
  return out;
}

std::string make_nonce() {
  std::random_device rd;  // /dev/urandom
  std::string out;
  char hex[16];
  for (int i = 0; i < 4; ++i) {
    std::snprintf(hex, sizeof(hex), "%08x", static_cast<unsigned>(rd()));
    out += hex;
  }
  return out;
}

std::string tail(const std::string& s, size_t n) {
  return s.size() <= n ? s : s.substr(s.size() - n);
}

// The verdict of a run that did not produce a (complete) answer, or nullopt when it
// ended normally with status 0.
std::optional<CodeVerdict> abnormal_verdict(const SandboxResult& r) {
  if (r.timed_out || r.cpu_exceeded) return CodeVerdict::Timeout;
  if (r.output_exceeded) return CodeVerdict::OutputLimit;
  if (r.memory_exceeded) return CodeVerdict::MemoryLimit;
  if (!r.started || r.exit_code != 0) return CodeVerdict::RuntimeError;
  return std::nullopt;
}

std::string run_detail(const SandboxResult& r) {
  if (!r.started) return "sandbox failed: " + r.sandbox_error;
  if (r.timed_out) return strformat("timed out after %.1fs", r.wall_seconds);
  if (r.cpu_exceeded) return strformat("CPU limit (%.1fs)", r.cpu_seconds);
  if (r.output_exceeded) return "output limit exceeded";
  if (r.term_signal != 0) return strformat("killed by signal %d: %s", r.term_signal, tail(r.stderr_data, 300).c_str());
  return strformat("exit status %d: %s", r.exit_code, tail(r.stderr_data, 300).c_str());
}

std::vector<std::string> tokens(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t b = i;
    while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    if (i > b) out.emplace_back(s.substr(b, i - b));
  }
  return out;
}

}  // namespace

bool parse_code_language(const std::string& s, CodeLanguage* out) {
  if (s == "python") *out = CodeLanguage::Python;
  else if (s == "cpp") *out = CodeLanguage::Cpp;
  else return false;
  return true;
}

const char* code_language_name(CodeLanguage lang) {
  return lang == CodeLanguage::Python ? "python" : "cpp";
}

const char* code_verdict_name(CodeVerdict v) {
  switch (v) {
    case CodeVerdict::Passed: return "passed";
    case CodeVerdict::WrongAnswer: return "wrong_answer";
    case CodeVerdict::RuntimeError: return "runtime_error";
    case CodeVerdict::CompileError: return "compile_error";
    case CodeVerdict::Timeout: return "timeout";
    case CodeVerdict::MemoryLimit: return "memory_limit";
    case CodeVerdict::OutputLimit: return "output_limit";
    case CodeVerdict::NoCode: return "no_code";
  }
  return "?";
}

SandboxLimits CodeRewardConfig::default_run_limits() {
  SandboxLimits l;
  l.wall_seconds = 10.0;
  l.cpu_seconds = 5;
  l.memory_bytes = int64_t(1) << 30;
  l.max_processes = 32;
  l.output_bytes = int64_t(1) << 20;
  return l;
}

SandboxLimits CodeRewardConfig::default_compile_limits() {
  SandboxLimits l;
  l.wall_seconds = 30.0;
  l.cpu_seconds = 20;
  l.memory_bytes = int64_t(2) << 30;
  l.max_processes = 32;
  l.file_size_bytes = int64_t(64) << 20;
  l.tmp_bytes = int64_t(256) << 20;
  l.output_bytes = int64_t(64) << 20;  // the binary comes back through stdout
  return l;
}

void validate_code_reward_config(const CodeRewardConfig& cfg) {
  validate_sandbox_limits(cfg.run_limits, "reward.code.run_limits");
  validate_sandbox_limits(cfg.compile_limits, "reward.code.compile_limits");
  ZT_THROW_IF_NOT(!cfg.python_path.empty() && cfg.python_path[0] == '/', ConfigError,
                  "reward.code.python_path: expected an absolute path, found '%s'", cfg.python_path.c_str());
  ZT_THROW_IF_NOT(!cfg.gxx_path.empty() && cfg.gxx_path[0] == '/', ConfigError,
                  "reward.code.gxx_path: expected an absolute path, found '%s'", cfg.gxx_path.c_str());
}

bool stdio_output_matches(std::string_view output, std::string_view expected) {
  return tokens(output) == tokens(expected);
}

std::string build_assert_harness(const std::string& solution, const CodeProblem& problem) {
  std::string imports;
  for (const std::string& line : problem.test_imports) imports += line + "\n";
  std::string tests = "[";
  for (const std::string& t : problem.asserts) tests += py_str(t) + ",\n";
  tests += "]";
  return "import os, sys\n"
         "def _zeroth_harness():\n"
         "    nonce = sys.stdin.readline().strip()\n"
         "    sys.stdin = open(os.devnull)\n"
         "    out = os.dup(1)\n"
         "    def report(line):\n"
         "        try:\n"
         "            sys.stdout.flush()\n"
         "        except BaseException:\n"
         "            pass\n"
         "        os.write(out, ('\\n' + nonce + ' ' + line + '\\n').encode())\n"
         "    g = {'__name__': 'solution', '__builtins__': __builtins__}\n"
         "    try:\n"
         "        code = compile(" + py_str(solution) + ", 'solution.py', 'exec')\n"
         "    except BaseException as e:\n"
         "        report('COMPILE_ERROR ' + type(e).__name__)\n"
         "        return\n"
         "    try:\n"
         "        exec(compile(" + py_str(imports) + ", 'imports.py', 'exec'), g)\n"
         "        exec(code, g)\n"
         "        exec(compile(" + py_str(problem.test_setup_code) + ", 'setup.py', 'exec'), g)\n"
         "    except MemoryError:\n"
         "        report('SETUP MEM')\n"
         "        return\n"
         "    except BaseException as e:\n"
         "        report('SETUP ERROR ' + type(e).__name__)\n"
         "        return\n"
         "    tests = " + tests + "\n"
         "    for i, t in enumerate(tests):\n"
         "        try:\n"
         "            exec(compile(t, 'test_%d.py' % i, 'exec'), g)\n"
         "            report('%d PASS' % i)\n"
         "        except AssertionError:\n"
         "            report('%d FAIL' % i)\n"
         "        except MemoryError:\n"
         "            report('%d MEM' % i)\n"
         "        except BaseException as e:\n"
         "            report('%d ERROR %s' % (i, type(e).__name__))\n"
         "    report('DONE')\n"
         "_zeroth_harness()\n";
}

CodeChecker::CodeChecker(SandboxPool& pool, CodeRewardConfig config)
    : pool_(pool), config_(std::move(config)) {
  validate_code_reward_config(config_);
  for (auto& c : counts_) c.store(0);
}

CodeVerdictCounts CodeChecker::verdict_counts() const {
  CodeVerdictCounts out;
  for (int i = 0; i < kNumCodeVerdicts; ++i) out[static_cast<size_t>(i)] = counts_[static_cast<size_t>(i)].load();
  return out;
}

CodeReward CodeChecker::finish(CodeReward r) const {
  if (!r.tests.empty()) {
    r.total = static_cast<int>(r.tests.size());
    r.passed = 0;
    r.verdict = CodeVerdict::Passed;
    for (const CodeTestResult& t : r.tests) {
      if (t.verdict == CodeVerdict::Passed) ++r.passed;
      else if (r.verdict == CodeVerdict::Passed) r.verdict = t.verdict;
    }
    r.reward = config_.fractional ? double(r.passed) / double(r.total)
                                  : (r.passed == r.total ? 1.0 : 0.0);
  } else {
    r.reward = 0.0;
    r.passed = 0;
  }
  counts_[static_cast<size_t>(r.verdict)].fetch_add(1);
  return r;
}

CodeReward CodeChecker::check(std::string_view completion, const CodeProblem& problem) const {
  std::optional<ExtractedCode> code =
      extract_last_code_block(completion, problem.language, config_.accept_unlabelled);
  if (!code) {
    CodeReward r;
    r.verdict = CodeVerdict::NoCode;
    r.total = static_cast<int>(problem.asserts.size() + problem.stdio_cases.size());
    r.detail = strformat("no fenced %s code block", code_language_name(problem.language));
    return finish(std::move(r));
  }
  return check_code(code->code, problem);
}

std::future<CodeReward> CodeChecker::check_async(std::string completion, CodeProblem problem) const {
  return std::async(std::launch::async, [this, c = std::move(completion), p = std::move(problem)] {
    return check(c, p);
  });
}

CodeReward CodeChecker::check_code(const std::string& code, const CodeProblem& problem) const {
  ZT_THROW_IF_NOT(problem.asserts.empty() || problem.stdio_cases.empty(), DataError,
                  "code problem: expected asserts or stdio cases, found both (%zu asserts, %zu cases)",
                  problem.asserts.size(), problem.stdio_cases.size());
  ZT_THROW_IF_NOT(!problem.asserts.empty() || !problem.stdio_cases.empty(), DataError,
                  "code problem: expected at least one assert or stdio case, found none");
  ZT_THROW_IF_NOT(problem.asserts.empty() || problem.language == CodeLanguage::Python, DataError,
                  "code problem: assert-style tests need language python, found %s",
                  code_language_name(problem.language));
  if (!problem.asserts.empty()) return check_asserts(code, problem);
  return check_stdio(code, problem);
}

CodeReward CodeChecker::check_asserts(const std::string& code, const CodeProblem& problem) const {
  const std::string nonce = make_nonce();
  SandboxJob job;
  job.argv = {config_.python_path, "-I", "-S", "-B", "/tmp/harness.py"};
  job.files.push_back({"harness.py", build_assert_harness(code, problem), false, false});
  job.stdin_data = nonce + "\n";
  job.use_default_limits = false;
  job.limits = config_.run_limits;
  SandboxResult res = pool_.submit(std::move(job)).get();

  CodeReward r;
  const size_t n = problem.asserts.size();
  std::vector<std::optional<CodeTestResult>> got(n);
  bool done = false;
  std::string setup_failure;
  const std::string prefix = nonce + " ";
  size_t pos = 0;
  const std::string& out = res.stdout_data;
  while (pos < out.size()) {
    size_t nl = out.find('\n', pos);
    size_t end = nl == std::string::npos ? out.size() : nl;
    if (nl != std::string::npos && out.compare(pos, prefix.size(), prefix) == 0) {
      std::string body = out.substr(pos + prefix.size(), end - pos - prefix.size());
      if (body == "DONE") {
        done = true;
      } else if (body.rfind("COMPILE_ERROR", 0) == 0) {
        r.verdict = CodeVerdict::CompileError;
        r.total = static_cast<int>(n);
        r.detail = "python: " + body.substr(14) + ": " + tail(res.stderr_data, 300);
        return finish(std::move(r));
      } else if (body.rfind("SETUP ", 0) == 0) {
        setup_failure = body.substr(6);
      } else {
        unsigned long idx = 0;
        char word[16] = {0};
        if (std::sscanf(body.c_str(), "%lu %15s", &idx, word) == 2 && idx < n) {
          std::string w = word;
          CodeTestResult t;
          t.verdict = w == "PASS" ? CodeVerdict::Passed
                      : w == "FAIL" ? CodeVerdict::WrongAnswer
                      : w == "MEM"  ? CodeVerdict::MemoryLimit
                                    : CodeVerdict::RuntimeError;
          if (t.verdict == CodeVerdict::RuntimeError) t.detail = body;
          got[idx] = t;
        }
      }
    }
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  // A test without a result line failed the way the run ended.
  std::optional<CodeVerdict> abnormal = abnormal_verdict(res);
  CodeTestResult missing;
  if (!setup_failure.empty()) {
    missing.verdict = setup_failure == "MEM" ? CodeVerdict::MemoryLimit : CodeVerdict::RuntimeError;
    missing.detail = "solution failed before the tests: " + setup_failure + ": " + tail(res.stderr_data, 300);
  } else {
    missing.verdict = abnormal ? *abnormal : CodeVerdict::RuntimeError;
    missing.detail = abnormal ? run_detail(res) : "the program ended before this test ran";
  }
  for (size_t i = 0; i < n; ++i) r.tests.push_back(got[i] ? *got[i] : missing);
  // Passed lines are kept even when the run later failed; but a run that ended
  // abnormally after DONE (e.g. output limit in an atexit hook) still fails.
  if (done && abnormal)
    for (CodeTestResult& t : r.tests)
      if (t.verdict == CodeVerdict::Passed) t = {*abnormal, run_detail(res)};
  if (!res.started) r.detail = run_detail(res);
  return finish(std::move(r));
}

CodeReward CodeChecker::check_stdio(const std::string& code, const CodeProblem& problem) const {
  CodeReward r;
  std::string binary;
  if (problem.language == CodeLanguage::Cpp) {
    SandboxJob compile;
    std::string cmd = config_.gxx_path;
    for (const std::string& f : config_.gxx_flags) cmd += " '" + f + "'";
    cmd += " -o /tmp/a.out /tmp/main.cpp 1>&2 && exec /usr/bin/cat /tmp/a.out";
    compile.argv = {"/usr/bin/sh", "-c", cmd};
    compile.files.push_back({"main.cpp", code, false, false});
    compile.use_default_limits = false;
    compile.limits = config_.compile_limits;
    SandboxResult cres = pool_.submit(std::move(compile)).get();
    if (!cres.exited_ok() || cres.stdout_data.empty()) {
      r.verdict = CodeVerdict::CompileError;
      r.total = static_cast<int>(problem.stdio_cases.size());
      r.detail = "g++: " + run_detail(cres);
      return finish(std::move(r));
    }
    binary = std::move(cres.stdout_data);
  }
  std::vector<std::future<SandboxResult>> runs;
  for (const StdioCase& c : problem.stdio_cases) {
    SandboxJob job;
    if (problem.language == CodeLanguage::Cpp) {
      job.argv = {"/tmp/a.out"};
      job.files.push_back({"a.out", binary, true, false});
    } else {
      job.argv = {config_.python_path, "-I", "-S", "-B", "/tmp/main.py"};
      job.files.push_back({"main.py", code, false, false});
    }
    job.stdin_data = c.input;
    job.use_default_limits = false;
    job.limits = config_.run_limits;
    runs.push_back(pool_.submit(std::move(job)));
  }
  for (size_t i = 0; i < runs.size(); ++i) {
    SandboxResult res = runs[i].get();
    CodeTestResult t;
    if (std::optional<CodeVerdict> v = abnormal_verdict(res)) {
      t.verdict = *v;
      t.detail = run_detail(res);
    } else if (stdio_output_matches(res.stdout_data, problem.stdio_cases[i].expected_output)) {
      t.verdict = CodeVerdict::Passed;
    } else {
      t.verdict = CodeVerdict::WrongAnswer;
      t.detail = "output differs: " + tail(res.stdout_data, 200);
    }
    r.tests.push_back(std::move(t));
  }
  return finish(std::move(r));
}

}  // namespace zeroth
