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
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

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

    std::string report_path;
    if (world->rank() != 0) {
      report_path = "/tmp/zeroth_train_test_rank" + std::to_string(world->rank()) + "_" +
                    std::to_string(getpid()) + ".txt";
      args.push_back(const_cast<char*>("--out"));
      args.push_back(const_cast<char*>(report_path.c_str()));
      args.push_back(const_cast<char*>("--use-colour"));
      args.push_back(const_cast<char*>("no"));
    }
    Catch::Session session;
    const int failed = session.run(int(args.size()), args.data());

    int64_t total = failed;  // failures anywhere fail everywhere
    world->all_reduce_host(&total, 1, ReduceOp::Sum);
    if (!report_path.empty()) {
      if (failed) {
        std::ifstream f(report_path);
        std::stringstream ss;
        ss << f.rdbuf();
        std::fprintf(stderr, "---- rank %d: %d failed assertions ----\n%s\n", world->rank(), failed,
                     ss.str().c_str());
      }
      std::remove(report_path.c_str());
    }
    if (world->rank() == 0 && total != failed)
      std::printf("train tests: %lld failed assertions on other ranks (reports on stderr)\n",
                  (long long)(total - failed));
    exit_code = total ? 1 : 0;
    world->barrier();
    train_test::g_world = nullptr;
  }
  return exit_code;
}
