// Tests of the NCCL communicator on device tensors (CUDA builds, GPU machines only;
// the main exits 77 = skipped without a GPU per rank).
//
// Owns: the TEST_CASEs for kind "nccl"; the checks are the same generic ones as for
// MPI (comm_checks.cpp), over tensors on the CUDA backend.
#include <catch2/catch.hpp>

#include <string>

#include "comm_checks.h"
#include "zeroth/backend.h"
#include "zeroth/comm.h"
#include "zeroth/cuda_backend.h"

using namespace zeroth;
using namespace zeroth::comm_test;

TEST_CASE("nccl communicator: every operation, every dtype, on device tensors") {
  Communicator& mpi = world();
  const int dev = select_local_gpu(mpi);
  std::unique_ptr<Backend> be = make_cuda_backend(dev);
  std::unique_ptr<Communicator> nccl = make_nccl_communicator(mpi, *be);
  CHECK(std::string(nccl->kind()) == "nccl");
  CHECK(nccl->rank() == mpi.rank());
  CHECK(nccl->size() == mpi.size());
  CHECK(nccl->device() == Device::cuda(dev));
  check_everything(*nccl, *be);
}

TEST_CASE("nccl communicator: results are ordered with the backend's ops on its stream") {
  Communicator& mpi = world();
  std::unique_ptr<Backend> be = make_cuda_backend(select_local_gpu(mpi));
  std::unique_ptr<Communicator> nccl = make_nccl_communicator(mpi, *be);
  const int np = nccl->size();
  const int64_t n = 1 << 16;
  std::vector<double> mine(static_cast<size_t>(n)), want(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    mine[size_t(i)] = contribution(ReduceOp::Sum, DType::F32, nccl->rank(), np, i);
    want[size_t(i)] = 0.5 * expected_reduction(ReduceOp::Sum, DType::F32, np, i);
  }
  Tensor x = make_tensor(*be, DType::F32, mine);
  nccl->all_reduce(x, ReduceOp::Sum);  // enqueued, not waited for
  be->scale(x, 0.5f);                  // must see the reduced values
  check_values(read_values(x), want, "all_reduce then scale on the same stream");
  nccl->barrier();
}
