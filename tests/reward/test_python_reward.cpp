// User reward functions in Python (python_reward.h, the `python` entry of
// rewards.functions): arguments by keyword as the function declares them, return values,
// start-up ConfigErrors, and every way a call can fail (exception, bad value, crash,
// timeout: score 0, the worker started again, the processes it left killed), prints that
// must not corrupt the protocol, batches over several workers, and the composer's use of
// the score and of "correct".
#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "zeroth/config_reflect.h"
#include "zeroth/error.h"
#include "zeroth/python_reward.h"
#include "zeroth/rewards.h"

using namespace zeroth;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("zeroth_pyreward_" + std::to_string(::getpid()) + "_" + std::to_string(std::rand()));
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

PythonRewardOptions options(const std::string& path, double timeout = 30.0, int workers = 1) {
  PythonRewardOptions o;
  o.path = path;
  o.timeout_seconds = timeout;
  o.workers = workers;
  return o;
}

PythonRewardCall call_with(const std::string& solution) {
  PythonRewardCall c;
  c.data_source = "gsm8k";
  c.solution_str = solution;
  c.ground_truth_json = python_json_string("42");
  c.extra_info_json = R"({"id": 7, "nums": [1, 2, 3]})";
  c.prompt = "What is 6 x 7?";
  c.num_tokens = 5;
  c.kind = "math";
  return c;
}

