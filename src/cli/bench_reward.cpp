// `zeroth bench reward`: reward throughput. Math checks/s (verify_math on a mixed set
// of answers: integers, fractions, LaTeX, expressions, sets, intervals, wrong and
// missing answers) on one thread and on all threads; sandboxed Python runs/s through
// RewardComposer::score_batch for a trivial program and for MBPP-typical checks
// (reference solutions + their asserts from --mbpp, else built-in programs).
// Prints a table and one JSON line. Runs only trusted programs.
// Must not: assert on speed (it is a benchmark, not a test) or be called by tests with
// long durations.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "zeroth/error.h"
#include "zeroth/rewards.h"

namespace zeroth {
namespace cli {

int bench_reward(const std::vector<std::string>& args);

static const char kBenchRewardUsage[] =
    "usage: zeroth bench reward [--seconds S] [--threads N] [--sandbox bwrap|none] [--mbpp FILE]\n"
    "                           [--no-code] [--python FILE] [--no-python]\n"
    "\n"
    "  --seconds S   time per row (default 3)\n"
    "  --threads N   threads of the multi-threaded math row (default: all hardware threads)\n"
    "  --sandbox M   sandbox of the code rows (default bwrap; none runs without isolation)\n"
    "  --workers N   concurrent sandbox runs (default 0: 4 x hardware threads)\n"
    "  --mbpp FILE   MBPP JSONL (code, test_list, test_setup_code) for the typical row\n"
    "                (default /work/shared/data/mbpp_train.jsonl when present, else built-in)\n"
    "  --no-code     no code rows\n"
    "  --python FILE a Python reward file (compute_score) for the python rows (default: a built-in\n"
    "                one-line function: the cost of the call itself)\n"
    "  --no-python   no python rows\n";

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct MathCase {
  std::string completion, gold;
};

std::vector<MathCase> mixed_math_set() {
  return {
      {"<think>2+2</think><answer>4</answer>", "4"},
      {"So the answer is \\boxed{\\frac{3}{4}}.", "0.75"},
      {"We get \\boxed{\\dfrac{1}{2}}", "\\frac12"},
      {"The answer is 1,000,000.", "1000000"},
      {"#### 72", "72"},
      {"Thus \\boxed{x = 3}", "3"},
      {"\\boxed{2\\sqrt{2}}", "\\sqrt{8}"},
      {"\\boxed{(1, 2]}", "(1,2]"},
      {"\\boxed{\\{1, 2, 3\\}}", "\\{3,2,1\\}"},
      {"\\boxed{x^2 + 2x + 1}", "(x+1)^2"},
      {"\\boxed{28\\%}", "28"},
      {"\\boxed{\\text{Evelyn}}", "Evelyn"},
      {"\\boxed{\\pi/2}", "\\frac{\\pi}{2}"},
      {"\\boxed{3\\frac{1}{2}}", "7/2"},
      {"\\boxed{1.5e3}", "1500"},
      {"\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"},
      {"<answer>17</answer>", "18"},
      {"\\boxed{\\frac{2}{3}}", "0.6667"},
      {"The answer is x > 1", "1 < x"},
      {"I am not sure.", "5"},
      {"\\boxed{y = 2x + 1}", "2x - y + 1 = 0"},
      {"\\boxed{\\$12.50}", "12.5"},
      {"\\boxed{(2, -3)}", "(2,-3)"},
      {"no final answer here, only 1 2 3", "3"},
  };
}

// Checks per second of verify_math over `set` on `threads` threads for `seconds`.
double math_rate(const std::vector<MathCase>& set, const MathVerifyOptions& opts, int threads, double seconds,
                 int64_t* correct_out) {
  std::vector<int64_t> done(size_t(threads), 0), correct(size_t(threads), 0);
  auto t0 = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      size_t i = size_t(t) * 7;
      while (true) {
        for (int k = 0; k < 256; ++k, ++i) {
          const MathCase& c = set[i % set.size()];
          correct[size_t(t)] += verify_math(c.completion, c.gold, opts).correct;
        }
        done[size_t(t)] += 256;
        if (seconds_since(t0) >= seconds) break;
      }
    });
  for (auto& th : pool) th.join();
  double dt = seconds_since(t0);
  int64_t n = 0, ok = 0;
  for (int t = 0; t < threads; ++t) n += done[size_t(t)], ok += correct[size_t(t)];
  if (correct_out) *correct_out = ok;
  return double(n) / dt;
}

std::vector<RewardSample> mbpp_samples(const std::string& path) {
  std::vector<RewardSample> out;
  std::ifstream in(path);
  std::string line;
  for (long long lineno = 1; in && std::getline(in, line); ++lineno) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
      RewardSample s;
      s.kind = RewardKind::Code;
      s.completion = "```python\n" + j.at("code").get<std::string>() + "\n```";
      s.problem.test_setup_code = j.value("test_setup_code", std::string());
      for (const auto& a : j.at("test_list")) s.problem.asserts.push_back(a.get<std::string>());
      out.push_back(std::move(s));
    } catch (const nlohmann::json::exception& e) {
      throw DataError(strformat("%s:%lld: expected an MBPP line (code, test_list), found: %s", path.c_str(),
                                lineno, e.what()));
    }
  }
  return out;
}

