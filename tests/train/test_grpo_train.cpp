// Tests of the GRPO trainer loop (grpo_trainer.h) on the tiny model, CPU, one process:
// a cold-started run whose rewards vary trains and evaluates (metrics, eval rows,
// checkpoint layout), a run of 4 steps equals 2 steps + `zeroth train --resume` for 2
// more (metrics.jsonl bit for bit except wall-clock keys, final weights bit for bit; again
// with a bf16 trainer, the old-log-prob pass, a mask mode and packed micro-batches),
// config errors, the micro-batch plans (fixed, and packed by tokens: rl.micro_batch_tokens)
// and a run with them, GSPO and CISPO at ratio 1, and the training-inference mismatch: its
// metrics, where log pi_old comes from, and the rollout correction on a bf16 trainer.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "train/grpo_rollout_link.h"
#include "train/grpo_trainer_util.h"
#include "zeroth/backend.h"
#include "zeroth/comm.h"
#include "zeroth/error.h"
#include "zeroth/format_reward.h"
#include "zeroth/grpo_trainer.h"
#include "zeroth/length_reward.h"
#include "zeroth/math_verify.h"
#include "zeroth/model.h"
#include "zeroth/model_config.h"
#include "zeroth/model_params.h"
#include "zeroth/prompt_data.h"
#include "zeroth/run_stop.h"
#include "zeroth/safetensors.h"
#include "zeroth/tokenizer.h"

namespace zeroth {
namespace cli {
int cmd_train(const std::vector<std::string>& args);
int cmd_eval(const std::vector<std::string>& args);
int cmd_pass_rate(const std::vector<std::string>& args);
int cmd_reward(const std::vector<std::string>& args);
}  // namespace cli
}  // namespace zeroth

using namespace zeroth;
namespace fs = std::filesystem;

static const std::string kSrc = ZEROTH_SOURCE_DIR;

static std::string temp_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("zeroth_test_grpo_train_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

// Single-digit sums "a+b" (answer < 10); a cold-start set teaching the answer format.
static std::string write_data(const std::string& dir) {
  std::ofstream train(dir + "/train.jsonl"), eval(dir + "/eval.jsonl"), sft(dir + "/sft.jsonl");
  int n = 0;
  for (int a = 0; a < 10; ++a)
    for (int b = 0; a + b < 10; ++b, ++n) {
      const std::string q = std::to_string(a) + "+" + std::to_string(b);
      const std::string ans = std::to_string(a + b);
      (n % 5 == 0 ? eval : train) << "{\"prompt\": \"" << q << "\", \"answer\": \"" << ans << "\"}\n";
      sft << "{\"prompt\": \"" << q << "\", \"response\": \"<think>" << q << "</think> <answer>" << ans
          << "</answer>\"}\n";
    }
  const std::string cfg = dir + "/grpo.yaml";
  std::ofstream(cfg) << "run:\n  threads: 1\n  seed: 7\n"
                        "model:\n  init: " << kSrc << "/configs/models/tiny.json\n"
                        "optim:\n  lr: 0.003\n  weight_decay: 0.0\n"
                        "train:\n  steps: 4\n  save_every: 2\n  log_every: 1\n"
                        "rollout:\n  group_size: 4\n  num_slots: 16\n  max_len: 64\n  max_new_tokens: 48\n"
                        "  prompt_template: '{prompt}='\n"
                        "grpo:\n  kl_coef: 0.05\n  ref_reset_every: 3\n"
                        "rl:\n  prompts_per_step: 4\n  micro_batch: 6\n  eval_at_start: false\n  eval_at_end: false\n  eval_every: 4\n"
                        "  reflection_words: ['0', '9']  # (the sums' answers: some completions have one)\n"
                        "prompts:\n  sources:\n    - path: " << dir << "/train.jsonl\n"
                        "  eval_sources:\n    - path: " << dir << "/eval.jsonl\n"
                        "rewards:\n  functions:\n    - {name: accuracy, weight: 1.0}\n"
                        "    - {name: format, weight: 0.5, variant: lenient}\n"
                        "eval:\n  max_prompts: 6\n  pass_k: 2\n"
                        "cold_start:\n  path: " << dir << "/sft.jsonl\n  steps: 300\n  batch_size: 8\n"
                        "  seq_len: 48\n  lr: 0.01\n";
  return cfg;
}

static std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  for (std::string l; std::getline(in, l);) out.push_back(nlohmann::json::parse(l));
  return out;
}

static std::vector<char> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Wall-clock and memory metrics differ between runs; everything else must not.
static bool timing_key(const std::string& k) {
  return k == "tokens_per_s" || (k.size() > 2 && k.compare(k.size() - 2, 2, "_s") == 0) || k.rfind("mem_", 0) == 0;
}

// The group outcome metrics of run `run` (solved_all_frac, solved_none_frac, the lengths
// of correct and wrong completions) against its rollout dumps (rl.dump_rollouts_every 1).
static void check_outcome_metrics(const std::string& run, const std::vector<nlohmann::json>& rows) {
  const std::vector<std::string> words = {"0", "9"};  // write_data's rl.reflection_words
  bool mixed = false;  // some step has correct and wrong completions
  double reflective_steps = 0;
  for (const auto& row : rows) {
    if (!row.contains("solved_all_frac")) continue;
    const int64_t step = row.at("step").get<int64_t>();
    INFO("step " << step);
    std::map<std::pair<int64_t, int64_t>, std::pair<int, int>> groups;  // (round, prompt) -> (correct, samples)
    double len_correct = 0, len_wrong = 0, n_correct = 0, n_wrong = 0, reflect = 0, reflect_correct = 0;
    for (const auto& l : read_jsonl(run + "/rollouts/step_" + std::to_string(step) + ".jsonl")) {
      const bool correct = l.at("verdict") == "correct";
      if (contains_phrase(l.at("completion").get<std::string>(), words)) {
        reflect += 1;
        reflect_correct += correct;
      }
      auto& g = groups[{l.at("round").get<int64_t>(), l.at("prompt_index").get<int64_t>()}];
      g.first += correct;
      g.second += 1;
      (correct ? len_correct : len_wrong) += l.at("tokens").get<double>();
      (correct ? n_correct : n_wrong) += 1;
    }
    double all = 0, none = 0;
    for (const auto& [key, g] : groups) {
      all += g.first == g.second;
      none += g.first == 0;
    }
    REQUIRE(double(groups.size()) == row.at("groups_sampled").get<double>());
    CHECK(row.at("solved_all_frac").get<double>() == Approx(all / double(groups.size())).margin(1e-12));
    CHECK(row.at("solved_none_frac").get<double>() == Approx(none / double(groups.size())).margin(1e-12));
    CHECK(row.contains("response_len_correct_mean") == (n_correct > 0));
    CHECK(row.contains("response_len_wrong_mean") == (n_wrong > 0));
    if (n_correct > 0)
      CHECK(row.at("response_len_correct_mean").get<double>() == Approx(len_correct / n_correct).margin(1e-9));
    if (n_wrong > 0)
      CHECK(row.at("response_len_wrong_mean").get<double>() == Approx(len_wrong / n_wrong).margin(1e-9));
    CHECK(row.at("accuracy").get<double>() == Approx(n_correct / (n_correct + n_wrong)).margin(1e-12));
    mixed = mixed || (n_correct > 0 && n_wrong > 0);
    CHECK(row.at("reflection_rate").get<double>() == Approx(reflect / (n_correct + n_wrong)).margin(1e-12));
    CHECK(row.contains("reflection_accuracy") == (reflect > 0));
    if (reflect > 0)
      CHECK(row.at("reflection_accuracy").get<double>() == Approx(reflect_correct / reflect).margin(1e-12));
    reflective_steps += reflect > 0 && reflect < n_correct + n_wrong;
  }
  CHECK(mixed);
  CHECK(reflective_steps > 0);  // some step has completions with and without the words
}

// Per-source eval results (two eval sources) of the trained model `model_dir`: each
// source's figures are those of its own lines of the eval dump, the sources' figures
// weighted by their prompts are the whole set's, and the metrics carry them as
// eval_accuracy/NAME; eval.max_prompts that leaves one source out gives no per-source rows.
static void check_eval_by_source(const std::string& model_dir, const std::string& cfg, const std::string& dir) {
  const TrainConfig config =
      load_train_config(cfg, {"prompts.eval_sources=[{path: " + dir + "/eval.jsonl, name: held_out, limit: 5}, {path: " +
                                  dir + "/train.jsonl, limit: 7}]",
                              "eval.max_prompts=0", "eval.pass_k=3", "eval.pass_at=[1, 2, 3]"});
  auto be = make_cpu_backend(1);
  std::unique_ptr<Communicator> local = make_local_communicator(be.get());
  const ModelConfig mc = read_model_config(model_dir);
  const std::unique_ptr<Tokenizer> tok = load_tokenizer(model_dir);
  const PromptData data = load_prompt_data(config.prompts);
  REQUIRE(data.eval.source_names == std::vector<std::string>{"held_out", "train"});
  Model model(mc, *be);
  load_hf_weights(model_dir, mc, model.params());
  std::string dump;
  const EvalResult r = evaluate_model(model, *tok, config, data.eval, *local, &dump);
  REQUIRE(r.prompts == 12);
  REQUIRE(r.sources.size() == 2);
  std::vector<nlohmann::json> lines;
  for (size_t at = 0, end; (end = dump.find('\n', at)) != std::string::npos; at = end + 1)
    lines.push_back(nlohmann::json::parse(dump.substr(at, end - at)));
  REQUIRE(lines.size() == 12 * (1 + 3));
  double weighted_greedy = 0, weighted_sampled = 0;
  bool some_correct = false;
  for (size_t s = 0; s < 2; ++s) {
    const EvalSourceResult& src = r.sources[s];
    INFO("source " << src.name);
    CHECK(src.name == data.eval.source_names[s]);
    CHECK(src.prompts == (s == 0 ? 5 : 7));
    const std::string file = dir + (s == 0 ? "/eval.jsonl:" : "/train.jsonl:");
    double greedy = 0, sampled = 0, format = 0, n_sampled = 0;
    std::set<int64_t> solved;                 // prompts with a correct sample
    std::map<int64_t, int64_t> correct_of;    // prompt -> correct samples
    for (const auto& l : lines) {
      CHECK((l.at("source") == src.name) == (l.at("where").get<std::string>().rfind(file, 0) == 0));
      if (l.at("where").get<std::string>().rfind(file, 0) != 0) continue;
      const bool is_greedy = l.at("mode") == "greedy", correct = l.at("correct").get<bool>();
      (is_greedy ? greedy : sampled) += correct;
      if (is_greedy) format += l.at("format_ok").get<bool>();
      if (!is_greedy && correct) solved.insert(l.at("prompt_index").get<int64_t>());
      if (!is_greedy) correct_of[l.at("prompt_index").get<int64_t>()] += correct;
      n_sampled += !is_greedy;
    }
    // pass@2 of 3 samples: 1 - C(3 - c, 2) / C(3, 2) = 0, 2/3, 1, 1 for c = 0..3
    double pass2 = 0;
    for (const auto& [p, c] : correct_of) pass2 += c == 0 ? 0.0 : c == 1 ? 2.0 / 3.0 : 1.0;
    REQUIRE(src.pass_at.size() == 3);
    CHECK(src.pass_at[0] == Approx(src.sampled_accuracy).margin(1e-12));  // pass@1 is the mean
    CHECK(src.pass_at[1] == Approx(pass2 / double(src.prompts)).margin(1e-12));
    CHECK(src.pass_at[2] == Approx(src.pass_at_k).margin(1e-12));  // pass@n: any of the n
    CHECK(n_sampled == double(src.prompts * 3));
    CHECK(src.accuracy == Approx(greedy / double(src.prompts)).margin(1e-12));
    CHECK(src.format_rate == Approx(format / double(src.prompts)).margin(1e-12));
    CHECK(src.sampled_accuracy == Approx(sampled / n_sampled).margin(1e-12));
    CHECK(src.pass_at_k == Approx(double(solved.size()) / double(src.prompts)).margin(1e-12));
    some_correct = some_correct || greedy > 0;
    weighted_greedy += src.accuracy * double(src.prompts);
    weighted_sampled += src.sampled_accuracy * double(src.prompts);
  }
  CHECK(some_correct);  // the cold-started model answers some sums
  CHECK(weighted_greedy / 12 == Approx(r.accuracy).margin(1e-12));
  CHECK(weighted_sampled / 12 == Approx(r.sampled_accuracy).margin(1e-12));
  const MetricMap m = r.metrics();
  CHECK(m.at("eval_accuracy/held_out") == r.sources[0].accuracy);
  CHECK(m.at("eval_pass_at_k/train") == r.sources[1].pass_at_k);
  CHECK(m.at("eval_prompts/train") == 7);
  CHECK(m.at("eval_maj_at_k/held_out") == r.sources[0].maj_at_k);
  CHECK(m.at("eval_pass_at_2") == r.pass_at[1]);
  CHECK(m.at("eval_pass_at_2/train") == r.sources[1].pass_at[1]);
  CHECK(r.pass_at[1] == Approx((r.sources[0].pass_at[1] * 5 + r.sources[1].pass_at[1] * 7) / 12).margin(1e-12));

  // Only the first 5 prompts (all of the first source): no per-source rows, and a warning.
  TrainConfig first = config;
  first.eval.max_prompts = 5;
  const EvalResult r5 = evaluate_model(model, *tok, first, data.eval, *local);
  CHECK(r5.prompts == 5);
  CHECK(r5.sources.empty());
  CHECK(r5.metrics().count("eval_accuracy/held_out") == 0);
  CHECK(warn_unevaluated_sources(data.eval, 5, "eval.max_prompts"));
  CHECK_FALSE(warn_unevaluated_sources(data.eval, 6, "eval.max_prompts"));

  // Eval sampling settings of their own: top_k 1 makes every sample the greedy completion;
  // max_new_tokens caps the eval's completions, not the rollout's.
  TrainConfig argmax = config;
  argmax.eval.top_k = 1;
  std::string argmax_dump;
  const EvalResult rk = evaluate_model(model, *tok, argmax, data.eval, *local, &argmax_dump);
  CHECK(rk.accuracy == r.accuracy);
  CHECK(rk.sampled_accuracy == rk.accuracy);
  CHECK(rk.pass_at_k == rk.accuracy);
  std::map<int64_t, std::string> greedy_text;
  for (size_t at = 0, end; (end = argmax_dump.find('\n', at)) != std::string::npos; at = end + 1) {
    const auto l = nlohmann::json::parse(argmax_dump.substr(at, end - at));
    const int64_t p = l.at("prompt_index").get<int64_t>();
    if (l.at("mode") == "greedy") greedy_text[p] = l.at("completion").get<std::string>();
    else CHECK(l.at("completion").get<std::string>() == greedy_text.at(p));
  }
  TrainConfig shorter = config;
  shorter.eval.max_new_tokens = 4;
  const EvalResult rs = evaluate_model(model, *tok, shorter, data.eval, *local);
  CHECK(rs.response_len_mean <= 4.0);
  CHECK(rs.response_len_mean < r.response_len_mean);
  CHECK_THROWS_WITH(load_train_config(cfg, {"eval.max_new_tokens=64"}),
                    Catch::Contains("eval.max_new_tokens") && Catch::Contains("rollout.max_len (64"));
  CHECK_THROWS_WITH(load_train_config(cfg, {"eval.top_p=0"}), Catch::Contains("eval.top_p"));
}