std::string start_error(const PythonRewardOptions& o) {
  try {
    PythonRewardPool pool(o);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

struct RewardsOnly {  // what `zeroth reward --config` reads
  RewardsConfig rewards;
  template <class V>
  void visit(V& v) {
    v.field("rewards", rewards, "rewards");
  }
};

std::string config_error_of(const std::string& yaml, const TempDir& dir) {
  try {
    load_config_as<RewardsOnly>(dir.write("bad.yaml", yaml), {});
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

bool process_alive(pid_t pid) { return ::kill(pid, 0) == 0; }

// Every failure mode, chosen by the completion.
const char* const kFaulty = R"PY(
import math, os, subprocess, sys, time

def compute_score(solution_str, extra_info=None):
    s = solution_str
    if s == "raise":
        raise ValueError("bad completion")
    if s == "string":
        return "yes"
    if s == "nan":
        return math.nan
    if s == "dict":
        return {"acc": 1}
    if s == "exit":
        os._exit(3)
    if s == "kill":
        os.kill(os.getpid(), 9)
    if s == "sleep":
        time.sleep(60)
    if s.startswith("orphan:"):
        p = subprocess.Popen(["sleep", "1000"])
        with open(s[len("orphan:"):], "w") as f:
            f.write(str(p.pid))
        time.sleep(60)
    if s == "print":
        print("x" * 100)
        sys.stdout.write("{\"id\": 0, \"score\": 99}\n")
    return float(len(s))
)PY";

}  // namespace

TEST_CASE("python reward: verl's compute_score gets every argument by keyword", "[python_reward]") {
  TempDir dir;
  const std::string path = dir.write("verl_style.py", R"PY(
def compute_score(data_source, solution_str, ground_truth, extra_info=None):
    assert data_source == "gsm8k", data_source
    assert ground_truth == "42", ground_truth
    assert extra_info == {"id": 7, "nums": [1, 2, 3]}, extra_info
    return 1.0 if solution_str.strip().endswith(ground_truth) else 0.25
)PY");
  PythonRewardPool pool(options(path));
  CHECK(pool.parameters() == std::vector<std::string>{"data_source", "solution_str", "ground_truth", "extra_info"});
  PythonRewardResult r = pool.call(call_with("so the answer is 42"));
  INFO(r.error);
  CHECK(r.ok());
  CHECK(r.score == 1.0);
  CHECK(r.correct == -1);
  CHECK(pool.call(call_with("41")).score == 0.25);
}

TEST_CASE("python reward: only the declared parameters are passed, all of them with **kwargs", "[python_reward]") {
  TempDir dir;
  // TinyZero's countdown signature: extra parameters with defaults are left alone.
  const std::string tiny = dir.write("tiny.py", R"PY(
def compute_score(solution_str, ground_truth, method="strict", format_score=0.1, score=1.0):
    return score if ground_truth in solution_str else format_score
)PY");
  PythonRewardPool a(options(tiny));
  CHECK(a.parameters() == std::vector<std::string>{"solution_str", "ground_truth"});
  CHECK(a.call(call_with("42")).score == 1.0);
  CHECK(a.call(call_with("7")).score == 0.1);

  const std::string kw = dir.write("kw.py", R"PY(
def reward(**kwargs):
    assert kwargs["prompt"] == "What is 6 x 7?" and kwargs["num_tokens"] == 5 and kwargs["kind"] == "math"
    return len(kwargs)
)PY");
  PythonRewardOptions o = options(kw);
  o.function = "reward";
  PythonRewardPool b(o);
  CHECK(b.parameters().size() == 7);
  PythonRewardResult r = b.call(call_with("x"));
  INFO(r.error);
  CHECK(r.score == 7.0);

  // None for an unknown token count; a bool and a dict with "correct".
  const std::string dict = dir.write("dict.py", R"PY(
def compute_score(solution_str, num_tokens):
    if num_tokens is None:
        return True
    return {"score": 0.5, "correct": solution_str == "right"}
)PY");
  PythonRewardPool c(options(dict));
  PythonRewardCall unknown = call_with("right");
  unknown.num_tokens = -1;
  CHECK(c.call(unknown).score == 1.0);
  CHECK(c.call(call_with("right")).correct == 1);
  CHECK(c.call(call_with("wrong")).correct == 0);
  CHECK(c.call(call_with("wrong")).score == 0.5);
}

TEST_CASE("python reward: a function that cannot be loaded is a ConfigError at start", "[python_reward]") {
  TempDir dir;
  CHECK_THAT(start_error(options((dir.path / "missing.py").string())),
             Catch::Contains("rewards.python.path") && Catch::Contains("missing.py"));
  CHECK_THAT(start_error(options(dir.write("syntax.py", "def compute_score(:\n"))),
             Catch::Contains("SyntaxError") && Catch::Contains("syntax.py"));
  CHECK_THAT(start_error(options(dir.write("raises.py", "import no_such_module_zeroth\n"))),
             Catch::Contains("ModuleNotFoundError") && Catch::Contains("no_such_module_zeroth"));
  CHECK_THAT(start_error(options(dir.write("nofn.py", "def other(solution_str):\n    return 1\n"))),
             Catch::Contains("defines no 'compute_score'"));
  CHECK_THAT(start_error(options(dir.write("notfn.py", "compute_score = 3\n"))), Catch::Contains("not a function"));
  CHECK_THAT(start_error(options(dir.write("param.py", "def compute_score(solution_str, answer):\n    return 1\n"))),
             Catch::Contains("required parameter 'answer'"));
  PythonRewardOptions o = options(dir.write("ok.py", "def compute_score(solution_str):\n    return 1\n"));
  o.interpreter = "no-such-python-zeroth";
  CHECK_THAT(start_error(o), Catch::Contains("rewards.python.interpreter") && Catch::Contains("not on PATH"));
  o.interpreter = "/bin/false";  // executable, but not Python
  CHECK_THAT(start_error(o), Catch::Contains("rewards.python.path") && Catch::Contains("exited with status 1"));
  o.interpreter = "python3";
  o.workers = 0;
  CHECK_THAT(start_error(o), Catch::Contains("rewards.python.workers"));
}

TEST_CASE("python reward: failed calls score 0 with the error and the next call works", "[python_reward]") {
  TempDir dir;
  PythonRewardPool pool(options(dir.write("faulty.py", kFaulty), 30.0));
  auto error_of = [&](const std::string& s) {
    PythonRewardResult r = pool.call(call_with(s));
    CHECK(r.status == PythonRewardResult::Status::Error);
    CHECK(r.score == 0.0);
    CHECK(pool.call(call_with("ok")).score == 2.0);  // the worker goes on (or was started again)
    return r.error;
  };
  // The traceback is the user's: it names their file and line, not the driver's frames.
  const std::string raised = error_of("raise");
  CHECK_THAT(raised, Catch::Contains("ValueError: bad completion") && Catch::Contains("faulty.py\", line 7"));
  CHECK_THAT(raised, !Catch::Contains("<string>"));
  CHECK_THAT(error_of("string"), Catch::Contains("returned 'yes'") && Catch::Contains("expected a number"));
  CHECK_THAT(error_of("nan"), Catch::Contains("expected a finite number"));
  CHECK_THAT(error_of("dict"), Catch::Contains("without 'score'"));
  CHECK(pool.restarts() == 0);  // an exception does not cost the worker
  CHECK_THAT(error_of("exit"), Catch::Contains("exited with status 3"));
  CHECK_THAT(error_of("kill"), Catch::Contains("killed by signal 9"));
  CHECK(pool.restarts() == 2);
  // A print, even one that looks like a reply, goes to stderr, not into the protocol.
  PythonRewardResult printed = pool.call(call_with("print"));
  INFO(printed.error);
  CHECK(printed.ok());
  CHECK(printed.score == 5.0);
}

TEST_CASE("python reward: a call over timeout_seconds is killed with what it started", "[python_reward]") {
  TempDir dir;
  PythonRewardPool pool(options(dir.write("faulty.py", kFaulty), 1.0));
  const auto t0 = std::chrono::steady_clock::now();
  PythonRewardResult r = pool.call(call_with("sleep"));
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(r.status == PythonRewardResult::Status::Timeout);
  CHECK_THAT(r.error, Catch::Contains("timeout_seconds (1 s)"));
  CHECK(took < 10.0);
  CHECK(pool.call(call_with("fine")).score == 4.0);
  CHECK(pool.restarts() == 1);

  // A process the function started is in the worker's process group: killed with it.
  const std::string pid_file = (dir.path / "orphan.pid").string();
  r = pool.call(call_with("orphan:" + pid_file));
  CHECK(r.status == PythonRewardResult::Status::Timeout);
  std::ifstream in(pid_file);
  pid_t orphan = 0;
  in >> orphan;
  REQUIRE(orphan > 0);
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    // (an exited child of the killed worker is reaped by init; until then kill(0) still finds it)
    std::ifstream stat("/proc/" + std::to_string(orphan) + "/stat");
    std::string s;
    std::getline(stat, s);
    gone = !process_alive(orphan) || s.find(") Z") != std::string::npos;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  CHECK(gone);
}

TEST_CASE("python reward: big and invalid UTF-8 completions and batches over several workers", "[python_reward]") {
  TempDir dir;
  PythonRewardPool pool(options(dir.write("faulty.py", kFaulty), 30.0, 3));
  CHECK(pool.workers() == 3);
  CHECK(pool.call(call_with(std::string(3 << 20, 'a'))).score == double(3 << 20));
  PythonRewardResult bad = pool.call(call_with("ab\xff\xfe"));  // replaced by U+FFFD, one character each
  CHECK(bad.ok());
  CHECK(bad.score == 4.0);

  std::vector<PythonRewardCall> calls;
  for (int i = 0; i < 40; ++i) calls.push_back(call_with(i % 13 == 5 ? std::string("raise") : std::string(i, 'z')));
  const std::vector<PythonRewardResult> out = pool.call_batch(calls);
  REQUIRE(out.size() == calls.size());
  for (int i = 0; i < 40; ++i) {
    if (i % 13 == 5) {
      CHECK(!out[size_t(i)].ok());
    } else {
      CHECK(out[size_t(i)].ok());
      CHECK(out[size_t(i)].score == double(i));
    }
  }
}

TEST_CASE("python reward in the composer: weights, correct, errors and counts", "[python_reward]") {
  TempDir dir;
  const std::string path = dir.write("judge.py", R"PY(
def compute_score(solution_str, ground_truth, extra_info):
    if solution_str == "crash":
        raise RuntimeError("judge failed")
    if extra_info is not None and extra_info.get("strict"):
        return {"score": 3.0, "correct": False}
    return 2.0
)PY");
  RewardsConfig cfg;
  cfg.functions = {{"accuracy", 1.0, "strict", "en"}, {"python", 0.5, "strict", "en"}};
  cfg.python.path = path;
  RewardComposer composer(cfg);

  RewardSample s;
  s.kind = RewardKind::Math;
  s.gold = "4";
  s.completion = "<answer>4</answer>";
  RewardResult r = composer.score(s);
  CHECK(r.correct);
  CHECK(r.verdict == "correct");
  CHECK(r.component("python") == 2.0);
  CHECK(r.reward == 1.0 + 0.5 * 2.0);
  CHECK(r.reward_error.empty());

  s.extra_info = R"({"strict": true})";  // the function overrides correctness
  r = composer.score(s);
  CHECK(!r.correct);
  CHECK(r.verdict == "wrong_answer");
  CHECK(r.component("accuracy") == 1.0);  // the native verifier still scores its component
  CHECK(r.reward == 1.0 + 0.5 * 3.0);

  RewardSample crash = s;
  crash.completion = "crash";
  crash.extra_info.clear();
  const std::vector<RewardResult> batch = composer.score_batch({s, crash, s});
  CHECK(batch[0].reward == 2.5);
  CHECK(batch[1].reward == 0.0);
  CHECK_THAT(batch[1].reward_error, Catch::StartsWith("python error:") && Catch::Contains("judge failed"));
  CHECK(batch[2].reward == 2.5);
  const auto counts = composer.verdict_counts();
  CHECK(counts.at("python.ok") == 4);
  CHECK(counts.at("python.error") == 1);
}

TEST_CASE("python reward: config keys and their errors", "[python_reward]") {
  TempDir dir;
  RewardsConfig cfg;
  cfg.functions = {{"python", 1.0, "strict", "en"}};
  CHECK_THROWS_WITH(cfg.validate(), Catch::Contains("key 'rewards.python.path'"));
  cfg.python.path = dir.write("r.py", "def compute_score(solution_str):\n    return 1\n");
  cfg.python.timeout_seconds = 0;
  CHECK_THROWS_WITH(cfg.validate(), Catch::Contains("key 'rewards.python.timeout_seconds'"));
  cfg.python.timeout_seconds = 5;
  CHECK_NOTHROW(cfg.validate());
  CHECK(cfg.has_python());
  cfg.functions.push_back({"python", 1.0, "strict", "en"});
  CHECK_THROWS_WITH(cfg.validate(), Catch::Contains("each function once"));
}

TEST_CASE("python reward: the shipped R1-Zero example agrees with the native accuracy + strict format", "[python_reward]") {
  const std::string src = ZEROTH_SOURCE_DIR;
  RewardsConfig py = load_config_as<RewardsOnly>(src + "/configs/rewards-python.yaml", {}).rewards;
  REQUIRE(py.has_python());
  CHECK(py.python.path == "scripts/rewards/r1zero_reward.py");
  py.python.path = src + "/" + py.python.path;  // (the example's path is relative to the repository root)
  py.python.workers = 2;
  RewardsConfig native;  // accuracy + strict format
  native.math.extractors = {"answer_tag"};
  RewardComposer a(py), b(native);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"<think>2 and 2</think> <answer>4</answer>", "4"},
      {"<think>2 and 2</think>\n<answer>5</answer>\n", "4"},
      {"<answer>4</answer>", "4"},
      {"<think>x</think><think>y</think><answer>4</answer>", "4"},
      {"<think> </think><answer>4</answer>", "4"},
      {"<think>half</think><answer>1/2</answer>", "0.5"},
      {"<think>sum</think><answer>1,234</answer>", "1234"},
      {"<think>no answer tag</think> 4", "4"},
      {"<think>r</think><answer>-3.50</answer>", "-3.5"},
  };
  std::vector<RewardSample> samples;
  for (const auto& [completion, gold] : cases) {
    RewardSample s;
    s.completion = completion;
    s.gold = gold;
    samples.push_back(s);
  }
  const std::vector<RewardResult> ra = a.score_batch(samples), rb = b.score_batch(samples);
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO(cases[i].first << " / " << cases[i].second << ": " << ra[i].reward_error);
    CHECK(ra[i].reward_error.empty());
    CHECK(ra[i].reward == rb[i].reward);
    CHECK(ra[i].correct == rb[i].correct);
  }
}

