// MoE dispatch on the GPU: the stable counting sort of slots by expert, and the
// gather / combine row permutations with their backwards.
//
// Owns: the sort's three passes and the permutation kernels. Sort: the slots are cut
// into chunks of kSortChunk; (1) each block counts its chunk's slots per expert,
// (2) one block turns the (chunk, expert) counts into each chunk's first position per
// expert (exclusive scan over chunks, plus the expert's base = exclusive scan of the
// totals over experts), (3) each block places its chunk's slots, warp after warp and
// within a warp by lane, so every slot lands at base[e] + (earlier slots of e): the
// order is exactly the CPU's stable order. Permutations: one block per output row,
// each row written by exactly one block, sums in a fixed order (no atomics on data;
// the only atomics are integer counts in shared memory, whose result is exact).
// Must not: synchronise with the host or allocate (the caller passes the scratch).
#include "moe_permute.h"

#include "cuda/cuda_check.h"
#include "kernel_common.cuh"

namespace zeroth {

namespace {

// Threads for a one-block-per-row kernel over `cols` columns: a multiple of 32
// in [32, kRowThreads].
unsigned row_threads(int64_t cols) {
  int64_t t = (cols + 31) / 32 * 32;
  if (t < 32) t = 32;
  if (t > kRowThreads) t = kRowThreads;
  return unsigned(t);
}

int64_t sort_chunks(int64_t slots) { return (slots + kSortChunk - 1) / kSortChunk; }

}  // namespace

size_t moe_sort_scratch_bytes(int64_t slots, int num_experts) {
  // chunk_offsets (chunks, E) then expert_base (E), all int32.
  return size_t(sort_chunks(slots) + 1) * size_t(num_experts) * sizeof(int32_t);
}

// ---- kernels ----

// Pass 1. Grid: (chunks); block: (kSortChunk); shared: E int32.
// chunk_counts[c, e] = number of slots of chunk c routed to expert e.
__global__ void moe_sort_count_kernel(const int32_t* expert_of_slot, int64_t slots, int E,
                                      int32_t* chunk_counts) {
  extern __shared__ int32_t sort_count_smem[];  // (E)
  for (int e = threadIdx.x; e < E; e += blockDim.x) sort_count_smem[e] = 0;
  __syncthreads();
  const int64_t slot = int64_t(blockIdx.x) * kSortChunk + threadIdx.x;
  if (slot < slots) {
    const int32_t e = expert_of_slot[slot];
    if (e < 0 || e >= E) __trap();  // a caller bug: expert ids come from the router
    atomicAdd(&sort_count_smem[e], 1);
  }
  __syncthreads();
  int32_t* row = chunk_counts + int64_t(blockIdx.x) * E;
  for (int e = threadIdx.x; e < E; e += blockDim.x) row[e] = sort_count_smem[e];
}

// Pass 2. Grid: (1); block: (kRowThreads); shared: E int32.
// chunk_counts becomes, in place, each chunk's offset within its expert's rows
// (exclusive scan over chunks); expert_counts[e] = total; expert_base[e] = exclusive
// scan of the totals over experts (thread 0, in expert order).
__global__ void moe_sort_scan_kernel(int32_t* chunk_counts, int64_t chunks, int E,
                                     int32_t* expert_counts, int32_t* expert_base) {
  extern __shared__ int32_t sort_total_smem[];  // (E)
  for (int e = threadIdx.x; e < E; e += blockDim.x) {
    int32_t running = 0;
    for (int64_t c = 0; c < chunks; ++c) {
      const int32_t count = chunk_counts[c * E + e];
      chunk_counts[c * E + e] = running;
      running += count;
    }
    sort_total_smem[e] = running;
    expert_counts[e] = running;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int32_t base = 0;
    for (int e = 0; e < E; ++e) {
      expert_base[e] = base;
      base += sort_total_smem[e];
    }
  }
}

// Pass 3. Grid: (chunks); block: (kSortChunk); shared: E int32.
// next[e] starts at expert e's first position for this chunk; warps take turns in
// order; within a warp, lanes of the same expert (found with __match_any_sync) take
// consecutive positions in lane order, and the group's lowest lane advances next[e].
__global__ void moe_sort_place_kernel(const int32_t* expert_of_slot, int64_t slots, int E,
                                      const int32_t* chunk_offsets, const int32_t* expert_base,
                                      int32_t* sorted_to_slot, int32_t* slot_to_sorted) {
  extern __shared__ int32_t sort_next_smem[];  // (E)
  const int32_t* offsets = chunk_offsets + int64_t(blockIdx.x) * E;
  for (int e = threadIdx.x; e < E; e += blockDim.x)
    sort_next_smem[e] = expert_base[e] + offsets[e];
  __syncthreads();

  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  const int64_t slot = int64_t(blockIdx.x) * kSortChunk + threadIdx.x;
  const bool valid = slot < slots;
  const int32_t e = valid ? expert_of_slot[slot] : -1;  // invalid lanes group together
  if (valid && (e < 0 || e >= E)) __trap();
  const unsigned same = __match_any_sync(0xffffffffu, e);
  const unsigned lower = same & ((1u << lane) - 1u);  // same-expert lanes below this one

  for (int w = 0; w < kSortChunk / 32; ++w) {
    if (warp == w) {  // warp-uniform
      if (valid) {
        const int32_t pos = sort_next_smem[e] + __popc(lower);
        sorted_to_slot[pos] = int32_t(slot);
        slot_to_sorted[slot] = pos;
      }
      __syncwarp();  // every lane has read next[e] before the leader advances it
      if (valid && lower == 0u) sort_next_smem[e] += __popc(same);
    }
    __syncthreads();
  }
}

// Grid: (rows); block: row_threads(cols).
__global__ void moe_gather_kernel(const void* x, DType x_dtype, int64_t x_ld,
                                  const int32_t* sorted_to_slot, int k, void* out,
                                  DType out_dtype, int64_t out_ld, int64_t cols) {
  const int64_t r = blockIdx.x;
  const int64_t n = sorted_to_slot[r] / k;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    store_from_float(out, out_dtype, r * out_ld + c, load_as_float(x, x_dtype, n * x_ld + c));
}

// Grid: (tokens); block: row_threads(cols).
__global__ void moe_gather_backward_kernel(const void* dsorted, DType ds_dtype, int64_t ds_ld,
                                           const int32_t* slot_to_sorted, int k, void* dx,
                                           DType dx_dtype, int64_t dx_ld, int64_t cols) {
  const int64_t n = blockIdx.x;
  const int32_t* rows = slot_to_sorted + n * k;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    float acc = 0.0f;
    for (int j = 0; j < k; ++j) acc += load_as_float(dsorted, ds_dtype, rows[j] * ds_ld + c);
    store_from_float(dx, dx_dtype, n * dx_ld + c, acc);
  }
}

