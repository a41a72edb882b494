// mpi_catch_session.h: one Catch session per rank, failures summed over the world.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "mpi_catch_session.h"

namespace zeroth {
namespace testing {

int run_catch_on_all_ranks(Communicator& world, std::vector<char*> args, const char* label,
                           const CatchRunner& run_catch) {
  std::string report_path;
  if (world.rank() != 0) {
    report_path = std::string("/tmp/zeroth_") + label + "_rank" + std::to_string(world.rank()) +
                  "_" + std::to_string(getpid()) + ".txt";
    args.push_back(const_cast<char*>("--out"));
    args.push_back(const_cast<char*>(report_path.c_str()));
    args.push_back(const_cast<char*>("--use-colour"));
    args.push_back(const_cast<char*>("no"));
  }
  const int failed = run_catch(int(args.size()), args.data());  // failed assertions, <= 255

  int64_t total = failed;  // failures anywhere fail everywhere
  world.all_reduce_host(&total, 1, ReduceOp::Sum);
  if (!report_path.empty()) {
    if (failed) {
      std::ifstream f(report_path);
      std::stringstream ss;
      ss << f.rdbuf();
      std::fprintf(stderr, "---- rank %d: %d failed assertions ----\n%s\n", world.rank(), failed,
                   ss.str().c_str());
    }
    std::remove(report_path.c_str());
  }
  if (world.rank() == 0 && total != failed)
    std::printf("%s tests: %lld failed assertions on other ranks (reports on stderr)\n", label,
                (long long)(total - failed));
  world.barrier();
  return total ? 1 : 0;
}

}  // namespace testing
}  // namespace zeroth
