// `zeroth train`: GRPO reinforcement learning (R1-Zero style) with rule-based rewards:
// config loading, logging, the world communicator and the backend (as `zeroth pretrain`
// does), then run_grpo_training (zeroth/grpo_trainer.h).
// Must not: contain training logic (src/train does).
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "cli/run_context.h"
#include "zeroth/backend.h"
#include "zeroth/backend_factory.h"
#include "zeroth/comm.h"
#include "zeroth/error.h"
#include "zeroth/grpo_trainer.h"
#include "zeroth/log.h"
#include "zeroth/train.h"

namespace zeroth {
namespace cli {

static const char kTrainUsage[] =
    "usage: zeroth train --config CONFIG.yaml [--set section.key=value ...] [--run-dir DIR] [--overwrite]\n"
    "       zeroth train --resume RUN_DIR [--config CONFIG.yaml] [--set ...]\n"
    "\n"
    "GRPO reinforcement learning: each step samples rollout.group_size completions for\n"
    "rl.prompts_per_step prompts, scores them (rewards:), computes group-relative\n"
    "advantages and updates the policy (grpo:, optim:). Run under `mpirun -np N` for N\n"
    "data-parallel ranks (each rolls out its share of the prompts); rl.rollout_ranks R\n"
    "makes the last R ranks rollout workers and the others trainers (rl.rollout_lag 1:\n"
    "the workers sample step s+1 while the trainers train step s).\n"
    "\n"
    "  --config C     YAML config (sections run, model, optim, train, rollout, grpo, rl,\n"
    "                 prompts, rewards, eval, cold_start; see docs/training.md)\n"
    "  --set k=v      override one key (repeatable), e.g. --set train.steps=200\n"
    "  --run-dir D    same as --set run.run_dir=D\n"
    "  --resume R     continue run directory R from its newest complete checkpoint\n"
    "                 (config: R/config.yaml unless --config is given; run.run_dir = R)\n"
    "  --overwrite    start over in a RUN_DIR that holds another run's checkpoints or\n"
    "                 final model (deleted first); without it that is an error\n"
    "\n"
    "Writes RUN_DIR/config.yaml, RUN_DIR/metrics.jsonl (one JSON object per step, eval\n"
    "rows with eval_accuracy), RUN_DIR/tb/ (TensorBoard), RUN_DIR/checkpoints/step_N/\n"
    "every train.save_every steps and at the end, RUN_DIR/final/ (HF model + tokenizer),\n"
    "and RUN_DIR/cold_start/ when cold_start.path is set.\n"
    "\n"
    "SIGUSR1 (what mpirun forwards), SIGTERM, Ctrl-C or train.time_limit_minutes stop the run\n"
    "after the step in progress with a checkpoint (exit status 75; a second SIGTERM/Ctrl-C\n"
    "stops at once); --resume RUN_DIR continues it exactly.\n";

int cmd_train(const std::vector<std::string>& argv) {
  Args args("train", argv, {"config", "set", "run-dir", "resume", "overwrite"}, {"overwrite"}, {"set"});
  if (args.help()) {
    std::printf("%s", kTrainUsage);
    return 0;
  }
  if (!args.positional().empty())
    throw UsageError(strformat("unexpected argument '%s' (see 'zeroth train --help')", args.positional()[0].c_str()));
  GrpoTrainOptions options;
  options.resume_dir = args.get("resume");
  std::string config_path = args.get("config");
  if (config_path.empty()) {
    if (options.resume_dir.empty()) throw UsageError("missing --config (see 'zeroth train --help')");
    config_path = options.resume_dir + "/config.yaml";
  }
  std::vector<std::string> overrides = args.all("set");
  check_run_dir_flags(args, options.resume_dir, "train");
  if (args.has("run-dir")) overrides.push_back("run.run_dir=" + args.get("run-dir"));
  if (!options.resume_dir.empty()) overrides.push_back("run.run_dir=" + options.resume_dir);
  const TrainConfig config = load_train_config(config_path, overrides);
  if (!options.resume_dir.empty()) {
    const std::optional<TrainConfig> recorded = load_recorded_config<TrainConfig>(options.resume_dir, load_train_config);
    check_resumed_model_keys(options.resume_dir, config, recorded ? &*recorded : nullptr,
                             {{"cold_start.path", config.cold_start.path,
                               recorded ? recorded->cold_start.path : config.cold_start.path}},
                             "train");
  }

  RunContext ctx = start_run(config.run);
  install_stop_handlers(ctx.world->rank() == 0);
  int rc = 0;
  run_collectively(ctx, "train", [&]() {
    if (options.resume_dir.empty()) {
      prepare_fresh_run_dir(config.run.run_dir, args.has("overwrite"), ctx.world->rank(), "train");
      ctx.world->barrier();
    }
    GrpoTrainResult r = run_grpo_training(config, *ctx.comm, *ctx.backend, options);
    if (r.stop.stopped) {
      rc = report_stop("train", r.stop, config.run.run_dir);
      return;
    }
    if (ctx.world->rank() == 0) std::printf("%s\n", r.final_dir.c_str());
  });
  return rc;
}

}  // namespace cli
}  // namespace zeroth
