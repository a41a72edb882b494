// Data-parallel GRPO (grpo_trainer.h) under mpiexec: a cold-started tiny model trained for
// 2 GRPO steps (KL to the reference, 2 mini-batches, micro-batches of 3 sequences) on
// np ranks must match rank 0 training alone on the same global batch (a local
// communicator; rank 0 also runs the cold start that both start from): every step's rewards, advantages and loss statistics, and the final
// weights within fp32 tolerance. The same again with pi_old from the trainer's
// old-log-prob pass, a truncated rollout correction and micro-batches packed by tokens.
// REINFORCE++-baseline advantages (whitened over the global batch) are the same bit for
// bit at any rank count. Run at np 1, 2 and 4 (4 prompts per step: at np 4 each rank rolls out one group).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/grpo_rollout_link.h"
#include "train_mpi.h"
#include "zeroth/backend.h"
#include "zeroth/comm.h"
#include "zeroth/grpo_trainer.h"
#include "zeroth/safetensors.h"

using namespace zeroth;
namespace fs = std::filesystem;

namespace {

const std::string kSrc = ZEROTH_SOURCE_DIR;

// Wall-clock and memory metrics (*_s, tokens_per_s, mem_*): the only ones two runs of the
// same arithmetic may disagree on.
bool varies_between_runs(const std::string& k) {
  return k == "tokens_per_s" || (k.size() > 2 && k.compare(k.size() - 2, 2, "_s") == 0) || k.rfind("mem_", 0) == 0;
}

// The working directory of the np-rank run (the first test case's cold start lives there).
std::string dp_root(int np) {
  return (fs::temp_directory_path() / ("zeroth_test_grpo_dp_np" + std::to_string(np))).string();
}

std::string write_config(const std::string& dir) {
  std::ofstream train(dir + "/train.jsonl"), sft(dir + "/sft.jsonl");
  for (int a = 0; a < 10; ++a)
    for (int b = 0; a + b < 10; ++b) {
      const std::string q = std::to_string(a) + "+" + std::to_string(b), ans = std::to_string(a + b);
      train << "{\"prompt\": \"" << q << "\", \"answer\": \"" << ans << "\"}\n";
      sft << "{\"prompt\": \"" << q << "\", \"response\": \"<think>" << q << "</think> <answer>" << ans
          << "</answer>\"}\n";
    }
  const std::string cfg = dir + "/grpo.yaml";
  // AdamW eps 1e-5 instead of 1e-8: an update is lr * g / (|g| + eps), so for a weight whose
  // gradient is ~1e-8 (a rarely routed expert) the rounding of a different reduction order
  // (np ranks sum the gradient in another order) is amplified by lr / eps; with 1e-8 one
  // expert weight differed by 3.6e-5 (1% of lr) between np 2 and one rank; with 1e-6 it
  // was 7e-7 / 1.5e-6 at np 2 / 4 until the cold start's SFT counted real tokens only
  // (2026-11-26: another cold-started model), then one expert weight at np 4 differed by
  // 2.2e-5; with 1e-5 the largest difference is 4.8e-7 (np 2) / 5.2e-7 (np 4). The test is
  // about data parallelism, not about Adam's conditioning.
  std::ofstream(cfg) << "run:\n  threads: 1\n  seed: 3\n"
                        "model:\n  init: " << kSrc << "/configs/models/tiny.json\n"
                        "optim:\n  lr: 0.003\n  weight_decay: 0.0\n  eps: 1.0e-5\n"
                        "train:\n  steps: 2\n  log_every: 1\n"
                        "rollout:\n  group_size: 4\n  num_slots: 16\n  max_len: 64\n  max_new_tokens: 48\n"
                        "  prompt_template: '{prompt}='\n"
                        "grpo:\n  kl_coef: 0.05\n  mini_batches: 2\n"
                        "rl:\n  prompts_per_step: 4\n  micro_batch: 3\n  eval_at_start: false\n"
                        "  eval_at_end: false\n"
                        "prompts:\n  sources:\n    - path: " << dir << "/train.jsonl\n"
                        "rewards:\n  functions:\n    - {name: accuracy, weight: 1.0}\n"
                        "    - {name: format, weight: 0.5, variant: lenient}\n"
                        "cold_start:\n  path: " << dir << "/sft.jsonl\n  steps: 300\n  batch_size: 8\n"
                        "  seq_len: 48\n  lr: 0.01\n";
  return cfg;
}

std::string file_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Every F32 weight of an HF model directory (single file or sharded), in name order.
std::vector<float> weights(const std::string& model_dir) {
  const ShardedSafetensors f = ShardedSafetensors::open(model_dir);
  std::vector<float> out;
  for (const std::string& name : f.names()) {
    const float* p = static_cast<const float*>(f.data(name));
    out.insert(out.end(), p, p + f.info(name).nbytes / sizeof(float));
  }
  return out;
}

// The weights of model directory `dp_dir` within 1e-5 + 1e-4 |w| of `solo_dir`'s.
void check_weights_close(const std::string& dp_dir, const std::string& solo_dir, int np) {
  const std::vector<float> a = weights(dp_dir), b = weights(solo_dir);
  REQUIRE(a.size() == b.size());
  double worst = 0;
  size_t bad = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(double(a[i]) - double(b[i]));
    worst = std::max(worst, d);
    bad += d > 1e-5 + 1e-4 * std::fabs(double(b[i]));
  }
  INFO("np " << np << ": max |w_dp - w_1| = " << worst);
  CHECK(bad == 0);
  WARN("np " << np << ": max |w_dp - w_1| = " << worst);
}

