// Tests of `zeroth sweep` (sweep.h): expansion (grid, zip, seeded random), constraints and
// their expression language, trial names and their disambiguation, validation of every
// trial against the train config (unknown key, bad value), the plan files, trial states
// and the resume logic (DONE skipped, checkpoint -> --resume, others fresh, failures
// recorded) with a fake trainer (a shell script given by ZEROTH_SWEEP_TRAIN_CMD),
// status/report tables on fixture run directories, and the Slurm array script (dry run).
#include <sys/file.h>
#include <fcntl.h>
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "zeroth/error.h"
#include "zeroth/run_stop.h"
#include "zeroth/sweep.h"

namespace zeroth {
namespace cli {
int cmd_sweep(const std::vector<std::string>& args);
int cmd_config(const std::vector<std::string>& args);
}  // namespace cli
}  // namespace zeroth

using namespace zeroth;
namespace fs = std::filesystem;

static const std::string kSrc = ZEROTH_SOURCE_DIR;

static std::string temp_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("zeroth_test_sweep_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

static void write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

static std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A small valid train config (never trained here, only resolved).
static std::string write_base(const std::string& dir) {
  write(dir + "/train.jsonl", "{\"prompt\": \"1+1\", \"answer\": \"2\"}\n");
  const std::string path = dir + "/base.yaml";
  write(path, "run:\n  threads: 1\n  seed: 7\n"
              "model:\n  init: " + kSrc + "/configs/models/tiny.json\n"
              "train:\n  steps: 3\n  save_every: 1\n  log_every: 1\n"
              "rollout:\n  group_size: 4\n  num_slots: 16\n  max_len: 64\n  max_new_tokens: 48\n"
              "grpo:\n  kl_coef: 0.05\n  clip_low: 0.2\n  clip_high: 0.28\n"
              "rl:\n  prompts_per_step: 4\n"
              "prompts:\n  sources:\n    - path: " + dir + "/train.jsonl\n"
              "rewards:\n  functions:\n    - {name: accuracy, weight: 1.0}\n"
              "    - {name: format, weight: 0.5, variant: lenient}\n");
  return path;
}

static std::vector<std::string> names(const std::vector<SweepTrial>& trials) {
  std::vector<std::string> out;
  for (const auto& t : trials) out.push_back(t.name);
  return out;
}

static SweepSpec spec_from(const std::string& dir, const std::string& body) {
  write_base(dir);
  write(dir + "/sweep.yaml", "base: base.yaml\n" + body);
  return load_sweep_spec(dir + "/sweep.yaml");
}

static std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no ConfigError)";
}

TEST_CASE("sweep expansion: grid is a cartesian product, first axis slowest") {
  const std::string dir = temp_dir("grid");
  const SweepSpec spec = spec_from(dir, "axes:\n  grpo.kl_coef: [0, 0.001, 0.01]\n  grpo.clip_high: [0.2, 0.28]\n");
  const auto trials = expand_sweep(spec);
  REQUIRE(names(trials) == std::vector<std::string>{
                               "kl_coef=0,clip_high=0.2", "kl_coef=0,clip_high=0.28", "kl_coef=0.001,clip_high=0.2",
                               "kl_coef=0.001,clip_high=0.28", "kl_coef=0.01,clip_high=0.2",
                               "kl_coef=0.01,clip_high=0.28"});
  REQUIRE(trials[3].overrides() == std::vector<std::string>{"grpo.kl_coef=0.001", "grpo.clip_high=0.28"});
  REQUIRE(trials[5].index == 5);
}

TEST_CASE("sweep expansion: zip groups advance together and combine with the grid") {
  const std::string dir = temp_dir("zip");
  const SweepSpec spec = spec_from(dir,
                                   "axes:\n  grpo.kl_coef: [0, 0.01]\n"
                                   "zip:\n  - {optim.lr: [0.001, 0.003], train.steps: [4, 2]}\n");
  const auto trials = expand_sweep(spec);
  REQUIRE(names(trials) == std::vector<std::string>{"kl_coef=0,lr=0.001,steps=4", "kl_coef=0,lr=0.003,steps=2",
                                                    "kl_coef=0.01,lr=0.001,steps=4", "kl_coef=0.01,lr=0.003,steps=2"});
  // Unequal lengths in a group are an error at the list.
  const std::string err = error_of([&] { spec_from(dir, "zip:\n  - {optim.lr: [0.001, 0.003], train.steps: [4]}\n"); });
  INFO(err);
  CHECK(err.find("sweep.yaml:3:45:") != std::string::npos);
  CHECK(err.find("key 'zip.train.steps': expected 2 values") != std::string::npos);
}