TEST_CASE("python reward: the shipped Countdown example reads the record and never evaluates the model's text", "[python_reward]") {
  const std::string src = ZEROTH_SOURCE_DIR;
  RewardsConfig cfg;
  cfg.functions = {{"python", 1.0, "strict", "en"}};
  cfg.python.path = src + "/scripts/rewards/countdown_reward.py";
  cfg.python.workers = 2;
  RewardComposer composer(cfg);
  const std::vector<std::pair<std::string, double>> cases = {
      {"<think>4*6=24</think> <answer>4 * 6 * 1</answer>", 1.0},
      {"<answer>1</answer> then <answer> 4 * (6 / 1) </answer>", 1.0},  // the last answer counts
      {"<answer>(6 - 1) * 4 + 4</answer>", 0.1},                       // 4 twice
      {"<answer>4 * 6</answer>", 0.1},                                 // 1 unused
      {"<answer>4 * 6 * 1 + 0</answer>", 0.1},                         // 0 is not given
      {"<answer>6 / (1 - 1) * 4</answer>", 0.1},                       // division by zero
      {"<answer>__import__('os').system('true')</answer>", 0.1},       // never evaluated
      {"<answer>" + std::string(150, '(') + "4" + std::string(150, ')') + "</answer>", 0.1},
      {"twenty-four", 0.0},
  };
  std::vector<RewardSample> samples;
  for (const auto& c : cases) {
    RewardSample s;
    s.completion = c.first;
    s.gold = "24";
    s.extra_info = R"({"prompt": "Using the numbers [4, 6, 1] ...", "target": 24, "nums": [4, 6, 1]})";
    samples.push_back(s);
  }
  const std::vector<RewardResult> out = composer.score_batch(samples);
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO(cases[i].first << ": " << out[i].reward_error);
    CHECK(out[i].reward_error.empty());
    CHECK(out[i].reward == cases[i].second);
    CHECK(out[i].correct == (cases[i].second == 1.0));
  }

  // scripts/make-countdown.py writes records the reward reads: a target and its numbers.
  TempDir dir;
  const std::string data = (dir.path / "countdown.jsonl").string();
  REQUIRE(std::system(("python3 " + src + "/scripts/make-countdown.py --n 40 --seed 3 --out " + data +
                       " > /dev/null").c_str()) == 0);
  std::ifstream in(data);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    CHECK_THAT(line, Catch::Contains("\"target\": ") && Catch::Contains("\"nums\": [") &&
                         Catch::Contains("create an equation that equals"));
  }
  CHECK(lines == 40);
}