// Every step's metrics and the final weights of a data-parallel run against one rank's.
void compare_runs(const GrpoTrainResult& dp, const GrpoTrainResult& solo, int np,
                  const std::vector<std::string>& extra_keys) {
  REQUIRE(dp.steps.size() == solo.steps.size());
  std::vector<std::string> keys = {"reward_mean", "reward_std", "accuracy", "format_rate", "response_len_mean",
                                   "response_len_max", "adv_abs_mean", "zero_adv_group_frac", "solved_all_frac",
                                   "solved_none_frac", "generated_tokens",
                                   "trained_tokens", "kl", "entropy", "clip_frac", "pg_loss", "grad_norm"};
  keys.insert(keys.end(), extra_keys.begin(), extra_keys.end());
  for (size_t s = 0; s < dp.steps.size(); ++s) {
    for (const std::string& k : keys) {
      INFO("step " << s + 1 << " " << k << ": np " << np << " " << dp.steps[s].at(k) << " vs 1 rank "
                   << solo.steps[s].at(k));
      CHECK(std::fabs(dp.steps[s].at(k) - solo.steps[s].at(k)) <= 1e-5 + 1e-4 * std::fabs(solo.steps[s].at(k)));
    }
  }
  check_weights_close(dp.final_dir, solo.final_dir, np);
}

// `zeroth train` with root/grpo.yaml and `solo_sets` on rank 0 alone (a local
// communicator), then with `dp_sets` on every rank of `world`. solo is empty off rank 0.
struct SoloAndDp {
  GrpoTrainResult solo, dp;
};
SoloAndDp run_solo_then_dp(Communicator& world, const std::string& root, const std::vector<std::string>& solo_sets,
                           const std::vector<std::string>& dp_sets) {
  std::unique_ptr<Backend> be = make_cpu_backend(1);
  GrpoTrainOptions opt;
  opt.show_progress = false;
  SoloAndDp r;
  if (world.rank() == 0) {
    std::unique_ptr<Communicator> local = make_local_communicator(be.get());
    r.solo = run_grpo_training(load_train_config(root + "/grpo.yaml", solo_sets), *local, *be, opt);
  }
  world.barrier();
  r.dp = run_grpo_training(load_train_config(root + "/grpo.yaml", dp_sets), world, *be, opt);
  return r;
}

// run_solo_then_dp from the first test case's cold start, both runs with `sets`, in
// root/solo_<name> and root/dp_<name>; `dp_only` goes to the data-parallel run alone.
SoloAndDp from_cold_start(Communicator& world, const std::string& root, const std::string& name,
                          const std::vector<std::string>& sets, const std::vector<std::string>& dp_only = {}) {
  REQUIRE(fs::exists(root + "/solo/cold_start/final/model.safetensors"));
  std::vector<std::string> solo = {"model.init=" + root + "/solo/cold_start/final", "cold_start.path=''"};
  solo.insert(solo.end(), sets.begin(), sets.end());
  std::vector<std::string> dp = solo;
  solo.push_back("run.run_dir=" + root + "/solo_" + name);
  dp.push_back("run.run_dir=" + root + "/dp_" + name);
  dp.insert(dp.end(), dp_only.begin(), dp_only.end());
  return run_solo_then_dp(world, root, solo, dp);
}

}  // namespace

TEST_CASE("GRPO data parallel: np ranks match one rank on the same global batch") {
  Communicator& world = train_test::world();
  const int np = world.size();
  const std::string root = dp_root(np);
  if (world.rank() == 0) {
    fs::remove_all(root);
    fs::create_directories(root);
    write_config(root);
  }
  world.barrier();
  // Rank 0 alone: the cold start (SFT is chaotic over its 300 steps at lr 0.01, so the
  // ranks share its result instead of repeating it), then the reference GRPO run. Then all
  // ranks: the same GRPO steps from the cold-started model, data parallel.
  const SoloAndDp r = run_solo_then_dp(
      world, root, {"run.run_dir=" + root + "/solo"},
      {"run.run_dir=" + root + "/dp", "model.init=" + root + "/solo/cold_start/final", "cold_start.path=''"});
  const GrpoTrainResult &solo = r.solo, &dp = r.dp;
  if (world.rank() == 0) {
    compare_runs(dp, solo, np, {});
    CHECK(solo.steps[0].at("adv_abs_mean") > 0);  // the rewards vary: a real policy gradient
  }
  world.barrier();
}

// ZeRO-1 (run.zero_stage 1): the trainers keep 1/np of the AdamW moments each; the
// gradients are reduce-scattered and the updated weights all-gathered. Every metric and the
// final weights match one rank's as plain data parallelism does (the norm is summed in
// another order: rounding only). Starts from the first test case's cold start.
TEST_CASE("GRPO ZeRO-1: np ranks with the optimizer state sharded match one rank") {
  Communicator& world = train_test::world();
  const int np = world.size();
  const std::string root = dp_root(np);
  const SoloAndDp r = from_cold_start(world, root, "zero", {}, {"run.zero_stage=1"});
  if (world.rank() == 0) compare_runs(r.dp, r.solo, np, {});
  world.barrier();
}

// The old-log-prob pass (pi_old from the trainer before the first of the 2 mini-batch
// updates) with a truncated rollout correction and micro-batches packed by tokens, data
// parallel: ranks hold different numbers of micro-batches, padded to different lengths
// (the expert loads count real tokens only, so the router-bias updates agree), the
// mismatch statistics are all-reduced. Starts from the cold start of the first test case
// (run before it).
TEST_CASE("GRPO data parallel: the old-log-prob pass and a rollout correction") {
  Communicator& world = train_test::world();
  const int np = world.size();
  const std::string root = dp_root(np);
  const SoloAndDp r = from_cold_start(world, root, "is",
                                      {"grpo.old_logprobs=trainer", "grpo.rollout_is=token_truncate",
                                       "grpo.rollout_is_cap=1", "rl.micro_batch_tokens=120",
                                       // completions of many lengths: padding to pack away
                                       "rollout.stop=[\"</answer>\", \"5\", \"8\"]"});
  const GrpoTrainResult &solo = r.solo, &dp = r.dp;
  if (world.rank() == 0) {
    compare_runs(dp, solo, np, {"mismatch_abs_mean", "mismatch_k3", "rollout_is_weight_mean",
                                "rollout_is_rejected_frac"});
    CHECK(solo.steps[0].at("mismatch_abs_max") < 1e-5);  // fp32 trainer and rollout
    CHECK(solo.steps[0].at("train_pad_frac") > 0);        // rows of different lengths
    CHECK(solo.steps[0].at("adv_abs_mean") > 0);
    CHECK(solo.steps[0].at("optimizer_steps") == 2);
  }
  world.barrier();
}

