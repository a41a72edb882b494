// Communicators: the one interface for collective and point-to-point communication.
//
// Owns: the Communicator interface and its three kinds, "local" (one rank, no MPI),
// "mpi" (host tensors over MPI) and "nccl" (CUDA tensors over NCCL, bootstrapped
// from an MPI communicator); MpiRuntime (MPI init/finalize) and the factories.
// Must not: keep hidden global communicators. Every communicator is made by a
// factory and passed down explicitly (STYLE.md, practice 6); process groups (data,
// expert, rollout) are built with split().
//
// Semantics shared by every kind:
//  * Collectives are called by every rank of the communicator in the same order.
//  * Tensors live on device() and are contiguous. dtypes: F32, BF16, F16, I32, I64.
//  * ReduceOp::Avg is for float dtypes only (sum, then divide by size()).
//  * Argument mismatches (device, dtype, sizes, counts) are caller bugs: ZT_ASSERT.
//  * "mpi" and "local" are synchronous: the data are in place when a call returns.
//    "nccl" enqueues on the CUDA backend's stream, in order with that backend's ops
//    (backend.h); results are visible to later ops on the stream, and the host must
//    synchronize the backend before reading them (barrier() also waits).
//
// BF16/F16 reductions over MPI are computed by converting to f32, reducing in f32
// and rounding back once (round to nearest even). This costs a temporary f32 buffer
// but rounds once instead of at every step of MPI's reduction tree. NCCL reduces
// BF16/F16 natively (its own per-step rounding).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "zeroth/error.h"
#include "zeroth/tensor.h"

namespace zeroth {

class Backend;

enum class ReduceOp { Sum = 0, Avg = 1, Max = 2 };
const char* reduce_op_name(ReduceOp op);  // "sum", "avg", "max"

// split() color for a rank that joins no sub-group; split() returns nullptr there.
constexpr int kSplitNoColor = -1;

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual const char* kind() const = 0;  // "local", "mpi" or "nccl"
  virtual Device device() const = 0;     // where this communicator's tensors live

  // x = op over ranks of x, in place. x: (any shape), same numel and dtype on every rank.
  virtual void all_reduce(Tensor& x, ReduceOp op) = 0;

  // out = chunk rank() of (op over ranks of in).
  //   in: (size() * n) elements, chunk r = elements [r*n, (r+1)*n); out: (n) elements.
  virtual void reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op) = 0;

  // out = concatenation of every rank's in, rank-major.
  //   in: (n) elements; out: (size() * n) elements.
  virtual void all_gather(const Tensor& in, Tensor& out) = 0;

  // Each rank sends send_counts[p] elements to peer p and receives recv_counts[p]
  // from peer p. Chunks are contiguous and in rank order in both in and out:
  //   in: (sum(send_counts)) elements, the chunk for peer p starts at
  //       send_counts[0] + ... + send_counts[p-1];
  //   out: (sum(recv_counts)) elements, laid out the same way by source rank.
  // Counts are in elements, size() entries each, and recv_counts[p] on this rank must
  // equal send_counts[rank()] on p (the caller exchanges counts first, e.g. with an
  // all_to_all_v of I64 counts). Zeros are allowed. This is MoE token dispatch.
  virtual void all_to_all_v(const Tensor& in, const std::vector<int64_t>& send_counts,
                            Tensor& out, const std::vector<int64_t>& recv_counts) = 0;

  // x = root's x on every rank. x: same numel and dtype everywhere.
  virtual void broadcast(Tensor& x, int root) = 0;

  // Returns when every rank has called barrier() and this rank's queued
  // communication (nccl: its backend stream) has finished.
  virtual void barrier() = 0;

  // Point-to-point. recv's x must have the numel and dtype of the matching send.
  // mpi and local: messages match by (peer, tag), in order. nccl has no tags: the tag
  // is ignored and messages between two ranks match in call order. A blocking send to
  // a peer that is itself blocked in a send can deadlock (large messages); order ring
  // exchanges (even ranks send first) or use sendrecv.
  virtual void send(const Tensor& x, int peer, int tag) = 0;
  virtual void recv(Tensor& x, int peer, int tag) = 0;
  // Sends `send_x` to `dst` and receives `recv_x` from `src` without deadlock.
  virtual void sendrecv(const Tensor& send_x, int dst, Tensor& recv_x, int src, int tag) = 0;

  // A new communicator of the same kind over the ranks that pass the same color,
  // ranked by (key, rank()). Collective over this communicator. A rank passing
  // kSplitNoColor joins no group and gets nullptr.
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;

  // Host-side reductions for metrics and counts (always over host memory, on any
  // kind; nccl uses the MPI communicator it was bootstrapped from). In place.
  virtual void all_reduce_host(double* data, size_t n, ReduceOp op) = 0;
  virtual void all_reduce_host(int64_t* data, size_t n, ReduceOp op) = 0;
};

