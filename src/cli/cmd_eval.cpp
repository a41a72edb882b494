// `zeroth eval`: held-out accuracy of a model directory on the eval prompts of a train
// config (greedy pass@1, and pass@k when eval.pass_k > 0), through evaluate_model
// (zeroth/grpo_trainer.h). Data parallel under mpirun.
// Must not: contain evaluation logic (src/train/grpo_trainer_util.cpp does).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/run_context.h"
#include "io/io_util.h"
#include "zeroth/backend.h"
#include "zeroth/backend_factory.h"
#include "zeroth/comm.h"
#include "zeroth/error.h"
#include "zeroth/grpo_trainer.h"
#include "zeroth/log.h"
#include "zeroth/model.h"
#include "zeroth/model_config.h"
#include "zeroth/model_params.h"
#include "zeroth/prompt.h"
#include "zeroth/tokenizer.h"
#include "zeroth/train.h"

namespace zeroth {
namespace cli {

namespace fs = std::filesystem;

static const char kEvalUsage[] =
    "usage: zeroth eval --model DIR --config CONFIG.yaml [--set section.key=value ...] [--out F.jsonl]\n"
    "       zeroth eval --run RUN_DIR [--config CONFIG.yaml] [--set ...] [--out F.jsonl]\n"
    "\n"
    "Held-out evaluation of an HF model directory (with its tokenizer) on the eval set of\n"
    "a train config (prompts.eval_sources, or eval_count / eval_fraction held out of\n"
    "prompts.sources): greedy pass@1 (eval.greedy) and sampled pass@k (eval.pass_k at\n"
    "eval.temperature, with maj@k: majority voting over the k answers of each math\n"
    "prompt), scored with the config's rewards. Prints a table (with a row per source when\n"
    "the eval set has several), then one JSON line with eval_accuracy, eval_format_rate and\n"
    "(k > 0) eval_pass_at_k, eval_maj_at_k, eval_pass_at_K for each K of eval.pass_at (the\n"
    "unbiased pass@K estimate from the k samples), and eval_accuracy/NAME ... per source.\n"
    "\n"
    "  --model DIR    HF model directory (config.json, safetensors, tokenizer.json)\n"
    "  --run D        every complete checkpoints/step_N of run directory D in step order, after\n"
    "                 the weights it started from as step 0 (D/cold_start/final, or model.init\n"
    "                 when it is a model directory): the learning curve after the fact, e.g. on\n"
    "                 more prompts or samples than the run's evals; the config defaults to\n"
    "                 D/config.yaml\n"
    "  --config C     train config (rollout, prompts, rewards, eval sections are used)\n"
    "  --set k=v      override one key (repeatable), e.g. --set eval.pass_k=16 --set 'eval.pass_at=[1,4,8]'\n"
    "  --dump OUT     also write every generation as a JSON line (mode greedy|sampled, prompt,\n"
    "                 completion, tokens, reward, components, verdict, correct, format_ok); --model only\n"
    "  --out F        also write each model's results as a JSON line: its metrics, \"model\" and\n"
    "                 (with --run) \"step\"\n";

// The table of one model's results (rank 0).
static void print_result(const std::string& model_dir, const EvalResult& r, const TrainConfig& config) {
  std::printf("model          %s\n", model_dir.c_str());
  std::printf("eval prompts   %lld\n", (long long)r.prompts);
  if (r.greedy) {
    std::printf("accuracy       %.4f   (greedy pass@1)\n", r.accuracy);
    std::printf("format rate    %.4f\n", r.format_rate);
    std::printf("response len   %.1f tokens\n", r.response_len_mean);
  }
  if (r.k > 0) {
    std::printf("pass@%-9lld %.4f   (temperature %g)\n", (long long)r.k, r.pass_at_k, config.eval.temperature);
    std::printf("sampled acc    %.4f   (mean over the %lld samples of a prompt)\n", r.sampled_accuracy,
                (long long)r.k);
    if (r.maj_prompts > 0)
      std::printf("maj@%-10lld %.4f   (majority answer, %lld math prompts)\n", (long long)r.k, r.maj_at_k,
                  (long long)r.maj_prompts);
    for (size_t q = 0; q < r.pass_at_ks.size(); ++q)
      std::printf("pass@%-9lld %.4f   (unbiased estimate from the %lld samples)\n", (long long)r.pass_at_ks[q],
                  r.pass_at[q], (long long)r.k);
  }
  if (!r.sources.empty()) {  // one row per source
    std::string est;  // pass_at estimate columns
    for (int64_t k : r.pass_at_ks) est += strformat("  %8s", strformat("pass@%lld", (long long)k).c_str());
    std::printf("\nby source      prompts%s%s%s\n", r.greedy ? "   accuracy   format" : "",
                r.k > 0 ? strformat("   pass@%-4lld  sampled  maj@%-4lld", (long long)r.k, (long long)r.k).c_str()
                        : "",
                est.c_str());
    for (const EvalSourceResult& s : r.sources) {
      std::printf("%-14s %7lld", s.name.c_str(), (long long)s.prompts);
      if (r.greedy) std::printf("   %8.4f   %6.4f", s.accuracy, s.format_rate);
      if (r.k > 0) {
        std::printf("   %8.4f  %7.4f", s.pass_at_k, s.sampled_accuracy);
        if (s.maj_prompts > 0) std::printf("  %8.4f", s.maj_at_k);
        else std::printf("  %8s", "-");
        for (double e : s.pass_at) std::printf("  %8.4f", e);
      }
      std::printf("\n");
    }
  }
}

int cmd_eval(const std::vector<std::string>& argv) {
  Args args("eval", argv, {"model", "run", "config", "set", "dump", "out"}, {}, {"set"});
  if (args.help()) {
    std::printf("%s", kEvalUsage);
    return 0;
  }
  if (!args.positional().empty())
    throw UsageError(strformat("unexpected argument '%s' (see 'zeroth eval --help')", args.positional()[0].c_str()));
  if (args.has("model") == args.has("run"))
    throw UsageError("zeroth eval: give one of --model DIR or --run RUN_DIR (see 'zeroth eval --help')");
  // The models: --model, or every complete checkpoint of --run (GRPO's, else pretrain/sft's).
  std::vector<std::pair<int64_t, std::string>> models;  // (step, dir); step -1 for --model
  std::string config_path = args.get("config");
  if (args.has("model")) {
    models.emplace_back(-1, args.get("model"));
  } else {
    const std::string run = args.get("run");
    models = complete_checkpoints(run, "grpo_state.json");
    if (models.empty()) models = complete_checkpoints(run, "trainer_state.json");
    if (models.empty())
      throw UsageError(strformat("--run %s: expected a run directory with complete checkpoints/step_N, found none",
                                 run.c_str()));
    if (config_path.empty()) config_path = run + "/config.yaml";
  }
  if (config_path.empty()) throw UsageError("zeroth eval: --config C is required with --model");
  const TrainConfig config = load_train_config(config_path, args.all("set"));
  if (args.has("run")) {
    // Step 0: the weights the run started from, when they are on disk (its cold start's
    // final model, else model.init when it is a model directory, not a bare config.json).
    const std::string run = args.get("run"), cold = run + "/cold_start/final";
    const std::string& init = config.model.init;
    if (fs::exists(cold + "/config.json"))
      models.insert(models.begin(), {0, cold});
    else if (!init.empty() && fs::is_directory(init) && fs::exists(init + "/config.json"))
      models.insert(models.begin(), {0, init});
  }
  const std::string dump_path = args.get("dump"), out_path = args.get("out");
  if (!dump_path.empty() && models.size() != 1)
    throw UsageError("--dump: writes one model's generations; use it with --model");
  if (!dump_path.empty()) io::check_output_file(dump_path, "dump");
  if (!out_path.empty()) io::check_output_file(out_path, "out");
  if (!config.eval.greedy && config.eval.pass_k == 0)
    throw ConfigError("key 'eval.greedy': false with eval.pass_k 0 measures nothing; set eval.greedy=true or "
                      "eval.pass_k >= 1");

  RunContext ctx = start_run(config.run, false);
  Backend* const backend = ctx.backend.get();
  Communicator* const world = ctx.world.get();
  // (a run's checkpoints hold its tokenizer; a base model directory may not)
  const ModelConfig mc = read_model_config(models.back().second);
  std::unique_ptr<Tokenizer> tok = load_tokenizer(models.back().second);
  const RolloutConfig& rc = config.rollout;
  const PromptTemplate tmpl(rc.prompt_template, "key 'rollout.prompt_template'");
  const PromptData data = load_prompt_data(config.prompts, tok.get(), &tmpl, rc.add_special_tokens,
                                           std::min(rc.max_len, mc.max_position_embeddings));
  if (data.eval.size() == 0)
    throw ConfigError("key 'prompts.eval_sources': expected an eval set (eval_sources, eval_count or "
                      "eval_fraction), found none");
  if (config.eval.max_prompts > 0 && data.eval.size() > config.eval.max_prompts)
    warn_unevaluated_sources(data.eval, config.eval.max_prompts, "eval.max_prompts");
  Model model(mc, *backend, compute_dtype_for(*backend, config.run.compute_dtype, "key 'run.compute_dtype'"));
  model.release_grads();  // inference only
  std::string lines;  // --out: one JSON line per model
  for (const auto& [step, model_dir] : models) {
    load_hf_weights(model_dir, mc, model.params());  // (checks every tensor's name and shape)
    std::string dump;
    const EvalResult r = evaluate_model(model, *tok, config, data.eval, *world, dump_path.empty() ? nullptr : &dump);
    if (world->rank() != 0) continue;
    if (!dump_path.empty()) io::write_file_atomic(dump_path, [&](std::ostream& f) { f << dump; });
    if (models.size() > 1) std::printf("%s", step == models.front().first ? "" : "\n");
    print_result(model_dir, r, config);
    nlohmann::ordered_json j;
    if (step >= 0) j["step"] = step;
    for (const auto& kv : r.metrics()) j[kv.first] = kv.second;
    std::printf("%s\n", j.dump().c_str());
    j["model"] = model_dir;
    lines += j.dump() + "\n";
  }
  if (world->rank() == 0 && !out_path.empty())
    io::write_file_atomic(out_path, [&](std::ostream& f) { f << lines; });
  return 0;
}

}  // namespace cli
}  // namespace zeroth