// rl.balance_batch's exchange (move_groups): 23 groups of different sizes, first all on
// rank 0 and then spread unevenly, move to an owner list; every rank ends up with exactly
// its groups, in order, and their fields intact.
TEST_CASE("GRPO data parallel: move_groups hands every group to its new rank intact") {
  using grpo_detail::Group;
  Communicator& world = train_test::world();
  const int np = world.size(), me = world.rank();
  std::unique_ptr<Backend> be = make_cpu_backend(1);
  auto make = [](int64_t i) {
    Group g;
    g.global_index = i;
    g.prompt = {int32_t(i), int32_t(i + 1)};
    for (int64_t j = 0; j < 1 + i % 3; ++j) {
      Completion c;
      c.prompt_index = i;
      c.sample_index = j;
      c.sequence_id = uint64_t(1000 * i + j);
      c.finish = j % 2 ? FinishReason::kStop : FinishReason::kLength;
      for (int64_t t = 0; t < (i * 7 + j) % 11; ++t) {
        c.ids.push_back(int32_t(100 * i + t));
        c.logprobs.push_back(-0.25f * float(t + j));
      }
      g.completions.push_back(c);
      g.advantage.push_back(0.5 * double(i) - double(j));
      g.in_loss.push_back(uint8_t((i + j) % 2));
    }
    return g;
  };
  const int64_t n = 23;
  for (int layout = 0; layout < 2; ++layout) {
    std::vector<Group> mine;
    for (int64_t i = 0; i < n; ++i)
      if ((layout == 0 ? 0 : int((i * i) % np)) == me) mine.push_back(make(i));
    std::vector<int> owner;
    for (int64_t i = 0; i < n; ++i) owner.push_back(int((i * 5 + 3 + layout) % np));
    grpo_detail::move_groups(world, *be, mine, owner);
    std::vector<int64_t> want, got;
    for (int64_t i = 0; i < n; ++i)
      if (owner[size_t(i)] == me) want.push_back(i);
    for (const Group& g : mine) {
      got.push_back(g.global_index);
      const Group ref = make(g.global_index);
      CHECK(g.prompt == ref.prompt);
      CHECK(g.advantage == ref.advantage);
      CHECK(g.in_loss == ref.in_loss);
      REQUIRE(g.completions.size() == ref.completions.size());
      for (size_t j = 0; j < g.completions.size(); ++j) {
        const Completion &a = g.completions[j], &b = ref.completions[j];
        CHECK(a.prompt_index == b.prompt_index);
        CHECK(a.sample_index == b.sample_index);
        CHECK(a.sequence_id == b.sequence_id);
        CHECK(a.finish == b.finish);
        CHECK(a.ids == b.ids);
        CHECK(a.logprobs == b.logprobs);
      }
    }
    INFO("rank " << me << " of " << np << ", layout " << layout);
    CHECK(got == want);
  }
  world.barrier();
}

// rl.balance_batch (on by default) against off, with dynamic sampling (the kept groups fall
// unevenly on the ranks: the first kept in global order are kept) and micro-batches packed
// by tokens (a share's cost is its tokens): the same metrics and weights within fp32
// rounding (only the ranks' shares of the loss differ), and the balanced shares are at
// least as even. One rank has nothing to balance and no dp_imbalance. (12 prompts: 6 per
// mini-batch, so np 4 has something to balance.)
TEST_CASE("GRPO data parallel: rl.balance_batch evens the shares and trains the same update") {
  Communicator& world = train_test::world();
  const int np = world.size();
  const std::string root = dp_root(np);
  REQUIRE(fs::exists(root + "/solo/cold_start/final/model.safetensors"));
  std::unique_ptr<Backend> be = make_cpu_backend(1);
  GrpoTrainOptions opt;
  opt.show_progress = false;
  auto run = [&](const std::string& name, bool balance) {
    return run_grpo_training(
        load_train_config(root + "/grpo.yaml",
                          {"model.init=" + root + "/solo/cold_start/final", "cold_start.path=''",
                           "run.run_dir=" + root + "/" + name, "rl.balance_batch=" + std::string(balance ? "true" : "false"),
                           "grpo.dynamic_sampling=true", "grpo.dynamic_max_extra_batches=2", "rl.micro_batch_tokens=120",
                           "rl.prompts_per_step=12",
                           "rollout.stop=[\"</answer>\", \"5\", \"8\"]"}),
        world, *be, opt);
  };
  const GrpoTrainResult off = run("balance_off", false), on = run("balance_on", true);
  if (world.rank() == 0) {
    REQUIRE(on.steps.size() == off.steps.size());
    for (size_t s = 0; s < on.steps.size(); ++s) {
      INFO("step " << s + 1);
      if (np == 1) {
        CHECK(on.steps[s].count("dp_imbalance") == 0);
        continue;
      }
      WARN("np " << np << " step " << s + 1 << ": dp_imbalance " << off.steps[s].at("dp_imbalance") << " -> "
                 << on.steps[s].at("dp_imbalance"));
      CHECK(on.steps[s].at("dp_imbalance") >= 1.0);
      CHECK(on.steps[s].at("dp_imbalance") <= off.steps[s].at("dp_imbalance"));
    }
    compare_runs(on, off, np, {"groups_trained", "sampling_rounds"});
  }
  world.barrier();
}

