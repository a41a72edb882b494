// NcclCommunicator: the "nccl" kind of comm.h, over CUDA tensors (CUDA builds only).
//
// Owns: one ncclComm_t, the MPI communicator it was bootstrapped from (a duplicate,
// kept for host reductions, barriers and splitting), and the mapping of comm.h's
// operations onto NCCL calls on the CUDA backend's stream. Must not: synchronize the
// stream except in barrier(); allocate device memory.
//
// Bootstrap: rank 0 calls ncclGetUniqueId, MPI_Bcast sends it to every rank, each
// rank calls ncclCommInitRank on the backend's device. split() splits the MPI
// duplicate and calls ncclCommSplit with the same color and key, so both order
// ranks the same way. all_to_all_v is a group of ncclSend/ncclRecv. NCCL has no
// tags: send/recv ignore the tag and match in call order.
#include "zeroth/comm.h"

#include "zeroth/error.h"

#ifdef ZEROTH_HAVE_CUDA

#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>

#include "comm/comm_util.h"
#include "comm/mpi_comm.h"
#include "cuda/cuda_check.h"
#include "zeroth/backend.h"
#include "zeroth/cuda_backend.h"
#include "zeroth/gpu_probe.h"
#include "zeroth/log.h"

namespace zeroth {
namespace {

using namespace comm_detail;

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::F32: return ncclFloat32;
    case DType::BF16: return ncclBfloat16;
    case DType::F16: return ncclFloat16;
    case DType::I32: return ncclInt32;
    case DType::I64: return ncclInt64;
    case DType::F8E4M3: break;  // storage only
  }
  ZT_ASSERT(false, "nccl_type: unknown dtype %d", int(t));
  return ncclFloat32;
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return ncclSum;
    case ReduceOp::Avg: return ncclAvg;
    case ReduceOp::Max: return ncclMax;
  }
  ZT_ASSERT(false, "nccl_op: unknown op %d", int(op));
  return ncclSum;
}

