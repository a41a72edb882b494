// CudaBackend::gemm: row-major (batched, strided) GEMM through cuBLAS.
//
// Owns: mapping backend.h's row-major gemm onto cuBLAS's column-major
// cublasGemmStridedBatchedEx. A row-major matrix with row stride ld is, read
// column-major with the same ld, its transpose. So row-major C = op(A) op(B) is
// computed as column-major C^T = op(B)^T op(A)^T: cuBLAS's first operand is B (with
// transb), its second is A (with transa), m = N, n = M, k = K, and every leading
// dimension is the operand's row stride; F32 products of at most 8 rows by a transposed
// matrix go to the few-row kernel instead. Must not: implement GEMM itself or
// synchronise with the host.
#include <climits>
#include <utility>

#include "copy_strided.h"  // kernels/: converting the F32 result into a BF16 C
#include "decode.h"        // kernels/: the few-row path (launch_expert_rows_gemm)
#include "elementwise.h"   // kernels/: C = beta * C when there is no product
#include "cuda/cuda_backend_impl.h"
#include "cuda/cuda_check.h"

namespace zeroth {

namespace {

// The few-row path: at most 8 rows whose K floats fit the kernel's shared memory in one
// pass, and fewer than 32k outputs (a larger N, the lm_head's vocabulary, is streamed at
// full bandwidth by cuBLAS's GEMV: 176 us against 225 us for 530 MB on an H100,
// docs/gpu.md).
bool few_rows(int64_t M, int64_t N, int64_t K) {
  return M <= 8 && M * K <= kExpertRowsSharedFloats && N < 32768;
}

// One operand as stored: `batch` row-major `rows` x `cols` matrices (a 2-D operand
// is one matrix with batch stride 0, which broadcasts it across the batch).
struct GemmOperand {
  void* ptr = nullptr;
  DType dtype = DType::F32;
  int64_t rows = 0, cols = 0;
  int64_t ld = 0;            // row stride in elements (cuBLAS's leading dimension)
  bool batched = false;      // a 3-D tensor
  int64_t batch = 1;
  int64_t batch_stride = 0;  // elements between consecutive matrices; 0 when 2-D
};

GemmOperand describe_operand(const Tensor& t, const char* arg) {
  ZT_ASSERT(t.dim() == 2 || t.dim() == 3, "gemm: %s must be 2-D or 3-D, got %s", arg,
            t.str().c_str());
  GemmOperand op;
  op.ptr = t.data_ptr();
  op.dtype = t.dtype();
  op.rows = t.size(-2);
  op.cols = t.size(-1);
  ZT_ASSERT(op.cols <= 1 || t.stride(-1) == 1, "gemm: %s's last dimension must be contiguous (%s)",
            arg, t.str().c_str());
  // The row stride of a single row (or of empty rows) is never followed; cuBLAS
  // still wants ld >= max(1, cols).
  const int64_t min_ld = op.cols > 1 ? op.cols : 1;
  op.ld = (op.rows > 1 && op.cols > 0) ? t.stride(-2) : min_ld;
  ZT_ASSERT(op.ld >= min_ld, "gemm: %s has row stride %lld < %lld columns (%s)", arg,
            (long long)op.ld, (long long)op.cols, t.str().c_str());
  ZT_ASSERT(op.ld <= INT_MAX && op.rows <= INT_MAX && op.cols <= INT_MAX,
            "gemm: %s is too large for cuBLAS's 32-bit sizes (%s)", arg, t.str().c_str());
  if (t.dim() == 3) {
    op.batched = true;
    op.batch = t.size(0);
    op.batch_stride = t.stride(0);
  }
  return op;
}

cudaDataType cuda_data_type(DType t) {
  switch (t) {
    case DType::F32: return CUDA_R_32F;
    case DType::BF16: return CUDA_R_16BF;
    default: break;
  }
  ZT_ASSERT(false, "gemm: no cuBLAS type for %s", dtype_name(t));
  return CUDA_R_32F;
}

}  // namespace

void CudaBackend::gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c,
                       float alpha, float beta) {
  require_here(a, "gemm", "a");
  require_here(b, "gemm", "b");
  require_here(c, "gemm", "c");
  const GemmOperand A = describe_operand(a, "a");
  const GemmOperand B = describe_operand(b, "b");
  const GemmOperand C = describe_operand(c, "c");
  ZT_ASSERT(A.dtype == B.dtype && (A.dtype == DType::F32 || A.dtype == DType::BF16),
            "gemm: a and b must both be F32 or both BF16, got %s and %s", a.str().c_str(),
            b.str().c_str());
  ZT_ASSERT(C.dtype == DType::F32 || C.dtype == DType::BF16, "gemm: c must be F32 or BF16, got %s",
            c.str().c_str());

  // op(A): (M, K); op(B): (K, N); C: (M, N).
  const int64_t M = trans_a ? A.cols : A.rows;
  const int64_t K = trans_a ? A.rows : A.cols;
  const int64_t Kb = trans_b ? B.cols : B.rows;
  const int64_t N = trans_b ? B.rows : B.cols;
  ZT_ASSERT(K == Kb && C.rows == M && C.cols == N,
            "gemm: shapes do not match: a %s%s, b %s%s, c %s", a.str().c_str(),
            trans_a ? " (transposed)" : "", b.str().c_str(), trans_b ? " (transposed)" : "",
            c.str().c_str());

  // Batch: every 3-D operand has the same batch size; 2-D ones broadcast; C must
  // carry the batch when it is not 1 (as the CPU backend).
  int64_t batch = 1;
  for (const GemmOperand* op : {&A, &B, &C})
    if (op->batched) batch = op->batch > batch ? op->batch : batch;
  for (const GemmOperand* op : {&A, &B, &C})
    ZT_ASSERT(!op->batched || op->batch == batch, "gemm: batch sizes differ: a %s, b %s, c %s",
              a.str().c_str(), b.str().c_str(), c.str().c_str());
  ZT_ASSERT(C.batched || batch == 1, "gemm: c %s must carry the batch dimension %lld",
            c.str().c_str(), (long long)batch);
  if (batch == 0 || M == 0 || N == 0) return;  // nothing to compute

  activate();
  if (K == 0 || alpha == 0.0f) {
    // No product to add: C = beta * C (zeros when beta == 0), without reading A or B,
    // as BLAS specifies; cuBLAS is not asked to handle these degenerate cases.
    if (beta != 1.0f)
      launch_scale_matrix_stack(C.ptr, C.dtype, batch, M, N, C.ld, C.batch_stride, beta, stream_);
    return;
  }
  // A few rows (decode: M is the batch) times a transposed F32 weight: the weights are
  // streamed once by the few-row kernel (kernels/decode.cu), where cuBLAS's GEMV-like
  // kernels for M = 1..8 reach a fraction of the memory bandwidth (docs/gpu.md).
  if (batch == 1 && few_rows(M, N, K) && !trans_a && trans_b && alpha == 1.0f && beta == 0.0f &&
      A.dtype == DType::F32 && C.dtype == DType::F32) {
    launch_expert_rows_gemm(A.ptr, A.dtype, A.ld, B.ptr, B.dtype, B.ld, nullptr, 1, C.ptr,
                            C.dtype, C.ld, M, N, K, 1, stream_);
    return;
  }
  ZT_ASSERT(batch <= INT_MAX && K <= INT_MAX, "gemm: batch %lld or K %lld too large for cuBLAS",
            (long long)batch, (long long)K);

  // cuBLAS has no F32 x F32 -> BF16 GEMM: compute into a contiguous F32 buffer
  // (batch, M, N), loading C into it first when beta != 0, then convert into C.
  const bool via_f32 = A.dtype == DType::F32 && C.dtype == DType::BF16;
  CopyLayout c_layout;  // C's view <-> the contiguous F32 buffer
  void* c_ptr = C.ptr;
  int64_t ldc = C.ld, stride_c = C.batch_stride;
  if (via_f32) {
    c_layout.ndim = 3;
    const int64_t shape[3] = {batch, M, N};
    const int64_t c_strides[3] = {C.batch_stride, C.ld, 1};
    const int64_t tmp_strides[3] = {M * N, N, 1};
    for (int d = 0; d < 3; ++d) {
      c_layout.shape[d] = shape[d];
      c_layout.src_strides[d] = c_strides[d];
      c_layout.dst_strides[d] = tmp_strides[d];
    }
    c_ptr = allocate(size_t(batch * M * N) * sizeof(float));
    ldc = N;
    stride_c = M * N;
    if (beta != 0.0f)
      launch_copy_strided(C.ptr, DType::BF16, c_ptr, DType::F32, c_layout, stream_);
  }

  try {
    ZT_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        cublas_, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, int(N),
        int(M), int(K), &alpha, B.ptr, cuda_data_type(B.dtype), int(B.ld), B.batch_stride, A.ptr,
        cuda_data_type(A.dtype), int(A.ld), A.batch_stride, &beta, c_ptr,
        via_f32 ? CUDA_R_32F : cuda_data_type(C.dtype), int(ldc), stride_c, int(batch),
        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  } catch (...) {
    if (via_f32) deallocate(c_ptr);
    throw;
  }

  if (via_f32) {
    CopyLayout back = c_layout;
    for (int d = 0; d < 3; ++d) std::swap(back.src_strides[d], back.dst_strides[d]);
    launch_copy_strided(c_ptr, DType::F32, C.ptr, DType::BF16, back, stream_);
    deallocate(c_ptr);
  }
}

}  // namespace zeroth