TEST_CASE("sweep expansion: random samples are reproducible from the seed and within bounds") {
  const std::string dir = temp_dir("random");
  const std::string body =
      "random:\n  count: 6\n  seed: 3\n  params:\n"
      "    grpo.kl_coef: {log_uniform: [0.0001, 0.1]}\n"
      "    grpo.clip_high: {uniform: [0.2, 0.3]}\n"
      "    rollout.group_size: {randint: [2, 8]}\n"
      "    grpo.loss_agg: {choice: [token_mean, seq_mean_token_mean]}\n";
  const auto a = expand_sweep(spec_from(dir, body));
  const auto b = expand_sweep(spec_from(dir, body));
  REQUIRE(a.size() == 6);
  REQUIRE(names(a) == names(b));
  for (const auto& t : a) {
    REQUIRE(t.params.size() == 4);
    CHECK(t.params[0].second.number >= 0.0001);
    CHECK(t.params[0].second.number <= 0.1);
    CHECK(t.params[1].second.number >= 0.2);
    CHECK(t.params[1].second.number <= 0.3);
    CHECK(t.params[2].second.number >= 2);
    CHECK(t.params[2].second.number <= 8);
    CHECK(t.params[2].second.number == static_cast<int>(t.params[2].second.number));
    CHECK((t.params[3].second.label == "token_mean" || t.params[3].second.label == "seq_mean_token_mean"));
    // The value in the config is the one in the name (4 significant digits).
    CHECK(t.name.find("kl_coef=" + t.params[0].second.yaml + ",") == 0);
  }
  // Samples differ from each other, and another seed draws other samples.
  CHECK(a[0].name != a[1].name);
  const auto c = expand_sweep(spec_from(dir, std::string(body).replace(body.find("seed: 3"), 7, "seed: 4")));
  CHECK(names(c) != names(a));
  // A grid times the samples.
  const auto d = expand_sweep(spec_from(dir, "axes:\n  optim.lr: [0.1, 0.2]\n" + body));
  REQUIRE(d.size() == 12);
  CHECK(d[6].name.find("lr=0.2,") == 0);
  CHECK(d[6].name.substr(7) == a[0].name);
}

TEST_CASE("sweep constraints: drop combinations, see base values, report errors at the constraint") {
  const std::string dir = temp_dir("constraints");
  int rejected = -1;
  const auto trials = expand_sweep(
      spec_from(dir, "axes:\n  grpo.clip_low: [0.1, 0.2, 0.3]\n  grpo.clip_high: [0.2, 0.28]\n"
                     "constraints:\n  - grpo.clip_high >= grpo.clip_low\n"
                     "  - not (grpo.clip_low == 0.1 and grpo.clip_high == 0.2)\n"),
      &rejected);
  REQUIRE(names(trials) == std::vector<std::string>{"clip_low=0.1,clip_high=0.28", "clip_low=0.2,clip_high=0.2",
                                                    "clip_low=0.2,clip_high=0.28"});
  REQUIRE(rejected == 3);
  // Names that are not swept read the base config (with set: applied); arithmetic.
  const auto t2 = expand_sweep(spec_from(dir, "set:\n  rl.prompts_per_step: 8\n"
                                              "axes:\n  rollout.group_size: [2, 4, 8, 16]\n"
                                              "constraints: rollout.group_size * rl.prompts_per_step <= 32 && "
                                              "run.device == 'cpu'\n"));
  REQUIRE(names(t2) == std::vector<std::string>{"group_size=2", "group_size=4"});
  // Errors name the sweep file, the line and the problem.
  std::string err = error_of([&] {
    expand_sweep(spec_from(dir, "axes:\n  grpo.kl_coef: [0, 1]\nconstraints:\n  - grpo.kl_cof > 0\n"));
  });
  INFO(err);
  CHECK(err.find("sweep.yaml:5:5:") != std::string::npos);
  CHECK(err.find("unknown name 'grpo.kl_cof'") != std::string::npos);
  err = error_of([&] { expand_sweep(spec_from(dir, "axes:\n  grpo.kl_coef: [0, 1]\nconstraints: grpo.kl_coef >\n")); });
  CHECK(err.find("unexpected end") != std::string::npos);
  err = error_of([&] { expand_sweep(spec_from(dir, "axes:\n  grpo.kl_coef: [0, 1]\nconstraints: grpo.kl_coef + 1\n")); });
  CHECK(err.find("expected a comparison") != std::string::npos);
  err = error_of([&] { expand_sweep(spec_from(dir, "axes:\n  grpo.kl_coef: [0, 1]\nconstraints: grpo.kl_coef > 5\n")); });
  CHECK(err.find("no trial is left (2 rejected") != std::string::npos);
}

TEST_CASE("sweep constraint expressions: precedence, types, strings") {
  auto eval = [](const std::string& e) {
    return eval_sweep_constraint(e, [](const std::string& name, SweepExprValue* v) {
      if (name == "a.x") {
        v->number = 2;
        return true;
      }
      if (name == "mode") {
        v->kind = SweepExprValue::Kind::String;
        v->text = "fast";
        return true;
      }
      return false;
    });
  };
  CHECK(eval("1 + 2 * 3 == 7"));
  CHECK(eval("(1 + 2) * 3 == 9"));
  CHECK(eval("-a.x < 0 and a.x / 4 == 0.5"));
  CHECK(eval("not a.x > 3 || false"));
  CHECK(eval("mode == 'fast' and mode != \"slow\""));
  CHECK_FALSE(eval("a.x >= 3 or not true"));
  CHECK_THROWS_AS(eval("mode < 3"), ConfigError);
  CHECK_THROWS_AS(eval("a.x = 2"), ConfigError);
  CHECK_THROWS_AS(eval("a.x / 0 > 1"), ConfigError);
  CHECK_THROWS_AS(eval("(a.x > 1"), ConfigError);
  CHECK_THROWS_AS(eval("system('x')"), ConfigError);
}