// `zeroth pass-rate` on write_data's training prompts: one line per prompt in file order;
// its counts are those of the eval's sampled pass over the same prompts (the eval set set
// to the training file: the same draws, counted from the eval dump's lines); --keep 0:1
// copies the whole file, --keep 0:0 exactly the lines of the prompts never solved.
static void check_pass_rate(const std::string& model, const std::string& cfg, const std::string& dir) {
  const std::string train = dir + "/train.jsonl";
  std::vector<std::string> train_lines;
  {
    std::ifstream in(train);
    for (std::string l; std::getline(in, l);) train_lines.push_back(l);
  }
  REQUIRE(cli::cmd_pass_rate({"--model", model, "--config", cfg, "--out", dir + "/rates.jsonl", "--samples", "3",
                              "--keep", "0:1", "--kept-dir", dir + "/all"}) == 0);
  const auto rates = read_jsonl(dir + "/rates.jsonl");
  REQUIRE(rates.size() == train_lines.size());
  std::set<int64_t> seen;
  for (size_t i = 0; i < rates.size(); ++i) {
    CHECK(rates[i].at("where") == train + ":" + std::to_string(i + 1));
    CHECK(rates[i].at("samples") == 3);
    seen.insert(rates[i].at("correct").get<int64_t>());
  }
  CHECK(seen.size() >= 2);  // some prompts solved more often than others
  CHECK(file_bytes(dir + "/all/train.jsonl") == file_bytes(train));

  // The same counts from the eval's dump with the training file as the eval set (and the
  // eval file as the training set, which the eval does not read).
  REQUIRE(cli::cmd_eval({"--model", model, "--config", cfg, "--set", "prompts.eval_sources=[{path: " + train + "}]",
                         "--set", "prompts.sources=[{path: " + dir + "/eval.jsonl}]",
                         "--set", "eval.pass_k=3", "--set", "eval.greedy=false", "--set", "eval.max_prompts=0",
                         "--dump", dir + "/train_dump.jsonl"}) == 0);
  std::map<int64_t, int64_t> correct;
  for (const auto& line : read_jsonl(dir + "/train_dump.jsonl"))
    correct[line.at("prompt_index").get<int64_t>()] += line.at("correct").get<bool>() ? 1 : 0;
  REQUIRE(correct.size() == rates.size());
  for (size_t i = 0; i < rates.size(); ++i) CHECK(rates[i].at("correct") == correct[int64_t(i)]);

  REQUIRE(cli::cmd_pass_rate({"--model", model, "--config", cfg, "--out", dir + "/rates2.jsonl", "--samples", "3",
                              "--keep", "0:0", "--kept-dir", dir + "/none"}) == 0);
  CHECK(file_bytes(dir + "/rates2.jsonl") == file_bytes(dir + "/rates.jsonl"));  // deterministic
  std::string want;
  for (size_t i = 0; i < rates.size(); ++i)
    if (rates[i].at("correct") == 0) want += train_lines[i] + "\n";
  const std::vector<char> got = file_bytes(dir + "/none/train.jsonl");
  CHECK(std::string(got.begin(), got.end()) == want);
  CHECK(!want.empty());
  // --from: the same filter from the rates file, without a model.
  REQUIRE(cli::cmd_pass_rate({"--from", dir + "/rates.jsonl", "--keep", "0:0", "--kept-dir", dir + "/none_again"}) ==
          0);
  CHECK(file_bytes(dir + "/none_again/train.jsonl") == got);
  CHECK_THROWS_WITH(cli::cmd_pass_rate({"--from", dir + "/rates.jsonl", "--keep", "0:0"}),
                    Catch::Contains("--kept-dir"));
  // DIR/train.jsonl would be the prompt file itself: refused, the file unchanged.
  const std::vector<char> train_before = file_bytes(train);
  CHECK_THROWS_WITH(cli::cmd_pass_rate({"--from", dir + "/rates.jsonl", "--keep", "0:0", "--kept-dir", dir}),
                    Catch::Contains("would overwrite the prompt file"));
  CHECK(file_bytes(train) == train_before);
  CHECK_THROWS_WITH(cli::cmd_pass_rate({"--from", train, "--keep", "0:0", "--kept-dir", dir + "/x"}),
                    Catch::Contains("expected a line of 'zeroth pass-rate --out'"));

  CHECK_THROWS_WITH(cli::cmd_pass_rate({"--model", model, "--config", cfg, "--out", dir + "/x.jsonl", "--samples",
                                        "3", "--keep", "0.9:0.1"}),
                    Catch::Contains("--keep"));
  CHECK_THROWS_WITH(cli::cmd_pass_rate({"--model", model, "--config", cfg, "--out", dir + "/x.jsonl", "--kept-dir",
                                        dir}),
                    Catch::Contains("--keep"));
}