// rl.dump_rollouts_every 1 with dynamic sampling: RUN_DIR/rollouts/step_N.jsonl holds every
// completion sampled in the step (all rounds, all ranks, in the global order), agrees with
// the step's metrics, and is the same file on np ranks as on one (step 1: same weights,
// same samples). rl.dump_eval: the eval at step 0 gathers the ranks' shares in order.
TEST_CASE("GRPO data parallel: rl.dump_rollouts_every writes every sampled completion") {
  Communicator& world = train_test::world();
  const int np = world.size();
  const std::string root = dp_root(np);
  const SoloAndDp r = from_cold_start(world, root, "dump",
                                      {"grpo.dynamic_sampling=true", "grpo.dynamic_max_extra_batches=2",
                                       "rl.dump_rollouts_every=1", "prompts.eval_count=6", "rl.eval_at_start=true",
                                       "rl.dump_eval=true"});
  if (world.rank() == 0) {
    const int64_t G = 4;
    for (size_t s = 0; s < r.dp.steps.size(); ++s) {
      const auto& m = r.dp.steps[s];
      std::ifstream in(root + "/dp_dump/rollouts/step_" + std::to_string(s + 1) + ".jsonl");
      REQUIRE(in.good());
      int64_t lines = 0, trained = 0;
      double reward = 0, len = 0;
      std::string line, last_key;
      int64_t rounds = 0;
      while (std::getline(in, line)) {
        const auto o = nlohmann::json::parse(line);
        ++lines;
        trained += o.at("trained").get<bool>();
        reward += o.at("reward").get<double>();
        len += o.at("tokens").get<double>();
        CHECK(o.at("step").get<int64_t>() == int64_t(s + 1));
        CHECK(o.at("sample_index").get<int64_t>() == (lines - 1) % G);  // in order
        rounds = std::max(rounds, o.at("round").get<int64_t>() + 1);
        for (const char* k : {"prompt", "completion", "components", "verdict", "gold", "advantage", "in_loss",
                              "finish_reason", "where"})
          CHECK(o.contains(k));
        CHECK(o.at("prompt").get<std::string>().back() == '=');  // rendered with the template
      }
      INFO("step " << s + 1);
      CHECK(lines == int64_t(m.at("groups_sampled")) * G);
      CHECK(trained == int64_t(m.at("groups_trained")) * G);
      CHECK(rounds == int64_t(m.at("sampling_rounds")));
      CHECK(std::fabs(reward / double(lines) - m.at("reward_mean")) < 1e-12);
      CHECK(std::fabs(len / double(lines) - m.at("response_len_mean")) < 1e-9);
    }
    CHECK(!file_text(root + "/solo_dump/rollouts/step_1.jsonl").empty());
    // The eval before step 1 (the same weights): 6 greedy lines, in prompt order.
    const std::string eval0 = file_text(root + "/solo_dump/rollouts/eval_step_0.jsonl");
    CHECK(std::count(eval0.begin(), eval0.end(), '\n') == 6);
    CHECK(file_text(root + "/dp_dump/rollouts/eval_step_0.jsonl") == eval0);
    CHECK(file_text(root + "/dp_dump/rollouts/step_1.jsonl") == file_text(root + "/solo_dump/rollouts/step_1.jsonl"));
  }
  world.barrier();
}

// rl.skip_solved over data-parallel ranks: a group solved on any rank is skipped by every
// rank (one all-reduce of the round's solved flags), so the ranks keep drawing the same
// global batches and the run matches one rank's.
TEST_CASE("GRPO data parallel: skip_solved skips what any rank solved and matches one rank") {
  Communicator& world = train_test::world();
  const int np = world.size();
  const std::string root = dp_root(np);
  const SoloAndDp r = from_cold_start(world, root, "skip",
                                      {"rl.skip_solved=true", "rollout.group_size=2", "rl.prompts_per_step=8",
                                       "train.steps=4", "rl.dump_rollouts_every=1"});
  if (world.rank() == 0) {
    compare_runs(r.dp, r.solo, np, {"prompts_skipped"});
    CHECK(r.dp.steps.back().at("prompts_skipped") > 0);
    for (int step = 1; step <= 4; ++step) {
      const std::string name = "/rollouts/step_" + std::to_string(step) + ".jsonl";
      CHECK(file_text(root + "/dp_skip" + name) == file_text(root + "/solo_skip" + name));
    }
  }
  world.barrier();
}

// REINFORCE++-baseline (grpo.advantage reinforce_pp): the advantages of the step's trained
// groups are whitened together (with dynamic sampling: after the filter, over the groups
// kept from every round, as verl does), every rank's completions summed in global sample
// order, so the advantages are the same bit for bit at any rank count (the step-1 dumps
// are identical).
TEST_CASE("GRPO data parallel: reinforce_pp whitens over the trained batch and matches one rank") {
  Communicator& world = train_test::world();
  const int np = world.size();
  const std::string root = dp_root(np);
  const SoloAndDp r = from_cold_start(world, root, "rpp",
                                      {"grpo.advantage=reinforce_pp", "grpo.dynamic_sampling=true",
                                       "grpo.dynamic_max_extra_batches=2", "rl.dump_rollouts_every=1",
                                       // Pairs: at any accuracy some of the 8 groups tie (and some
                                       // do not), whatever rounding the machine's BLAS gives the
                                       // cold-started model (with 3 groups of 4 an AMD EPYC's
                                       // happened to have no tie).
                                       "rollout.group_size=2", "rl.prompts_per_step=8"});
  if (world.rank() == 0) {
    compare_runs(r.dp, r.solo, np, {});
    const std::string dump = file_text(root + "/solo_rpp/rollouts/step_1.jsonl");
    CHECK(file_text(root + "/dp_rpp/rollouts/step_1.jsonl") == dump);
    // Whitened over the trained completions: token-weighted mean 0 and unbiased std
    // sigma / (sigma + adv_eps), 1 to ~1e-6.
    double sw = 0, swa = 0, swa2 = 0;
    std::set<int64_t> rounds;
    std::istringstream lines(dump);
    for (std::string line; std::getline(lines, line);) {
      const auto o = nlohmann::json::parse(line);
      rounds.insert(o.at("round").get<int64_t>());
      if (!o.at("trained").get<bool>()) continue;
      const double w = o.at("in_loss").get<bool>() ? o.at("tokens").get<double>() : 0.0;
      const double a = o.at("advantage").get<double>();
      sw += w;
      swa += w * a;
      swa2 += w * a * a;
    }
    REQUIRE(sw > 2);
    CHECK(std::fabs(swa / sw) < 1e-9);
    CHECK(std::fabs(std::sqrt((swa2 - swa * swa / sw) / (sw - 1)) - 1.0) < 1e-4);
    // The filter dropped groups (the case where whitening only the trained ones matters),
    // and a second round refilled the batch.
    CHECK(r.solo.steps[0].at("zero_adv_group_frac") > 0);
    CHECK(rounds.size() > 1);
  }
  world.barrier();
}