TEST_CASE("sweep names: short keys, disambiguated suffixes, filesystem-safe, unique") {
  const std::string dir = temp_dir("names");
  auto t = expand_sweep(spec_from(dir, "axes:\n  grpo.clip_high: [0.28]\n  run.seed: [1]\n  model.seed: [2]\n"
                                       "  rewards.functions[1].weight: [0.25]\n  rewards.functions[0].weight: [1]\n"));
  REQUIRE(names(t) == std::vector<std::string>{
                          "clip_high=0.28,run.seed=1,model.seed=2,functions_1_.weight=0.25,functions_0_.weight=1"});
  t = expand_sweep(spec_from(dir, "axes:\n  rollout.stop: [['</answer>'], ['a b']]\n  run.name: ['x/y', 'x/y']\n"));
  REQUIRE(t.size() == 4);
  for (const auto& tr : t) {
    CHECK(tr.name.find('/') == std::string::npos);
    CHECK(tr.name.find(' ') == std::string::npos);
  }
  // Two values with the same label: both get the trial index.
  CHECK(t[0].name.substr(t[0].name.size() - 3) == "-t0");
  CHECK(t[1].name.substr(t[1].name.size() - 3) == "-t1");
  // No swept key at all: one trial named "base".
  t = expand_sweep(spec_from(dir, "set:\n  grpo.kl_coef: 0.01\n"));
  REQUIRE(names(t) == std::vector<std::string>{"base"});
}

TEST_CASE("sweep file errors: unknown keys, bad distributions, keys swept twice") {
  const std::string dir = temp_dir("file_errors");
  std::string err = error_of([&] { spec_from(dir, "axis:\n  grpo.kl_coef: [0]\n"); });
  CHECK(err.find("sweep.yaml:2:1: key 'axis': unknown key; did you mean 'axes'?") != std::string::npos);
  err = error_of([&] { spec_from(dir, "axes:\n  grpo.kl_coef: 0.1\n"); });
  CHECK(err.find("key 'axes.grpo.kl_coef': expected a non-empty list of values, found 0.1") != std::string::npos);
  err = error_of([&] { spec_from(dir, "random:\n  count: 2\n  params:\n    grpo.kl_coef: {log_uniform: [0, 1]}\n"); });
  CHECK(err.find("expected 0 < lo <= hi") != std::string::npos);
  err = error_of([&] { spec_from(dir, "random:\n  count: 2\n  params:\n    grpo.kl_coef: {normal: [0, 1]}\n"); });
  CHECK(err.find("unknown key") != std::string::npos);
  err = error_of([&] { spec_from(dir, "set:\n  grpo.kl_coef: 0\naxes:\n  grpo.kl_coef: [0, 1]\n"); });
  INFO(err);
  CHECK(err.find("sweep.yaml:5:3: key 'axes.grpo.kl_coef': this key is already set or swept") != std::string::npos);
  write(dir + "/nobase.yaml", "base: missing.yaml\n");
  err = error_of([&] { load_sweep_spec(dir + "/nobase.yaml"); });
  CHECK(err.find("does not exist") != std::string::npos);
}

TEST_CASE("sweep plan: every trial is resolved before anything is written and errors name the trial") {
  const std::string dir = temp_dir("validate");
  const std::string out = dir + "/out";
  // An unknown key (with a suggestion) and a bad value, found before any file is written.
  std::string err = error_of([&] { plan_sweep(spec_from(dir, "axes:\n  grpo.kl_coeff: [0, 0.1]\n"), out); });
  CHECK(err.find("sweep.yaml: trial 0 'kl_coeff=0'") != std::string::npos);
  CHECK(err.find("did you mean 'kl_coef'") != std::string::npos);
  err = error_of([&] { plan_sweep(spec_from(dir, "axes:\n  grpo.clip_low: [0.2, 1.5]\n"), out); });
  CHECK(err.find("trial 1 'clip_low=1.5'") != std::string::npos);
  CHECK(err.find("key 'grpo.clip_low'") != std::string::npos);
  CHECK(err.find("1.5") != std::string::npos);
  err = error_of([&] { plan_sweep(spec_from(dir, "set:\n  run.device: gpu\naxes:\n  grpo.kl_coef: [0]\n"), out); });
  CHECK(err.find("key 'run.device'") != std::string::npos);
  CHECK_FALSE(fs::exists(out));
}

// Sweeps over a Python reward function's constants: an axis over a key of
// rewards.python.kwargs (a map: any key) reaches each trial's resolved config.
TEST_CASE("sweep plan: an axis over rewards.python.kwargs") {
  const std::string dir = temp_dir("kwargs");
  const std::string out = dir + "/out";
  const SweepSpec spec = spec_from(dir, "set:\n  rewards.python.path: reward.py\n"
                                        "axes:\n  rewards.python.kwargs.format_score: [0.0, 0.2]\n");
  const SweepPlan plan = plan_sweep(spec, out);
  REQUIRE(plan.trials.size() == 2);
  CHECK(plan.trials[1].name == "format_score=0.2");
  const std::string cfg = read(out + "/format_score=0.2/config.yaml");
  CHECK(cfg.find("kwargs:\n      format_score: \"0.2\"") != std::string::npos);
}