TEST_CASE("zeroth train: 4 steps equal 2 steps + --resume for 2 more, bit for bit") {
  const std::string dir = temp_dir("resume");
  const std::string cfg = write_data(dir);
  const std::string a = dir + "/a", b = dir + "/b";
  REQUIRE(cli::cmd_train({"--config", cfg, "--run-dir", a, "--set", "rl.dump_eval=true", "--set",
                          "rl.dump_rollouts_every=1"}) == 0);
  REQUIRE(cli::cmd_train({"--config", cfg, "--run-dir", b, "--set", "train.steps=2"}) == 0);
  REQUIRE(fs::exists(b + "/checkpoints/step_2/grpo_state.json"));
  REQUIRE(fs::exists(b + "/checkpoints/step_2/reference/model.safetensors"));
  REQUIRE(cli::cmd_train({"--resume", b, "--set", "train.steps=4"}) == 0);

  const auto ma = read_jsonl(a + "/metrics.jsonl"), mb = read_jsonl(b + "/metrics.jsonl");
  REQUIRE(ma.size() == mb.size());
  int64_t eval_rows = 0;
  for (size_t i = 0; i < ma.size(); ++i) {
    INFO("line " << i);
    REQUIRE(ma[i].size() == mb[i].size());
    for (auto it = ma[i].begin(); it != ma[i].end(); ++it) {
      INFO("key " << it.key());
      REQUIRE(mb[i].contains(it.key()));
      if (!timing_key(it.key())) CHECK(it.value().dump() == mb[i][it.key()].dump());
    }
    eval_rows += ma[i].contains("eval_accuracy");
    if (ma[i].contains("eval_accuracy")) {  // eval.pass_k 2 on math prompts: maj@2 <= pass@2
      REQUIRE(ma[i].contains("eval_maj_at_k"));
      CHECK(ma[i]["eval_maj_at_k"].get<double>() <= ma[i]["eval_pass_at_k"].get<double>());
    }
  }
  CHECK(eval_rows == 1);  // eval_every 4
  CHECK(file_bytes(a + "/final/model.safetensors") == file_bytes(b + "/final/model.safetensors"));
  CHECK(file_bytes(a + "/checkpoints/step_4/optimizer.safetensors") ==
        file_bytes(b + "/checkpoints/step_4/optimizer.safetensors"));
  CHECK(file_bytes(a + "/checkpoints/step_4/reference/model.safetensors") ==
        file_bytes(b + "/checkpoints/step_4/reference/model.safetensors"));
  // The cold start ran once per run directory, and not again on resume.
  CHECK(fs::exists(b + "/cold_start/final/config.json"));

  // The rewards vary after the cold start (so advantages are non-zero) and training moved
  // the policy away from the reference.
  double adv = 0, kl = 0;
  for (const auto& row : ma)
    if (row.contains("adv_abs_mean")) {
      adv += row["adv_abs_mean"].get<double>();
      kl += row["kl"].get<double>();
      for (const char* k : {"reward_mean", "reward_std", "reward_accuracy", "reward_format", "accuracy",
                            "format_rate", "response_len_mean", "response_len_max", "truncation_rate",
                            "zero_adv_group_frac", "clip_frac", "entropy", "grad_norm", "lr",
                            "expert_imbalance", "tokens_per_s", "rollout_s", "reward_s", "train_s",
                            "mem_rss_gib", "mem_peak_gib"})
        CHECK(row.contains(k));
    }
  CHECK(adv > 0);
  CHECK(kl > 0);
  check_outcome_metrics(a, ma);

  // zeroth eval on the final model prints the same greedy accuracy as the last eval row.
  REQUIRE(cli::cmd_eval({"--model", a + "/final", "--config", cfg}) == 0);
  // zeroth eval --run: the cold start's model as step 0, then every checkpoint (steps 2
  // and 4) with the run's config.yaml; the step-4 line is the run's own eval at step 4.
  REQUIRE(cli::cmd_eval({"--run", a, "--out", dir + "/curve.jsonl"}) == 0);
  {
    auto curve = read_jsonl(dir + "/curve.jsonl");
    REQUIRE(curve.size() == 3);
    CHECK(curve[0].at("step") == 0);
    CHECK(curve[0].at("model") == a + "/cold_start/final");
    curve.erase(curve.begin());
    CHECK(curve[0].at("step") == 2);
    CHECK(curve[1].at("step") == 4);
    CHECK(curve[1].at("model") == a + "/checkpoints/step_4");
    nlohmann::json last_eval;
    for (const auto& row : ma)
      if (row.contains("eval_accuracy")) last_eval = row;
    for (const char* k : {"eval_accuracy", "eval_pass_at_k", "eval_sampled_accuracy", "eval_prompts"})
      CHECK(curve[1].at(k) == last_eval.at(k));
  }
  CHECK_THROWS_WITH(cli::cmd_eval({"--run", a, "--dump", dir + "/x.jsonl"}), Catch::Contains("--dump"));
  CHECK_THROWS_WITH(cli::cmd_eval({"--config", cfg}), Catch::Contains("--model") && Catch::Contains("--run"));
  CHECK_THROWS_WITH(cli::cmd_eval({"--run", dir}), Catch::Contains("no") || Catch::Contains("none"));

  // Eval dumps: rl.dump_eval wrote each eval's generations; the step-4 eval's file is what
  // `zeroth eval --dump` writes for the final model, and agrees with the eval row.
  REQUIRE(cli::cmd_eval({"--model", a + "/final", "--config", cfg, "--dump", dir + "/eval_dump.jsonl"}) == 0);
  const std::vector<char> dumped = file_bytes(a + "/rollouts/eval_step_4.jsonl");
  CHECK(!dumped.empty());
  CHECK(file_bytes(dir + "/eval_dump.jsonl") == dumped);
  CHECK(std::distance(fs::directory_iterator(a + "/rollouts"), fs::directory_iterator()) == eval_rows + 4);
  CHECK(!fs::exists(b + "/rollouts"));  // off by default
  {
    const auto lines = read_jsonl(a + "/rollouts/eval_step_4.jsonl");
    nlohmann::json last_eval;
    for (const auto& row : ma)
      if (row.contains("eval_accuracy")) last_eval = row;
    const double prompts = last_eval.at("eval_prompts").get<double>(), k = last_eval.at("eval_k").get<double>();
    REQUIRE(double(lines.size()) == prompts * (1 + k));
    double greedy_correct = 0, sampled_correct = 0;
    for (size_t i = 0; i < lines.size(); ++i) {
      const bool greedy = lines[i].at("mode") == "greedy";
      CHECK(greedy == (double(i) < prompts));  // greedy lines first
      (greedy ? greedy_correct : sampled_correct) += lines[i].at("correct").get<bool>();
      CHECK(lines[i].contains("completion"));
    }
    CHECK(greedy_correct / prompts == Approx(last_eval.at("eval_accuracy").get<double>()));
    CHECK(sampled_correct / (prompts * k) == Approx(last_eval.at("eval_sampled_accuracy").get<double>()));
  }
  CHECK_THROWS_WITH(cli::cmd_eval({"--model", a + "/final", "--config", cfg, "--dump", dir}),
                    Catch::Contains("--dump"));
  check_eval_by_source(a + "/final", cfg, dir);
  check_pass_rate(a + "/final", cfg, dir);

  // A resume keeps the keys that chose the model (they could not take effect), and a run
  // saved without a reference cannot switch the KL on.
  const auto yaml_before = file_bytes(b + "/config.yaml");
  CHECK_THROWS_WITH(cli::cmd_train({"--resume", b, "--set", "model.init=" + a + "/final"}),
                    Catch::Contains("key 'model.init'") && Catch::Contains("continues from the checkpoint's weights"));
  CHECK_THROWS_WITH(cli::cmd_train({"--resume", b, "--config", cfg, "--set", "cold_start.path=" + cfg}),
                    Catch::Contains("key 'cold_start.path'"));
  CHECK_THROWS_WITH(cli::cmd_train({"--resume", b, "--set", "model.seed=7"}), Catch::Contains("key 'model.seed'"));
  CHECK(file_bytes(b + "/config.yaml") == yaml_before);
  REQUIRE(cli::cmd_train({"--resume", b, "--set", "train.steps=5", "--set", "grpo.kl_coef=0"}) == 0);
  CHECK_FALSE(fs::exists(b + "/checkpoints/step_5/reference"));
  CHECK_THROWS_WITH(cli::cmd_train({"--resume", b, "--set", "train.steps=6", "--set", "grpo.kl_coef=0.01"}),
                    Catch::Contains("key 'grpo.kl_coef'") && Catch::Contains("has no reference model"));
}

static std::string write_plain_config(const std::string& dir);

// The metrics (all but wall-clock keys), final weights and last optimizer state of two
// run directories are the same bit for bit.
static void require_same_run(const std::string& a, const std::string& c, int64_t last_step) {
  for (const std::string& file : {std::string("/metrics.jsonl"), std::string("/cold_start/metrics.jsonl")}) {
    if (!fs::exists(a + file)) continue;
    const auto ma = read_jsonl(a + file), mc = read_jsonl(c + file);
    INFO(file);
    REQUIRE(ma.size() == mc.size());
    for (size_t i = 0; i < ma.size(); ++i) {
      INFO("line " << i);
      REQUIRE(ma[i].size() == mc[i].size());
      for (auto it = ma[i].begin(); it != ma[i].end(); ++it)
        if (!timing_key(it.key())) CHECK(it.value().dump() == mc[i][it.key()].dump());
    }
  }
  CHECK(file_bytes(a + "/final/model.safetensors") == file_bytes(c + "/final/model.safetensors"));
  const std::string opt = "/checkpoints/step_" + std::to_string(last_step) + "/optimizer.safetensors";
  CHECK(file_bytes(a + opt) == file_bytes(c + opt));
}

// `zeroth train` with train.time_limit_minutes so small that every step boundary stops
// the run, then `--resume` until it ends: returns the number of invocations.
static int run_stopping_at_every_step(const std::string& cfg, const std::string& run, std::vector<std::string> args) {
  std::vector<std::string> first = {"--config", cfg, "--run-dir", run, "--set", "train.time_limit_minutes=1e-9"};
  first.insert(first.end(), args.begin(), args.end());
  int rc = cli::cmd_train(first), invocations = 1;
  while (rc == kExitStopped && invocations < 20) {
    rc = cli::cmd_train({"--resume", run});
    ++invocations;
  }
  CHECK(rc == 0);
  return invocations;
}

// A time limit small enough to stop at every step boundary: each invocation does one
// step, writes a checkpoint and exits with kExitStopped; `--resume` continues, through the
// cold start -> GRPO hand-over and the evals a stop leaves pending, and the chain ends bit
// for bit where an uninterrupted run does.
// grpo.ref_mixup_alpha: at the reference reset (every step here) the reference becomes
// alpha * policy + (1 - alpha) * reference: after step 1, a mix of the step-1 policy and the
// cold start's model the run began from.
TEST_CASE("zeroth train: ref_mixup_alpha moves the reference part of the way to the policy") {
  const std::string dir = temp_dir("mixup");
  const std::string cfg = write_data(dir);
  const std::string run = dir + "/run";
  REQUIRE(cli::cmd_train({"--config", cfg, "--run-dir", run, "--set", "train.steps=1", "--set", "train.save_every=1",
                          "--set", "grpo.ref_reset_every=1", "--set", "grpo.ref_mixup_alpha=0.25"}) == 0);
  const SafetensorsFile start = SafetensorsFile::open(run + "/cold_start/final/model.safetensors");
  const SafetensorsFile policy = SafetensorsFile::open(run + "/checkpoints/step_1/model.safetensors");
  const SafetensorsFile ref = SafetensorsFile::open(run + "/checkpoints/step_1/reference/model.safetensors");
  REQUIRE(ref.names() == policy.names());
  int64_t moved = 0, checked = 0;
  double worst = 0;
  for (const std::string& name : ref.names()) {
    const SafetensorsInfo& info = ref.info(name);
    REQUIRE(info.dtype == DType::F32);
    const size_t n = size_t(info.nbytes / 4);
    std::vector<float> s0(n), p1(n), r1(n);
    start.read_into(name, s0.data(), DType::F32, info.shape);
    policy.read_into(name, p1.data(), DType::F32, info.shape);
    ref.read_into(name, r1.data(), DType::F32, info.shape);
    for (size_t i = 0; i < n; ++i) {
      const double want = 0.25 * double(p1[i]) + 0.75 * double(s0[i]);
      const double scale = 0.25 * std::fabs(double(p1[i])) + 0.75 * std::fabs(double(s0[i])) + 1e-30;
      worst = std::max(worst, std::fabs(double(r1[i]) - want) / scale);  // float32 rounding of the two terms
      moved += p1[i] != s0[i] && r1[i] != s0[i] && r1[i] != p1[i];
      ++checked;
    }
  }
  INFO("max error relative to the terms " << worst);
  CHECK(worst < 3e-7);
  CHECK(moved > checked / 2);  // the step moved most weights, and the reference sits between
  CHECK_THROWS_WITH(cli::cmd_train({"--config", cfg, "--run-dir", dir + "/bad", "--set", "grpo.ref_mixup_alpha=0"}),
                    Catch::Contains("key 'grpo.ref_mixup_alpha'"));
}