TEST_CASE("python reward: kwargs from YAML reach the function typed, and --set changes one", "[python_reward]") {
  TempDir dir;
  const std::string path = dir.write("tiny.py", R"PY(
def compute_score(solution_str, ground_truth, method="strict", format_score=0.1, score=1.0, flag=None):
    assert isinstance(format_score, float) and isinstance(score, int) and method == "lenient" and flag is True, \
        (method, format_score, score, flag)
    return score if ground_truth in solution_str else format_score
)PY");
  const std::string yaml = dir.write("r.yaml", "rewards:\n  functions: [{name: python}]\n  python:\n    path: " + path +
                                                   "\n    kwargs: {format_score: 0.25, score: 3, method: lenient, "
                                                   "flag: true}\n");
  RewardsConfig cfg = load_config_as<RewardsOnly>(yaml, {}).rewards;
  REQUIRE(cfg.python.kwargs.size() == 4);
  CHECK(cfg.python.kwargs_json() == R"({"flag":true,"format_score":0.25,"method":"lenient","score":3})");
  RewardComposer a(cfg);
  RewardSample s;
  s.gold = "42";
  s.completion = "42";
  CHECK(a.score(s).reward == 3.0);
  s.completion = "41";
  CHECK(a.score(s).reward == 0.25);

  RewardsConfig set = load_config_as<RewardsOnly>(yaml, {"rewards.python.kwargs.format_score=0.5"}).rewards;
  CHECK(RewardComposer(set).score(s).reward == 0.5);

  // Keys the function cannot take, or that zeroth passes itself, are ConfigErrors at start.
  RewardsConfig bad = cfg;
  bad.python.kwargs["nope"] = "1";
  CHECK_THROWS_WITH(RewardComposer(bad), Catch::Contains("has no keyword parameter 'nope'"));
  bad = cfg;
  bad.python.kwargs["ground_truth"] = "7";
  CHECK_THROWS_WITH(RewardComposer(bad), Catch::Contains("'ground_truth' is an argument zeroth passes itself"));
  CHECK_THAT(config_error_of("rewards:\n  python:\n    kwargs: [1, 2]\n", dir),
             Catch::Contains("rewards.python.kwargs") && Catch::Contains("expected a map of strings"));
}