TEST_CASE("sweep plan: trial directories with resolved configs and sweep.json") {
  const std::string dir = temp_dir("plan");
  const std::string out = dir + "/out";
  const SweepSpec spec = spec_from(dir, "set:\n  train.steps: 5\naxes:\n  grpo.kl_coef: [0, 0.001]\n"
                                        "metric: reward_mean\nmode: max\n");
  const SweepPlan plan = plan_sweep(spec, out);
  REQUIRE(plan.trials.size() == 2);
  const std::string cfg = read(out + "/kl_coef=0.001/config.yaml");
  CHECK(cfg.find("kl_coef: 0.001") != std::string::npos);
  CHECK(cfg.find("steps: 5") != std::string::npos);
  CHECK(cfg.find("run_dir: " + fs::absolute(out).string() + "/kl_coef=0.001") != std::string::npos);
  const auto js = nlohmann::json::parse(read(out + "/sweep.json"));
  CHECK(js["metric"] == "reward_mean");
  CHECK(js["trials"].size() == 2);
  CHECK(js["trials"][1]["name"] == "kl_coef=0.001");
  CHECK(js["trials"][1]["steps"] == 5);
  CHECK(js["trials"][1]["params"][0][0] == "grpo.kl_coef");
  const SweepPlan back = read_sweep_plan(out);
  CHECK(back.trials[1].overrides == plan.trials[1].overrides);
  // Planning again is idempotent; a changed value for a started trial is refused.
  plan_sweep(spec, out);
  write(out + "/kl_coef=0/metrics.jsonl", "{\"step\":1,\"reward_mean\":0.5}\n");
  const SweepSpec changed = spec_from(dir, "set:\n  train.steps: 6\naxes:\n  grpo.kl_coef: [0, 0.001]\n");
  const std::string err = error_of([&] { plan_sweep(changed, out); });
  CHECK(err.find("trial 'kl_coef=0' has already run") != std::string::npos);
  // Another sweep into the same directory would hide the started trial: refused, and
  // sweep.json stays the first sweep's.
  const SweepSpec other = spec_from(dir, "set:\n  train.steps: 5\naxes:\n  grpo.kl_coef: [0.002]\n");
  CHECK_THAT(error_of([&] { plan_sweep(other, out); }),
             Catch::Contains("holds another sweep (its trial 'kl_coef=0' has run and is not in this one)"));
  CHECK(read_sweep_plan(out).trials.size() == 2);
  // Adding a trial keeps the started ones: allowed.
  const SweepSpec grown = spec_from(dir, "set:\n  train.steps: 5\naxes:\n  grpo.kl_coef: [0, 0.001, 0.01]\n");
  CHECK(plan_sweep(grown, out).trials.size() == 3);
}

// A fake `zeroth train`: writes metrics.jsonl rows for the steps it runs and a checkpoint
// per step (with grpo_state.json, as the trainer does); behaviour per trial name from
// files in the sweep directory: FAIL_<n> makes step n fail, KILL_<n> kills it.
static std::string write_fake_trainer(const std::string& dir) {
  const std::string path = dir + "/fake-train.sh";
  write(path, R"SH(#!/bin/bash
set -eu
[[ "$1" == train ]] || exit 64
shift
mode=fresh
if [[ "$1" == --resume ]]; then mode=resume; run="$2"; else run="$4"; fi
echo "$mode $*" >> "$run/calls.log"
name="$(basename "$run")"
sweep="$(dirname "$run")"
start=1
if [[ $mode == resume ]]; then
  last=$(ls "$run/checkpoints" | sed 's/step_//' | sort -n | tail -1)
  start=$((last + 1))
  # keep metrics up to the checkpoint, as the trainer does
  head -n "$last" "$run/metrics.jsonl" > "$run/m.tmp"; mv "$run/m.tmp" "$run/metrics.jsonl"
else
  : > "$run/metrics.jsonl"
fi
kl=$(grep -o 'kl_coef: [0-9.e-]*' "$run/config.yaml" | head -1 | cut -d' ' -f2)
for step in $(seq $start 3); do
  if [[ -f "$sweep/KILL_$name" ]]; then rm "$sweep/KILL_$name"; kill -9 $$; fi
  if [[ -f "$sweep/FAIL_$name" ]]; then echo "boom" >&2; exit 3; fi
  echo "{\"step\":$step,\"reward_mean\":0.$step,\"accuracy\":0.$step,\"kl\":$kl}" >> "$run/metrics.jsonl"
  mkdir -p "$run/checkpoints/step_$step"; echo '{}' > "$run/checkpoints/step_$step/grpo_state.json"
done
echo "{\"step\":3,\"eval_accuracy\":$(awk "BEGIN{print 0.5 - $kl}")}" >> "$run/metrics.jsonl"
)SH");
  fs::permissions(path, fs::perms::owner_all);
  return path;
}

