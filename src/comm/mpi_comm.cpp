// MpiCommunicator (mpi_comm.h): comm.h's collectives over MPI on host memory.
//
// Counts: MPI-3 (Open MPI 4.1) counts and displacements are int. all_reduce,
// broadcast, send, recv, sendrecv and the host reductions split larger buffers into
// chunks of at most INT_MAX elements, so any size works. reduce_scatter and
// all_gather (per-rank element count) and all_to_all_v (every count and displacement)
// cannot be chunked that way and throw RuntimeError beyond INT_MAX elements.
// BF16/F16 reductions convert to f32, reduce, and round back once (see comm.h).
#include "comm/mpi_comm.h"

#include <algorithm>
#include <climits>
#include <vector>

#include "comm/comm_util.h"
#include "zeroth/error.h"

namespace zeroth {
namespace {

using namespace comm_detail;

constexpr int64_t kMaxCount = INT_MAX;  // largest count one MPI-3 call takes

// Datatype for moving elements of t (BF16/F16 move as opaque 16-bit words).
MPI_Datatype move_type(DType t) {
  switch (t) {
    case DType::F32: return MPI_FLOAT;
    case DType::BF16: return MPI_UINT16_T;
    case DType::F16: return MPI_UINT16_T;
    case DType::I32: return MPI_INT32_T;
    case DType::I64: return MPI_INT64_T;
    case DType::F8E4M3: break;  // storage only
  }
  ZT_ASSERT(false, "move_type: unknown dtype %d", int(t));
  return MPI_DATATYPE_NULL;
}

bool is_half(DType t) { return t == DType::BF16 || t == DType::F16; }

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return MPI_SUM;
    case ReduceOp::Avg: return MPI_SUM;  // then divided by size
    case ReduceOp::Max: return MPI_MAX;
  }
  ZT_ASSERT(false, "mpi_op: unknown op %d", int(op));
  return MPI_OP_NULL;
}

// n as an MPI count; throws where MPI-3 cannot express it.
int mpi_count(int64_t n, const char* what) {
  ZT_THROW_IF_NOT(n <= kMaxCount, RuntimeError,
                  "MPI %s: %lld elements exceed the MPI-3 count limit INT_MAX (%d); split the "
                  "tensor into smaller pieces",
                  what, (long long)n, INT_MAX);
  return int(n);
}

char* byte_ptr(void* p, int64_t elem_offset, size_t esize) {
  return static_cast<char*>(p) + size_t(elem_offset) * esize;
}

// In-place MPI_Allreduce of n elements, in chunks of at most INT_MAX.
void allreduce_chunked(void* buf, int64_t n, MPI_Datatype t, size_t esize, MPI_Op op, MPI_Comm comm) {
  for (int64_t off = 0; off < n; off += kMaxCount) {
    int c = int(std::min(kMaxCount, n - off));
    ZT_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, byte_ptr(buf, off, esize), c, t, op, comm));
  }
}