// Grid: (tokens); block: row_threads(cols).
__global__ void moe_combine_kernel(const void* expert_out, DType eo_dtype, int64_t eo_ld,
                                   const int32_t* slot_to_sorted, const float* weight, int k,
                                   void* out, DType out_dtype, int64_t out_ld, bool accumulate,
                                   int64_t cols) {
  const int64_t n = blockIdx.x;
  const int32_t* rows = slot_to_sorted + n * k;
  const float* w = weight + n * k;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    float acc = 0.0f;
    for (int j = 0; j < k; ++j) acc += w[j] * load_as_float(expert_out, eo_dtype, rows[j] * eo_ld + c);
    if (accumulate) acc = load_as_float(out, out_dtype, n * out_ld + c) + acc;
    store_from_float(out, out_dtype, n * out_ld + c, acc);
  }
}

// Grid: (tokens); block: row_threads(cols). Choice j's dot product is a block
// reduction (fixed order); its expert row belongs to this token alone.
__global__ void moe_combine_backward_kernel(const void* dout, DType dout_dtype, int64_t dout_ld,
                                            const void* expert_out, DType eo_dtype,
                                            int64_t eo_ld, const int32_t* slot_to_sorted,
                                            const float* weight, int k, void* dexpert_out,
                                            DType dexp_dtype, int64_t dexp_ld, float* dweight,
                                            int64_t cols) {
  __shared__ float shared[32];
  const int64_t n = blockIdx.x;
  for (int j = 0; j < k; ++j) {
    const int64_t r = slot_to_sorted[n * k + j];
    const float w = weight[n * k + j];
    float dot = 0.0f;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      const float d = load_as_float(dout, dout_dtype, n * dout_ld + c);
      dot += d * load_as_float(expert_out, eo_dtype, r * eo_ld + c);
      store_from_float(dexpert_out, dexp_dtype, r * dexp_ld + c, w * d);
    }
    dot = block_reduce_sum(dot, shared);
    if (threadIdx.x == 0) dweight[n * k + j] = dot;
  }
}

// ---- launchers ----