TEST_CASE("sweep run: local executor, failures recorded, DONE skipped, interrupted resumed, report") {
  const std::string dir = temp_dir("run");
  const std::string out = dir + "/out";
  write_base(dir);
  write(dir + "/sweep.yaml", "base: base.yaml\naxes:\n  grpo.kl_coef: [0, 0.001, 0.01]\n");
  const std::string fake = write_fake_trainer(dir);
  ::setenv("ZEROTH_SWEEP_TRAIN_CMD", fake.c_str(), 1);
  fs::create_directories(out);
  write(out + "/FAIL_kl_coef=0.01", "");
  write(out + "/KILL_kl_coef=0.001", "");

  // First run: one done, one killed after... at its first step, one failed.
  int rc = cli::cmd_sweep({"--config", dir + "/sweep.yaml", "--out", out, "--parallel", "2"});
  CHECK(rc == 1);
  CHECK(read_trial_state(out + "/kl_coef=0").state == "done");
  CHECK(read(out + "/kl_coef=0/DONE") == "exit 0\n");
  const TrialState killed = read_trial_state(out + "/kl_coef=0.001");
  CHECK(killed.state == "failed");
  CHECK(killed.detail == "signal 9");
  const TrialState failed = read_trial_state(out + "/kl_coef=0.01");
  CHECK(failed.state == "failed");
  CHECK(failed.detail == "exit 3");
  CHECK(read(out + "/kl_coef=0.01/train.log").find("boom") != std::string::npos);
  CHECK(read(out + "/kl_coef=0.001/calls.log").find("fresh --config") == 0);

  // Status lists all three in plan order.
  const SweepReport st = build_sweep_report(out, "", "", false);
  REQUIRE(st.rows.size() == 3);
  CHECK(st.rows[0].name == "kl_coef=0");
  CHECK(st.rows[1].state.state == "failed");

  // A trial with a checkpoint but no DONE is resumed; the failed one without checkpoints
  // starts fresh; the done one is skipped.
  fs::remove(out + "/FAIL_kl_coef=0.01");
  fs::create_directories(out + "/kl_coef=0.001/checkpoints/step_1");
  write(out + "/kl_coef=0.001/checkpoints/step_1/grpo_state.json", "{}");
  write(out + "/kl_coef=0.001/metrics.jsonl", "{\"step\":1,\"reward_mean\":0.1,\"accuracy\":0.1,\"kl\":0.001}\n{\"st");
  CHECK(read_trial_state(out + "/kl_coef=0.001").has_checkpoint);

  SweepRunOptions dry;
  dry.dry_run = true;
  dry.train_shell = fake;
  const SweepRunResult d = run_sweep(read_sweep_plan(out), dry);
  REQUIRE(d.commands.size() == 2);
  CHECK(d.commands[0].find("train --resume " + fs::absolute(out).string() + "/kl_coef=0.001") != std::string::npos);
  CHECK(d.commands[1].find("train --config") != std::string::npos);
  CHECK(d.skipped == 1);

  {
    // A second sweep on the same directory is refused while another holds its lock (a
    // flock on another open file description conflicts even within one process).
    const int fd = ::open((out + "/.sweep.lock").c_str(), O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);
    SweepRunOptions o2;
    o2.train_shell = fake;
    CHECK_THROWS_WITH(run_sweep(read_sweep_plan(out), o2),
                      Catch::Contains("another `zeroth sweep` is running"));
    ::close(fd);  // releases it
  }
  rc = cli::cmd_sweep({"--config", dir + "/sweep.yaml", "--out", out});
  CHECK(rc == 0);
  const std::string calls = read(out + "/kl_coef=0.001/calls.log");
  CHECK(calls.find("\nresume --resume") != std::string::npos);
  // The done trial ran exactly once.
  const std::string calls0 = read(out + "/kl_coef=0/calls.log");
  CHECK(std::count(calls0.begin(), calls0.end(), '\n') == 1);
  for (const char* t : {"kl_coef=0", "kl_coef=0.001", "kl_coef=0.01"}) {
    INFO(t);
    CHECK(read_trial_state(out + "/" + t).state == "done");
    CHECK_FALSE(fs::exists(out + "/" + t + "/FAILED"));
    CHECK_FALSE(fs::exists(out + "/" + t + "/RUNNING"));
  }
  // The resumed run's metrics: 3 steps and an eval row, the torn line gone.
  CHECK(read(out + "/kl_coef=0.001/metrics.jsonl").find("{\"st\n") == std::string::npos);

  // Report: ranked by eval_accuracy = 0.5 - kl (max): kl 0 first, 0.01 last.
  const SweepReport r = build_sweep_report(out, "", "", true);
  REQUIRE(r.rows.size() == 3);
  CHECK(r.rows[0].name == "kl_coef=0");
  CHECK(r.rows[0].rank == 1);
  CHECK(r.rows[2].name == "kl_coef=0.01");
  CHECK(r.rows[2].final_value == Approx(0.49));
  CHECK(r.rows[1].last.at("reward_mean") == Approx(0.3));
  const std::string table = format_sweep_table(r);
  CHECK(table.find("grpo.kl_coef") != std::string::npos);
  CHECK(table.find("3 trial(s): 3 done") != std::string::npos);
  // min mode on another metric, by best value.
  const SweepReport rk = build_sweep_report(out, "kl", "best", true, "min");
  CHECK(rk.rows[0].name == "kl_coef=0");
  CHECK(rk.rows[0].best_step == 1);
  // A metric no trial logs is an error listing the ones logged (not a table of dashes).
  CHECK_THROWS_WITH(build_sweep_report(out, "eval_acuracy", "", true),
                    Catch::Contains("--metric 'eval_acuracy': no trial's metrics.jsonl has it") &&
                        Catch::Contains("eval_accuracy"));
  // CSV and Markdown files through the command.
  rc = cli::cmd_sweep({"report", out, "--csv", dir + "/r.csv", "--md", dir + "/r.md"});
  CHECK(rc == 0);
  const std::string csv = read(dir + "/r.csv");
  CHECK(csv.find("rank,trial,grpo.kl_coef,state,step,eval_accuracy final,eval_accuracy best,best step,"
                 "reward_mean,accuracy\n1,kl_coef=0,0,done,3/3,0.5,0.5,3,0.3,0.3\n") == 0);
  // The plot: a PNG where matplotlib is installed, else a note and still exit 0.
  ::setenv("ZEROTH_ROOT", kSrc.c_str(), 1);
  CHECK(cli::cmd_sweep({"report", out, "--plot", dir + "/curves.png"}) == 0);
  ::unsetenv("ZEROTH_ROOT");
  if (std::system("/usr/bin/python3 -c 'import matplotlib' > /dev/null 2>&1") == 0)
    CHECK(fs::file_size(dir + "/curves.png") > 1000);
  const std::string md = read(dir + "/r.md");
  CHECK(md.find("| rank | trial | grpo.kl_coef |") == 0);
  CHECK(md.find("| --- |") != std::string::npos);
  ::unsetenv("ZEROTH_SWEEP_TRAIN_CMD");
}