void divide(float* x, size_t n, int size) {
  const float s = float(size);
  for (size_t i = 0; i < n; ++i) x[i] = x[i] / s;
}

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm) : comm_(comm) {
  ZT_ASSERT(comm != MPI_COMM_NULL, "MpiCommunicator: null communicator");
  ZT_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  ZT_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  ZT_MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);  // nothing to report to
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::dup() const {
  MPI_Comm c = MPI_COMM_NULL;
  ZT_MPI_CHECK(MPI_Comm_dup(comm_, &c));
  return std::make_unique<MpiCommunicator>(c);
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::split_mpi(int color, int key) const {
  ZT_ASSERT(color >= 0 || color == kSplitNoColor, "split: color %d is negative", color);
  MPI_Comm c = MPI_COMM_NULL;
  ZT_MPI_CHECK(MPI_Comm_split(comm_, color == kSplitNoColor ? MPI_UNDEFINED : color, key, &c));
  if (c == MPI_COMM_NULL) return nullptr;
  return std::make_unique<MpiCommunicator>(c);
}

std::unique_ptr<Communicator> MpiCommunicator::split(int color, int key) {
  return split_mpi(color, key);
}

void MpiCommunicator::check_peer(int peer, const char* what) const {
  ZT_ASSERT(peer >= 0 && peer < size_, "%s: rank %d is outside [0, %d)", what, peer, size_);
}

void MpiCommunicator::check_tag(int tag, const char* what) const {
  ZT_ASSERT(tag >= 0 && tag <= 32767, "%s: tag %d is outside [0, 32767] (MPI's guaranteed range)",
            what, tag);
}

void MpiCommunicator::all_reduce(Tensor& x, ReduceOp op) {
  check_tensor(x, device(), "all_reduce: x");
  check_op(op, x.dtype(), "all_reduce");
  const int64_t n = x.numel();
  if (is_half(x.dtype())) {
    std::vector<float> tmp(static_cast<size_t>(n));
    to_f32(x.data_ptr(), x.dtype(), tmp.data(), tmp.size());
    allreduce_chunked(tmp.data(), n, MPI_FLOAT, sizeof(float), mpi_op(op), comm_);
    if (op == ReduceOp::Avg) divide(tmp.data(), tmp.size(), size_);
    from_f32(tmp.data(), x.dtype(), x.data_ptr(), tmp.size());
    return;
  }
  allreduce_chunked(x.data_ptr(), n, move_type(x.dtype()), x.element_size(), mpi_op(op), comm_);
  if (op == ReduceOp::Avg) divide(static_cast<float*>(x.data_ptr()), size_t(n), size_);
}

void MpiCommunicator::reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op) {
  check_tensor(in, device(), "reduce_scatter: in");
  check_tensor(out, device(), "reduce_scatter: out");
  check_op(op, in.dtype(), "reduce_scatter");
  ZT_ASSERT(in.dtype() == out.dtype(), "reduce_scatter: dtypes differ: %s, %s", in.str().c_str(),
            out.str().c_str());
  const int64_t n = out.numel();
  ZT_ASSERT(in.numel() == n * size_, "reduce_scatter: in has %lld elements, expected %d ranks x %lld",
            (long long)in.numel(), size_, (long long)n);
  check_no_overlap(in, out, "reduce_scatter");
  const int count = mpi_count(n, "reduce_scatter (elements per rank)");
  if (is_half(in.dtype())) {
    std::vector<float> tin(static_cast<size_t>(in.numel())), tout(static_cast<size_t>(n));
    to_f32(in.data_ptr(), in.dtype(), tin.data(), tin.size());
    ZT_MPI_CHECK(MPI_Reduce_scatter_block(tin.data(), tout.data(), count, MPI_FLOAT, mpi_op(op), comm_));
    if (op == ReduceOp::Avg) divide(tout.data(), tout.size(), size_);
    from_f32(tout.data(), out.dtype(), out.data_ptr(), tout.size());
    return;
  }
  ZT_MPI_CHECK(MPI_Reduce_scatter_block(in.data_ptr(), out.data_ptr(), count, move_type(in.dtype()),
                                        mpi_op(op), comm_));
  if (op == ReduceOp::Avg) divide(static_cast<float*>(out.data_ptr()), size_t(n), size_);
}

void MpiCommunicator::all_gather(const Tensor& in, Tensor& out) {
  check_tensor(in, device(), "all_gather: in");
  check_tensor(out, device(), "all_gather: out");
  ZT_ASSERT(in.dtype() == out.dtype(), "all_gather: dtypes differ: %s, %s", in.str().c_str(),
            out.str().c_str());
  const int64_t n = in.numel();
  ZT_ASSERT(out.numel() == n * size_, "all_gather: out has %lld elements, expected %d ranks x %lld",
            (long long)out.numel(), size_, (long long)n);
  check_no_overlap(in, out, "all_gather");
  const int count = mpi_count(n, "all_gather (elements per rank)");
  MPI_Datatype t = move_type(in.dtype());
  ZT_MPI_CHECK(MPI_Allgather(in.data_ptr(), count, t, out.data_ptr(), count, t, comm_));
}

void MpiCommunicator::all_to_all_v(const Tensor& in, const std::vector<int64_t>& send_counts,
                                   Tensor& out, const std::vector<int64_t>& recv_counts) {
  check_tensor(in, device(), "all_to_all_v: in");
  check_tensor(out, device(), "all_to_all_v: out");
  ZT_ASSERT(in.dtype() == out.dtype(), "all_to_all_v: dtypes differ: %s, %s", in.str().c_str(),
            out.str().c_str());
  check_counts(send_counts, size_, in.numel(), "send_counts");
  check_counts(recv_counts, size_, out.numel(), "recv_counts");
  check_no_overlap(in, out, "all_to_all_v");
  std::vector<int64_t> send_off = chunk_offsets(send_counts), recv_off = chunk_offsets(recv_counts);
  const size_t np = size_t(size_);
  std::vector<int> sc(np), sd(np), rc(np), rd(np);
  for (int p = 0; p < size_; ++p) {
    sc[p] = mpi_count(send_counts[p], "all_to_all_v (send count)");
    sd[p] = mpi_count(send_off[p], "all_to_all_v (send displacement)");
    rc[p] = mpi_count(recv_counts[p], "all_to_all_v (recv count)");
    rd[p] = mpi_count(recv_off[p], "all_to_all_v (recv displacement)");
  }
  MPI_Datatype t = move_type(in.dtype());
  ZT_MPI_CHECK(MPI_Alltoallv(in.data_ptr(), sc.data(), sd.data(), t, out.data_ptr(), rc.data(),
                             rd.data(), t, comm_));
}

