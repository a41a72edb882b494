// RunContext (run_context.h): world communicator, logging, backend, device communicator,
// and the collective error handling of the training commands.

#include "cli/run_context.h"

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "zeroth/backend_factory.h"
#include "zeroth/error.h"
#include "zeroth/log.h"

namespace zeroth {
namespace cli {

RunContext start_run(const RunConfig& run, bool device_collectives) {
  RunContext ctx;
  ctx.world = make_world_communicator(nullptr, nullptr, &ctx.mpi);
  LogOptions lo;
  parse_log_level(run.log_level, &lo.level);
  lo.all_ranks = run.log_all_ranks;
  lo.rank = ctx.world->rank();
  lo.world_size = ctx.world->size();
  log_configure(lo);
  ctx.comm = ctx.world.get();
  if (run.device == "cpu") {
    ctx.backend = make_backend("cpu", run.threads);
    return ctx;
  }
  ctx.backend = make_backend(run.device, run.threads, node_local_rank(*ctx.world), "key 'run.device'");
  if (device_collectives) {
    ctx.device_comm = ctx.world->size() > 1 ? make_nccl_communicator(*ctx.world, *ctx.backend)
                                            : make_local_communicator(ctx.backend.get());
    ctx.comm = ctx.device_comm.get();
  }
  return ctx;
}

void run_collectively(RunContext& ctx, const char* command, const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    if (ctx.mpi && ctx.world->size() > 1) {
      std::fprintf(stderr, "zeroth %s: rank %d: error: %s\n", command, ctx.world->rank(), e.what());
      std::fflush(stderr);
      ctx.device_comm.reset();
      ctx.world.reset();
      MpiRuntime::abort(e.exit_code());
    }
    throw;
  }
}

int report_stop(const char* command, const RunStop& stop, const std::string& run_dir) {
  ZT_LOG_WARN("%s: stopped early%s after step %lld (%s), with a checkpoint; continue with: zeroth %s --resume %s",
              command, stop.where.empty() ? "" : (" in the " + stop.where).c_str(), (long long)stop.step,
              stop.reason.c_str(), command, run_dir.c_str());
  return kExitStopped;
}

void check_run_dir_flags(const Args& args, const std::string& resume_dir, const char* command) {
  if (resume_dir.empty()) return;
  if (args.has("overwrite"))
    throw UsageError(strformat("%s: --overwrite starts a new run; it cannot go with --resume %s", command,
                               resume_dir.c_str()));
  if (args.has("run-dir")) {
    std::error_code ec1, ec2;
    const auto a = std::filesystem::weakly_canonical(args.get("run-dir"), ec1);
    const auto b = std::filesystem::weakly_canonical(resume_dir, ec2);
    if (ec1 || ec2 || a != b)
      throw UsageError(strformat("%s: --run-dir %s and --resume %s: a resumed run continues in its own directory "
                                 "(drop --run-dir)", command, args.get("run-dir").c_str(), resume_dir.c_str()));
  }
}

void check_resumed_model_keys(const std::string& resume_dir, const Config& now, const Config* recorded,
                              const std::vector<ResumedKey>& extra, const char* command) {
  if (!recorded) return;
  auto seed = [](const std::optional<uint64_t>& s) {
    return s ? std::to_string(*s) : std::string("null");
  };
  std::vector<ResumedKey> keys = {{"model.init", now.model.init, recorded->model.init},
                                  {"model.tokenizer", now.model.tokenizer, recorded->model.tokenizer},
                                  {"model.seed", seed(now.model.seed), seed(recorded->model.seed)}};
  keys.insert(keys.end(), extra.begin(), extra.end());
  // Paths are the same when they name the same file ('./x' and '$PWD/x').
  auto same = [](const ResumedKey& k) {
    if (k.now == k.recorded) return true;
    if (k.key == "model.seed" || k.now.empty() || k.recorded.empty()) return false;
    std::error_code ec;
    const bool eq = std::filesystem::equivalent(k.now, k.recorded, ec);
    return !ec && eq;
  };
  for (const ResumedKey& k : keys)
    if (!same(k))
      throw ConfigError(strformat(
          "key '%s': %s --resume %s continues from the checkpoint's weights and tokenizer, so this key must "
          "stay '%s' (as %s/config.yaml records), found '%s'; drop the override, or start a new run "
          "(model.init=<a checkpoint> to start from its weights)",
          k.key.c_str(), command, resume_dir.c_str(), k.recorded.c_str(), resume_dir.c_str(), k.now.c_str()));
}

}  // namespace cli
}  // namespace zeroth
