// Code reward (code_reward.h): extraction, the assert harness and its nonce, stdio
// cases in Python and C++, verdicts, fractional rewards, counters ([code_reward]);
// every MBPP reference solution passes and mutated ones fail ([mbpp]).
#include <catch2/catch.hpp>

#include "sandbox_test_util.h"
#include "zeroth/code_reward.h"
#include "zeroth/error.h"

using namespace zeroth;

TEST_CASE("extract_last_code_block picks the last block in the wanted language", "[code_reward]") {
  const std::string text =
      "First try:\n```python\ndef f(): return 1\n```\nC++ aside:\n```cpp\nint main(){}\n```\n"
      "Final:\n```py\ndef f():\n    return 2\n```\nDone. ```python inline``` is not a fence.\n";
  auto py = extract_last_code_block(text, CodeLanguage::Python);
  REQUIRE(py);
  CHECK(py->code == "def f():\n    return 2\n");
  auto cpp = extract_last_code_block(text, CodeLanguage::Cpp);
  REQUIRE(cpp);
  CHECK(cpp->code == "int main(){}\n");

  const std::string unlabelled = "```\nprint(1)\n```\n";
  CHECK(extract_last_code_block(unlabelled, CodeLanguage::Python, true)->code == "print(1)\n");
  CHECK_FALSE(extract_last_code_block(unlabelled, CodeLanguage::Python, false));
  CHECK_FALSE(extract_last_code_block("```python\nnever closed\n", CodeLanguage::Python));
  CHECK_FALSE(extract_last_code_block("no code here", CodeLanguage::Python));
  // Longer fences may contain shorter ones; ~~~ fences; C++ spellings; CRLF.
  auto nested = extract_last_code_block("````python\nx = '''\n```\n'''\n````\n", CodeLanguage::Python);
  REQUIRE(nested);
  CHECK(nested->code == "x = '''\n```\n'''\n");
  CHECK(extract_last_code_block("~~~c++\nint x;\n~~~", CodeLanguage::Cpp)->code == "int x;\n");
  CHECK(extract_last_code_block("```Python3 title=a.py\r\nx=1\r\n```\r\n", CodeLanguage::Python)->code ==
        "x=1\r\n");
  CHECK_FALSE(extract_last_code_block("```javascript\nlet x;\n```", CodeLanguage::Python));
}

TEST_CASE("stdio_output_matches compares whitespace-separated tokens", "[code_reward]") {
  CHECK(stdio_output_matches("1 2\n3\n", "1  2 3"));
  CHECK(stdio_output_matches("  ok\r\n", "ok"));
  CHECK_FALSE(stdio_output_matches("1 2", "1 2 3"));
  CHECK_FALSE(stdio_output_matches("12", "1 2"));
  CHECK(stdio_output_matches("", "\n"));
}

