// Helpers shared by the communicator implementations (local, MPI, NCCL).
//
// Owns: argument checks every kind applies the same way, and host-side dtype
// conversions for reductions of BF16/F16 in f32. Must not: communicate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "zeroth/comm.h"
#include "zeroth/tensor.h"

namespace zeroth {
namespace comm_detail {

// Aborts unless x is defined, contiguous and on `dev`. `what` names the argument
// in the message, e.g. "all_reduce: x".
void check_tensor(const Tensor& x, Device dev, const char* what);

// Aborts unless op applies to dtype (Avg only for float dtypes).
void check_op(ReduceOp op, DType dtype, const char* what);

// Aborts if the bytes of a and b overlap (out-of-place collectives need distinct buffers).
void check_no_overlap(const Tensor& a, const Tensor& b, const char* what);

// Checks all_to_all_v's counts: `counts` has `size` non-negative entries summing to
// `numel`. `which` is "send_counts" or "recv_counts".
void check_counts(const std::vector<int64_t>& counts, int size, int64_t numel, const char* which);

// Element offsets of each peer's chunk: offsets[p] = counts[0] + ... + counts[p-1].
std::vector<int64_t> chunk_offsets(const std::vector<int64_t>& counts);

// Host conversions of n elements between a float dtype (F32, BF16, F16) and f32.
// from_f32 rounds to nearest even.
void to_f32(const void* src, DType dtype, float* dst, size_t n);
void from_f32(const float* src, DType dtype, void* dst, size_t n);

}  // namespace comm_detail
}  // namespace zeroth