void MpiCommunicator::broadcast(Tensor& x, int root) {
  check_tensor(x, device(), "broadcast: x");
  check_peer(root, "broadcast: root");
  const int64_t n = x.numel();
  for (int64_t off = 0; off < n; off += kMaxCount) {
    int c = int(std::min(kMaxCount, n - off));
    ZT_MPI_CHECK(MPI_Bcast(byte_ptr(x.data_ptr(), off, x.element_size()), c, move_type(x.dtype()),
                           root, comm_));
  }
}

void MpiCommunicator::barrier() { ZT_MPI_CHECK(MPI_Barrier(comm_)); }

void MpiCommunicator::send(const Tensor& x, int peer, int tag) {
  check_tensor(x, device(), "send: x");
  check_peer(peer, "send: peer");
  check_tag(tag, "send");
  const int64_t n = x.numel();
  int64_t off = 0;
  do {  // at least one message, so that an empty tensor still matches its recv
    int c = int(std::min(kMaxCount, n - off));
    ZT_MPI_CHECK(MPI_Send(byte_ptr(x.data_ptr(), off, x.element_size()), c, move_type(x.dtype()),
                          peer, tag, comm_));
    off += c;
  } while (off < n);
}

void MpiCommunicator::recv(Tensor& x, int peer, int tag) {
  check_tensor(x, device(), "recv: x");
  check_peer(peer, "recv: peer");
  check_tag(tag, "recv");
  const int64_t n = x.numel();
  int64_t off = 0;
  do {
    int c = int(std::min(kMaxCount, n - off));
    MPI_Status st;
    ZT_MPI_CHECK(MPI_Recv(byte_ptr(x.data_ptr(), off, x.element_size()), c, move_type(x.dtype()),
                          peer, tag, comm_, &st));
    int got = 0;
    ZT_MPI_CHECK(MPI_Get_count(&st, move_type(x.dtype()), &got));
    ZT_ASSERT(got == c, "recv: from rank %d tag %d got %d elements, %s expected %d", peer, tag, got,
              x.str().c_str(), c);
    off += c;
  } while (off < n);
}

void MpiCommunicator::sendrecv(const Tensor& send_x, int dst, Tensor& recv_x, int src, int tag) {
  check_tensor(send_x, device(), "sendrecv: send_x");
  check_tensor(recv_x, device(), "sendrecv: recv_x");
  check_peer(dst, "sendrecv: dst");
  check_peer(src, "sendrecv: src");
  check_tag(tag, "sendrecv");
  check_no_overlap(send_x, recv_x, "sendrecv");
  // Non-blocking chunks in the same order as send()/recv(), then one wait: no
  // deadlock whatever the peers do first, and a sendrecv matches a plain send/recv.
  std::vector<MPI_Request> reqs;
  std::vector<int> recv_chunk;
  const int64_t nr = recv_x.numel(), ns = send_x.numel();
  int64_t off = 0;
  do {
    int c = int(std::min(kMaxCount, nr - off));
    reqs.emplace_back();
    ZT_MPI_CHECK(MPI_Irecv(byte_ptr(recv_x.data_ptr(), off, recv_x.element_size()), c,
                           move_type(recv_x.dtype()), src, tag, comm_, &reqs.back()));
    recv_chunk.push_back(c);
    off += c;
  } while (off < nr);
  off = 0;
  do {
    int c = int(std::min(kMaxCount, ns - off));
    reqs.emplace_back();
    ZT_MPI_CHECK(MPI_Isend(byte_ptr(send_x.data_ptr(), off, send_x.element_size()), c,
                           move_type(send_x.dtype()), dst, tag, comm_, &reqs.back()));
    off += c;
  } while (off < ns);
  std::vector<MPI_Status> st(reqs.size());
  ZT_MPI_CHECK(MPI_Waitall(int(reqs.size()), reqs.data(), st.data()));
  for (size_t i = 0; i < recv_chunk.size(); ++i) {
    int got = 0;
    ZT_MPI_CHECK(MPI_Get_count(&st[i], move_type(recv_x.dtype()), &got));
    ZT_ASSERT(got == recv_chunk[i], "sendrecv: from rank %d tag %d got %d elements, %s expected %d",
              src, tag, got, recv_x.str().c_str(), recv_chunk[i]);
  }
}

void MpiCommunicator::all_reduce_host(double* data, size_t n, ReduceOp op) {
  allreduce_chunked(data, int64_t(n), MPI_DOUBLE, sizeof(double), mpi_op(op), comm_);
  if (op == ReduceOp::Avg)
    for (size_t i = 0; i < n; ++i) data[i] /= double(size_);
}

void MpiCommunicator::all_reduce_host(int64_t* data, size_t n, ReduceOp op) {
  ZT_ASSERT(op != ReduceOp::Avg, "all_reduce_host: avg needs double data, found int64");
  allreduce_chunked(data, int64_t(n), MPI_INT64_T, sizeof(int64_t), mpi_op(op), comm_);
}

std::string mpi_error_string(int code) {
  char buf[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS) return strformat("MPI error code %d", code);
  return strformat("%.*s (code %d)", len, buf, code);
}

}  // namespace zeroth