std::vector<RewardSample> builtin_mbpp_samples() {
  auto make = [](const std::string& code, std::vector<std::string> asserts) {
    RewardSample s;
    s.kind = RewardKind::Code;
    s.completion = "<think>Write it.</think><answer>\n```python\n" + code + "```\n</answer>";
    s.problem.asserts = std::move(asserts);
    return s;
  };
  return {
      make("def similar_elements(a, b):\n    return tuple(set(a) & set(b))\n",
           {"assert set(similar_elements((3, 4, 5, 6), (5, 7, 4, 10))) == {4, 5}",
            "assert set(similar_elements((1, 2, 3, 4), (5, 4, 3, 7))) == {3, 4}",
            "assert set(similar_elements((11, 12, 14, 13), (17, 15, 14, 13))) == {13, 14}"}),
      make("import math\ndef is_not_prime(n):\n    if n < 2:\n        return True\n"
           "    for i in range(2, int(math.sqrt(n)) + 1):\n        if n % i == 0:\n            return True\n"
           "    return False\n",
           {"assert is_not_prime(2) == False", "assert is_not_prime(10) == True", "assert is_not_prime(35) == True"}),
      make("import heapq\ndef heap_queue_largest(nums, n):\n    return heapq.nlargest(n, nums)\n",
           {"assert heap_queue_largest([25, 35, 22, 85, 14, 65, 75, 22, 58], 3) == [85, 75, 65]",
            "assert heap_queue_largest([25, 35, 22, 85, 14, 65, 75, 22, 58], 2) == [85, 75]"}),
  };
}

// Code checks per second through score_batch: batches of 4 x workers samples.
double code_rate(const RewardComposer& composer, const std::vector<RewardSample>& set, int workers,
                 double seconds, int64_t* runs_out, int64_t* passed_out) {
  auto t0 = Clock::now();
  int64_t runs = 0, passed = 0;
  size_t next = 0;
  while (seconds_since(t0) < seconds) {
    std::vector<RewardSample> batch;
    for (int i = 0; i < 4 * workers; ++i) batch.push_back(set[next++ % set.size()]);
    for (const RewardResult& r : composer.score_batch(batch)) passed += r.correct;
    runs += int64_t(batch.size());
  }
  *runs_out = runs;
  *passed_out = passed;
  return double(runs) / seconds_since(t0);
}

// Python reward calls per second through score_batch (batches of 64 of the math set).
double python_rate(const RewardComposer& composer, const std::vector<MathCase>& set, double seconds,
                   int64_t* calls_out, int64_t* failed_out) {
  std::vector<RewardSample> batch;
  for (size_t i = 0; i < 64; ++i) {
    RewardSample s;
    s.completion = set[i % set.size()].completion;
    s.gold = set[i % set.size()].gold;
    s.source = "bench";
    s.prompt = "What is the answer?";
    s.extra_info = R"({"id": 1, "answer": "4"})";
    batch.push_back(std::move(s));
  }
  auto t0 = Clock::now();
  int64_t calls = 0, failed = 0;
  while (calls == 0 || seconds_since(t0) < seconds) {
    for (const RewardResult& r : composer.score_batch(batch)) failed += !r.reward_error.empty();
    calls += int64_t(batch.size());
  }
  *calls_out = calls;
  *failed_out = failed;
  return double(calls) / seconds_since(t0);
}