TEST_CASE("sweep states: pending, interrupted, running (live pid), stale RUNNING") {
  const std::string dir = temp_dir("states");
  CHECK(read_trial_state(dir).state == "pending");
  write(dir + "/metrics.jsonl", "{\"step\":2,\"reward_mean\":0.5}\n");
  CHECK(read_trial_state(dir).state == "interrupted");
  CHECK(read_trial_state(dir).last_step == 2);
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  write(dir + "/RUNNING", std::string(host) + " " + std::to_string(getpid()) + "\n");
  CHECK(read_trial_state(dir).state == "running");
  write(dir + "/RUNNING", std::string(host) + " 999999999\n");  // no such process
  CHECK(read_trial_state(dir).state == "interrupted");
  write(dir + "/RUNNING", "some-other-node 12\n");
  CHECK(read_trial_state(dir).state == "running");
}

TEST_CASE("sweep slurm executor: a job array script (dry run), mpirun commands") {
  const std::string dir = temp_dir("slurm");
  const std::string out = dir + "/out";
  write_base(dir);
  write(dir + "/sweep.yaml", "base: base.yaml\naxes:\n  grpo.kl_coef: [0, 0.001, 0.01]\n"
                             "executor:\n  name: slurm\n  sbatch: ['--nodes=4', '--time=02:00:00']\n");
  fs::create_directories(out + "/kl_coef=0");
  write(out + "/kl_coef=0/DONE", "exit 0\n");
  ::setenv("ZEROTH_ROOT", kSrc.c_str(), 1);
  REQUIRE(cli::cmd_sweep({"--config", dir + "/sweep.yaml", "--out", out, "--dry-run", "--parallel", "2"}) == 0);
  const std::string s = read(out + "/sweep.sbatch");
  CHECK(s.find("#SBATCH --array=0-1%2\n") != std::string::npos);  // the done trial is left out
  CHECK(s.find("#SBATCH --nodes=4\n") != std::string::npos);
  CHECK(s.find("#SBATCH --nodes=2\n") == std::string::npos);      // the template's, replaced
  CHECK(s.find("#SBATCH --gpus-per-node=8\n") != std::string::npos);
  CHECK(s.find("#SBATCH --time=02:00:00\n") != std::string::npos);
  CHECK(s.find("trials=(\n  kl_coef=0.001\n  kl_coef=0.01\n)") != std::string::npos);
  CHECK(s.find("launch/slurm/zeroth-train.sbatch") != std::string::npos);
  CHECK(s.find("\"$dir/DONE\"") != std::string::npos);
  // The script runs as a "Slurm task" with the launcher's dry run: the trial's train
  // command, then DONE.
  const std::string env = "SLURM_ARRAY_TASK_ID=1 ZEROTH_DRY_RUN=1 ZEROTH_BIN=/bin/true ";
  REQUIRE(std::system((env + "bash " + out + "/sweep.sbatch > " + dir + "/task.out 2>&1").c_str()) == 0);
  const std::string task = read(dir + "/task.out");
  CHECK(task.find("srun") != std::string::npos);
  CHECK(task.find("train --config " + fs::absolute(out).string() + "/kl_coef=0.01/config.yaml") != std::string::npos);
  CHECK(fs::exists(out + "/kl_coef=0.01/DONE"));

  // mpirun executor: each trial under launch/zeroth-local.sh -np K, threads = cores / (N K).
  SweepRunOptions o;
  o.executor = "mpirun";
  o.np = 2;
  o.parallel = 1;
  o.cores = 4;
  o.dry_run = true;
  o.zeroth_bin = "/opt/zeroth";
  const SweepRunResult m = run_sweep(read_sweep_plan(out), o);
  REQUIRE(m.commands.size() == 1);
  CHECK(m.commands[0].find(kSrc + "/launch/zeroth-local.sh -np 2 --threads 2 --bin /opt/zeroth -- train --config") == 0);
  CHECK(m.commands[0].find("--set run.threads=2") != std::string::npos);
  ::unsetenv("ZEROTH_ROOT");
}