TEST_CASE("assert-style check: pass, wrong answer, runtime and compile errors, fraction", "[code_reward]") {
  Sandbox sb(test::small_sandbox_config());
  SandboxPool pool(sb);
  CodeRewardConfig cfg = test::small_code_config();
  CodeChecker all_or_nothing(pool, cfg);
  cfg.fractional = true;
  CodeChecker fraction(pool, cfg);
  CodeProblem p;
  p.test_imports = {"import math"};
  p.test_setup_code = "K = 10";
  p.asserts = {"assert f(1) == 11", "assert f(2) == 12", "assert f(-1) == math.floor(9.5)"};

  CodeReward good = all_or_nothing.check("Here:\n```python\ndef f(x):\n    return x + K\n```\n", p);
  CHECK(good.verdict == CodeVerdict::Passed);
  CHECK(good.reward == 1.0);
  CHECK(good.passed == 3);

  const std::string partial = "```python\ndef f(x):\n    if x < 0: raise ValueError('neg')\n    return x + (K if x == 1 else 0)\n```";
  CodeReward a = all_or_nothing.check(partial, p);
  CHECK(a.reward == 0.0);
  CHECK(a.verdict == CodeVerdict::WrongAnswer);
  REQUIRE(a.tests.size() == 3);
  CHECK(a.tests[0].verdict == CodeVerdict::Passed);
  CHECK(a.tests[1].verdict == CodeVerdict::WrongAnswer);
  CHECK(a.tests[2].verdict == CodeVerdict::RuntimeError);
  CodeReward fr = fraction.check(partial, p);
  CHECK(fr.reward == Approx(1.0 / 3.0));

  CodeReward syntax = all_or_nothing.check("```python\ndef f(x) return x\n```", p);
  CHECK(syntax.verdict == CodeVerdict::CompileError);
  CHECK(syntax.reward == 0.0);
  CodeReward raising = all_or_nothing.check("```python\nraise RuntimeError('at import')\n```", p);
  CHECK(raising.verdict == CodeVerdict::RuntimeError);
  CodeReward none = all_or_nothing.check("I don't know.", p);
  CHECK(none.verdict == CodeVerdict::NoCode);
  CodeReward slow = all_or_nothing.check("```python\ndef f(x):\n    while True: pass\n```", p);
  CHECK(slow.verdict == CodeVerdict::Timeout);

  CodeVerdictCounts counts = all_or_nothing.verdict_counts();
  CHECK(counts[int(CodeVerdict::Passed)] == 1);
  CHECK(counts[int(CodeVerdict::WrongAnswer)] == 1);
  CHECK(counts[int(CodeVerdict::CompileError)] == 1);
  CHECK(counts[int(CodeVerdict::RuntimeError)] == 1);
  CHECK(counts[int(CodeVerdict::NoCode)] == 1);
  CHECK(counts[int(CodeVerdict::Timeout)] == 1);
}

TEST_CASE("assert harness ignores fake result lines and early exits", "[code_reward]") {
  Sandbox sb(test::small_sandbox_config());
  SandboxPool pool(sb);
  CodeChecker checker(pool, test::small_code_config());
  CodeProblem p = test::answer_problem();
  // Guesses at the protocol without the nonce.
  CodeReward fake = checker.check_code(
      "import sys\nfor n in ['', 'x', '0' * 32]:\n    print(n + ' 0 PASS')\n    print(n + ' DONE')\n"
      "print('0 PASS')\nsys.stdout.flush()\nimport os\nos._exit(0)\n", p);
  CHECK(fake.reward == 0.0);
  CHECK(fake.verdict == CodeVerdict::RuntimeError);
  CodeReward exit0 = checker.check_code("import sys\nsys.exit(0)\n", p);
  CHECK(exit0.reward == 0.0);
  CodeReward stdin_read = checker.check_code("import sys\nprint(sys.stdin.read())\ndef answer(): return 41\n", p);
  CHECK(stdin_read.reward == 0.0);
  CHECK(stdin_read.verdict == CodeVerdict::WrongAnswer);
  // Printing without a newline does not hide the harness's line.
  CodeReward noisy = checker.check_code("import sys\nsys.stdout.write('no newline')\ndef answer():\n"
                                        "    print('partial', end='')\n    return 42\n", p);
  CHECK(noisy.verdict == CodeVerdict::Passed);
  CHECK(noisy.reward == 1.0);
}

TEST_CASE("stdio check in Python and C++", "[code_reward]") {
  Sandbox sb(test::small_sandbox_config());
  SandboxPool pool(sb);
  CodeChecker checker(pool, test::small_code_config());
  CodeProblem p;
  p.stdio_cases = {{"1 2\n", "3\n"}, {"10 -4\n", "6"}, {"5 5", "10"}};
  p.language = CodeLanguage::Python;
  CodeReward py = checker.check("```python\na, b = map(int, input().split())\nprint(a + b)\n```", p);
  CHECK(py.verdict == CodeVerdict::Passed);
  CHECK(py.reward == 1.0);
  CodeReward wrong = checker.check("```python\nprint(3)\n```", p);
  CHECK(wrong.verdict == CodeVerdict::WrongAnswer);
  CHECK(wrong.passed == 1);

  p.language = CodeLanguage::Cpp;
  CodeReward cpp = checker.check(
      "```cpp\n#include <iostream>\nint main() { long a, b; std::cin >> a >> b; std::cout << a + b << \"\\n\"; }\n```", p);
  INFO(cpp.detail);
  CHECK(cpp.verdict == CodeVerdict::Passed);
  CHECK(cpp.reward == 1.0);
  CodeReward ce = checker.check("```cpp\nint main() { return undefined_name; }\n```", p);
  CHECK(ce.verdict == CodeVerdict::CompileError);
  CHECK(ce.detail.find("undefined_name") != std::string::npos);
  CodeReward crash = checker.check("```c++\n#include <cstdlib>\nint main() { std::abort(); }\n```", p);
  CHECK(crash.verdict == CodeVerdict::RuntimeError);
  CodeReward loop = checker.check("```cpp\nint main() { volatile int x = 0; for (;;) ++x; }\n```", p);
  CHECK(loop.verdict == CodeVerdict::Timeout);
}