char* byte_ptr(const Tensor& x, int64_t elem_offset) {
  return static_cast<char*>(x.data_ptr()) + size_t(elem_offset) * x.element_size();
}

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(std::unique_ptr<MpiCommunicator> mpi, ncclComm_t comm, Backend& be)
      : mpi_(std::move(mpi)), comm_(comm), be_(be),
        stream_(static_cast<cudaStream_t>(cuda_stream_of(be))) {}

  ~NcclCommunicator() override {
    ncclResult_t r = ncclCommDestroy(comm_);
    if (r != ncclSuccess) ZT_LOG_WARN("ncclCommDestroy failed: %s", ncclGetErrorString(r));
  }

  int rank() const override { return mpi_->rank(); }
  int size() const override { return mpi_->size(); }
  const char* kind() const override { return "nccl"; }
  Device device() const override { return be_.device(); }

  void all_reduce(Tensor& x, ReduceOp op) override {
    check_tensor(x, device(), "all_reduce: x");
    check_op(op, x.dtype(), "all_reduce");
    activate();
    ZT_NCCL_CHECK(ncclAllReduce(x.data_ptr(), x.data_ptr(), size_t(x.numel()), nccl_type(x.dtype()),
                                nccl_op(op), comm_, stream_));
  }

  void reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op) override {
    check_tensor(in, device(), "reduce_scatter: in");
    check_tensor(out, device(), "reduce_scatter: out");
    check_op(op, in.dtype(), "reduce_scatter");
    ZT_ASSERT(in.dtype() == out.dtype(), "reduce_scatter: dtypes differ: %s, %s", in.str().c_str(),
              out.str().c_str());
    ZT_ASSERT(in.numel() == out.numel() * size(),
              "reduce_scatter: in has %lld elements, expected %d ranks x %lld",
              (long long)in.numel(), size(), (long long)out.numel());
    check_no_overlap(in, out, "reduce_scatter");
    activate();
    ZT_NCCL_CHECK(ncclReduceScatter(in.data_ptr(), out.data_ptr(), size_t(out.numel()),
                                    nccl_type(in.dtype()), nccl_op(op), comm_, stream_));
  }

  void all_gather(const Tensor& in, Tensor& out) override {
    check_tensor(in, device(), "all_gather: in");
    check_tensor(out, device(), "all_gather: out");
    ZT_ASSERT(in.dtype() == out.dtype(), "all_gather: dtypes differ: %s, %s", in.str().c_str(),
              out.str().c_str());
    ZT_ASSERT(out.numel() == in.numel() * size(),
              "all_gather: out has %lld elements, expected %d ranks x %lld",
              (long long)out.numel(), size(), (long long)in.numel());
    check_no_overlap(in, out, "all_gather");
    activate();
    ZT_NCCL_CHECK(ncclAllGather(in.data_ptr(), out.data_ptr(), size_t(in.numel()),
                                nccl_type(in.dtype()), comm_, stream_));
  }

  void all_to_all_v(const Tensor& in, const std::vector<int64_t>& send_counts, Tensor& out,
                    const std::vector<int64_t>& recv_counts) override {
    check_tensor(in, device(), "all_to_all_v: in");
    check_tensor(out, device(), "all_to_all_v: out");
    ZT_ASSERT(in.dtype() == out.dtype(), "all_to_all_v: dtypes differ: %s, %s", in.str().c_str(),
              out.str().c_str());
    check_counts(send_counts, size(), in.numel(), "send_counts");
    check_counts(recv_counts, size(), out.numel(), "recv_counts");
    check_no_overlap(in, out, "all_to_all_v");
    std::vector<int64_t> send_off = chunk_offsets(send_counts), recv_off = chunk_offsets(recv_counts);
    const ncclDataType_t t = nccl_type(in.dtype());
    activate();
    ZT_NCCL_CHECK(ncclGroupStart());
    for (int p = 0; p < size(); ++p) {
      // A zero count on one side is a zero count on the other: both skip the peer.
      if (send_counts[p] > 0)
        ZT_NCCL_CHECK(ncclSend(byte_ptr(in, send_off[p]), size_t(send_counts[p]), t, p, comm_, stream_));
      if (recv_counts[p] > 0)
        ZT_NCCL_CHECK(ncclRecv(byte_ptr(out, recv_off[p]), size_t(recv_counts[p]), t, p, comm_, stream_));
    }
    ZT_NCCL_CHECK(ncclGroupEnd());
  }

  void broadcast(Tensor& x, int root) override {
    check_tensor(x, device(), "broadcast: x");
    check_peer(root, "broadcast: root");
    activate();
    ZT_NCCL_CHECK(ncclBroadcast(x.data_ptr(), x.data_ptr(), size_t(x.numel()), nccl_type(x.dtype()),
                                root, comm_, stream_));
  }

  void barrier() override {
    be_.synchronize();
    mpi_->barrier();
  }

  void send(const Tensor& x, int peer, int tag) override {
    (void)tag;
    check_tensor(x, device(), "send: x");
    check_peer(peer, "send: peer");
    activate();
    ZT_NCCL_CHECK(ncclSend(x.data_ptr(), size_t(x.numel()), nccl_type(x.dtype()), peer, comm_, stream_));
  }

  void recv(Tensor& x, int peer, int tag) override {
    (void)tag;
    check_tensor(x, device(), "recv: x");
    check_peer(peer, "recv: peer");
    activate();
    ZT_NCCL_CHECK(ncclRecv(x.data_ptr(), size_t(x.numel()), nccl_type(x.dtype()), peer, comm_, stream_));
  }

  void sendrecv(const Tensor& send_x, int dst, Tensor& recv_x, int src, int tag) override {
    (void)tag;
    check_tensor(send_x, device(), "sendrecv: send_x");
    check_tensor(recv_x, device(), "sendrecv: recv_x");
    check_peer(dst, "sendrecv: dst");
    check_peer(src, "sendrecv: src");
    check_no_overlap(send_x, recv_x, "sendrecv");
    activate();
    ZT_NCCL_CHECK(ncclGroupStart());
    ZT_NCCL_CHECK(ncclSend(send_x.data_ptr(), size_t(send_x.numel()), nccl_type(send_x.dtype()), dst,
                           comm_, stream_));
    ZT_NCCL_CHECK(ncclRecv(recv_x.data_ptr(), size_t(recv_x.numel()), nccl_type(recv_x.dtype()), src,
                           comm_, stream_));
    ZT_NCCL_CHECK(ncclGroupEnd());
  }

  std::unique_ptr<Communicator> split(int color, int key) override {
    ZT_ASSERT(color >= 0 || color == kSplitNoColor, "split: color %d is negative", color);
    std::unique_ptr<MpiCommunicator> sub_mpi = mpi_->split_mpi(color, key);
    activate();
    ncclComm_t sub = nullptr;
    ZT_NCCL_CHECK(ncclCommSplit(comm_, color == kSplitNoColor ? NCCL_SPLIT_NOCOLOR : color, key, &sub,
                                nullptr));
    if (color == kSplitNoColor) return nullptr;
    ZT_ASSERT(sub != nullptr && sub_mpi != nullptr, "split: color %d gave no communicator", color);
    return std::make_unique<NcclCommunicator>(std::move(sub_mpi), sub, be_);
  }

  void all_reduce_host(double* data, size_t n, ReduceOp op) override {
    mpi_->all_reduce_host(data, n, op);
  }
  void all_reduce_host(int64_t* data, size_t n, ReduceOp op) override {
    mpi_->all_reduce_host(data, n, op);
  }

 private:
  void check_peer(int peer, const char* what) const {
    ZT_ASSERT(peer >= 0 && peer < size(), "%s: rank %d is outside [0, %d)", what, peer, size());
  }
  // NCCL calls enqueue on the current device's context; make it the backend's.
  void activate() const { ZT_CUDA_CHECK(cudaSetDevice(be_.device().index)); }

  std::unique_ptr<MpiCommunicator> mpi_;  // same ranks as comm_, for host-side work
  ncclComm_t comm_;
  Backend& be_;  // the CUDA backend whose stream every operation uses
  cudaStream_t stream_;
};

}  // namespace

