// MpiRuntime, launcher detection and the world-communicator factories of comm.h.
//
// Owns: MPI's initialisation and finalization for the process, and the decision
// "MPI or local" for the world communicator. Must not: keep the world communicator
// in a global; callers hold it and pass it down.
#include <mpi.h>

#include <cstdio>
#include <cstdlib>

#include "comm/mpi_comm.h"
#include "zeroth/comm.h"
#include "zeroth/error.h"

namespace zeroth {

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
  int finalized = 0;
  ZT_MPI_CHECK(MPI_Finalized(&finalized));
  ZT_THROW_IF_NOT(!finalized, RuntimeError,
                  "MpiRuntime: MPI was already finalized in this process and cannot start again");
  int initialized = 0;
  ZT_MPI_CHECK(MPI_Initialized(&initialized));
  if (initialized) return;  // someone else owns MPI's lifetime
  int provided = MPI_THREAD_SINGLE;
  ZT_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
  initialized_here_ = true;
  if (provided < MPI_THREAD_FUNNELED) {
    MPI_Finalize();
    initialized_here_ = false;
    throw RuntimeError(strformat("MpiRuntime: MPI provides thread level %d, expected at least "
                                 "MPI_THREAD_FUNNELED (%d)",
                                 provided, int(MPI_THREAD_FUNNELED)));
  }
}

MpiRuntime::~MpiRuntime() {
  if (!initialized_here_) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();  // a destructor has no one to report failure to
}

void MpiRuntime::abort(int exit_code) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  std::fflush(stdout);
  std::fflush(stderr);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);
}

std::unique_ptr<Communicator> make_mpi_world(MpiRuntime& runtime) {
  (void)runtime;  // proof that MPI is initialised
  MPI_Comm c = MPI_COMM_NULL;
  ZT_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &c));
  return std::make_unique<MpiCommunicator>(c);
}

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
    if (std::getenv(v)) return true;
  }
  return false;
}

std::unique_ptr<Communicator> make_world_communicator(int* argc, char*** argv,
                                                      std::unique_ptr<MpiRuntime>* runtime) {
  ZT_ASSERT(runtime != nullptr, "make_world_communicator: runtime must not be null");
  if (!launched_by_mpi()) return make_local_communicator(nullptr);
  *runtime = std::make_unique<MpiRuntime>(argc, argv);
  return make_mpi_world(**runtime);
}

int node_local_rank(Communicator& comm) {
  if (std::string(comm.kind()) == "local") return 0;
  auto* mpi = dynamic_cast<MpiCommunicator*>(&comm);
  ZT_ASSERT(mpi != nullptr, "node_local_rank: expected a local or mpi communicator, found %s",
            comm.kind());
  MPI_Comm node = MPI_COMM_NULL;
  ZT_MPI_CHECK(MPI_Comm_split_type(mpi->handle(), MPI_COMM_TYPE_SHARED, mpi->rank(), MPI_INFO_NULL,
                                   &node));
  int r = 0;
  int rc = MPI_Comm_rank(node, &r);
  MPI_Comm_free(&node);
  ZT_MPI_CHECK(rc);
  return r;
}

}  // namespace zeroth