void launch_moe_sort_by_expert(const int32_t* expert_of_slot, int64_t slots, int num_experts,
                               int32_t* sorted_to_slot, int32_t* slot_to_sorted,
                               int32_t* expert_counts, void* scratch, cudaStream_t stream) {
  ZT_ASSERT(num_experts >= 1 && num_experts <= kSortMaxExperts,
            "moe_sort_by_expert: %d experts (at most %d)", num_experts, kSortMaxExperts);
  ZT_ASSERT(slots >= 0 && slots <= INT32_MAX, "moe_sort_by_expert: %lld slots", (long long)slots);
  if (slots == 0) {
    ZT_CUDA_CHECK(cudaMemsetAsync(expert_counts, 0, size_t(num_experts) * sizeof(int32_t), stream));
    return;
  }
  const int64_t chunks = sort_chunks(slots);
  int32_t* chunk_counts = static_cast<int32_t*>(scratch);  // (chunks, E)
  int32_t* expert_base = chunk_counts + chunks * num_experts;  // (E)
  const size_t smem = size_t(num_experts) * sizeof(int32_t);
  moe_sort_count_kernel<<<unsigned(chunks), kSortChunk, smem, stream>>>(expert_of_slot, slots,
                                                                        num_experts, chunk_counts);
  ZT_CUDA_CHECK_LAUNCH();
  moe_sort_scan_kernel<<<1, kRowThreads, smem, stream>>>(chunk_counts, chunks, num_experts,
                                                         expert_counts, expert_base);
  ZT_CUDA_CHECK_LAUNCH();
  moe_sort_place_kernel<<<unsigned(chunks), kSortChunk, smem, stream>>>(
      expert_of_slot, slots, num_experts, chunk_counts, expert_base, sorted_to_slot,
      slot_to_sorted);
  ZT_CUDA_CHECK_LAUNCH();
}

void launch_moe_gather(const void* x, DType x_dtype, int64_t x_ld, const int32_t* sorted_to_slot,
                       int k, void* out, DType out_dtype, int64_t out_ld, int64_t rows,
                       int64_t cols, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  ZT_ASSERT(rows <= INT32_MAX, "moe_gather: %lld rows", (long long)rows);
  moe_gather_kernel<<<unsigned(rows), row_threads(cols), 0, stream>>>(
      x, x_dtype, x_ld, sorted_to_slot, k, out, out_dtype, out_ld, cols);
  ZT_CUDA_CHECK_LAUNCH();
}

void launch_moe_gather_backward(const void* dsorted, DType ds_dtype, int64_t ds_ld,
                                const int32_t* slot_to_sorted, int k, void* dx, DType dx_dtype,
                                int64_t dx_ld, int64_t tokens, int64_t cols,
                                cudaStream_t stream) {
  if (tokens <= 0 || cols <= 0) return;
  ZT_ASSERT(tokens <= INT32_MAX, "moe_gather_backward: %lld tokens", (long long)tokens);
  moe_gather_backward_kernel<<<unsigned(tokens), row_threads(cols), 0, stream>>>(
      dsorted, ds_dtype, ds_ld, slot_to_sorted, k, dx, dx_dtype, dx_ld, cols);
  ZT_CUDA_CHECK_LAUNCH();
}

void launch_moe_combine(const void* expert_out, DType eo_dtype, int64_t eo_ld,
                        const int32_t* slot_to_sorted, const float* weight, int k, void* out,
                        DType out_dtype, int64_t out_ld, bool accumulate, int64_t tokens,
                        int64_t cols, cudaStream_t stream) {
  if (tokens <= 0 || cols <= 0) return;
  ZT_ASSERT(tokens <= INT32_MAX, "moe_combine: %lld tokens", (long long)tokens);
  moe_combine_kernel<<<unsigned(tokens), row_threads(cols), 0, stream>>>(
      expert_out, eo_dtype, eo_ld, slot_to_sorted, weight, k, out, out_dtype, out_ld, accumulate,
      cols);
  ZT_CUDA_CHECK_LAUNCH();
}

void launch_moe_combine_backward(const void* dout, DType dout_dtype, int64_t dout_ld,
                                 const void* expert_out, DType eo_dtype, int64_t eo_ld,
                                 const int32_t* slot_to_sorted, const float* weight, int k,
                                 void* dexpert_out, DType dexp_dtype, int64_t dexp_ld,
                                 float* dweight, int64_t tokens, int64_t cols,
                                 cudaStream_t stream) {
  if (tokens <= 0 || k <= 0) return;
  ZT_ASSERT(tokens <= INT32_MAX, "moe_combine_backward: %lld tokens", (long long)tokens);
  // cols == 0 still runs: every dweight is then 0.
  moe_combine_backward_kernel<<<unsigned(tokens), row_threads(cols), 0, stream>>>(
      dout, dout_dtype, dout_ld, expert_out, eo_dtype, eo_ld, slot_to_sorted, weight, k,
      dexpert_out, dexp_dtype, dexp_ld, dweight, cols);
  ZT_CUDA_CHECK_LAUNCH();
}

}  // namespace zeroth
