// CudaBackend's causal attention (forward and backward): argument checks, then the
// tensor-core kernels of kernels/flash_attention.cu where they take the shape (every
// operand BF16, head dims multiples of 16 up to kFlashMaxDqk / kFlashMaxDv), else the
// fp32 tiled kernels of kernels/attention.cu, on the stream.
//
// Owns: validating the (B, T, H, D) operands as backend.h documents them (strided in
// B, T and H, last dim contiguous; head dims up to kAttentionMaxHeadDim), choosing the
// kernels, and the backward's stream-ordered scratch (D = rowsum(dout * out)). Must
// not: synchronise or do math on the host.
#include <cstdint>
#include <initializer_list>

#include "attention.h"
#include "flash_attention.h"
#include "cuda/cuda_backend_impl.h"
#include "cuda/cuda_check.h"

namespace zeroth {

namespace {

// t is a float (B, T, H, d) tensor with a contiguous last dimension.
AttentionOperand operand(const Tensor& t, int64_t b, int64_t tl, int64_t h, int64_t d,
                         const char* op, const char* arg) {
  ZT_ASSERT(dtype_is_float(t.dtype()), "%s: %s %s must be F32, BF16 or F16", op, arg,
            t.str().c_str());
  ZT_ASSERT(t.shape() == Shape({b, tl, h, d}), "%s: %s is %s, expected shape [%lld, %lld, %lld, %lld]",
            op, arg, t.str().c_str(), (long long)b, (long long)tl, (long long)h, (long long)d);
  ZT_ASSERT(d <= 1 || t.stride(3) == 1, "%s: %s %s needs a contiguous last dimension", op, arg,
            t.str().c_str());
  return AttentionOperand{t.data_ptr(), t.dtype(), t.stride(0), t.stride(1), t.stride(2)};
}

void require_lse(const Tensor& lse, int64_t b, int64_t tl, int64_t h, const char* op) {
  ZT_ASSERT(lse.dtype() == DType::F32 && lse.shape() == Shape({b, h, tl}) && lse.is_contiguous(),
            "%s: lse is %s, expected contiguous F32[%lld, %lld, %lld]", op, lse.str().c_str(),
            (long long)b, (long long)h, (long long)tl);
}

bool all_bf16(std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts)
    if (t->dtype() != DType::BF16) return false;
  return true;
}

}  // namespace

void CudaBackend::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                                    Tensor& out, Tensor& lse) {
  const char* op = "attention_forward";
  require_here(q, op, "q");
  require_here(k, op, "k");
  require_here(v, op, "v");
  require_here(out, op, "out");
  require_here(lse, op, "lse");
  ZT_ASSERT(q.dim() == 4 && v.dim() == 4, "%s: q %s and v %s must be (B, T, H, D)", op,
            q.str().c_str(), v.str().c_str());
  const int64_t b = q.size(0), tl = q.size(1), h = q.size(2), dqk = q.size(3), dv = v.size(3);
  ZT_ASSERT(dqk >= 1 && dqk <= kAttentionMaxHeadDim && dv >= 1 && dv <= kAttentionMaxHeadDim,
            "%s: head dims Dqk %lld, Dv %lld must be in [1, %d] on CUDA", op, (long long)dqk,
            (long long)dv, kAttentionMaxHeadDim);
  const AttentionOperand qo = operand(q, b, tl, h, dqk, op, "q");
  const AttentionOperand ko = operand(k, b, tl, h, dqk, op, "k");
  const AttentionOperand vo = operand(v, b, tl, h, dv, op, "v");
  const AttentionOperand oo = operand(out, b, tl, h, dv, op, "out");
  require_lse(lse, b, tl, h, op);
  activate();
  if (all_bf16({&q, &k, &v, &out}) && flash_attention_supported(DType::BF16, dqk, dv)) {
    launch_flash_attention_forward(qo, ko, vo, oo, lse.data<float>(), b, tl, h, dqk, dv, scale,
                                   stream_);
  } else {
    launch_attention_forward(qo, ko, vo, oo, lse.data<float>(), b, tl, h, dqk, dv, scale, stream_);
  }
}

void CudaBackend::attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k,
                                     const Tensor& v, const Tensor& out, const Tensor& lse,
                                     float scale, Tensor& dq, Tensor& dk, Tensor& dv) {
  const char* op = "attention_backward";
  require_here(dout, op, "dout");
  require_here(q, op, "q");
  require_here(k, op, "k");
  require_here(v, op, "v");
  require_here(out, op, "out");
  require_here(lse, op, "lse");
  require_here(dq, op, "dq");
  require_here(dk, op, "dk");
  require_here(dv, op, "dv");
  ZT_ASSERT(q.dim() == 4 && v.dim() == 4, "%s: q %s and v %s must be (B, T, H, D)", op,
            q.str().c_str(), v.str().c_str());
  const int64_t b = q.size(0), tl = q.size(1), h = q.size(2), dqk = q.size(3), dvd = v.size(3);
  ZT_ASSERT(dqk >= 1 && dqk <= kAttentionMaxHeadDim && dvd >= 1 && dvd <= kAttentionMaxHeadDim,
            "%s: head dims Dqk %lld, Dv %lld must be in [1, %d] on CUDA", op, (long long)dqk,
            (long long)dvd, kAttentionMaxHeadDim);
  const AttentionOperand qo = operand(q, b, tl, h, dqk, op, "q");
  const AttentionOperand ko = operand(k, b, tl, h, dqk, op, "k");
  const AttentionOperand vo = operand(v, b, tl, h, dvd, op, "v");
  const AttentionOperand oo = operand(out, b, tl, h, dvd, op, "out");
  const AttentionOperand doo = operand(dout, b, tl, h, dvd, op, "dout");
  const AttentionOperand dqo = operand(dq, b, tl, h, dqk, op, "dq");
  const AttentionOperand dko = operand(dk, b, tl, h, dqk, op, "dk");
  const AttentionOperand dvo = operand(dv, b, tl, h, dvd, op, "dv");
  require_lse(lse, b, tl, h, op);
  if (b * tl * h == 0) return;
  activate();
  const size_t bytes = attention_backward_scratch_bytes(b, tl, h);
  Tensor scratch = Tensor::empty(*this, {int64_t(bytes / sizeof(float))}, DType::F32);
  if (all_bf16({&dout, &q, &k, &v, &out, &dq, &dk, &dv}) &&
      flash_attention_supported(DType::BF16, dqk, dvd)) {
    launch_flash_attention_backward(doo, qo, ko, vo, oo, lse.data<float>(), dqo, dko, dvo, b, tl,
                                    h, dqk, dvd, scale, scratch.data_ptr(), bytes, stream_);
  } else {
    launch_attention_backward(doo, qo, ko, vo, oo, lse.data<float>(), dqo, dko, dvo, b, tl, h, dqk,
                              dvd, scale, scratch.data_ptr(), bytes, stream_);
  }
}

}  // namespace zeroth
