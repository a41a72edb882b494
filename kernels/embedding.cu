// Embedding lookup and its deterministic gradient.
//
// Owns: the gather kernel (grid-stride over rows, threads over columns), the sorted
// segment-sum of the backward (cub::DeviceRadixSort of (id, position) pairs, then one
// block per run of equal ids). Must not: use float atomics (the backward must give the
// same bits on every run) or read ids outside [0, v) (they trap).
#include "embedding.h"

#include <cub/device/device_radix_sort.cuh>

#include <cstdio>

#include "cuda/cuda_check.h"
#include "kernel_common.cuh"

namespace zeroth {

namespace {

constexpr int kEmbeddingThreads = 128;
constexpr int64_t kMaxEmbeddingBlocks = 65535;

// Scratch layout of the backward: sorted ids, positions, sorted positions (n I32 each,
// 256-byte aligned), then cub's temporary storage.
size_t align256(size_t b) { return (b + 255) / 256 * 256; }

size_t cub_sort_bytes(int64_t n) {
  size_t bytes = 0;
  ZT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, bytes, static_cast<const int32_t*>(nullptr),
                                                static_cast<int32_t*>(nullptr),
                                                static_cast<const int32_t*>(nullptr),
                                                static_cast<int32_t*>(nullptr), int(n)));
  return bytes;
}

}  // namespace

// ---- kernels ----

__device__ __forceinline__ void trap_bad_id(int64_t i, int32_t id, int64_t v) {
  printf("zeroth embedding: ids[%lld] = %d is outside [0, %lld)\n", (long long)i, id,
         (long long)v);
  __trap();
}

// Grid: (min(n, kMaxEmbeddingBlocks)), grid-stride over rows; block: (kEmbeddingThreads)
// over the c columns of a row.
__global__ void embedding_forward_kernel(const int32_t* ids, const void* table, DType table_dtype,
                                         void* out, DType out_dtype, int64_t n, int64_t v,
                                         int64_t c) {
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    const int32_t id = ids[i];
    if (id < 0 || id >= v) trap_bad_id(i, id, v);
    const int64_t src = int64_t(id) * c, dst = i * c;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x)
      store_from_float(out, out_dtype, dst + j, load_as_float(table, table_dtype, src + j));
  }
}

// Positions 0..n-1 (the values sorted along with the ids).
__global__ void iota_kernel(int32_t* out, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = int32_t(i);
}

// Grid: (min(n, kMaxEmbeddingBlocks)), grid-stride over sorted positions i; a block
// whose i starts a run of equal ids (i == 0 or sorted_ids[i-1] != sorted_ids[i]) sums
// dout over the run's rows, in ascending position order (the sort is stable), and adds
// the sum to dtable[id, :]. Every id has exactly one run, so no two blocks write the
// same row.
__global__ void embedding_backward_kernel(const int32_t* sorted_ids, const int32_t* sorted_pos,
                                          const void* dout, DType dout_dtype, float* dtable,
                                          int64_t n, int64_t v, int64_t c) {
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    const int32_t id = sorted_ids[i];
    if (i > 0 && sorted_ids[i - 1] == id) continue;  // not the start of a run
    if (id < 0 || id >= v) trap_bad_id(sorted_pos[i], id, v);
    int64_t end = i + 1;
    while (end < n && sorted_ids[end] == id) ++end;
    float* row = dtable + int64_t(id) * c;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
      float acc = 0.0f;
      for (int64_t r = i; r < end; ++r)
        acc += load_as_float(dout, dout_dtype, int64_t(sorted_pos[r]) * c + j);
      row[j] += acc;
    }
  }
}

// ---- launchers ----

void launch_embedding_forward(const int32_t* ids, const void* table, DType table_dtype, void* out,
                              DType out_dtype, int64_t n, int64_t v, int64_t c,
                              cudaStream_t stream) {
  if (n <= 0 || c <= 0) return;
  const unsigned blocks = unsigned(n < kMaxEmbeddingBlocks ? n : kMaxEmbeddingBlocks);
  embedding_forward_kernel<<<blocks, kEmbeddingThreads, 0, stream>>>(ids, table, table_dtype, out,
                                                                     out_dtype, n, v, c);
  ZT_CUDA_CHECK_LAUNCH();
}

size_t embedding_backward_scratch_bytes(int64_t n) {
  if (n <= 0) return 0;
  return 3 * align256(sizeof(int32_t) * size_t(n)) + cub_sort_bytes(n);
}

void launch_embedding_backward(const int32_t* ids, const void* dout, DType dout_dtype,
                               float* dtable, int64_t n, int64_t v, int64_t c, void* scratch,
                               size_t scratch_bytes, cudaStream_t stream) {
  if (n <= 0 || c <= 0) return;
  ZT_ASSERT(n <= INT32_MAX && v <= INT32_MAX, "embedding_backward: n %lld, v %lld over int32",
            (long long)n, (long long)v);
  const size_t array_bytes = align256(sizeof(int32_t) * size_t(n));
  size_t sort_bytes = cub_sort_bytes(n);
  ZT_ASSERT(scratch_bytes >= 3 * array_bytes + sort_bytes,
            "embedding_backward: scratch of %zu bytes, need %zu", scratch_bytes,
            3 * array_bytes + sort_bytes);
  char* base = static_cast<char*>(scratch);
  int32_t* sorted_ids = reinterpret_cast<int32_t*>(base);
  int32_t* pos = reinterpret_cast<int32_t*>(base + array_bytes);
  int32_t* sorted_pos = reinterpret_cast<int32_t*>(base + 2 * array_bytes);
  void* sort_tmp = base + 3 * array_bytes;

  iota_kernel<<<elementwise_blocks(n), kElementwiseThreads, 0, stream>>>(pos, n);
  ZT_CUDA_CHECK_LAUNCH();
  // All 32 key bits: cub orders int32 keys as signed, so a negative id sorts first
  // (and traps below) instead of aliasing a valid one.
  ZT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(sort_tmp, sort_bytes, ids, sorted_ids, pos,
                                                sorted_pos, int(n), 0, 32, stream));
  const unsigned blocks = unsigned(n < kMaxEmbeddingBlocks ? n : kMaxEmbeddingBlocks);
  embedding_backward_kernel<<<blocks, kEmbeddingThreads, 0, stream>>>(
      sorted_ids, sorted_pos, dout, dout_dtype, dtable, n, v, c);
  ZT_CUDA_CHECK_LAUNCH();
}

}  // namespace zeroth
