// Tests of the local and MPI communicators (run under mpiexec with 1, 2 and 4 ranks).
//
// Owns: the TEST_CASEs for kinds "local" and "mpi" over host tensors; the checks
// themselves are in comm_checks.cpp. Every rank runs every test case in the same
// order (Catch's declaration order), as collectives require.
#include <catch2/catch.hpp>

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "comm_checks.h"
#include "zeroth/backend.h"
#include "zeroth/comm.h"

using namespace zeroth;
using namespace zeroth::comm_test;

namespace {

Backend& cpu() {
  static std::unique_ptr<Backend> be = make_cpu_backend(1);
  return *be;
}

}  // namespace

TEST_CASE("local communicator: one rank, every operation") {
  std::unique_ptr<Communicator> c = make_local_communicator(nullptr);
  CHECK(std::string(c->kind()) == "local");
  CHECK(c->rank() == 0);
  CHECK(c->size() == 1);
  CHECK(c->device() == Device::cpu());
  check_everything(*c, cpu());
}

TEST_CASE("local communicator with a backend lives on its device") {
  std::unique_ptr<Communicator> c = make_local_communicator(&cpu());
  CHECK(c->device() == cpu().device());
  check_all_to_all_v(*c, cpu(), DType::BF16);
  check_sendrecv(*c, cpu(), DType::F32);
}

TEST_CASE("local communicator: send/recv to itself match by tag") {
  std::unique_ptr<Communicator> c = make_local_communicator(nullptr);
  Tensor a = make_tensor(cpu(), DType::F32, {1, 2, 3});
  Tensor b = make_tensor(cpu(), DType::F32, {4, 5});
  Tensor a2 = make_tensor(cpu(), DType::F32, {0, 0, 0});
  Tensor b2 = make_tensor(cpu(), DType::F32, {0, 0});
  c->send(a, 0, 1);
  c->send(b, 0, 2);
  c->recv(b2, 0, 2);  // received in the other order: tags select the message
  c->recv(a2, 0, 1);
  check_values(read_values(a2), {1, 2, 3}, "tag 1");
  check_values(read_values(b2), {4, 5}, "tag 2");
}

TEST_CASE("make_world_communicator follows the launcher environment") {
  // Under mpiexec (how this binary runs) the launcher's variables are set.
  CHECK(launched_by_mpi() == (std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE") ||
                              std::getenv("PMIX_RANK")));
  CHECK(std::string(world().kind()) == "mpi");
  CHECK(node_local_rank(world()) == world().rank());  // every rank is on this one machine
  std::unique_ptr<Communicator> local = make_local_communicator(nullptr);
  CHECK(node_local_rank(*local) == 0);
}

TEST_CASE("make_world_communicator: mpi under a launcher, local without one") {
  // Under mpiexec: the MPI world (MPI is already up, so this runtime does not own it).
  std::unique_ptr<MpiRuntime> rt;
  int argc = 0;
  char** argv = nullptr;
  std::unique_ptr<Communicator> w = make_world_communicator(&argc, &argv, &rt);
  CHECK(std::string(w->kind()) == "mpi");
  CHECK(w->size() == world().size());
  CHECK(w->rank() == world().rank());
  REQUIRE(rt != nullptr);
  CHECK_FALSE(rt->initialized_here());
  check_all_gather(*w, cpu(), DType::I32, 5);
  w.reset();
  rt.reset();  // does not finalize MPI: the test main's runtime owns it

  // With the launcher's variables removed, the process counts as a single-rank job.
  const char* names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"};
  std::vector<std::pair<std::string, std::string>> saved;
  for (const char* n : names)
    if (const char* v = std::getenv(n)) saved.emplace_back(n, v);
  for (const char* n : names) unsetenv(n);
  CHECK_FALSE(launched_by_mpi());
  std::unique_ptr<Communicator> l = make_world_communicator(&argc, &argv, &rt);
  for (const auto& kv : saved) setenv(kv.first.c_str(), kv.second.c_str(), 1);
  CHECK(std::string(l->kind()) == "local");
  CHECK(rt == nullptr);
  CHECK(launched_by_mpi());
}

TEST_CASE("mpi communicator: every operation, every dtype") {
  Communicator& w = world();
  CHECK(std::string(w.kind()) == "mpi");
  CHECK(w.device() == Device::cpu());
  check_everything(w, cpu());
}

TEST_CASE("mpi communicator: collectives inside nested split groups") {
  Communicator& w = world();
  std::unique_ptr<Communicator> half = w.split(w.rank() < (w.size() + 1) / 2 ? 0 : 1, w.rank());
  REQUIRE(half != nullptr);
  std::unique_ptr<Communicator> quarter = half->split(half->rank() % 2, half->rank());
  REQUIRE(quarter != nullptr);
  check_all_to_all_v(*quarter, cpu(), DType::F32);
  check_reduce_scatter(*half, cpu(), DType::BF16, ReduceOp::Sum, 64);
  check_send_recv_ring(*half, cpu(), DType::I64);
}

TEST_CASE("mpi communicator: counts beyond INT_MAX are rejected with a clear error") {
  Communicator& w = world();
  // Views at addresses that are never dereferenced: the count is rejected before MPI
  // or the overlap check touches memory. The two ranges are disjoint.
  const int64_t huge = int64_t(INT_MAX) + 1;
  Tensor in = Tensor::view_of(reinterpret_cast<void*>(uintptr_t(1) << 44), {huge}, DType::BF16);
  Tensor out =
      Tensor::view_of(reinterpret_cast<void*>(uintptr_t(1) << 45), {huge * w.size()}, DType::BF16);
  std::string msg;
  try {
    w.all_gather(in, out);
  } catch (const RuntimeError& e) {
    msg = e.what();
  }
  CHECK(msg.find("INT_MAX") != std::string::npos);
  CHECK(msg.find("all_gather") != std::string::npos);
}

#ifndef ZEROTH_HAVE_CUDA
TEST_CASE("without CUDA, the NCCL factories say so") {
  std::unique_ptr<Backend> be = make_cpu_backend(1);
  CHECK_THROWS_AS(make_nccl_communicator(world(), *be), RuntimeError);
  CHECK_THROWS_AS(select_local_gpu(world()), RuntimeError);
}
#endif