// grpo.kl_in_reward over data-parallel ranks (and expert groups at an even rank count):
// each rank's reference and policy forwards over its completions, kept in step across the
// expert group, give the same penalties (to rounding) as one rank, and the runs match.
TEST_CASE("GRPO data parallel: kl_in_reward matches one rank") {
  Communicator& world = train_test::world();
  const int np = world.size();
  const std::string root = dp_root(np);
  std::vector<std::string> dp_only;
  if (np % 2 == 0) dp_only.push_back("run.expert_parallel=2");
  const SoloAndDp r = from_cold_start(world, root, "klr", {"grpo.kl_in_reward=true", "rl.prompts_per_step=3"}, dp_only);
  if (world.rank() == 0) {
    compare_runs(r.dp, r.solo, np, {"kl_penalty_mean"});
    CHECK(r.solo.steps.back().at("kl") > 0);
  }
  world.barrier();
}

// LitePPO (grpo.advantage batch_std): the group-centred rewards over the std of the
// trained batch's rewards (with dynamic sampling: the groups kept from every round),
// gathered in batch order: the same bit for bit at any rank count.
TEST_CASE("GRPO data parallel: batch_std scales by the trained batch's reward std and matches one rank") {
  Communicator& world = train_test::world();
  const int np = world.size();
  const std::string root = dp_root(np);
  const SoloAndDp r = from_cold_start(world, root, "bstd",
                                      {"grpo.advantage=batch_std", "grpo.dynamic_sampling=true",
                                       "grpo.dynamic_max_extra_batches=2", "rl.dump_rollouts_every=1"});
  if (world.rank() == 0) {
    compare_runs(r.dp, r.solo, np, {});
    CHECK(r.solo.steps[0].at("adv_abs_mean") > 0);
    const std::string dump = file_text(root + "/solo_bstd/rollouts/step_1.jsonl");
    CHECK(file_text(root + "/dp_bstd/rollouts/step_1.jsonl") == dump);
    // Every trained advantage times (s + adv_eps), s the sample std of the trained rewards,
    // is its reward less its group's mean.
    std::map<std::pair<int64_t, int64_t>, std::vector<std::pair<double, double>>> groups;  // -> (reward, adv)
    std::istringstream lines(dump);
    for (std::string line; std::getline(lines, line);) {
      const auto o = nlohmann::json::parse(line);
      if (!o.at("trained").get<bool>()) continue;
      groups[{o.at("round").get<int64_t>(), o.at("prompt_index").get<int64_t>()}].emplace_back(
          o.at("reward").get<double>(), o.at("advantage").get<double>());
    }
    std::vector<double> rewards;
    for (const auto& [key, g] : groups)
      for (const auto& [rew, adv] : g) rewards.push_back(rew);
    REQUIRE(rewards.size() > 2);
    double mean = 0, ss = 0;
    for (double x : rewards) mean += x / double(rewards.size());
    for (double x : rewards) ss += (x - mean) * (x - mean);
    const double scale = std::sqrt(ss / double(rewards.size() - 1)) + 1e-6;
    for (const auto& [key, g] : groups) {
      double gm = 0;
      for (const auto& [rew, adv] : g) gm += rew / double(g.size());
      for (const auto& [rew, adv] : g) CHECK(std::fabs(adv * scale - (rew - gm)) < 1e-9);
    }
  }
  world.barrier();
}

// Expert parallelism (run.expert_parallel 2: the routed experts split over 2 ranks; at np
// 4 two expert groups), with the reference model (KL), 2 mini-batches, the old-log-prob
// pass and micro-batches packed by tokens, so the ranks of an expert group hold different
// numbers of micro-batches (the shorter ones run empty micro-batches to stay in step) and
// the rollout runs on a replica gathered from the expert shards every step. Must match one
// rank holding every expert; the final model is a sharded HF checkpoint. (rl.balance_batch
// off: balanced shares would hold as many micro-batches here, and the empty ones would not
// run.)
TEST_CASE("GRPO expert parallel: experts split over 2 ranks match one rank") {
  Communicator& world = train_test::world();
  const int np = world.size();
  if (np % 2 != 0) {
    WARN("expert parallelism needs an even number of ranks (grpo_dp_np2 / np4 run it)");
    return;
  }
  const std::string root = dp_root(np);
  const SoloAndDp r = from_cold_start(world, root, "ep",
                                      {"grpo.old_logprobs=trainer", "rl.micro_batch_tokens=120",
                                       "rollout.stop=[\"</answer>\", \"5\", \"8\"]"},
                                      {"run.expert_parallel=2", "rl.balance_batch=false"});
  if (world.rank() == 0) {
    compare_runs(r.dp, r.solo, np, {"mismatch_abs_mean", "kl"});
    CHECK(r.dp.steps[0].at("mismatch_abs_max") < 1e-5);  // the replica's rollout vs the sharded trainer
    double empty = 0;
    for (const auto& m : r.dp.steps) empty += m.at("ep_empty_micro_batches");
    WARN("np " << np << " expert parallel: " << empty << " empty micro-batches over the run");
    if (np == 2) CHECK(empty > 0);  // the ranks did hold different numbers of micro-batches
    CHECK(r.solo.steps[0].at("adv_abs_mean") > 0);
    CHECK(fs::exists(r.dp.final_dir + "/model-00002-of-00002.safetensors"));
    CHECK(fs::exists(root + "/dp_ep/checkpoints/step_2/reference/model-00002-of-00002.safetensors"));
  }
  world.barrier();
}

