// Runs a Catch2 session on every rank of an MPI job and turns a failure on any rank
// into a failing exit code on every rank. Rank 0's report goes to stdout; the other
// ranks write theirs to a temporary file that is printed (prefixed with the rank) only
// when that rank failed. Shared by the mains of the multi-rank test binaries
// (tests/comm, tests/train); they own MPI start-up and their world communicator.
#pragma once

#include <functional>
#include <vector>

#include "zeroth/comm.h"

namespace zeroth {
namespace testing {

// `args` is the command line for Catch (argv[0] first); `run_catch` runs a Catch
// session on it and returns its failure count (the main defines the Catch runner).
// `label` names the suite in the summary line. Returns 0 when no rank failed, else 1.
using CatchRunner = std::function<int(int argc, char** argv)>;
int run_catch_on_all_ranks(Communicator& world, std::vector<char*> args, const char* label,
                           const CatchRunner& run_catch);

}  // namespace testing
}  // namespace zeroth