int select_local_gpu(Communicator& mpi) {
  int local = node_local_rank(mpi);
  std::string why;
  ZT_THROW_IF_NOT(gpu_available(&why), RuntimeError, "select_local_gpu: no usable CUDA device (%s)",
                  why.c_str());
  return local % gpu_count();
}

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& mpi, Backend& cuda_backend) {
  auto* m = dynamic_cast<MpiCommunicator*>(&mpi);
  ZT_ASSERT(m != nullptr, "make_nccl_communicator: expected an mpi communicator, found %s", mpi.kind());
  ZT_ASSERT(cuda_backend.device().type == DeviceType::CUDA,
            "make_nccl_communicator: expected a CUDA backend, found %s", cuda_backend.name().c_str());
  std::unique_ptr<MpiCommunicator> own = m->dup();
  ncclUniqueId id;
  if (own->rank() == 0) ZT_NCCL_CHECK(ncclGetUniqueId(&id));
  ZT_MPI_CHECK(MPI_Bcast(&id, int(sizeof(id)), MPI_BYTE, 0, own->handle()));
  ZT_CUDA_CHECK(cudaSetDevice(cuda_backend.device().index));
  ncclComm_t comm = nullptr;
  ZT_NCCL_CHECK(ncclCommInitRank(&comm, own->size(), id, own->rank()));
  return std::make_unique<NcclCommunicator>(std::move(own), comm, cuda_backend);
}

std::string nccl_error_string(int code) {
  return strformat("%s (code %d)", ncclGetErrorString(static_cast<ncclResult_t>(code)), code);
}

}  // namespace zeroth

#else  // no CUDA: the NCCL entry points say so

namespace zeroth {

int select_local_gpu(Communicator& mpi) {
  (void)mpi;
  throw RuntimeError("select_local_gpu: this build has no CUDA (ZEROTH_CUDA=OFF)");
}

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& mpi, Backend& cuda_backend) {
  (void)mpi;
  (void)cuda_backend;
  throw RuntimeError(
      "make_nccl_communicator: this build has no CUDA (ZEROTH_CUDA=OFF); NCCL communicators need it");
}

std::string nccl_error_string(int code) { return strformat("NCCL result %d (no NCCL in this build)", code); }

}  // namespace zeroth

#endif