// The expert-parallel run of the case above, resumed from its step-2 checkpoint for 2 more
// steps, equals an uninterrupted 4-step expert-parallel run bit for bit: the sharded
// policy, reference and optimizer parts, and the rollout that decodes on them.
TEST_CASE("GRPO expert parallel: 2 steps + --resume for 2 more equal 4 steps, bit for bit") {
  Communicator& world = train_test::world();
  const int np = world.size();
  if (np % 2 != 0) return;
  const std::string root = dp_root(np);
  REQUIRE(fs::exists(root + "/dp_ep/checkpoints/step_2/grpo_state.json"));
  std::unique_ptr<Backend> be = make_cpu_backend(1);
  GrpoTrainOptions opt;
  opt.show_progress = false;
  const std::vector<std::string> sets = {"model.init=" + root + "/solo/cold_start/final", "cold_start.path=''",
                                         "grpo.old_logprobs=trainer", "rl.micro_batch_tokens=120",
                                         "rollout.stop=[\"</answer>\", \"5\", \"8\"]", "run.expert_parallel=2",
                                         "train.steps=4", "run.run_dir=" + root + "/dp_ep4",
                                         "rl.balance_batch=false"};
  const GrpoTrainResult whole = run_grpo_training(load_train_config(root + "/grpo.yaml", sets), world, *be, opt);
  GrpoTrainOptions ropt = opt;
  ropt.resume_dir = root + "/dp_ep";
  const GrpoTrainResult resumed = run_grpo_training(
      load_train_config(root + "/dp_ep/config.yaml", {"train.steps=4"}), world, *be, ropt);
  if (world.rank() == 0) {
    REQUIRE(resumed.steps.size() == 2);
    for (size_t s = 0; s < 2; ++s)
      for (const auto& [k, v] : whole.steps[s + 2]) {
        if (varies_between_runs(k)) continue;
        INFO("step " << s + 3 << " " << k);
        CHECK(resumed.steps[s].at(k) == v);
      }
    CHECK(weights(resumed.final_dir) == weights(whole.final_dir));
    CHECK(weights(root + "/dp_ep/checkpoints/step_4/reference") == weights(root + "/dp_ep4/checkpoints/step_4/reference"));
  }
  world.barrier();
}

namespace {

// The cases below start from the cold start of the first test case (run before them),
// with the trainer's old-log-prob pass (so every step reports the rollout/trainer
// mismatch), the given extra settings and run directory.
std::vector<std::string> worker_sets(const std::string& root, const std::string& dir,
                                     const std::vector<std::string>& extra) {
  std::vector<std::string> sets = {"model.init=" + root + "/solo/cold_start/final", "cold_start.path=''",
                                   "grpo.old_logprobs=trainer", "run.run_dir=" + root + "/" + dir};
  sets.insert(sets.end(), extra.begin(), extra.end());
  return sets;
}

// a == b for every metric but the wall-clock ones, and the same final weights.
void require_identical(const GrpoTrainResult& a, const GrpoTrainResult& b, size_t b_offset = 0) {
  REQUIRE(b.steps.size() >= a.steps.size() + b_offset);
  for (size_t s = 0; s < a.steps.size(); ++s)
    for (const auto& [k, v] : a.steps[s]) {
      if (varies_between_runs(k)) continue;
      INFO("step " << s + 1 << " " << k);
      REQUIRE(b.steps[s + b_offset].count(k) == 1);
      CHECK(b.steps[s + b_offset].at(k) == v);
    }
  CHECK(weights(a.final_dir) == weights(b.final_dir));
}

}  // namespace