TEST_CASE("check_async overlaps checks and problems are validated", "[code_reward]") {
  Sandbox sb(test::small_sandbox_config());
  SandboxPool pool(sb);
  CodeChecker checker(pool, test::small_code_config());
  std::vector<std::future<CodeReward>> fs;
  for (int i = 0; i < 6; ++i)
    fs.push_back(checker.check_async("```python\ndef answer(): return " + std::to_string(40 + i) + "\n```",
                                     test::answer_problem()));
  for (int i = 0; i < 6; ++i) CHECK(fs[size_t(i)].get().reward == (i == 2 ? 1.0 : 0.0));
  CodeProblem both = test::answer_problem();
  both.stdio_cases = {{"", ""}};
  CHECK_THROWS_AS(checker.check_code("x", both), DataError);
  CHECK_THROWS_AS(checker.check_code("x", CodeProblem{}), DataError);
}

TEST_CASE("every MBPP reference solution passes; mutated solutions fail", "[mbpp]") {
  std::vector<test::MbppTask> tasks = test::load_mbpp();
  REQUIRE(tasks.size() >= 300);
  SandboxConfig scfg;
  scfg.max_concurrent = 0;  // 4 x cores
  Sandbox sb(scfg);
  SandboxPool pool(sb);
  CodeRewardConfig cfg;
  CodeChecker checker(pool, cfg);
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::future<CodeReward>> fs;
  for (const test::MbppTask& t : tasks)
    fs.push_back(checker.check_async("```python\n" + t.code + "\n```", t.problem));
  int passed = 0;
  for (size_t i = 0; i < tasks.size(); ++i) {
    CodeReward r = fs[i].get();
    INFO("task " << tasks[i].task_id << ": " << code_verdict_name(r.verdict) << " " << r.detail
                 << (r.tests.empty() ? "" : r.tests[0].detail));
    CHECK(r.reward == 1.0);
    passed += r.reward == 1.0;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  WARN("MBPP: " << passed << "/" << tasks.size() << " reference solutions passed, "
                << tasks.size() / secs << " checks/s");

  // Mutation: wrap the function the first assert calls so it returns a different value.
  fs.clear();
  std::vector<size_t> sample;
  for (size_t i = 0; i < tasks.size(); i += 4) sample.push_back(i);
  for (size_t i : sample) {
    const std::string& a = tasks[i].problem.asserts[0];
    size_t b = a.find("assert ") + 7;
    while (b < a.size() && (a[b] == ' ' || a[b] == '(')) ++b;
    size_t e = b;
    while (e < a.size() && (std::isalnum(static_cast<unsigned char>(a[e])) || a[e] == '_')) ++e;
    std::string fn = a.substr(b, e - b);
    std::string mutant = tasks[i].code + "\n_zeroth_orig = " + fn + "\ndef " + fn +
                         "(*args, **kwargs):\n    return (_zeroth_orig(*args, **kwargs), 'mutant')\n";
    fs.push_back(checker.check_async("```python\n" + mutant + "\n```", tasks[i].problem));
  }
  for (size_t k = 0; k < sample.size(); ++k) {
    CodeReward r = fs[k].get();
    INFO("mutant of task " << tasks[sample[k]].task_id);
    CHECK(r.reward == 0.0);
    CHECK((r.verdict == CodeVerdict::WrongAnswer || r.verdict == CodeVerdict::RuntimeError));
  }
}