// grpo.kl_in_reward: the advantages are GRPO's of r - kl_coef * (the completion's k3 sum
// between the reference and the policy); at step 1 the reference is the policy, so the
// penalty is exactly 0; later it is not, and the metrics report it.
TEST_CASE("zeroth train: kl_in_reward puts the KL penalty into the advantages") {
  const std::string dir = temp_dir("kl_in_reward");
  const std::string cfg = write_data(dir);
  const std::string run = dir + "/run";
  REQUIRE(cli::cmd_train({"--config", cfg, "--run-dir", run, "--set", "train.steps=3", "--set",
                          "grpo.kl_in_reward=true", "--set", "grpo.ref_reset_every=0", "--set",
                          "rl.dump_rollouts_every=1"}) == 0);
  const auto rows = read_jsonl(run + "/metrics.jsonl");
  for (int step = 1; step <= 3; ++step) {
    INFO("step " << step);
    const auto lines = read_jsonl(run + "/rollouts/step_" + std::to_string(step) + ".jsonl");
    REQUIRE(!lines.empty());
    std::map<std::pair<int64_t, int64_t>, std::vector<const nlohmann::json*>> groups;
    double penalty = 0, worst = 0;
    for (const auto& o : lines) {
      REQUIRE(o.contains("kl_penalty"));
      CHECK(o["kl_penalty"].get<double>() >= 0.0);  // k3 >= 0
      penalty += o["kl_penalty"].get<double>();
      groups[{o["round"].get<int64_t>(), o["prompt_index"].get<int64_t>()}].push_back(&o);
    }
    for (const auto& [key, g] : groups) {  // GRPO's advantage of the penalised rewards
      std::vector<double> r;
      for (const auto* o : g) r.push_back((*o)["reward"].get<double>() - (*o)["kl_penalty"].get<double>());
      double mean = 0, ss = 0;
      for (double x : r) mean += x / double(r.size());
      for (double x : r) ss += (x - mean) * (x - mean);
      const bool equal = std::all_of(r.begin(), r.end(), [&](double x) { return x == r[0]; });
      for (size_t j = 0; j < g.size(); ++j) {
        const double want = equal ? 0.0 : (r[j] - mean) / (std::sqrt(ss / double(r.size() - 1)) + 1e-6);
        worst = std::max(worst, std::fabs((*g[j])["advantage"].get<double>() - want));
      }
    }
    CHECK(worst < 1e-6);
    const auto& m = rows[size_t(step - 1)];
    REQUIRE(m.at("step") == step);
    CHECK(m.at("kl_penalty_mean").get<double>() == Approx(penalty / double(lines.size())).epsilon(1e-9));
    if (step == 1) {
      CHECK(penalty == 0.0);  // the reference is the policy that sampled: the same log-probs
      CHECK(m.at("kl").get<double>() == 0.0);
    } else {
      CHECK(penalty > 0.0);
      CHECK(m.at("kl").get<double>() > 0.0);
    }
  }
  // With dynamic sampling the filter judges the rule rewards (the penalties always differ):
  // a group whose rule rewards are all equal is dropped, the others are trained.
  const std::string dyn = dir + "/dyn";
  REQUIRE(cli::cmd_train({"--config", cfg, "--run-dir", dyn, "--set", "train.steps=2", "--set",
                          "grpo.kl_in_reward=true", "--set", "grpo.dynamic_sampling=true", "--set",
                          "grpo.ref_reset_every=0", "--set", "rl.dump_rollouts_every=1"}) == 0);
  {
    std::map<std::pair<int64_t, int64_t>, std::pair<std::set<double>, bool>> groups;  // -> (rule rewards, trained)
    for (const auto& o : read_jsonl(dyn + "/rollouts/step_2.jsonl")) {
      auto& g = groups[{o["round"].get<int64_t>(), o["prompt_index"].get<int64_t>()}];
      g.first.insert(o["reward"].get<double>());
      g.second = o["trained"].get<bool>();
    }
    int64_t equal = 0, trained = 0;
    for (const auto& [key, g] : groups) {
      equal += g.first.size() == 1;
      trained += g.second;
      if (g.second) CHECK(g.first.size() > 1);
    }
    CHECK(equal > 0);
    CHECK(trained > 0);
    const auto m = read_jsonl(dyn + "/metrics.jsonl")[1];
    CHECK(m.at("zero_adv_group_frac").get<double>() == Approx(double(equal) / double(groups.size())));
  }
  CHECK_THROWS_WITH(cli::cmd_train({"--config", cfg, "--run-dir", dir + "/bad", "--set", "grpo.kl_in_reward=true",
                                    "--set", "grpo.kl_coef=0"}),
                    Catch::Contains("key 'grpo.kl_in_reward'"));
  CHECK_THROWS_WITH(cli::cmd_train({"--config", cfg, "--run-dir", dir + "/bad2", "--set", "grpo.kl_in_reward=true",
                                    "--set", "rl.rollout_lag=1"}),
                    Catch::Contains("key 'grpo.kl_in_reward'"));
}

// grpo.kl_target: the adaptive KL coefficient follows Ziegler et al.'s update from each
// step's KL, is logged as kl_coef, and a resumed run goes on from the checkpoint's value.
TEST_CASE("zeroth train: kl_target adapts the KL coefficient and resumes it") {
  const std::string dir = temp_dir("kl_target");
  const std::string cfg = write_data(dir);
  const std::vector<std::string> sets = {"--set", "grpo.kl_target=0.01", "--set", "grpo.kl_horizon=32", "--set",
                                         "grpo.ref_reset_every=0", "--set", "train.save_every=1"};
  auto with = [&](std::vector<std::string> a) {
    a.insert(a.end(), sets.begin(), sets.end());
    return a;
  };
  REQUIRE(cli::cmd_train(with({"--config", cfg, "--run-dir", dir + "/a", "--set", "train.steps=4"})) == 0);
  const auto rows = read_jsonl(dir + "/a/metrics.jsonl");
  std::vector<nlohmann::json> steps;
  for (const auto& r : rows)
    if (r.contains("kl_coef")) steps.push_back(r);
  REQUIRE(steps.size() == 4);
  CHECK(steps[0]["kl_coef"].get<double>() == 0.05);  // write_data's grpo.kl_coef
  bool moved_up = false, moved_down = false;
  for (size_t i = 0; i + 1 < steps.size(); ++i) {
    const double kl = steps[i]["kl"].get<double>(), coef = steps[i]["kl_coef"].get<double>();
    const double n = steps[i]["groups_trained"].get<double>() * 4;  // group_size 4
    const double want = coef * (1.0 + std::clamp(kl / 0.01 - 1.0, -0.2, 0.2) * n / 32.0);
    CHECK(steps[i + 1]["kl_coef"].get<double>() == Approx(want).epsilon(1e-12));
    moved_up = moved_up || want > coef;
    moved_down = moved_down || want < coef;
  }
  CHECK((moved_up || moved_down));
  // 2 steps, then --resume to 4: the same coefficients.
  REQUIRE(cli::cmd_train(with({"--config", cfg, "--run-dir", dir + "/b", "--set", "train.steps=2"})) == 0);
  REQUIRE(cli::cmd_train(with({"--resume", dir + "/b", "--set", "train.steps=4"})) == 0);
  std::vector<double> resumed;
  for (const auto& r : read_jsonl(dir + "/b/metrics.jsonl"))
    if (r.contains("kl_coef")) resumed.push_back(r["kl_coef"].get<double>());
  REQUIRE(resumed.size() == 4);
  for (size_t i = 0; i < 4; ++i) CHECK(resumed[i] == steps[i]["kl_coef"].get<double>());
  CHECK_THROWS_WITH(cli::cmd_train({"--config", cfg, "--run-dir", dir + "/bad", "--set", "grpo.kl_coef=0", "--set",
                                    "grpo.kl_target=0.01"}),
                    Catch::Contains("key 'grpo.kl_target'"));
  CHECK_THROWS_WITH(cli::cmd_train({"--config", cfg, "--run-dir", dir + "/bad2", "--set", "grpo.kl_target=0.01",
                                    "--set", "grpo.kl_horizon=3"}),
                    Catch::Contains("key 'grpo.kl_horizon'"));
}

TEST_CASE("zeroth train: stopped at every step boundary (time limit) and resumed equals one run") {
  const std::string dir = temp_dir("stop");
  SECTION("through the cold start") {
    const std::string cfg = write_data(dir);
    const std::string a = dir + "/a", c = dir + "/c";
    const std::vector<std::string> sets = {"--set", "cold_start.steps=3", "--set", "rl.eval_every=1"};
    std::vector<std::string> args = {"--config", cfg, "--run-dir", a};
    args.insert(args.end(), sets.begin(), sets.end());
    REQUIRE(cli::cmd_train(args) == 0);
    args = {"--config", cfg, "--run-dir", c, "--set", "train.time_limit_minutes=1e-9"};
    args.insert(args.end(), sets.begin(), sets.end());
    REQUIRE(cli::cmd_train(args) == kExitStopped);
    // Stopped after the cold start's step 1: its checkpoint and the run's config.yaml (so
    // --resume works), but no GRPO checkpoint and no final model.
    CHECK(fs::exists(c + "/cold_start/checkpoints/step_1/trainer_state.json"));
    CHECK(fs::exists(c + "/config.yaml"));
    CHECK_FALSE(fs::exists(c + "/cold_start/final"));
    CHECK_FALSE(fs::exists(c + "/checkpoints"));
    REQUIRE(cli::cmd_train({"--resume", c}) == kExitStopped);  // cold start step 2
    REQUIRE(cli::cmd_train({"--resume", c}) == kExitStopped);  // step 3 (its last), GRPO step 1
    CHECK(fs::exists(c + "/cold_start/final/config.json"));
    std::ifstream in(c + "/checkpoints/step_1/grpo_state.json");
    CHECK(nlohmann::json::parse(in)["eval_pending"] == true);  // eval_every 1: due, skipped
    CHECK_FALSE(fs::exists(c + "/final"));
    int rc = kExitStopped, more = 0;
    while (rc == kExitStopped && more < 10) {
      rc = cli::cmd_train({"--resume", c});
      ++more;
    }
    CHECK(rc == 0);
    CHECK(more == 3);  // GRPO steps 2, 3, 4
    CHECK(read_jsonl(a + "/metrics.jsonl").size() == 8);  // 4 steps, 4 evals
    CHECK(file_bytes(a + "/cold_start/final/model.safetensors") ==
          file_bytes(c + "/cold_start/final/model.safetensors"));
    require_same_run(a, c, 4);
  }
  SECTION("GRPO steps that move the policy, a KL reference and an eval every step") {
    const std::string cfg = write_plain_config(dir);
    const std::vector<std::string> sets = {"--set", "train.steps=4", "--set", "grpo.kl_coef=0.05",
                                           "--set", "prompts.eval_count=4", "--set", "rl.eval_every=1"};
    std::vector<std::string> args = {"--config", cfg, "--run-dir", dir + "/p"};
    args.insert(args.end(), sets.begin(), sets.end());
    REQUIRE(cli::cmd_train(args) == 0);
    CHECK(run_stopping_at_every_step(cfg, dir + "/q", sets) == 4);
    double gnorm = 0;
    for (const auto& row : read_jsonl(dir + "/p/metrics.jsonl"))
      if (row.contains("grad_norm")) gnorm += row["grad_norm"].get<double>();
    CHECK(gnorm > 0);
    require_same_run(dir + "/p", dir + "/q", 4);
    CHECK(file_bytes(dir + "/p/checkpoints/step_4/reference/model.safetensors") ==
          file_bytes(dir + "/q/checkpoints/step_4/reference/model.safetensors"));
  }
}

TEST_CASE("zeroth train: config errors name the key") {
  const std::string dir = temp_dir("errors");
  const std::string cfg = write_data(dir);
  try {
    load_train_config(cfg, {"rollout.group_size=1", "rollout.num_slots=4"});
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    CHECK_THAT(e.what(), Catch::Contains("rollout.group_size"));
  }
  CHECK_THROWS_AS(load_train_config(cfg, {"rl.prompts_per_stpe=3"}), ConfigError);
  // --resume of a directory without checkpoints.
  CHECK_THROWS_AS(cli::cmd_train({"--resume", dir, "--config", cfg}), CheckpointError);
  // The cold start's errors name its own keys (not the data:/train: keys it maps to).
  CHECK_THROWS_WITH(cli::cmd_train({"--config", cfg, "--run-dir", dir + "/cs1", "--set", "cold_start.seq_len=2"}),
                    Catch::Contains("expected fewer than cold_start.seq_len = 2"));
  CHECK_THROWS_WITH(cli::cmd_train({"--config", cfg, "--run-dir", dir + "/cs2", "--set",
                                    "cold_start.response_field=nosuch"}),
                    Catch::Contains("cold_start.response_field"));
  CHECK_THROWS_WITH(cli::cmd_train({"--config", cfg, "--run-dir", dir + "/cs3", "--set",
                                    "cold_start.template=no field"}),
                    Catch::Contains("key 'cold_start.template'"));
  CHECK_THROWS_WITH(cli::cmd_train({"--config", cfg, "--run-dir", dir + "/cs4", "--set", "cold_start.path=''",
                                    "--set", "rollout.prompt_template=Hello"}),
                    Catch::Contains("key 'rollout.prompt_template'") && Catch::Contains("at least one {field}"));
}