// Rollout workers (rl.rollout_ranks): the last np/2 ranks generate and score, the others
// train and broadcast the policy to them every step. On-policy (rollout_lag 0) this is
// the colocated run: bit for bit with one trainer (np 2), within fp32 tolerance with more.
TEST_CASE("GRPO rollout workers: trainers + workers match one colocated rank") {
  Communicator& world = train_test::world();
  const int np = world.size();
  const std::string root = dp_root(np);
  REQUIRE(fs::exists(root + "/solo/cold_start/final/model.safetensors"));
  std::unique_ptr<Backend> be = make_cpu_backend(1);
  if (np == 1) {
    // No rank would be left to train.
    CHECK_THROWS_WITH(run_grpo_training(load_train_config(root + "/grpo.yaml",
                                                          worker_sets(root, "w_bad", {"rl.rollout_ranks=1"})),
                                        world, *be),
                      Catch::Contains("rl.rollout_ranks") && Catch::Contains("expected at most 0"));
    return;
  }
  const std::string workers = "rl.rollout_ranks=" + std::to_string(np / 2);
  // Two prompt sources (the same file again, under its own name): the workers' per-source
  // sums reach the trainers' metrics.
  const std::string sources = "prompts.sources=[{path: " + root + "/train.jsonl}, {path: " + root +
                              "/train.jsonl, name: again}]";
  // rl.skip_solved: the workers' skip sets reach the trainers' metrics and checkpoints.
  const SoloAndDp r = run_solo_then_dp(
      world, root, worker_sets(root, "solo_w", {"rl.dump_rollouts_every=1", sources, "rl.skip_solved=true"}),
      worker_sets(root, "dp_w", {workers, "rl.dump_rollouts_every=1", sources, "rl.skip_solved=true"}));
  if (world.rank() == 0) {
    compare_runs(r.dp, r.solo, np, {"mismatch_abs_mean", "kl", "samples/train", "samples/again", "prompts_skipped"});
    CHECK(file_text(root + "/dp_w/checkpoints/step_2/grpo_state.json").find("skipped_prompts") != std::string::npos);
    for (size_t s = 0; s < r.dp.steps.size(); ++s) {
      const MetricMap &m = r.dp.steps[s], &solo = r.solo.steps[s];
      INFO("step " << s + 1);
      // The per-source means weighted by their samples are the step's means.
      double samples = 0, correct = 0, reward = 0;
      for (const char* name : {"train", "again"}) {
        const double n = m.at(std::string("samples/") + name);
        samples += n;
        REQUIRE(m.count(std::string("accuracy/") + name) == (n > 0 ? 1u : 0u));
        if (n == 0) continue;
        correct += n * m.at(std::string("accuracy/") + name);
        reward += n * m.at(std::string("reward_mean/") + name);
        CHECK(std::fabs(m.at(std::string("accuracy/") + name) - solo.at(std::string("accuracy/") + name)) < 1e-12);
      }
      CHECK(samples == m.at("groups_sampled") * 4);
      CHECK(correct / samples == Approx(m.at("accuracy")).margin(1e-12));
      CHECK(reward / samples == Approx(m.at("reward_mean")).margin(1e-12));
    }
    // The first worker wrote the step's completions: those one rank sampled (same weights).
    CHECK(!file_text(root + "/dp_w/rollouts/step_2.jsonl").empty());
    CHECK(file_text(root + "/dp_w/rollouts/step_1.jsonl") == file_text(root + "/solo_w/rollouts/step_1.jsonl"));
    if (np == 2) require_identical(r.solo, r.dp);  // one trainer: the same arithmetic
    for (const auto& m : r.dp.steps) {
      CHECK(m.at("mismatch_abs_max") < 1e-5);  // the workers sampled with the trainer's weights
      CHECK(m.count("trainer_wait_s") == 1);
      CHECK(m.at("mem_rollout_peak_gib") > 0);  // the workers' host memory
      CHECK(m.at("mem_rollout_peak_gib") >= m.at("mem_rollout_rss_gib"));
    }
    CHECK(r.solo.steps[1].at("adv_abs_mean") > 0);
  }
  world.barrier();
  if (np == 4) {
    // Expert-parallel trainers (one expert group of 2) and 2 workers holding every
    // expert: each trainer of the group broadcasts its shard, the workers assemble them.
    GrpoTrainOptions opt;
    opt.show_progress = false;
    const GrpoTrainResult ep = run_grpo_training(
        load_train_config(root + "/grpo.yaml",
                          worker_sets(root, "dp_w_ep", {"rl.rollout_ranks=2", "run.expert_parallel=2", sources})),
        world, *be, opt);
    if (world.rank() == 0) {
      compare_runs(ep, r.solo, np, {"mismatch_abs_mean", "kl"});
      for (const auto& m : ep.steps) CHECK(m.at("mismatch_abs_max") < 1e-5);  // the assembled policy
      CHECK(fs::exists(ep.final_dir + "/model-00002-of-00002.safetensors"));
    }
    world.barrier();
  }
}

// One-step off-policy (rl.rollout_lag 1): the batch of step s is sampled with the policy
// of step s-2, so step 1 equals the on-policy run and step 2's trainer is one update past
// its sampler. Workers (generating step s+1 while the trainers train step s) equal the
// colocated lagged run: bit for bit at np 2, within fp32 tolerance with more trainers.
TEST_CASE("GRPO rollout workers: rollout_lag 1 matches the colocated lagged run") {
  Communicator& world = train_test::world();
  const int np = world.size();
  const std::string root = dp_root(np);
  REQUIRE(fs::exists(root + "/solo/cold_start/final/model.safetensors"));
  const std::vector<std::string> dp_extra =
      np == 1 ? std::vector<std::string>{"rl.rollout_lag=1"}
              : std::vector<std::string>{"rl.rollout_lag=1", "rl.rollout_ranks=" + std::to_string(np / 2)};
  const SoloAndDp r = run_solo_then_dp(world, root, worker_sets(root, "solo_lag", {"rl.rollout_lag=1"}),
                                       worker_sets(root, "dp_lag", dp_extra));
  if (world.rank() == 0) {
    compare_runs(r.dp, r.solo, np, {"mismatch_abs_mean", "kl"});
    if (np <= 2) require_identical(r.solo, r.dp);
    // Step 1 is on-policy; step 2's batch came from the step-0 policy, one update behind.
    CHECK(r.solo.steps[0].at("mismatch_abs_max") < 1e-5);
    CHECK(r.solo.steps[1].at("mismatch_abs_max") > 1e-3);
    CHECK(r.dp.steps[1].at("mismatch_abs_max") > 1e-3);
    CHECK(fs::exists(root + "/dp_lag/checkpoints/step_2/rollout/model.safetensors"));
  }
  world.barrier();
}

