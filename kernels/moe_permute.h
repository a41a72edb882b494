// Launchers for kernels/moe_permute.cu: MoE dispatch bookkeeping (stable counting
// sort of slots by expert) and the row permutations around the expert GEMMs.
// A slot is (token n, choice j), flattened as n * k + j; "sorted" rows are slots
// grouped by expert.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "zeroth/dtype.h"

namespace zeroth {

// Slots per block of the sort's count and placement kernels.
constexpr int kSortChunk = 256;
// Largest expert count the sort's shared counters admit (E int32 per block).
constexpr int kSortMaxExperts = 8192;

// Bytes of device scratch launch_moe_sort_by_expert needs for `slots` slots.
size_t moe_sort_scratch_bytes(int64_t slots, int num_experts);

// Stable counting sort of the slots by expert id (expert_of_slot, every value in
// [0, num_experts): a value outside traps the kernel): expert_counts[e] = slots of
// expert e; sorted_to_slot lists slots by ascending expert, then ascending slot;
// slot_to_sorted is its inverse. scratch: moe_sort_scratch_bytes(slots, num_experts).
void launch_moe_sort_by_expert(const int32_t* expert_of_slot /* (slots) */, int64_t slots,
                               int num_experts, int32_t* sorted_to_slot /* (slots) */,
                               int32_t* slot_to_sorted /* (slots) */,
                               int32_t* expert_counts /* (num_experts) */, void* scratch,
                               cudaStream_t stream);

// out[r, :] = x[sorted_to_slot[r] / k, :] for r in [0, rows). Row strides in elements;
// the last dimension is contiguous; x and out are float dtypes.
void launch_moe_gather(const void* x /* (rows / k, cols) */, DType x_dtype, int64_t x_ld,
                       const int32_t* sorted_to_slot /* (rows) */, int k,
                       void* out /* (rows, cols) */, DType out_dtype, int64_t out_ld,
                       int64_t rows, int64_t cols, cudaStream_t stream);

// dx[n, :] = sum_{j < k} dsorted[slot_to_sorted[n * k + j], :] (in order j = 0..k-1),
// for n in [0, tokens).
void launch_moe_gather_backward(const void* dsorted /* (tokens * k, cols) */, DType ds_dtype,
                                int64_t ds_ld, const int32_t* slot_to_sorted /* (tokens * k) */,
                                int k, void* dx /* (tokens, cols) */, DType dx_dtype,
                                int64_t dx_ld, int64_t tokens, int64_t cols,
                                cudaStream_t stream);

// out[n, :] = (accumulate ? out[n, :] : 0) + sum_j weight[n, j] * expert_out[slot_to_sorted[n * k + j], :].
void launch_moe_combine(const void* expert_out /* (tokens * k, cols) */, DType eo_dtype,
                        int64_t eo_ld, const int32_t* slot_to_sorted /* (tokens * k) */,
                        const float* weight /* (tokens, k) */, int k, void* out /* (tokens, cols) */,
                        DType out_dtype, int64_t out_ld, bool accumulate, int64_t tokens,
                        int64_t cols, cudaStream_t stream);

// dexpert_out[slot_to_sorted[n*k+j], :] = weight[n, j] * dout[n, :];
// dweight[n, j] = dot(dout[n, :], expert_out[slot_to_sorted[n*k+j], :]).
void launch_moe_combine_backward(const void* dout /* (tokens, cols) */, DType dout_dtype,
                                 int64_t dout_ld, const void* expert_out /* (tokens * k, cols) */,
                                 DType eo_dtype, int64_t eo_ld,
                                 const int32_t* slot_to_sorted /* (tokens * k) */,
                                 const float* weight /* (tokens, k) */, int k,
                                 void* dexpert_out /* (tokens * k, cols) */, DType dexp_dtype,
                                 int64_t dexp_ld, float* dweight /* (tokens, k) */,
                                 int64_t tokens, int64_t cols, cudaStream_t stream);

}  // namespace zeroth
