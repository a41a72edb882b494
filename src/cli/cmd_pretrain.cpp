// `zeroth pretrain` (next-token loss over a packed text/JSONL corpus) and the flag
// handling it shares with `zeroth sft` (cmd_sft.cpp): config loading, logging, the
// world communicator and the backend, then run_lm_training (zeroth/train.h).
// Must not: contain training logic (src/train does).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "cli/run_context.h"
#include "zeroth/backend.h"
#include "zeroth/backend_factory.h"
#include "zeroth/comm.h"
#include "zeroth/config.h"
#include "zeroth/error.h"
#include "zeroth/log.h"
#include "zeroth/train.h"

namespace zeroth {
namespace cli {

static const char kLmUsage[] =
    "usage: zeroth %s --config CONFIG.yaml [--set section.key=value ...] [--run-dir DIR] [--overwrite]\n"
    "       zeroth %s --resume RUN_DIR [--config CONFIG.yaml] [--set ...]\n"
    "\n"
    "%s\n"
    "Run under `mpirun -np N` for N data-parallel ranks (train.batch_size must be a\n"
    "multiple of N).\n"
    "\n"
    "  --config C     YAML config (sections run, model, optim, train, data; see\n"
    "                 docs/config.md and configs/%s-tiny.yaml)\n"
    "  --set k=v      override one key (repeatable), e.g. --set train.steps=200\n"
    "  --run-dir D    same as --set run.run_dir=D\n"
    "  --resume R     continue run directory R from its newest checkpoints/step_N\n"
    "                 (config: R/config.yaml unless --config is given; run.run_dir = R)\n"
    "  --overwrite    start over in a RUN_DIR that holds another run's checkpoints or\n"
    "                 final model (deleted first); without it that is an error\n"
    "\n"
    "Writes RUN_DIR/config.yaml, RUN_DIR/metrics.jsonl (one JSON object per step),\n"
    "RUN_DIR/checkpoints/step_N/ (HF model + optimizer + data cursor) every\n"
    "train.save_every steps and at the end, and RUN_DIR/final/ (HF model + tokenizer).\n"
    "\n"
    "SIGUSR1 (what mpirun forwards), SIGTERM, Ctrl-C or train.time_limit_minutes stop the run\n"
    "after the step in progress with a checkpoint (exit status 75; a second SIGTERM/Ctrl-C\n"
    "stops at once); --resume RUN_DIR continues it exactly.\n";

// Shared by cmd_pretrain and cmd_sft.
int run_lm_command(LmStage stage, const std::vector<std::string>& argv) {
  const char* name = lm_stage_name(stage);
  Args args(name, argv, {"config", "set", "run-dir", "resume", "overwrite"}, {"overwrite"}, {"set"});
  if (args.help()) {
    const char* what = stage == LmStage::Pretrain
                           ? "Pretrains a model: next-token loss over a corpus packed into train.seq_len\n"
                             "sequences (documents separated by EOS)."
                           : "Supervised fine-tuning (the cold-start stage): prompt/response JSONL, loss\n"
                             "on response tokens (and EOS) only.";
    std::printf(kLmUsage, name, name, what, name);
    return 0;
  }
  if (!args.positional().empty())
    throw UsageError(strformat("unexpected argument '%s' (see 'zeroth %s --help')",
                               args.positional()[0].c_str(), name));
  LmTrainOptions options;
  options.resume_dir = args.get("resume");
  std::string config_path = args.get("config");
  if (config_path.empty()) {
    if (options.resume_dir.empty())
      throw UsageError(strformat("missing --config (see 'zeroth %s --help')", name));
    config_path = options.resume_dir + "/config.yaml";
  }
  std::vector<std::string> overrides = args.all("set");
  check_run_dir_flags(args, options.resume_dir, name);
  if (args.has("run-dir")) overrides.push_back("run.run_dir=" + args.get("run-dir"));
  if (!options.resume_dir.empty()) overrides.push_back("run.run_dir=" + options.resume_dir);
  const Config config = load_config(config_path, overrides);
  if (!options.resume_dir.empty()) {
    const std::optional<Config> recorded = load_recorded_config<Config>(options.resume_dir, load_config);
    check_resumed_model_keys(options.resume_dir, config, recorded ? &*recorded : nullptr, {}, name);
  }

  RunContext ctx = start_run(config.run);
  install_stop_handlers(ctx.world->rank() == 0);
  int rc = 0;
  run_collectively(ctx, name, [&]() {
    if (options.resume_dir.empty()) {
      prepare_fresh_run_dir(config.run.run_dir, args.has("overwrite"), ctx.world->rank(), name);
      ctx.world->barrier();
    }
    LmTrainResult r = run_lm_training(config, stage, *ctx.comm, *ctx.backend, options);
    if (r.stop.stopped) {
      rc = report_stop(name, r.stop, config.run.run_dir);
      return;
    }
    if (ctx.world->rank() == 0) std::printf("%s\n", r.final_dir.c_str());
  });
  return rc;
}

int cmd_pretrain(const std::vector<std::string>& args) { return run_lm_command(LmStage::Pretrain, args); }

}  // namespace cli
}  // namespace zeroth