TEST_CASE("python reward: a dict's other numbers come back, rewards.python.metrics picks some", "[python_reward]") {
  TempDir dir;
  RewardsConfig cfg;
  cfg.functions = {{"python", 1.0, "strict", "en"}};
  cfg.python.path = dir.write("extra.py", R"PY(
class bool_:  # stands for numpy.bool_, which is not a numbers.Real
    def __init__(self, v):
        self.v = v
    def __bool__(self):
        return self.v

def compute_score(solution_str):
    if solution_str == "plain":
        return 0.5
    if solution_str == "numpy":
        return {"score": bool_(True), "correct": bool_(False), "flag": bool_(True)}
    return {"score": 1.0, "acc": True, "len": len(solution_str), "pred": "text", "nan": float("nan")}
)PY");
  cfg.python.metrics = {"len", "acc", "missing"};
  RewardComposer c(cfg);
  RewardSample s;
  s.gold = "1";
  s.completion = "abc";
  RewardResult r = c.score(s);
  REQUIRE(r.python_metrics.size() == 3);
  CHECK(r.python_metrics[0] == 3.0);
  CHECK(r.python_metrics[1] == 1.0);
  CHECK(std::isnan(r.python_metrics[2]));
  CHECK(r.python_extra == std::map<std::string, double>{{"acc", 1.0}, {"len", 3.0}});  // not strings, not NaN
  s.completion = "plain";
  r = c.score(s);
  CHECK(std::isnan(r.python_metrics[0]));
  CHECK(r.python_extra.empty());
  s.completion = "numpy";
  r = c.score(s);
  INFO(r.reward_error);
  CHECK(r.reward == 1.0);
  CHECK(!r.correct);
  CHECK(r.python_extra == std::map<std::string, double>{{"flag", 1.0}});

  cfg.python.metrics = {"score"};
  CHECK_THROWS_WITH(cfg.validate(), Catch::Contains("rewards.python.metrics[0]"));
  cfg.python.metrics = {"a", "a"};
  CHECK_THROWS_WITH(cfg.validate(), Catch::Contains("rewards.python.metrics[1]"));
}

