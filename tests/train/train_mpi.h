// The MPI world of a tests/train test binary run under mpiexec (set by
// train_mpi_main.cpp). Owns nothing else; must not be used by single-process tests.
#pragma once

#include "zeroth/comm.h"

namespace zeroth {
namespace train_test {

Communicator& world();

}  // namespace train_test
}  // namespace zeroth