// A cold (random) tiny model, no cold start and no eval: 4 prompts x 4 samples a step.
static std::string write_plain_config(const std::string& dir) {
  std::ofstream train(dir + "/train.jsonl");
  for (int a = 0; a < 10; ++a)
    for (int b = 0; a + b < 10; ++b)
      train << "{\"prompt\": \"" << a << "+" << b << "\", \"answer\": \"" << a + b << "\"}\n";
  const std::string cfg = dir + "/plain.yaml";
  std::ofstream(cfg) << "run:\n  threads: 1\n  seed: 7\n"
                        "model:\n  init: " << kSrc << "/configs/models/tiny.json\n"
                        "optim:\n  lr: 0.003\n  weight_decay: 0.0\n"
                        "train:\n  steps: 2\n  save_every: 0\n  log_every: 1\n"
                        "rollout:\n  group_size: 4\n  num_slots: 16\n  max_len: 64\n  max_new_tokens: 24\n"
                        "  prompt_template: '{prompt}='\n"
                        "grpo:\n  kl_coef: 0.0\n"
                        "rl:\n  prompts_per_step: 4\n  micro_batch: 6\n  eval_at_start: false\n  eval_at_end: false\n"
                        "prompts:\n  sources:\n    - path: " << dir << "/train.jsonl\n"
                        "rewards:\n  functions:\n    - {name: accuracy, weight: 1.0}\n"
                        "    - {name: language, weight: 1.0}  # varies on random text: non-zero advantages\n";
  return cfg;
}

// The first step's metrics of `zeroth train` with these --set overrides (the step's
// rollouts are those of the initial weights, the same for every override below).
static nlohmann::json first_step(const std::string& dir, const std::string& cfg, const std::string& name,
                                 const std::vector<std::string>& sets) {
  std::vector<std::string> args = {"--config", cfg, "--run-dir", dir + "/" + name};
  for (const auto& s : sets) {
    args.push_back("--set");
    args.push_back(s);
  }
  REQUIRE(cli::cmd_train(args) == 0);
  const auto rows = read_jsonl(dir + "/" + name + "/metrics.jsonl");
  REQUIRE(rows.size() == 2);
  REQUIRE(rows[0]["step"] == 1);
  return rows[0];
}