// The lagged run above (workers at np >= 2, colocated at np 1) resumed from its step-2
// checkpoint for 2 more steps equals an uninterrupted 4-step run bit for bit: the
// checkpoint's rollout/ holds the weights the next batch is sampled with.
TEST_CASE("GRPO rollout workers: rollout_lag 1, 2 steps + --resume for 2 more equal 4 steps") {
  Communicator& world = train_test::world();
  const int np = world.size();
  const std::string root = dp_root(np);
  REQUIRE(fs::exists(root + "/dp_lag/checkpoints/step_2/grpo_state.json"));
  std::unique_ptr<Backend> be = make_cpu_backend(1);
  GrpoTrainOptions opt;
  opt.show_progress = false;
  // (a checkpoint every step, only the newest kept: the GRPO side of train.keep_checkpoints)
  std::vector<std::string> extra = {"rl.rollout_lag=1", "train.steps=4", "train.save_every=1",
                                    "train.keep_checkpoints=1"};
  if (np > 1) extra.push_back("rl.rollout_ranks=" + std::to_string(np / 2));
  const GrpoTrainResult whole =
      run_grpo_training(load_train_config(root + "/grpo.yaml", worker_sets(root, "dp_lag4", extra)), world, *be, opt);
  GrpoTrainOptions ropt = opt;
  ropt.resume_dir = root + "/dp_lag";
  const GrpoTrainResult resumed = run_grpo_training(
      load_train_config(root + "/dp_lag/config.yaml", {"train.steps=4"}), world, *be, ropt);
  if (world.rank() == 0) {
    REQUIRE(resumed.steps.size() == 2);
    GrpoTrainResult tail = whole;  // its steps 3 and 4
    tail.steps.erase(tail.steps.begin(), tail.steps.begin() + 2);
    require_identical(tail, resumed);
    CHECK(weights(root + "/dp_lag/checkpoints/step_4/rollout") == weights(root + "/dp_lag4/checkpoints/step_4/rollout"));
    std::vector<std::string> left;
    for (const auto& e : fs::directory_iterator(root + "/dp_lag4/checkpoints")) left.push_back(e.path().filename().string());
    CHECK(left == std::vector<std::string>{"step_4"});
  }
  world.barrier();
}

// rl.rollout_lag 1 with expert parallelism (colocated): the lagged copy is sharded like the
// policy and the rollout decodes on its shards. Must match the one-rank lagged run above.
TEST_CASE("GRPO expert parallel: rollout_lag 1 with a sharded lagged copy matches one rank") {
  Communicator& world = train_test::world();
  const int np = world.size();
  if (np % 2 != 0) return;
  const std::string root = dp_root(np);
  REQUIRE(fs::exists(root + "/solo_lag/final/model.safetensors"));
  std::unique_ptr<Backend> be = make_cpu_backend(1);
  GrpoTrainOptions opt;
  opt.show_progress = false;
  const GrpoTrainResult ep = run_grpo_training(
      load_train_config(root + "/grpo.yaml",
                        worker_sets(root, "ep_lag", {"rl.rollout_lag=1", "run.expert_parallel=2"})),
      world, *be, opt);
  if (world.rank() == 0) {
    // (the solo lagged run's metrics are in its metrics.jsonl; compare the weights and
    // the step-2 staleness)
    check_weights_close(ep.final_dir, root + "/solo_lag/final", np);
    CHECK(ep.steps[1].at("mismatch_abs_max") > 1e-3);
    CHECK(fs::exists(root + "/ep_lag/checkpoints/step_2/rollout/model-00002-of-00002.safetensors"));
  }
  world.barrier();
}

// train.time_limit_minutes small enough to stop at every step boundary: every rank (the
// rollout workers too, whose loop is a step ahead with rl.rollout_lag 1) stops after the
// same step with a checkpoint, and the chain of resumed runs equals the uninterrupted
// run bit for bit. Workers (np >= 2) at lag 0 and 1; expert parallelism at np >= 2.
TEST_CASE("GRPO stop: a time limit stops every rank at the same step; resumed runs equal the whole run") {
  Communicator& world = train_test::world();
  const int np = world.size();
  const std::string root = dp_root(np);
  REQUIRE(fs::exists(root + "/solo/cold_start/final/model.safetensors"));
  std::unique_ptr<Backend> be = make_cpu_backend(1);
  GrpoTrainOptions opt;
  opt.show_progress = false;
  std::vector<std::pair<std::string, std::vector<std::string>>> cases = {{"lag0", {}}, {"lag1", {"rl.rollout_lag=1"}}};
  if (np > 1) {
    for (auto& c : cases) c.second.push_back("rl.rollout_ranks=" + std::to_string(np / 2));
    cases.push_back({"ep", {"run.expert_parallel=2"}});
    cases.push_back({"zero", {"run.zero_stage=1"}});  // the checkpoints hold one optimizer part per rank
  }
  if (np == 4) {
    cases.push_back({"ep_zero", {"run.expert_parallel=2", "run.zero_stage=1"}});
    // 2 trainers with ZeRO-1 hand their all-gathered weights to 2 lagged workers.
    cases.push_back({"lag1_zero", {"rl.rollout_lag=1", "rl.rollout_ranks=2", "run.zero_stage=1"}});
  }
  for (const auto& [name, extra] : cases) {
    INFO(name << " at np " << np);
    std::vector<std::string> sets = extra;
    sets.push_back("train.steps=4");
    const GrpoTrainResult whole =
        run_grpo_training(load_train_config(root + "/grpo.yaml", worker_sets(root, "stop_whole_" + name, sets)), world,
                          *be, opt);
    sets.push_back("train.time_limit_minutes=1e-9");
    const std::string chain_dir = root + "/stop_chain_" + name;
    GrpoTrainResult chain =
        run_grpo_training(load_train_config(root + "/grpo.yaml", worker_sets(root, "stop_chain_" + name, sets)), world,
                          *be, opt);
    for (int64_t step = 1; step <= 4; ++step) {
      if (step < 4) {
        REQUIRE(chain.stop.stopped);  // on every rank
        CHECK(chain.stop.step == step);
        CHECK(chain.final_dir.empty());
      } else {
        CHECK_FALSE(chain.stop.stopped);
        break;
      }
      world.barrier();
      REQUIRE(fs::exists(chain_dir + "/checkpoints/step_" + std::to_string(step) + "/grpo_state.json"));
      GrpoTrainOptions ropt = opt;
      ropt.resume_dir = chain_dir;
      GrpoTrainResult next = run_grpo_training(load_train_config(chain_dir + "/config.yaml", {}), world, *be, ropt);
      next.steps.insert(next.steps.begin(), chain.steps.begin(), chain.steps.end());
      chain = std::move(next);
    }
    if (world.rank() == 0) {
      REQUIRE(chain.steps.size() == 4);
      require_identical(whole, chain);
    }
    world.barrier();
  }
}
