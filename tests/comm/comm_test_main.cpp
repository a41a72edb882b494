// Catch2 main for the communicator tests, run under mpiexec.
//
// Owns: MPI start-up for the test process, the world communicator the tests use, and
// turning a failure on any rank into a failing exit code on every rank. Rank 0's
// Catch report goes to stdout; other ranks write theirs to a temporary file that is
// printed (prefixed with the rank) only when that rank failed.
//
// Flag, consumed before Catch sees the command line:
//   --require-gpu  exit 77 (CTest: skipped) with a printed reason unless a CUDA device
//                  is usable and there is one per rank (NCCL needs distinct GPUs).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "comm_checks.h"
#include "mpi_catch_session.h"
#include "zeroth/comm.h"
#include "zeroth/gpu_probe.h"

int main(int argc, char** argv) {
  using namespace zeroth;
  std::vector<char*> args;
  bool require_gpu = false;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--require-gpu") == 0) require_gpu = true;
    else args.push_back(argv[i]);
  }
  std::string why;
  if (require_gpu && !gpu_available(&why)) {
    // Before MPI starts: every rank leaves the same way, and mpiexec passes 77 on.
    std::printf("SKIPPED: no usable CUDA device (%s); GPU tests run only where a GPU is present\n",
                why.c_str());
    std::fflush(stdout);
    return 77;
  }

  MpiRuntime runtime(&argc, &argv);
  int exit_code = 0;
  {
    std::unique_ptr<Communicator> world = make_mpi_world(runtime);
    if (require_gpu && gpu_count() < world->size()) {
      if (world->rank() == 0)
        std::printf("SKIPPED: %d ranks need %d GPUs, found %d\n", world->size(), world->size(),
                    gpu_count());
      std::fflush(stdout);
      world->barrier();
      return 77;  // world, then runtime (MPI_Finalize), are destroyed on the way out
    }
    comm_test::set_world(world.get());

    exit_code = testing::run_catch_on_all_ranks(*world, args, "comm", [](int n, char** a) {
      Catch::Session session;
      return session.run(n, a);
    });
    comm_test::set_world(nullptr);
  }
  return exit_code;
}
