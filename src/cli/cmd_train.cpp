// `zeroth train`: GRPO reinforcement learning (R1-Zero style) with rule-based rewards:
// config loading, logging, the world communicator and the backend (as `zeroth pretrain`
// does), then run_grpo_training (zeroth/grpo_trainer.h).
// Must not: contain training logic (src/train does).
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "zeroth/backend.h"
#include "zeroth/backend_factory.h"
#include "zeroth/comm.h"
#include "zeroth/error.h"
#include "zeroth/grpo_trainer.h"
#include "zeroth/log.h"

namespace zeroth {
namespace cli {

static const char kTrainUsage[] =
    "usage: zeroth train --config CONFIG.yaml [--set section.key=value ...] [--run-dir DIR]\n"
    "       zeroth train --resume RUN_DIR [--config CONFIG.yaml] [--set ...]\n"
    "\n"
    "GRPO reinforcement learning: each step samples rollout.group_size completions for\n"
    "rl.prompts_per_step prompts, scores them (rewards:), computes group-relative\n"
    "advantages and updates the policy (grpo:, optim:). Run under `mpirun -np N` for N\n"
    "data-parallel ranks (each rolls out its share of the prompts).\n"
    "\n"
    "  --config C     YAML config (sections run, model, optim, train, rollout, grpo, rl,\n"
    "                 prompts, rewards, eval, cold_start; see docs/training.md)\n"
    "  --set k=v      override one key (repeatable), e.g. --set train.steps=200\n"
    "  --run-dir D    same as --set run.run_dir=D\n"
    "  --resume R     continue run directory R from its newest complete checkpoint\n"
    "                 (config: R/config.yaml unless --config is given; run.run_dir = R)\n"
    "\n"
    "Writes RUN_DIR/config.yaml, RUN_DIR/metrics.jsonl (one JSON object per step, eval\n"
    "rows with eval_accuracy), RUN_DIR/tb/ (TensorBoard), RUN_DIR/checkpoints/step_N/\n"
    "every train.save_every steps and at the end, RUN_DIR/final/ (HF model + tokenizer),\n"
    "and RUN_DIR/cold_start/ when cold_start.path is set.\n";

// The backend of run.device and the communicator its tensors reduce over (as
// run_lm_command in cmd_pretrain.cpp).
struct Placement {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Communicator> device_comm;
  Communicator* comm = nullptr;
};

static Placement place(const RunConfig& run, Communicator& world) {
  Placement p;
  p.comm = &world;
  if (run.device == "cpu") {
    p.backend = make_backend("cpu", run.threads);
  } else {
    p.backend = make_backend(run.device, run.threads, node_local_rank(world), "key 'run.device'");
    p.device_comm = world.size() > 1 ? make_nccl_communicator(world, *p.backend)
                                     : make_local_communicator(p.backend.get());
    p.comm = p.device_comm.get();
  }
  return p;
}

int cmd_train(const std::vector<std::string>& argv) {
  Args args("train", argv, {"config", "set", "run-dir", "resume"}, {}, {"set"});
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
  if (args.has("run-dir")) overrides.push_back("run.run_dir=" + args.get("run-dir"));
  if (!options.resume_dir.empty()) overrides.push_back("run.run_dir=" + options.resume_dir);
  const TrainConfig config = load_train_config(config_path, overrides);

  std::unique_ptr<MpiRuntime> mpi;
  std::unique_ptr<Communicator> world = make_world_communicator(nullptr, nullptr, &mpi);
  LogOptions lo;
  parse_log_level(config.run.log_level, &lo.level);
  lo.all_ranks = config.run.log_all_ranks;
  lo.rank = world->rank();
  lo.world_size = world->size();
  log_configure(lo);
  Placement p = place(config.run, *world);
  try {
    GrpoTrainResult r = run_grpo_training(config, *p.comm, *p.backend, options);
    if (world->rank() == 0) std::printf("%s\n", r.final_dir.c_str());
  } catch (const Error& e) {
    // Every rank sees the same config and data, so they fail together; a failure on one
    // rank alone would leave the others waiting in a collective.
    if (mpi && world->size() > 1) {
      std::fprintf(stderr, "zeroth train: rank %d: error: %s\n", world->rank(), e.what());
      std::fflush(stderr);
      world.reset();
      MpiRuntime::abort(e.exit_code());
    }
    throw;
  }
  return 0;
}

}  // namespace cli
}  // namespace zeroth
