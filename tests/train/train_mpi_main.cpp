// Catch2 main for the multi-rank training tests, run under mpiexec (the pattern of
// tests/comm/comm_test_main.cpp).
//
// Owns: MPI start-up, the world communicator (train_mpi.h), and turning a failure on
// any rank into a failing exit code on every rank. Rank 0's Catch report goes to
// stdout; other ranks write theirs to a temporary file that is printed (prefixed with
// the rank) only when that rank failed. Must not: hold test logic.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "mpi_catch_session.h"
#include "train_mpi.h"

namespace zeroth {
namespace train_test {

namespace {
Communicator* g_world = nullptr;
}

Communicator& world() {
  ZT_ASSERT(g_world != nullptr, "train_test::world() used outside train_mpi_main");
  return *g_world;
}

}  // namespace train_test
}  // namespace zeroth

int main(int argc, char** argv) {
  using namespace zeroth;
  std::vector<char*> args(argv, argv + argc);
  MpiRuntime runtime(&argc, &argv);
  int exit_code = 0;
  {
    std::unique_ptr<Communicator> world = make_mpi_world(runtime);
    train_test::g_world = world.get();

    exit_code = testing::run_catch_on_all_ranks(*world, args, "train", [](int n, char** a) {
      Catch::Session session;
      return session.run(n, a);
    });
    train_test::g_world = nullptr;
  }
  return exit_code;
}