TEST_CASE("sweep configs/sweeps/gsm8k-cluster.yaml: every trial resolves and the Slurm array is written (dry run)") {
  const std::string out = temp_dir("gsm8k") + "/out";
  ::setenv("ZEROTH_ROOT", kSrc.c_str(), 1);
  REQUIRE(cli::cmd_sweep({"--config", kSrc + "/configs/sweeps/gsm8k-cluster.yaml", "--out", out, "--dry-run"}) == 0);
  const SweepPlan plan = read_sweep_plan(out);
  REQUIRE(plan.trials.size() == 24);
  CHECK(plan.trials[0].steps == 200);
  CHECK(plan.trials[0].name.find("kl_coef=0,clip_high=0.2,lr=") == 0);
  const std::string s = read(out + "/sweep.sbatch");
  CHECK(s.find("#SBATCH --array=0-23%4\n") != std::string::npos);
  ::unsetenv("ZEROTH_ROOT");
}

// Every shipped config and sweep file stays valid as keys change: `zeroth config check`
// on each configs/*.yaml and configs/demo/*.yaml, and a dry run of each
// configs/sweeps/*.yaml (every trial's config resolves).
TEST_CASE("shipped configs and sweep files resolve") {
  ::setenv("ZEROTH_ROOT", kSrc.c_str(), 1);
  int configs = 0, sweeps = 0;
  for (const char* sub : {"/configs", "/configs/demo"})
    for (const auto& e : fs::directory_iterator(kSrc + sub)) {
      if (e.path().extension() != ".yaml") continue;
      INFO(e.path().string());
      CHECK(cli::cmd_config({"check", "--config", e.path().string()}) == 0);
      ++configs;
    }
  const std::string root = temp_dir("shipped");
  for (const auto& e : fs::directory_iterator(kSrc + "/configs/sweeps")) {
    if (e.path().extension() != ".yaml") continue;
    INFO(e.path().string());
    const std::string out = root + "/" + e.path().stem().string();
    REQUIRE(cli::cmd_sweep({"--config", e.path().string(), "--out", out, "--dry-run"}) == 0);
    CHECK(!read_sweep_plan(out).trials.empty());
    ++sweeps;
  }
  // configs/algorithms/*.yaml are snippets listed after a run's config: each with
  // r1zero-math.yaml, and high-entropy-tokens.yaml after dapo.yaml as its comment says.
  int algorithms = 0;
  for (const auto& e : fs::directory_iterator(kSrc + "/configs/algorithms")) {
    if (e.path().extension() != ".yaml") continue;
    INFO(e.path().string());
    const std::string cfg = root + "/algo_" + e.path().stem().string() + ".yaml";
    const std::string before =
        e.path().stem() == "high-entropy-tokens" ? kSrc + "/configs/algorithms/dapo.yaml, " : std::string();
    write(cfg, "defaults: [" + kSrc + "/configs/r1zero-math.yaml, " + before + e.path().string() + "]\n");
    CHECK(cli::cmd_config({"check", "--config", cfg}) == 0);
    ++algorithms;
  }
  CHECK(configs >= 9);
  CHECK(sweeps >= 4);
  CHECK(algorithms >= 10);
  ::unsetenv("ZEROTH_ROOT");
}

// End to end with the real `zeroth train` (the tiny model, 2 steps, no cold start): a KL
// sweep of 2 trials runs, one trial is "interrupted" (DONE, its last checkpoint and its
// last metrics row removed) and the re-run resumes only that one; the report ranks both.
TEST_CASE("sweep end to end: zeroth train on the tiny model, interrupted and resumed") {
  const std::string dir = temp_dir("e2e");
  const std::string out = dir + "/out";
  std::ofstream(dir + "/train.jsonl") << "{\"prompt\": \"1+1\", \"answer\": \"2\"}\n{\"prompt\": \"2+2\", \"answer\": \"4\"}\n"
                                         "{\"prompt\": \"1+2\", \"answer\": \"3\"}\n{\"prompt\": \"3+3\", \"answer\": \"6\"}\n";
  std::ofstream(dir + "/eval.jsonl") << "{\"prompt\": \"2+1\", \"answer\": \"3\"}\n{\"prompt\": \"4+1\", \"answer\": \"5\"}\n";
  write(dir + "/base.yaml", "run:\n  threads: 1\n  seed: 7\n"
                            "model:\n  init: " + kSrc + "/configs/models/tiny.json\n"
                            "optim:\n  lr: 0.003\n  weight_decay: 0.0\n"
                            "train:\n  steps: 2\n  save_every: 1\n  log_every: 1\n"
                            "rollout:\n  group_size: 4\n  num_slots: 16\n  max_len: 32\n  max_new_tokens: 16\n"
                            "  prompt_template: '{prompt}='\n"
                            "rl:\n  prompts_per_step: 2\n  eval_at_start: false\n  eval_at_end: true\n"
                            "prompts:\n  sources:\n    - path: " + dir + "/train.jsonl\n"
                            "  eval_sources:\n    - path: " + dir + "/eval.jsonl\n"
                            "rewards:\n  functions:\n    - {name: accuracy, weight: 1.0}\n"
                            "    - {name: format, weight: 0.5, variant: lenient}\n");
  write(dir + "/sweep.yaml", "base: base.yaml\naxes:\n  grpo.kl_coef: [0, 0.05]\nmetric: reward_mean\n");
  ::setenv("ZEROTH_SWEEP_TRAIN_CMD", ZEROTH_BINARY, 1);
  REQUIRE(cli::cmd_sweep({"--config", dir + "/sweep.yaml", "--out", out}) == 0);
  const std::string b = out + "/kl_coef=0.05";
  REQUIRE(read_trial_state(b).state == "done");
  REQUIRE(fs::exists(b + "/checkpoints/step_2/grpo_state.json"));
  REQUIRE(read(b + "/config.yaml").find("kl_coef: 0.05") != std::string::npos);
  // Interrupt trial b after step 1.
  fs::remove(b + "/DONE");
  fs::remove_all(b + "/checkpoints/step_2");
  fs::remove_all(b + "/final");
  const std::string log_before = read(b + "/train.log");
  const std::string a_log = read(out + "/kl_coef=0/train.log");
  CHECK(read_trial_state(b).state == "interrupted");
  REQUIRE(cli::cmd_sweep({"--config", dir + "/sweep.yaml", "--out", out}) == 0);
  CHECK(read(out + "/kl_coef=0/train.log") == a_log);  // done: not run again
  CHECK(read(b + "/train.log").size() > log_before.size());
  CHECK(read_trial_state(b).state == "done");
  CHECK(read_trial_state(b).last_step == 2);
  CHECK(fs::exists(b + "/checkpoints/step_2/grpo_state.json"));
  const SweepReport r = build_sweep_report(out, "", "", true);
  REQUIRE(r.rows.size() == 2);
  CHECK(r.rows[0].rank == 1);
  CHECK(r.rows[1].rank == 2);
  CHECK(r.rows[0].has_final);
  ::unsetenv("ZEROTH_SWEEP_TRAIN_CMD");
}

