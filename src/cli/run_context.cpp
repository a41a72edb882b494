// RunContext (run_context.h): world communicator, logging, backend, device communicator,
// and the collective error handling of the training commands.
#include "cli/run_context.h"

#include <cstdio>
#include <string>

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

}  // namespace cli
}  // namespace zeroth
