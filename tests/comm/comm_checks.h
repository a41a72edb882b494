// Generic checks of comm.h's contract, run by every communicator kind's tests.
//
// Owns: rank-tagged test data (every element encodes where it came from) and one
// check per operation, written against Communicator& and Backend& so that the same
// check runs on the local, MPI (host tensors) and NCCL (device tensors) kinds. The
// checks use CHECK, never REQUIRE: every rank must run every collective even after a
// failure, or the other ranks would hang. Must not: depend on a communicator kind
// except where the contract differs (documented at each check).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "zeroth/backend.h"
#include "zeroth/comm.h"
#include "zeroth/tensor.h"

namespace zeroth {
namespace comm_test {

// The MPI world of the test process, set by the test main.
void set_world(Communicator* world);
Communicator& world();

// Every dtype communicators support.
const std::vector<DType>& all_dtypes();
const char* dtype_label(DType t);

// Data-movement value sent from rank src to rank dst at element i, exact in dtype t:
// src*1000000 + dst*1000 + i%1000 for F32/I32/I64, src*64 + dst*16 + i%16 for
// BF16/F16 (integers below 256). Needs size() <= 4 for BF16/F16, <= 16 otherwise.
double tagged(DType t, int src, int dst, int64_t i);

// Rank r's contribution at element i to a reduction `op` over np ranks, chosen so
// that the sum, average (np a power of two) and max are exact in t, every rank's
// contribution is distinct (powers of two), and the max has one winner per element.
double contribution(ReduceOp op, DType t, int r, int np, int64_t i);

// Reduction of contribution() over all np ranks (avg: sum / np).
double expected_reduction(ReduceOp op, DType t, int np, int64_t i);

// A contiguous (n) tensor on be's device holding `values` converted to t.
Tensor make_tensor(Backend& be, DType t, const std::vector<double>& values);
// The values of a contiguous tensor, read back to the host.
std::vector<double> read_values(const Tensor& x);

// CHECKs that got == want element by element, reporting the first mismatch.
void check_values(const std::vector<double>& got, const std::vector<double>& want,
                  const std::string& what);

void check_all_reduce(Communicator& c, Backend& be, DType t, ReduceOp op, int64_t n);
void check_reduce_scatter(Communicator& c, Backend& be, DType t, ReduceOp op, int64_t n);
void check_all_gather(Communicator& c, Backend& be, DType t, int64_t n);
// Exchanges I64 counts first (as MoE dispatch does), then uneven payloads with zeros.
void check_all_to_all_v(Communicator& c, Backend& be, DType t);
void check_broadcast(Communicator& c, Backend& be, DType t, int root, int64_t n);
// Ring: rank r sends to r+1 and receives from r-1; even ranks send first. Sizes differ
// per source rank. Skipped for nccl on one rank (a plain send to itself cannot complete).
void check_send_recv_ring(Communicator& c, Backend& be, DType t);
// Both ring directions at once with sendrecv (works on one rank too).
void check_sendrecv(Communicator& c, Backend& be, DType t);
// Even/odd split with reversed keys, collectives inside the groups, and a split
// where rank 0 passes kSplitNoColor.
void check_split(Communicator& c, Backend& be);
void check_host_reductions(Communicator& c);
void check_barrier(Communicator& c);

// Every check above, over every dtype and op.
void check_everything(Communicator& c, Backend& be);

}  // namespace comm_test
}  // namespace zeroth