// Length and repetition shaping in a run: the components reach the metrics, every
// completion's token count and group reach the composer (cosine's max_len 0 is the
// rollout's max_new_tokens), and `zeroth reward --group-by round,prompt_index` scores a
// rollout dump again to the same rewards and components, bit for bit.
// `zeroth train` arguments: --config cfg --run-dir run, then `sets`, then `extra`.
static std::vector<std::string> train_args(const std::string& cfg, const std::string& run,
                                           const std::vector<std::string>& sets, const std::vector<std::string>& extra) {
  std::vector<std::string> a = {"--config", cfg, "--run-dir", run};
  a.insert(a.end(), sets.begin(), sets.end());
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// rl.skip_solved: a prompt whose group was all correct never comes back (checked against
// the rollout dumps), the metric counts them, the checkpoint keeps them, and 6 steps equal
// 3 + --resume for 3 more.
TEST_CASE("zeroth train: skip_solved drops solved prompts for good and resumes exactly") {
  const std::string dir = temp_dir("skip_solved");
  const std::string cfg = write_data(dir);
  const std::vector<std::string> sets = {"--set", "rl.skip_solved=true", "--set", "rl.eval_every=0",
                                         "--set", "train.save_every=3", "--set", "train.steps=6"};
  auto args = [&](const std::string& run, const std::vector<std::string>& extra) {
    return train_args(cfg, run, sets, extra);
  };
  REQUIRE(cli::cmd_train(args(dir + "/a", {"--set", "rl.dump_rollouts_every=1"})) == 0);
  REQUIRE(cli::cmd_train(args(dir + "/b", {"--set", "train.steps=3"})) == 0);
  REQUIRE(cli::cmd_train({"--resume", dir + "/b", "--set", "train.steps=6"}) == 0);
  require_same_run(dir + "/a", dir + "/b", 6);

  const auto rows = read_jsonl(dir + "/a/metrics.jsonl");
  REQUIRE(rows.size() == 6);
  std::set<std::string> solved;  // "file:line" of every prompt solved so far
  for (int step = 1; step <= 6; ++step) {
    INFO("step " << step);
    std::map<std::string, std::pair<int, int>> groups;  // where -> (correct, samples)
    for (const auto& l : read_jsonl(dir + "/a/rollouts/step_" + std::to_string(step) + ".jsonl")) {
      const std::string where = l.at("where").get<std::string>();
      CHECK(l.at("source") == "train");  // the source's default name: its file's
      CHECK(solved.count(where) == 0);  // a solved prompt is never sampled again
      auto& g = groups[where];
      g.first += l.at("verdict") == "correct";
      g.second += 1;
    }
    for (const auto& [where, g] : groups)
      if (g.first == g.second) solved.insert(where);
    CHECK(rows[size_t(step - 1)].at("prompts_skipped").get<double>() == double(solved.size()));
  }
  CHECK(!solved.empty());  // the cold-started model solves some sums
  std::ifstream state(dir + "/b/checkpoints/step_3/grpo_state.json");
  const nlohmann::json js = nlohmann::json::parse(state);
  CHECK(double(js.at("skipped_prompts").size()) == rows[2].at("prompts_skipped").get<double>());
}

// rl.save_best: RUN_DIR/best is the policy of the eval that first reached the best value
// (its weights are the checkpoint of that step's), best.json says which; a run resumed
// half-way keeps comparing against the checkpoint's best and ends with the same best.
TEST_CASE("zeroth train: save_best keeps the best model by an eval metric across a resume") {
  const std::string dir = temp_dir("save_best");
  const std::string cfg = write_data(dir);
  const std::vector<std::string> sets = {"--set", "rl.save_best=eval_sampled_accuracy", "--set", "rl.eval_every=1",
                                         "--set", "rl.eval_at_start=true", "--set", "train.save_every=1",
                                         "--set", "train.steps=4", "--set", "eval.pass_k=4"};
  REQUIRE(cli::cmd_train(train_args(cfg, dir + "/a", sets, {})) == 0);
  REQUIRE(cli::cmd_train(train_args(cfg, dir + "/b", sets, {"--set", "train.steps=2"})) == 0);
  REQUIRE(cli::cmd_train({"--resume", dir + "/b", "--set", "train.steps=4"}) == 0);
  double best = -1;
  int64_t best_step = -1;
  std::set<double> values;
  for (const auto& row : read_jsonl(dir + "/a/metrics.jsonl"))
    if (row.contains("eval_sampled_accuracy")) {
      const double v = row["eval_sampled_accuracy"].get<double>();
      values.insert(v);
      if (v > best) {
        best = v;
        best_step = row["step"].get<int64_t>();
      }
    }
  CHECK(values.size() > 1);  // the metric moved, so the choice means something
  std::ifstream in(dir + "/a/best.json");
  const nlohmann::json js = nlohmann::json::parse(in);
  CHECK(js.at("metric") == "eval_sampled_accuracy");
  CHECK(js.at("mode") == "max");
  CHECK(js.at("value").get<double>() == best);
  CHECK(js.at("step").get<int64_t>() == best_step);
  const std::string weights_at =
      best_step == 0 ? dir + "/a/cold_start/final" : dir + "/a/checkpoints/step_" + std::to_string(best_step);
  CHECK(file_bytes(dir + "/a/best/model.safetensors") == file_bytes(weights_at + "/model.safetensors"));
  CHECK(file_bytes(dir + "/b/best.json") == file_bytes(dir + "/a/best.json"));
  CHECK(file_bytes(dir + "/b/best/model.safetensors") == file_bytes(dir + "/a/best/model.safetensors"));
  // Config errors: not an eval metric; no eval set.
  CHECK_THROWS_WITH(load_train_config(cfg, {"rl.save_best=reward_mean"}), Catch::Contains("rl.save_best"));
  CHECK_THROWS_WITH(cli::cmd_train({"--config", write_plain_config(dir), "--run-dir", dir + "/c", "--set",
                                    "rl.save_best=eval_accuracy"}),
                    Catch::Contains("rl.save_best") && Catch::Contains("eval set"));
}

// train.save_every_minutes: a checkpoint at every step boundary once the interval has
// passed (here at once), besides save_every's; the run is the same.
TEST_CASE("zeroth train: save_every_minutes writes time-based checkpoints") {
  const std::string dir = temp_dir("save_minutes");
  const std::string cfg = write_plain_config(dir);
  REQUIRE(cli::cmd_train({"--config", cfg, "--run-dir", dir + "/a", "--set", "train.steps=3", "--set",
                          "train.save_every_minutes=1e-9"}) == 0);
  for (int step : {1, 2, 3}) CHECK(fs::exists(dir + "/a/checkpoints/step_" + std::to_string(step) + "/grpo_state.json"));
  REQUIRE(cli::cmd_train({"--config", cfg, "--run-dir", dir + "/b", "--set", "train.steps=3", "--set",
                          "train.save_every_minutes=600"}) == 0);
  CHECK_FALSE(fs::exists(dir + "/b/checkpoints/step_1"));
  CHECK(fs::exists(dir + "/b/checkpoints/step_3/grpo_state.json"));  // the end's
  require_same_run(dir + "/a", dir + "/b", 3);
}

// Two weighted training sources: the prompts each step samples are those the mixing
// sampler serves (samples/NAME counts them), and 4 steps equal 2 + --resume for 2 more.
TEST_CASE("zeroth train: weighted sources mix by weight and resume exactly") {
  const std::string dir = temp_dir("mix");
  const std::string cfg = write_plain_config(dir);
  {
    std::ofstream small(dir + "/small.jsonl");
    for (int i = 0; i < 5; ++i) small << "{\"prompt\": \"1" << i << "+1\", \"answer\": \"1" << i + 1 << "\"}\n";
  }
  const std::vector<std::string> sets = {
      "--set", "prompts.sources=[{path: " + dir + "/train.jsonl, weight: 1}, {path: " + dir +
                   "/small.jsonl, weight: 1}]",
      "--set", "train.steps=4", "--set", "train.save_every=2"};
  auto args = [&](const std::string& run, const std::vector<std::string>& extra) {
    return train_args(cfg, run, sets, extra);
  };
  REQUIRE(cli::cmd_train(args(dir + "/a", {})) == 0);
  REQUIRE(cli::cmd_train(args(dir + "/b", {"--set", "train.steps=2"})) == 0);
  REQUIRE(cli::cmd_train({"--resume", dir + "/b", "--set", "train.steps=4"}) == 0);
  require_same_run(dir + "/a", dir + "/b", 4);

  // The trainer's prompts are the sampler's: 4 steps x 4 prompts of the first mixed epoch
  // (60 prompts: 30 of each source, the 5 small ones 6 times each).
  const TrainConfig config = load_train_config(cfg, {sets[1]});
  const PromptData data = load_prompt_data(config.prompts);
  REQUIRE(data.train.size() == 60);
  const PromptSampler sampler(data.train, config.run.seed, config.prompts.shuffle);
  const std::vector<int64_t> epoch = sampler.mixed_epoch(0);
  const auto rows = read_jsonl(dir + "/a/metrics.jsonl");
  REQUIRE(rows.size() == 4);
  double small_total = 0;
  for (size_t step = 0; step < 4; ++step) {
    int small = 0;
    for (size_t k = 0; k < 4; ++k) small += data.train.records[size_t(epoch[step * 4 + k])].source == 1;
    INFO("step " << step + 1);
    CHECK(rows[step].at("samples/small").get<double>() == 4.0 * small);
    CHECK(rows[step].at("samples/train").get<double>() == 4.0 * (4 - small));
    small_total += small;
  }
  // Half the epoch is the small source's (about 8 of these 16 prompts), far beyond the 5 / 60
  // of the pool it would get unweighted (about 1.3).
  CHECK(small_total >= 4);
}

TEST_CASE("zeroth train: shaping rewards (cosine and repetition and length penalties) and a rollout dump scores again the same") {
  const std::string dir = temp_dir("shaping");
  const std::string cfg = write_plain_config(dir);
  const std::string functions =
      "rewards.functions=[{name: cosine}, {name: repetition_penalty, weight: 0.5, ngram_size: 2}, "
      "{name: length_penalty, weight: 0.2}, {name: language, weight: 1.0}]";
  const std::string run = dir + "/run";
  REQUIRE(cli::cmd_train({"--config", cfg, "--run-dir", run, "--set", functions, "--set",
                          "rl.dump_rollouts_every=1", "--set", "rollout.stop=[]"}) == 0);
  const auto rows = read_jsonl(run + "/metrics.jsonl");
  REQUIRE(rows.size() == 2);
  for (const char* k : {"reward_cosine", "reward_repetition_penalty", "reward_length_penalty", "reward_language"})
    CHECK(rows[0].contains(k));
  CHECK(rows[0]["reward_cosine"].get<double>() < -0.5);  // nothing is correct yet: cosine in [-1, -0.5]
  CHECK(rows[0]["reward_repetition_penalty"].get<double>() <= 0.0);
  for (int step : {1, 2}) {
    INFO("step " << step);
    const std::string dump = run + "/rollouts/step_" + std::to_string(step) + ".jsonl";
    const std::string again = dir + "/again_" + std::to_string(step) + ".jsonl";
    REQUIRE(cli::cmd_reward({"--input", dump, "--output", again, "--config", cfg, "--set", functions,
                             "--group-by", "round,prompt_index"}) == 0);
    const auto before = read_jsonl(dump), after = read_jsonl(again);
    REQUIRE(before.size() == 16);  // 4 prompts x 4 samples
    REQUIRE(after.size() == before.size());
    bool lengths_differ = false;
    for (size_t i = 0; i < before.size(); ++i) {
      INFO("line " << i);
      CHECK(before[i].at("kind") == "math");
      CHECK(after[i].at("reward").dump() == before[i].at("reward").dump());
      CHECK(after[i].at("components").dump() == before[i].at("components").dump());
      const double cosine = before[i]["components"]["cosine"].get<double>();
      const double expected = cosine_length_reward(before[i]["verdict"] == "correct",
                                                   before[i]["tokens"].get<int64_t>(), CosineLengthParams{
                                                       1.0, 0.5, -1.0, -0.5, 24});
      CHECK(cosine == expected);
      lengths_differ = lengths_differ || before[i]["components"]["length_penalty"].get<double>() != 0.0;
    }
    CHECK(lengths_differ);  // (the tiny model's random bytes rarely repeat a word: tested in test_format_reward)
  }
  // Without --group-by every line is its own group: the length penalty is 0 everywhere.
  REQUIRE(cli::cmd_reward({"--input", run + "/rollouts/step_1.jsonl", "--output", dir + "/alone.jsonl", "--config",
                           cfg, "--set", functions}) == 0);
  for (const auto& line : read_jsonl(dir + "/alone.jsonl"))
    CHECK(line["components"]["length_penalty"].get<double>() == 0.0);
}

// A stop signal that arrives in a step's rollout (ZEROTH_TEST_SIGNAL_IN_ROLLOUT raises
// SIGUSR1 from the generation loop of that step) stops the run at once: the step is
// dropped, the checkpoint of the step before is written (there was none: save_every 0), the
// exit status is 75, and --resume ends bit for bit where an uninterrupted run does (the
// sampler went back to where the dropped step began).
TEST_CASE("zeroth train: a stop signal in a rollout drops the step and the resumed run equals one run") {
  const std::string dir = temp_dir("stop_in_rollout");
  const std::string cfg = write_plain_config(dir);
  const std::vector<std::string> sets = {"--set", "train.steps=4", "--set", "rl.dump_rollouts_every=1",
                                         "--set", "grpo.dynamic_sampling=true"};
  std::vector<std::string> a = {"--config", cfg, "--run-dir", dir + "/a"}, b = {"--config", cfg, "--run-dir", dir + "/b"};
  a.insert(a.end(), sets.begin(), sets.end());
  b.insert(b.end(), sets.begin(), sets.end());
  REQUIRE(cli::cmd_train(a) == 0);
  ::setenv("ZEROTH_TEST_SIGNAL_IN_ROLLOUT", "3", 1);
  const int rc = cli::cmd_train(b);
  ::unsetenv("ZEROTH_TEST_SIGNAL_IN_ROLLOUT");
  REQUIRE(rc == kExitStopped);
  CHECK(fs::exists(dir + "/b/checkpoints/step_2/optimizer.safetensors"));
  CHECK(!fs::exists(dir + "/b/checkpoints/step_3"));
  CHECK(!fs::exists(dir + "/b/final"));
  CHECK(!fs::exists(dir + "/b/rollouts/step_3.jsonl"));
  CHECK(read_jsonl(dir + "/b/metrics.jsonl").size() == 2);
  REQUIRE(cli::cmd_train({"--resume", dir + "/b"}) == 0);
  require_same_run(dir + "/a", dir + "/b", 4);
  CHECK(file_bytes(dir + "/a/rollouts/step_3.jsonl") == file_bytes(dir + "/b/rollouts/step_3.jsonl"));
}

// The same during an eval (ZEROTH_TEST_SIGNAL_IN_EVAL): the run stops after that step with
// its checkpoint marking the eval pending, and --resume runs the eval first: the metrics
// (eval rows included) end bit for bit as an uninterrupted run's.
TEST_CASE("zeroth train: a stop signal in an eval stops after the step and the eval runs on resume") {
  const std::string dir = temp_dir("stop_in_eval");
  const std::string cfg = write_plain_config(dir);
  {
    std::ofstream eval(dir + "/eval.jsonl");
    for (int a = 1; a <= 8; ++a) eval << "{\"prompt\": \"" << a << "+10\", \"answer\": \"" << a + 10 << "\"}\n";
  }
  const std::vector<std::string> sets = {"--set", "train.steps=4", "--set", "rl.eval_every=2", "--set",
                                         "prompts.eval_sources=[{path: " + dir + "/eval.jsonl}]", "--set",
                                         "eval.max_prompts=8", "--set", "eval.pass_k=2"};
  std::vector<std::string> a = {"--config", cfg, "--run-dir", dir + "/a"}, b = {"--config", cfg, "--run-dir", dir + "/b"};
  a.insert(a.end(), sets.begin(), sets.end());
  b.insert(b.end(), sets.begin(), sets.end());
  REQUIRE(cli::cmd_train(a) == 0);
  ::setenv("ZEROTH_TEST_SIGNAL_IN_EVAL", "2", 1);
  const int rc = cli::cmd_train(b);
  ::unsetenv("ZEROTH_TEST_SIGNAL_IN_EVAL");
  REQUIRE(rc == kExitStopped);
  const auto state = nlohmann::json::parse(std::string(file_bytes(dir + "/b/checkpoints/step_2/grpo_state.json").data(),
                                                       file_bytes(dir + "/b/checkpoints/step_2/grpo_state.json").size()));
  CHECK(state.at("eval_pending") == true);
  for (const auto& row : read_jsonl(dir + "/b/metrics.jsonl")) CHECK(!row.contains("eval_accuracy"));
  REQUIRE(cli::cmd_train({"--resume", dir + "/b"}) == 0);
  require_same_run(dir + "/a", dir + "/b", 4);
}

TEST_CASE("zeroth train: a python reward function gets each prompt's record and a dump scores again the same") {
  const std::string dir = temp_dir("python_reward");
  const std::string cfg = write_plain_config(dir);
  std::ofstream(dir + "/judge.py") << "def compute_score(data_source, solution_str, ground_truth, extra_info):\n"
                                      "    assert extra_info['answer'] == ground_truth, (extra_info, ground_truth)\n"
                                      "    assert data_source == 'train', data_source\n"
                                      "    return {'score': (len(solution_str) % 5) / 4, 'correct': len(solution_str) < 12,\n"
                                      "            'short': len(solution_str) < 12, 'label': 'x'}\n";
  const std::vector<std::string> sets = {"--set", "rewards.functions=[{name: accuracy}, {name: python, weight: 0.5}]",
                                         "--set", "rewards.python={path: " + dir + "/judge.py, workers: 2, metrics: [short]}"};
  const std::string run = dir + "/run";
  std::vector<std::string> args = {"--config", cfg, "--run-dir", run, "--set", "rl.dump_rollouts_every=1"};
  args.insert(args.end(), sets.begin(), sets.end());
  REQUIRE(cli::cmd_train(args) == 0);
  const auto rows = read_jsonl(run + "/metrics.jsonl");
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].contains("reward_python"));
  CHECK(rows[0]["reward_errors"].get<double>() == 0.0);
  const std::string dump = run + "/rollouts/step_1.jsonl";
  const auto before = read_jsonl(dump);
  REQUIRE(before.size() == 16);
  double overridden = 0, correct = 0;
  for (const auto& line : before) {
    CHECK(line.at("extra_info").at("answer") == line.at("gold"));  // the record as read
    CHECK(!line.contains("reward_error"));
    const double v = line["components"]["python"].get<double>();
    CHECK((v == 0.0 || v == 0.25 || v == 0.5 || v == 0.75 || v == 1.0));
    correct += line["verdict"] == "correct";
    // The function's "correct" decides, not the native verifier's accuracy component.
    overridden += line["verdict"] == "correct" && line["components"]["accuracy"].get<double>() == 0.0;
  }
  CHECK(rows[0]["accuracy"].get<double>() == correct / 16.0);
  // rewards.python.metrics: the dict's "short" as the metric python/short (a bool: the same
  // as the function's "correct" here); the dumps carry every number of the dict.
  CHECK(rows[0]["python/short"].get<double>() == correct / 16.0);
  CHECK(before[0].at("python_extra").dump() ==
        std::string("{\"short\":") + (before[0]["verdict"] == "correct" ? "1.0" : "0.0") + "}");
  CHECK(overridden > 0);
  std::vector<std::string> again = {"--input", dump, "--output", dir + "/again.jsonl", "--config", cfg};
  again.insert(again.end(), sets.begin(), sets.end());
  REQUIRE(cli::cmd_reward(again) == 0);
  const auto after = read_jsonl(dir + "/again.jsonl");
  REQUIRE(after.size() == before.size());
  for (size_t i = 0; i < before.size(); ++i) {
    CHECK(after[i].at("reward").dump() == before[i].at("reward").dump());
    CHECK(after[i].at("components").dump() == before[i].at("components").dump());
  }
}