// ---- local ----

// One rank. Collectives are copies or no-ops; send/recv to rank 0 (itself) queue
// a host copy of the message. With a backend, tensors live on its device and copies
// use it; without one (nullptr), tensors are host tensors.
std::unique_ptr<Communicator> make_local_communicator(Backend* backend = nullptr);

// ---- MPI ----

// Initialises MPI with MPI_THREAD_FUNNELED (only the main thread calls MPI) unless it
// is already initialised, and finalizes it on destruction if it initialised it.
// Communicators made from it must be destroyed first. One per process.
class MpiRuntime {
 public:
  MpiRuntime(int* argc, char*** argv);
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

  bool initialized_here() const { return initialized_here_; }
  // Ends every process of the job with `exit_code` (MPI_Abort on MPI_COMM_WORLD):
  // what a rank does after an error that its peers cannot see, instead of hanging.
  [[noreturn]] static void abort(int exit_code);

 private:
  bool initialized_here_ = false;
};

// MPI_COMM_WORLD (duplicated, so it is owned and freed by the communicator).
std::unique_ptr<Communicator> make_mpi_world(MpiRuntime& runtime);

// True when this process was started by an MPI launcher: mpirun/mpiexec (Open MPI:
// OMPI_COMM_WORLD_SIZE; MPICH/Hydra: PMI_SIZE; PMIx launchers such as srun:
// PMIX_RANK).
bool launched_by_mpi();

// The world communicator for a process. Under an MPI launcher: MPI (the runtime is
// created into *runtime, which must outlive the communicator). Otherwise a
// LocalCommunicator and MPI is never initialised, so `zeroth` runs standalone without
// mpirun and without MPI's singleton start-up. This is a deliberate choice: a
// process started without a launcher is a single-rank job.
std::unique_ptr<Communicator> make_world_communicator(int* argc, char*** argv,
                                                      std::unique_ptr<MpiRuntime>* runtime);

// This rank's index among the ranks of `comm` on the same node (MPI_Comm_split_type
// with MPI_COMM_TYPE_SHARED). Collective over comm. 0 for a local communicator.
int node_local_rank(Communicator& comm);

// ---- NCCL (CUDA builds) ----

// The GPU this rank should use: node_local_rank(mpi) modulo the visible device count.
// Collective over mpi. Throws RuntimeError when no GPU is usable or the build has
// no CUDA.
int select_local_gpu(Communicator& mpi);

// An NCCL communicator over the ranks of `mpi` (an "mpi" communicator, used to
// broadcast the NCCL unique id and kept for host reductions and barriers). Collective
// over mpi. Its tensors live on cuda_backend's device and its operations run on
// cuda_backend's stream; the backend must outlive the communicator. Throws
// RuntimeError in a build without CUDA.
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& mpi, Backend& cuda_backend);

// Library error strings for the check macros below.
std::string mpi_error_string(int code);
std::string nccl_error_string(int code);

}  // namespace zeroth

// Library checks (STYLE.md, practice 3). They expand to MPI_SUCCESS / ncclSuccess, so
// use them only where <mpi.h> / <nccl.h> are included.
#define ZT_MPI_CHECK(call) \
  ZT_CHECK_LIB("MPI", call, zt_status_ == MPI_SUCCESS, ::zeroth::mpi_error_string(zt_status_))
#define ZT_NCCL_CHECK(call)                                  \
  ZT_CHECK_LIB("NCCL", call, zt_status_ == ncclSuccess,       \
               ::zeroth::nccl_error_string(static_cast<int>(zt_status_)))
