// MpiCommunicator: the "mpi" kind of comm.h, over host tensors. Internal to the comm
// module (the NCCL communicator builds on it); other modules see only comm.h.
//
// Owns: one MPI communicator handle (freed on destruction unless MPI is already
// finalized) and the mapping of comm.h's collectives onto MPI calls.
// Must not: touch device memory; initialise MPI (MpiRuntime does).
#pragma once

#include <mpi.h>

#include <memory>

#include "zeroth/comm.h"

namespace zeroth {

class MpiCommunicator : public Communicator {
 public:
  // Takes ownership of `comm` and makes its errors return codes (MPI_ERRORS_RETURN),
  // so that ZT_MPI_CHECK can report them.
  explicit MpiCommunicator(MPI_Comm comm);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  MPI_Comm handle() const { return comm_; }
  // A duplicate over the same ranks (MPI_Comm_dup): a separate message space.
  std::unique_ptr<MpiCommunicator> dup() const;
  // split() with the concrete type (nullptr for kSplitNoColor).
  std::unique_ptr<MpiCommunicator> split_mpi(int color, int key) const;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* kind() const override { return "mpi"; }
  Device device() const override { return Device::cpu(); }

  void all_reduce(Tensor& x, ReduceOp op) override;
  void reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op) override;
  void all_gather(const Tensor& in, Tensor& out) override;
  void all_to_all_v(const Tensor& in, const std::vector<int64_t>& send_counts, Tensor& out,
                    const std::vector<int64_t>& recv_counts) override;
  void broadcast(Tensor& x, int root) override;
  void barrier() override;
  void send(const Tensor& x, int peer, int tag) override;
  void recv(Tensor& x, int peer, int tag) override;
  void sendrecv(const Tensor& send_x, int dst, Tensor& recv_x, int src, int tag) override;
  std::unique_ptr<Communicator> split(int color, int key) override;
  void all_reduce_host(double* data, size_t n, ReduceOp op) override;
  void all_reduce_host(int64_t* data, size_t n, ReduceOp op) override;

 private:
  void check_peer(int peer, const char* what) const;
  void check_tag(int tag, const char* what) const;

  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
};

}  // namespace zeroth