TEST_CASE("zeroth train: training-inference mismatch metrics and the rollout correction") {
  const std::string dir = temp_dir("mismatch");
  const std::string cfg = write_plain_config(dir);

  // fp32 trainer, fp32 rollout: they agree to fp32 rounding; pi_old is the trainer's own
  // forward (one update a step), so the ratio is exactly 1.
  const auto f32 = first_step(dir, cfg, "f32", {});
  CHECK(f32["mismatch_abs_max"].get<double>() < 1e-5);
  CHECK(f32["mismatch_abs_mean"].get<double>() < 1e-6);
  CHECK(f32["ratio_mean"].get<double>() == 1.0);
  CHECK_FALSE(f32.contains("rollout_is_weight_mean"));

  // GSPO at ratio 1 (pi_old = this forward) takes GRPO's gradient exactly: -A per token.
  const auto gspo = first_step(dir, cfg, "gspo", {"grpo.policy_loss=gspo", "grpo.clip_low=3e-4",
                                                  "grpo.clip_high=4e-4"});
  CHECK(gspo["grad_norm"] == f32["grad_norm"]);
  CHECK(gspo["pg_loss"] == f32["pg_loss"]);
  CHECK(gspo["clip_frac"] == 0.0);
  const auto cispo = first_step(dir, cfg, "cispo", {"grpo.policy_loss=cispo"});  // so does CISPO
  CHECK(cispo["grad_norm"] == f32["grad_norm"]);
  const auto sapo = first_step(dir, cfg, "sapo", {"grpo.policy_loss=sapo"});  // and SAPO's gate (slope 1 at 1)
  CHECK(sapo["grad_norm"] == f32["grad_norm"]);
  const auto sapo2 = first_step(dir, cfg, "sapo_mb2", {"grpo.policy_loss=sapo", "grpo.mini_batches=2"});
  const auto ppo2 = first_step(dir, cfg, "ppo_mb2", {"grpo.mini_batches=2"});
  CHECK(sapo2["grad_norm"] != ppo2["grad_norm"]);  // off-policy the gate bends where PPO's clip does not

  // bf16 trainer: the mismatch is bf16's; 'auto' takes pi_old from the trainer.
  const auto bf = first_step(dir, cfg, "bf16", {"run.compute_dtype=bf16"});
  const double bf_max = bf["mismatch_abs_max"].get<double>();
  CHECK(bf_max > 1e-4);
  CHECK(bf_max > 100 * f32["mismatch_abs_max"].get<double>());
  CHECK(bf["mismatch_k3"].get<double>() > 0);
  CHECK(bf["ratio_mean"].get<double>() == 1.0);
  CHECK(bf["trained_tokens"] == f32["trained_tokens"]);  // the same rollouts

  // old_logprobs: rollout puts the mismatch into the PPO ratio.
  const auto bro = first_step(dir, cfg, "bf16_rollout", {"run.compute_dtype=bf16", "grpo.old_logprobs=rollout"});
  CHECK(bro["ratio_mean"].get<double>() != 1.0);
  CHECK(bro["mismatch_abs_max"] == bf["mismatch_abs_max"]);

  // Two mini-batches: pi_old from a pass before the first update, over the same
  // micro-batches as the one-mini-batch run's forward: the same statistics.
  const auto two = first_step(dir, cfg, "bf16_mb2", {"run.compute_dtype=bf16", "grpo.mini_batches=2"});
  CHECK(two["mismatch_abs_max"] == bf["mismatch_abs_max"]);
  CHECK(two["mismatch_k3"] == bf["mismatch_k3"]);
  CHECK(two["optimizer_steps"] == 2);

  // token_mask with a band narrower than bf16's mismatch: rejected tokens leave the loss
  // and its token count; the rest keep weight rho inside the band.
  const auto tm = first_step(dir, cfg, "bf16_token_mask",
                             {"run.compute_dtype=bf16", "grpo.rollout_is=token_mask", "grpo.rollout_is_cap=1.0005",
                              "grpo.rollout_is_floor=0.9995"});
  const double rej = tm["rollout_is_rejected_frac"].get<double>();
  CHECK(rej > 0.0);
  CHECK(rej < 1.0);
  CHECK(tm["trained_tokens"].get<double>() ==
        Approx(bf["trained_tokens"].get<double>() * (1.0 - rej)).margin(1e-6));
  CHECK(tm["rollout_is_weight_mean"].get<double>() == Approx(1.0).margin(5e-4));
  CHECK(tm["ratio_mean"].get<double>() == 1.0);  // pi_old from the pass = this forward
  CHECK(bf["grad_norm"].get<double>() > 0);          // the rewards vary: a real update
  CHECK(tm["grad_norm"] != bf["grad_norm"]);

  // token_truncate at cap 1: every weight min(rho, 1) <= 1, and some tokens capped.
  const auto tt = first_step(dir, cfg, "bf16_token_truncate",
                             {"run.compute_dtype=bf16", "grpo.rollout_is=token_truncate", "grpo.rollout_is_cap=1"});
  CHECK(tt["rollout_is_truncated_frac"].get<double>() > 0.0);
  CHECK(tt["rollout_is_weight_mean"].get<double>() <= 1.0);
  CHECK(tt["rollout_is_rejected_frac"].get<double>() == 0.0);
  CHECK(tt["trained_tokens"] == bf["trained_tokens"]);
  CHECK(tt["grad_norm"] != bf["grad_norm"]);

  CHECK_THROWS_AS(load_train_config(cfg, {"grpo.rollout_is=token_truncate", "grpo.old_logprobs=rollout"}),
                  ConfigError);
}

// KL-Cov / Clip-Cov (grpo.policy_loss kl_cov / clip_cov) in a run: at ratio 1 (one update
// a step, pi_old = this forward) KL-Cov's penalty |log pi - log pi_old| is 0 with a 0
// gradient, so it takes GRPO's gradient exactly; Clip-Cov drops the gradient of the
// tokens it draws, so its gradient differs; both log cov_selected_frac. With two
// mini-batches the second sees a moved policy, and KL-Cov's penalty pulls its selected
// tokens back.
TEST_CASE("zeroth train: kl_cov and clip_cov select tokens by covariance") {
  const std::string dir = temp_dir("cov");
  const std::string cfg = write_plain_config(dir);
  const auto ppo = first_step(dir, cfg, "ppo", {"grpo.clip_high=0.28"});
  CHECK_FALSE(ppo.contains("cov_selected_frac"));
  const auto kl = first_step(dir, cfg, "kl_cov", {"grpo.policy_loss=kl_cov", "grpo.cov_ratio=0.05"});
  CHECK(kl["grad_norm"] == ppo["grad_norm"]);
  const double kl_frac = kl["cov_selected_frac"].get<double>();
  CHECK(kl_frac >= 0.05 * 0.5);  // at least one token per micro-batch, about 5% of each
  CHECK(kl_frac <= 0.05 + 0.5);
  const auto clip = first_step(dir, cfg, "clip_cov",
                               {"grpo.policy_loss=clip_cov", "grpo.clip_high=0.28", "grpo.cov_ratio=0.05",
                                "grpo.cov_lb=-1e9", "grpo.cov_ub=1e9"});
  CHECK(clip["cov_selected_frac"].get<double>() > 0.0);
  CHECK(clip["grad_norm"] != ppo["grad_norm"]);
  CHECK(clip["trained_tokens"] == ppo["trained_tokens"]);
  const auto kl2 = first_step(dir, cfg, "kl_cov_mb2", {"grpo.policy_loss=kl_cov", "grpo.cov_ratio=0.05",
                                                       "grpo.mini_batches=2"});
  const auto ppo2 = first_step(dir, cfg, "ppo_mb2", {"grpo.policy_loss=kl_cov", "grpo.cov_ratio=0.05",
                                                     "grpo.cov_kl_coef=0", "grpo.mini_batches=2"});
  CHECK(kl2["optimizer_steps"] == 2);
  CHECK(kl2["loss"].get<double>() > ppo2["loss"].get<double>());  // the penalty is paid
  // grpo.entropy_token_frac: a fifth of each micro-batch's tokens (the highest entropies)
  // keep their policy gradient.
  const auto top = first_step(dir, cfg, "entropy_top", {"grpo.clip_high=0.28", "grpo.entropy_token_frac=0.2"});
  const double kept = top["entropy_kept_frac"].get<double>();
  CHECK(kept >= 0.15);
  CHECK(kept <= 0.3);
  CHECK(top["grad_norm"] != ppo["grad_norm"]);
  CHECK(top["entropy"] == ppo["entropy"]);  // the same rollouts and weights: the same entropies
  CHECK_FALSE(ppo.contains("entropy_kept_frac"));
}

TEST_CASE("pass@k estimates: the unbiased estimator against counting the k-subsets") {
  CHECK(pass_at_k_estimate(4, 1, 1) == Approx(0.25));
  CHECK(pass_at_k_estimate(4, 1, 2) == Approx(0.5));   // 1 - C(3,2)/C(4,2) = 1 - 3/6
  CHECK(pass_at_k_estimate(5, 2, 3) == Approx(0.9));   // 1 - C(3,3)/C(5,3) = 1 - 1/10
  CHECK(pass_at_k_estimate(6, 0, 3) == 0.0);
  CHECK(pass_at_k_estimate(6, 6, 3) == 1.0);
  // Every n <= 10: the share of k-subsets of n samples (c correct) that hold a correct one.
  for (int n = 1; n <= 10; ++n)
    for (int c = 0; c <= n; ++c)
      for (int k = 1; k <= n; ++k) {
        int64_t subsets = 0, hit = 0;
        for (uint32_t mask = 0; mask < (1u << n); ++mask) {
          if (__builtin_popcount(mask) != k) continue;
          ++subsets;
          hit += (mask & ((1u << c) - 1)) != 0;  // samples 0..c-1 are the correct ones
        }
        INFO("n " << n << " c " << c << " k " << k);
        CHECK(pass_at_k_estimate(n, c, k) == Approx(double(hit) / double(subsets)).margin(1e-12));
      }
  // eval.pass_at: each k in [1, pass_k], once.
  const std::string dir = temp_dir("pass_at");
  const std::string cfg = write_plain_config(dir);
  CHECK_THROWS_WITH(load_train_config(cfg, {"eval.pass_k=4", "eval.pass_at=[1, 8]"}),
                    Catch::Contains("eval.pass_at[1]") && Catch::Contains("[1, eval.pass_k = 4]"));
  CHECK_THROWS_WITH(load_train_config(cfg, {"eval.pass_k=4", "eval.pass_at=[2, 2]"}),
                    Catch::Contains("eval.pass_at[1]") && Catch::Contains("twice"));
  CHECK_THROWS_WITH(load_train_config(cfg, {"eval.pass_k=4", "eval.pass_at=[0]"}), Catch::Contains("eval.pass_at"));
  CHECK_THROWS_WITH(load_train_config(cfg, {"eval.pass_at=[1]"}), Catch::Contains("eval.pass_k = 0"));
}

TEST_CASE("maj@k: equivalent answers vote together and ties go to the earliest and no answer does not vote") {
  auto same = [](const std::string& a, const std::string& b) { return math_equal(a, b) || math_equal(b, a); };
  CHECK(majority_answer({}, same) == -1);
  CHECK(majority_answer({"", "", ""}, same) == -1);
  CHECK(majority_answer({"", "7", ""}, same) == 1);
  // 0.5 = \frac{1}{2} = 1/2 (3 votes) beats 3 (2 votes), though 3 comes first.
  CHECK(majority_answer({"3", "0.5", "\\frac{1}{2}", "3", "1/2"}, same) == 1);
  // A tie: the group whose first member comes first.
  CHECK(majority_answer({"4", "5", "5", "4"}, same) == 0);
  CHECK(majority_answer({"5", "4", "4", "5", "", ""}, same) == 0);
  CHECK(majority_answer({"x+1", "1+x", "2"}, same) == 0);
  // Identical strings join their group without a call; each new string is compared with
  // the groups' first members only.
  int calls = 0;
  auto counting = [&](const std::string& a, const std::string& b) {
    ++calls;
    return a == b;
  };
  CHECK(majority_answer({"a", "a", "b", "a", "b", "c"}, counting) == 0);
  CHECK(calls == 3);  // b vs a; c vs a, c vs b
}

