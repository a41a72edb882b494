// RunContext: what `zeroth pretrain`, `sft`, `train` and `eval` set up before their work:
// the world communicator (MPI under mpirun, else local), rank-aware logging from run.*,
// the backend of run.device (one GPU per rank from the node-local rank) and the
// communicator its gradients reduce over (NCCL for GPUs across ranks); and running the
// work so that an error on every rank ends the job instead of leaving ranks waiting.
// Must not: know what the command does.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "zeroth/backend.h"
#include "zeroth/comm.h"
#include "zeroth/config.h"
#include "zeroth/error.h"
#include "zeroth/log.h"
#include "zeroth/run_stop.h"

namespace zeroth {
namespace cli {

struct RunContext {
  std::unique_ptr<MpiRuntime> mpi;          // null without mpirun
  std::unique_ptr<Communicator> world;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Communicator> device_comm;  // GPU: NCCL across ranks, local on one
  Communicator* comm = nullptr;               // what the work reduces over
};

// device_collectives: also build the device communicator (training commands); without
// it `comm` is the world communicator.
RunContext start_run(const RunConfig& run, bool device_collectives = true);

// Runs fn; on an Error with several MPI ranks, prints it with the rank and aborts the job
// with the error's exit code (every rank sees the same config and data, so they fail
// together; one rank failing alone would leave the others in a collective). Otherwise
// rethrows.
void run_collectively(RunContext& ctx, const char* command, const std::function<void()>& fn);

// A training command that stopped early (run_stop.h): logs where, why and how to go on
// (`zeroth COMMAND --resume RUN_DIR`) and returns kExitStopped.
int report_stop(const char* command, const RunStop& stop, const std::string& run_dir);

// The run-directory flags of `zeroth train|pretrain|sft`: --resume R continues R, so a
// --run-dir naming another directory, or --overwrite, is a UsageError.
void check_run_dir_flags(const Args& args, const std::string& resume_dir, const char* command);

// A resumed run takes its weights and tokenizer from its checkpoint, so the keys that chose
// them (model.init, model.tokenizer, model.seed, and `extra` such as cold_start.path for
// train) must keep the values RESUME_DIR/config.yaml recorded: a change would not take
// effect, and the config.yaml the resumed run rewrites would describe a model it never
// used. ConfigError naming the key, both values and the way out. `recorded` is null when
// RESUME_DIR/config.yaml is missing or unreadable (nothing to compare; a warning).
struct ResumedKey {
  std::string key, now, recorded;
};
template <class C, class Load>
std::optional<C> load_recorded_config(const std::string& resume_dir, Load load) {
  const std::string path = resume_dir + "/config.yaml";
  try {
    if (!std::filesystem::exists(path)) {
      ZT_LOG_WARN("%s is missing: the model keys of this resume are not checked against the run's", path.c_str());
      return std::nullopt;
    }
    return load(path, std::vector<std::string>{});
  } catch (const ConfigError& e) {
    ZT_LOG_WARN("the model keys of this resume are not checked against the run's: %s", e.what());
    return std::nullopt;
  }
}
void check_resumed_model_keys(const std::string& resume_dir, const Config& now, const Config* recorded,
                              const std::vector<ResumedKey>& extra, const char* command);

}  // namespace cli
}  // namespace zeroth