TEST_CASE("python reward: a code sample it judges is not run in the sandbox without an accuracy function", "[python_reward]") {
  TempDir dir;
  RewardsConfig cfg;
  cfg.functions = {{"python", 1.0, "strict", "en"}};
  cfg.python.path = dir.write("judge.py", R"PY(
def compute_score(solution_str, ground_truth, kind):
    assert kind == "code" and ground_truth["asserts"] == ["assert f() == 1"], (kind, ground_truth)
    return {"score": 0.5, "correct": "return 1" in solution_str}
)PY");
  // A sandbox that cannot even be created (its limits are refused when the first code sample
  // needs it): the native check would throw.
  cfg.code.limits.memory_bytes = 0;
  RewardComposer c(cfg);
  RewardSample s;
  s.kind = RewardKind::Code;
  s.problem.asserts = {"assert f() == 1"};
  s.completion = "```python\ndef f():\n    return 1\n```";
  const RewardResult r = c.score(s);
  INFO(r.detail << r.reward_error);
  CHECK(r.verdict == "passed");
  CHECK(r.reward == 0.5);
  CHECK(r.detail.empty());  // nothing ran
  const std::vector<RewardResult> batch = c.score_batch({s, s});  // (nor in a batch)
  CHECK(batch[1].verdict == "passed");
  // With an accuracy function the program has to run: the sandbox is needed (and refused here).
  cfg.functions.push_back({"accuracy", 1.0, "strict", "en"});
  RewardComposer with_accuracy(cfg);
  CHECK_THROWS_WITH(with_accuracy.score(s), Catch::Contains("memory_bytes"));
}