TEST_CASE("micro-batch plans: fixed runs, and packed by tokens") {
  using grpo_detail::MicroPlan;
  using grpo_detail::plan_micro_batches;
  const std::vector<int64_t> len = {5, 9, 3, 9, 1, 7};
  auto idx = [](const std::vector<MicroPlan>& p) {
    std::vector<std::vector<size_t>> out;
    for (const MicroPlan& m : p) out.push_back(m.idx);
    return out;
  };
  auto lengths = [](const std::vector<MicroPlan>& p) {
    std::vector<int64_t> out;
    for (const MicroPlan& m : p) out.push_back(m.T);
    return out;
  };
  // tokens 0: runs of micro in order, all padded to the step's T
  std::vector<MicroPlan> p = plan_micro_batches(len, 4, 0, 9);
  CHECK(idx(p) == std::vector<std::vector<size_t>>{{0, 1, 2, 3}, {4, 5}});
  CHECK(lengths(p) == std::vector<int64_t>{9, 9});
  CHECK(idx(plan_micro_batches(len, 0, 0, 9)) == std::vector<std::vector<size_t>>{{0, 1, 2, 3, 4, 5}});
  // tokens 20: longest first (ties in order), rows x longest <= 20
  p = plan_micro_batches(len, 0, 20, 9);
  CHECK(idx(p) == std::vector<std::vector<size_t>>{{1, 3}, {5, 0}, {2, 4}});
  CHECK(lengths(p) == std::vector<int64_t>{9, 7, 3});
  // micro caps the rows too; a row over the budget gets its own micro-batch
  CHECK(idx(plan_micro_batches(len, 1, 20, 9)) == std::vector<std::vector<size_t>>{{1}, {3}, {5}, {0}, {2}, {4}});
  CHECK(idx(plan_micro_batches(len, 0, 4, 9)) == std::vector<std::vector<size_t>>{{1}, {3}, {5}, {0}, {2}, {4}});
  CHECK(idx(plan_micro_batches(len, 0, 6, 9)) == std::vector<std::vector<size_t>>{{1}, {3}, {5}, {0}, {2, 4}});
  CHECK(plan_micro_batches({}, 0, 100, 1).empty());
  // invariants on a larger case: every sequence once, within budget, padded to its longest
  std::vector<int64_t> many;
  for (int i = 0; i < 97; ++i) many.push_back(1 + (i * 37) % 61);
  for (int64_t budget : {64, 150, 1000}) {
    std::vector<int> seen(many.size(), 0);
    for (const MicroPlan& m : plan_micro_batches(many, 8, budget, 61)) {
      int64_t longest = 0;
      for (size_t i : m.idx) {
        ++seen[i];
        longest = std::max(longest, many[i]);
      }
      CHECK(m.T == longest);
      CHECK(m.idx.size() <= 8);
      CHECK((m.idx.size() == 1 || int64_t(m.idx.size()) * m.T <= budget));
    }
    CHECK(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));
  }
}

TEST_CASE("balance plans: longest processing time first per mini-batch") {
  using grpo_detail::balance_plan;
  using grpo_detail::dp_imbalance;
  // costs 5 4 2 1 1 1 go to the least loaded rank (ties: the lowest): 0 | 1 | 1 | 0 | 0 | 1
  const std::vector<double> cost = {5, 1, 1, 1, 4, 2};
  CHECK(balance_plan(cost, 2, 1) == std::vector<int>{0, 0, 0, 1, 1, 1});
  CHECK(dp_imbalance(cost, {0, 0, 0, 1, 1, 1}, 2, 1) == 1.0);
  CHECK(dp_imbalance(cost, {0, 0, 0, 0, 0, 0}, 2, 1) == 2.0);
  CHECK(dp_imbalance(cost, {0, 0, 0, 0, 1, 1}, 2, 1) == 8.0 / 7.0);
  // equal costs: round robin, so counts differ by at most one
  CHECK(balance_plan({1, 1, 1, 1, 1}, 2, 1) == std::vector<int>{0, 1, 0, 1, 0});
  CHECK(balance_plan({3, 3, 3}, 4, 1) == std::vector<int>{0, 1, 2});
  CHECK(balance_plan({3}, 1, 1) == std::vector<int>{0});
  CHECK(balance_plan({}, 3, 2).empty());
  // each mini-batch (prompt_shard of the indices) on its own: [0, 3) and [3, 6)
  CHECK(balance_plan(cost, 2, 2) == std::vector<int>{0, 1, 1, 1, 0, 1});
  // per mini-batch: (5 vs 2) + (4 vs 3) over (3.5 + 3.5)
  CHECK(dp_imbalance(cost, {0, 1, 1, 1, 0, 1}, 2, 2) == 9.0 / 7.0);
  // Larger cases: every group gets a rank, and LPT's bound holds per mini-batch (the
  // busiest rank carries at most the mean plus the largest group).
  for (int ranks : {2, 3, 8})
    for (int64_t mb : {1, 3}) {
      std::vector<double> c;
      for (int i = 0; i < 61; ++i) c.push_back(double(1 + (i * 53) % 97));
      const std::vector<int> owner = balance_plan(c, ranks, mb);
      REQUIRE(owner.size() == c.size());
      for (int64_t m = 0; m < mb; ++m) {
        const PromptShard range = prompt_shard(int64_t(c.size()), int(m), int(mb));
        std::vector<double> load(size_t(ranks), 0.0);
        double biggest = 0, total = 0;
        for (int64_t i = range.begin; i < range.begin + range.count; ++i) {
          REQUIRE((owner[size_t(i)] >= 0 && owner[size_t(i)] < ranks));
          load[size_t(owner[size_t(i)])] += c[size_t(i)];
          biggest = std::max(biggest, c[size_t(i)]);
          total += c[size_t(i)];
        }
        INFO("ranks " << ranks << " mini-batches " << mb << " part " << m);
        CHECK(*std::max_element(load.begin(), load.end()) <= total / ranks + biggest);
      }
      // better than the contiguous shares (prompt_shard) on this skewed case
      std::vector<int> contiguous(c.size());
      for (int r = 0; r < ranks; ++r) {
        const PromptShard sh = prompt_shard(int64_t(c.size()), r, ranks);
        for (int64_t i = sh.begin; i < sh.begin + sh.count; ++i) contiguous[size_t(i)] = r;
      }
      if (mb == 1) CHECK(dp_imbalance(c, owner, ranks, 1) < dp_imbalance(c, contiguous, ranks, 1));
    }
}

TEST_CASE("rollout hand-over: a trainer's share of the groups and the step figures survive encoding") {
  using grpo_detail::Group;
  using grpo_detail::StepRollout;
  StepRollout r;
  r.sums = {1.5, -2.0, 3.25};
  r.len_max = 17;
  r.kept_global = 5;
  r.rounds = 2;
  r.rollout_s = 0.5;
  r.reward_s = 0.25;
  r.idle_s = 0.125;
  r.cursor.epoch = 3;
  r.cursor.position = 41;
  for (int64_t gi : {4, 1, 2}) {  // a worker's groups (any order)
    Group g;
    g.global_index = gi;
    g.prompt = {int32_t(gi), 7, 8};
    for (int64_t j = 0; j < 2; ++j) {
      Completion c;
      c.prompt_index = gi;
      c.sample_index = j;
      c.sequence_id = uint64_t(100 * gi + j);
      c.ids.assign(size_t(gi + j), int32_t(j + 1));  // (group 1's first completion is 1 token)
      c.logprobs.assign(c.ids.size(), -0.5f * float(j + 1));
      c.finish = j == 0 ? FinishReason::kStop : FinishReason::kLength;
      c.text = "not sent";
      g.completions.push_back(c);
      g.advantage.push_back(0.75 * double(j) - 0.25);
      g.in_loss.push_back(uint8_t(j));
    }
    r.groups.push_back(g);
  }
  // Trainer share [1, 3): groups 1 and 2 only, in the worker's order.
  const StepRollout d = grpo_detail::decode_step_rollout(grpo_detail::encode_step_rollout(r, 1, 2));
  CHECK(d.sums == r.sums);
  CHECK(d.len_max == 17);
  CHECK(d.kept_global == 5);
  CHECK(d.rounds == 2);
  CHECK(d.rollout_s == 0.5);
  CHECK(d.reward_s == 0.25);
  CHECK(d.idle_s == 0.125);
  CHECK(d.cursor.epoch == 3);
  CHECK(d.cursor.position == 41);
  REQUIRE(d.groups.size() == 2);
  for (size_t k = 0; k < 2; ++k) {
    const Group &a = d.groups[k], &b = r.groups[k + 1];
    CHECK(a.global_index == b.global_index);
    CHECK(a.prompt == b.prompt);
    CHECK(a.advantage == b.advantage);
    CHECK(a.in_loss == b.in_loss);
    REQUIRE(a.completions.size() == 2);
    for (size_t j = 0; j < 2; ++j) {
      const Completion &x = a.completions[j], &y = b.completions[j];
      CHECK(x.prompt_index == y.prompt_index);
      CHECK(x.sample_index == y.sample_index);
      CHECK(x.sequence_id == y.sequence_id);
      CHECK(x.ids == y.ids);
      CHECK(x.logprobs == y.logprobs);
      CHECK(x.finish == y.finish);
      CHECK(x.text.empty());  // the texts stay with the worker
    }
  }
  // An empty share still carries the step figures.
  const StepRollout none = grpo_detail::decode_step_rollout(grpo_detail::encode_step_rollout(r, 5, 0));
  CHECK(none.groups.empty());
  CHECK(none.kept_global == 5);
}

TEST_CASE("zeroth train: micro-batches packed by tokens train on the same batch with less padding") {
  const std::string dir = temp_dir("packed");
  const std::string cfg = write_plain_config(dir);
  // Stop strings that a random model writes now and then: completions of many lengths.
  const std::string stops = "rollout.stop=[\"a\", \"e\", \"o\", \"1\", \"2\", \"3\", \"x\", \"z\"]";
  const auto fixed = first_step(dir, cfg, "fixed", {stops});
  const auto packed = first_step(dir, cfg, "packed", {stops, "rl.micro_batch=0", "rl.micro_batch_tokens=60"});
  CHECK(fixed["response_len_mean"].get<double>() < 20.0);  // the lengths vary
  for (const char* k : {"reward_mean", "trained_tokens", "generated_tokens", "adv_abs_mean"})
    CHECK(packed[k] == fixed[k]);
  for (const char* k : {"grad_norm", "pg_loss", "entropy"}) {
    INFO(k);
    CHECK(packed[k].get<double>() == Approx(fixed[k].get<double>()).epsilon(1e-5));
  }
  CHECK(packed["grad_norm"].get<double>() > 0);
  CHECK(packed["train_pad_frac"].get<double>() < 0.5 * fixed["train_pad_frac"].get<double>());
  CHECK(packed["ratio_mean"].get<double>() == 1.0);
}

TEST_CASE("zeroth train: resume stays exact with the old-log-prob pass, a mask mode and packing") {
  const std::string dir = temp_dir("resume_features");
  const std::string cfg = write_plain_config(dir);
  const std::vector<std::string> sets = {
      "run.compute_dtype=bf16", "grpo.mini_batches=2", "grpo.rollout_is=token_mask", "grpo.rollout_is_cap=1.0005",
      "grpo.rollout_is_floor=0.9995", "rl.micro_batch=0", "rl.micro_batch_tokens=60", "train.save_every=2",
      "train.steps=4",
      "rollout.stop=[\"a\", \"e\", \"o\", \"1\", \"2\", \"3\", \"x\", \"z\"]"};
  auto args = [&](std::vector<std::string> a) {
    for (const auto& s : sets) {
      a.push_back("--set");
      a.push_back(s);
    }
    return a;
  };
  const std::string a = dir + "/a", b = dir + "/b";
  REQUIRE(cli::cmd_train(args({"--config", cfg, "--run-dir", a})) == 0);
  std::vector<std::string> first = args({"--config", cfg, "--run-dir", b});
  first.insert(first.end(), {"--set", "train.steps=2"});
  REQUIRE(cli::cmd_train(first) == 0);
  REQUIRE(cli::cmd_train({"--resume", b, "--set", "train.steps=4"}) == 0);
  const auto ma = read_jsonl(a + "/metrics.jsonl"), mb = read_jsonl(b + "/metrics.jsonl");
  REQUIRE(ma.size() == 4);
  REQUIRE(mb.size() == 4);
  for (size_t i = 0; i < ma.size(); ++i)
    for (auto it = ma[i].begin(); it != ma[i].end(); ++it) {
      INFO("step " << i + 1 << " key " << it.key());
      if (!timing_key(it.key())) CHECK(it.value().dump() == mb[i][it.key()].dump());
    }
  CHECK(ma[3]["rollout_is_rejected_frac"].get<double>() > 0);
  CHECK(ma[3]["train_pad_frac"].get<double>() < 0.5);
  CHECK(file_bytes(a + "/final/model.safetensors") == file_bytes(b + "/final/model.safetensors"));
}