// A signal to `zeroth sweep` (SIGTERM here, as `kill` or Slurm sends it): no trial starts
// after it, the running ones get SIGUSR1 and stop after their step with a checkpoint (exit
// 75, no FAILED), and the sweep exits 75. Trials of 100000 steps: only the stop ends them.
TEST_CASE("sweep end to end: a signal stops the running trials with checkpoints and starts no more") {
  const std::string dir = temp_dir("stop");
  const std::string out = dir + "/out";
  std::ofstream(dir + "/train.jsonl") << "{\"prompt\": \"1+1\", \"answer\": \"2\"}\n{\"prompt\": \"2+2\", \"answer\": \"4\"}\n";
  write(dir + "/base.yaml", "run:\n  threads: 1\n  seed: 7\n"
                            "model:\n  init: " + kSrc + "/configs/models/tiny.json\n"
                            "train:\n  steps: 100000\n  save_every: 0\n  log_every: 1000\n"
                            "rollout:\n  group_size: 2\n  num_slots: 4\n  max_len: 24\n  max_new_tokens: 8\n"
                            "  prompt_template: '{prompt}='\n"
                            "rl:\n  prompts_per_step: 2\n"
                            "prompts:\n  sources:\n    - path: " + dir + "/train.jsonl\n"
                            "rewards:\n  functions:\n    - {name: accuracy, weight: 1.0}\n");
  write(dir + "/sweep.yaml", "base: base.yaml\naxes:\n  grpo.kl_coef: [0, 0.05, 0.1]\nmetric: reward_mean\n"
                             "executor:\n  name: local\n  parallel: 2\n");
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const std::string log = dir + "/sweep.out";
    std::freopen(log.c_str(), "w", stdout);
    std::freopen(log.c_str(), "a", stderr);
    ::execl(ZEROTH_BINARY, ZEROTH_BINARY, "sweep", "--config", (dir + "/sweep.yaml").c_str(), "--out", out.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Both running trials have logged a step.
  auto steps_of = [&](const std::string& t) { return read_trial_state(out + "/" + t).last_step; };
  int status = 0;
  for (int i = 0; i < 1200 && (steps_of("kl_coef=0") < 1 || steps_of("kl_coef=0.05") < 1); ++i) {
    REQUIRE(::waitpid(pid, &status, WNOHANG) == 0);  // the sweep is still running
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  REQUIRE(steps_of("kl_coef=0") >= 1);
  REQUIRE(steps_of("kl_coef=0.05") >= 1);
  REQUIRE(::kill(pid, SIGTERM) == 0);
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  const std::string log = read(dir + "/sweep.out");
  INFO(log);
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == kExitStopped));
  CHECK(log.find("SIGTERM: no more trials start") != std::string::npos);
  CHECK(log.find("kl_coef=0: stopped with a checkpoint (exit 75)") != std::string::npos);
  CHECK(log.find("kl_coef=0.05: stopped with a checkpoint (exit 75)") != std::string::npos);
  for (const char* t : {"kl_coef=0", "kl_coef=0.05"}) {
    INFO(t);
    const TrialState st = read_trial_state(out + "/" + t);
    CHECK(st.state == "interrupted");
    CHECK(st.has_checkpoint);  // the stop's (save_every 0: no other)
    CHECK(fs::exists(out + "/" + t + "/checkpoints/step_" + std::to_string(st.last_step) + "/grpo_state.json"));
    CHECK_FALSE(fs::exists(out + "/" + t + "/FAILED"));
    CHECK(read(out + "/" + t + "/train.log").find("SIGUSR1") != std::string::npos);
  }
  CHECK(read_trial_state(out + "/kl_coef=0.1").state == "pending");  // never started
}