double parse_number(const Args& args, const char* key, double fallback, double min) {
  if (!args.has(key)) return fallback;
  const std::string v = args.get(key);
  size_t pos = 0;
  double x = 0;
  try {
    x = std::stod(v, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  if (pos != v.size() || !(x >= min))
    throw UsageError(strformat("--%s: expected a number >= %g, found '%s'", key, min, v.c_str()));
  return x;
}

}  // namespace

int bench_reward(const std::vector<std::string>& argv) {
  Args args("bench reward", argv, {"seconds", "threads", "sandbox", "workers", "mbpp", "no-code", "python", "no-python"},
            {"no-code", "no-python"});
  if (args.help()) {
    std::printf("%s", kBenchRewardUsage);
    return 0;
  }
  if (!args.positional().empty())
    throw UsageError(strformat("unexpected argument '%s' (see 'zeroth bench reward --help')",
                               args.positional()[0].c_str()));
  const double seconds = parse_number(args, "seconds", 3.0, 0.0);
  const int hw = int(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = int(parse_number(args, "threads", hw, 1));
  const int workers_flag = int(parse_number(args, "workers", 0, 0));
  const bool with_code = !args.has("no-code");

  const std::vector<MathCase> set = mixed_math_set();
  const MathVerifyOptions opts;
  int64_t ok1 = 0, okn = 0;
  const double math1 = math_rate(set, opts, 1, seconds, &ok1);
  const double mathn = math_rate(set, opts, threads, seconds, &okn);

  std::printf("%-30s %14s   (cores %d)\n", "case", "per second", hw);
  std::printf("%-30s %14.0f\n", "math checks, 1 thread", math1);
  std::printf("%-30s %14.0f\n", strformat("math checks, %d threads", threads).c_str(), mathn);

  nlohmann::ordered_json j;
  j["bench"] = "reward";
  j["cores"] = hw;
  j["math_set_size"] = set.size();
  j["math_checks_per_s_1_thread"] = math1;
  j["math_threads"] = threads;
  j["math_checks_per_s"] = mathn;

  if (with_code) {
    RewardsConfig cfg;
    cfg.code.sandbox = args.get("sandbox", "bwrap");
    if (cfg.code.sandbox != "bwrap" && cfg.code.sandbox != "none")
      throw UsageError(strformat("--sandbox: expected bwrap or none, found '%s'", cfg.code.sandbox.c_str()));
    cfg.code.max_concurrent = workers_flag;
    RewardComposer composer(cfg);
    composer.prepare_code();
    const int workers = cfg.sandbox_config().max_concurrent > 0 ? cfg.sandbox_config().max_concurrent : 4 * hw;

    RewardSample trivial;
    trivial.kind = RewardKind::Code;
    trivial.completion = "```python\ndef f():\n    return 1\n```";
    trivial.problem.asserts = {"assert f() == 1"};
    std::string mbpp_path = args.get("mbpp", "/work/shared/data/mbpp_train.jsonl");
    std::vector<RewardSample> typical;
    if (std::ifstream(mbpp_path).good()) {
      typical = mbpp_samples(mbpp_path);
    } else {
      if (args.has("mbpp")) throw DataError(strformat("%s: cannot open for reading", mbpp_path.c_str()));
      mbpp_path = "built-in";
      typical = builtin_mbpp_samples();
    }
    ZT_THROW_IF_NOT(!typical.empty(), DataError, "%s: expected MBPP lines, found none", mbpp_path.c_str());

    int64_t runs_t = 0, pass_t = 0, runs_m = 0, pass_m = 0;
    const double trivial_rate = code_rate(composer, {trivial}, workers, seconds, &runs_t, &pass_t);
    const double mbpp_rate = code_rate(composer, typical, workers, seconds, &runs_m, &pass_m);
    std::printf("%-30s %14.1f   (%lld runs, %lld passed, sandbox %s, %d workers)\n", "python runs, trivial",
                trivial_rate, (long long)runs_t, (long long)pass_t, cfg.code.sandbox.c_str(), workers);
    std::printf("%-30s %14.1f   (%lld runs, %lld passed, %s)\n", "python runs, MBPP-typical", mbpp_rate,
                (long long)runs_m, (long long)pass_m, mbpp_path.c_str());
    j["sandbox"] = cfg.code.sandbox;
    j["sandbox_workers"] = workers;
    j["python_runs_per_s_trivial"] = trivial_rate;
    j["python_runs_per_s_mbpp"] = mbpp_rate;
    j["mbpp_passed_fraction"] = runs_m > 0 ? double(pass_m) / double(runs_m) : 0.0;
  }
  if (!args.has("no-python")) {
    // The python reward rows: the per-call cost of the worker protocol (the built-in
    // function does nothing), or of the user's own file.
    std::string path = args.get("python", "");
    std::string builtin;
    if (path.empty()) {
      char tmpl[] = "/tmp/zeroth_bench_reward_XXXXXX.py";
      const int fd = ::mkstemps(tmpl, 3);
      ZT_THROW_IF_NOT(fd >= 0, RuntimeError, "cannot create a temporary file in /tmp");
      ::close(fd);
      builtin = path = std::string(tmpl);
      std::ofstream(path) << "def compute_score(solution_str, ground_truth):\n"
                             "    return float(solution_str.endswith(ground_truth))\n";
    }
    for (int workers : {1, 4}) {
      RewardsConfig cfg;
      cfg.functions = {{"python", 1.0, "strict", "en"}};
      cfg.python.path = path;
      cfg.python.workers = workers;
      RewardComposer composer(cfg);
      int64_t calls = 0, failed = 0;
      const double rate = python_rate(composer, set, seconds, &calls, &failed);
      std::printf("%-30s %14.0f   (%lld calls, %lld failed, %s)\n",
                  strformat("python reward calls, %d worker%s", workers, workers > 1 ? "s" : "").c_str(), rate,
                  (long long)calls, (long long)failed, builtin.empty() ? path.c_str() : "built-in function");
      j[strformat("python_calls_per_s_%d_workers", workers)] = rate;
      j["python_failed_calls"] = failed;
    }
    j["python_function"] = builtin.empty() ? path : "built-in";
    if (!builtin.empty()) std::remove(builtin.c_str());
  }
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace cli
}  // namespace zeroth
