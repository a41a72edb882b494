// CudaBackend's transformer layer ops (embedding, RMSNorm, RoPE, SwiGLU, token
// log-probabilities): argument checks, then launchers from kernels/ on the stream.
//
// Owns: validating shapes, dtypes, devices and layouts exactly as backend.h documents
// them (misuse aborts via ZT_ASSERT), sizing stream-ordered scratch (freed on the
// stream after the kernels that use it). Must not: do math on the host or synchronise.
// Attention lives in cuda_attention.cpp.
#include <cstdint>

#include "cuda/cuda_backend_impl.h"
#include "cuda/cuda_check.h"
#include "embedding.h"
#include "logprob.h"
#include "rmsnorm.h"
#include "rope.h"
#include "swiglu.h"

namespace zeroth {

namespace {

void require_contiguous(const Tensor& t, const char* op, const char* arg) {
  ZT_ASSERT(t.is_contiguous(), "%s: %s %s must be contiguous", op, arg, t.str().c_str());
}

void require_float(const Tensor& t, const char* op, const char* arg) {
  ZT_ASSERT(dtype_is_float(t.dtype()), "%s: %s %s must be F32, BF16 or F16", op, arg,
            t.str().c_str());
}

// t is contiguous with exactly `shape` and dtype dt.
void require_exact(const Tensor& t, const Shape& shape, DType dt, const char* op,
                   const char* arg) {
  ZT_ASSERT(t.dtype() == dt && t.shape() == shape && t.is_contiguous(),
            "%s: %s is %s, expected contiguous %s%s", op, arg, t.str().c_str(), dtype_name(dt),
            shape_str(shape).c_str());
}

// A 2-D float tensor (rows, cols) whose rows may be strided (last dim contiguous).
void require_rows(const Tensor& t, int64_t rows, int64_t cols, const char* op, const char* arg) {
  require_float(t, op, arg);
  ZT_ASSERT(t.dim() == 2 && t.size(0) == rows && t.size(1) == cols,
            "%s: %s is %s, expected shape [%lld, %lld]", op, arg, t.str().c_str(),
            (long long)rows, (long long)cols);
  ZT_ASSERT(cols <= 1 || t.stride(1) == 1, "%s: %s %s needs a contiguous last dimension", op, arg,
            t.str().c_str());
}

// t is a contiguous float tensor with like's shape (the element-wise ops).
void require_elementwise(const Tensor& t, const Tensor& like, const char* op, const char* arg) {
  require_float(t, op, arg);
  require_contiguous(t, op, arg);
  ZT_ASSERT(t.shape() == like.shape(), "%s: %s %s must have gate's shape %s", op, arg,
            t.str().c_str(), like.str().c_str());
}

// A scratch buffer of at least `bytes` on be, freed (stream-ordered) when it goes out of
// scope, after the kernels enqueued before that point.
Tensor scratch_tensor(Backend& be, size_t bytes) {
  const int64_t floats = int64_t((bytes + sizeof(float) - 1) / sizeof(float));
  return Tensor::empty(be, {floats > 0 ? floats : 1}, DType::F32);
}

}  // namespace

void CudaBackend::embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out) {
  const char* op = "embedding_forward";
  require_here(ids, op, "ids");
  require_here(table, op, "table");
  require_here(out, op, "out");
  ZT_ASSERT(ids.dtype() == DType::I32 && ids.dim() == 1 && ids.is_contiguous(),
            "%s: ids %s must be contiguous I32 (N)", op, ids.str().c_str());
  require_float(table, op, "table");
  require_float(out, op, "out");
  ZT_ASSERT(table.dim() == 2, "%s: table %s must be (V, C)", op, table.str().c_str());
  require_contiguous(table, op, "table");
  const int64_t n = ids.size(0), v = table.size(0), c = table.size(1);
  ZT_ASSERT(out.shape() == Shape({n, c}) && out.is_contiguous(),
            "%s: out %s must be contiguous [%lld, %lld]", op, out.str().c_str(), (long long)n,
            (long long)c);
  activate();
  launch_embedding_forward(ids.data<int32_t>(), table.data_ptr(), table.dtype(), out.data_ptr(),
                           out.dtype(), n, v, c, stream_);
}

void CudaBackend::embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable) {
  const char* op = "embedding_backward";
  require_here(ids, op, "ids");
  require_here(dout, op, "dout");
  require_here(dtable, op, "dtable");
  ZT_ASSERT(ids.dtype() == DType::I32 && ids.dim() == 1 && ids.is_contiguous(),
            "%s: ids %s must be contiguous I32 (N)", op, ids.str().c_str());
  ZT_ASSERT(dtable.dtype() == DType::F32 && dtable.dim() == 2 && dtable.is_contiguous(),
            "%s: dtable %s must be contiguous F32 (V, C)", op, dtable.str().c_str());
  const int64_t n = ids.size(0), v = dtable.size(0), c = dtable.size(1);
  require_float(dout, op, "dout");
  ZT_ASSERT(dout.shape() == Shape({n, c}) && dout.is_contiguous(),
            "%s: dout %s must be contiguous [%lld, %lld]", op, dout.str().c_str(), (long long)n,
            (long long)c);
  if (n == 0 || c == 0) return;
  activate();
  const size_t bytes = embedding_backward_scratch_bytes(n);
  Tensor scratch = scratch_tensor(*this, bytes);
  launch_embedding_backward(ids.data<int32_t>(), dout.data_ptr(), dout.dtype(),
                            dtable.data<float>(), n, v, c, scratch.data_ptr(), bytes, stream_);
}

void CudaBackend::rmsnorm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& out,
                                  Tensor& rstd) {
  const char* op = "rmsnorm_forward";
  require_here(x, op, "x");
  require_here(w, op, "w");
  require_here(out, op, "out");
  require_here(rstd, op, "rstd");
  ZT_ASSERT(x.dim() == 2, "%s: x %s must be (N, C)", op, x.str().c_str());
  const int64_t n = x.size(0), c = x.size(1);
  require_rows(x, n, c, op, "x");
  require_rows(out, n, c, op, "out");
  require_float(w, op, "w");
  ZT_ASSERT(w.shape() == Shape({c}) && w.is_contiguous(), "%s: w %s must be contiguous [%lld]",
            op, w.str().c_str(), (long long)c);
  require_exact(rstd, {n}, DType::F32, op, "rstd");
  activate();
  launch_rmsnorm_forward(x.data_ptr(), x.dtype(), x.stride(0), w.data_ptr(), w.dtype(), eps,
                         out.data_ptr(), out.dtype(), out.stride(0), rstd.data<float>(), n, c,
                         stream_);
}

void CudaBackend::rmsnorm_backward(const Tensor& dout, const Tensor& x, const Tensor& w,
                                   const Tensor& rstd, Tensor& dx, Tensor& dw) {
  const char* op = "rmsnorm_backward";
  require_here(dout, op, "dout");
  require_here(x, op, "x");
  require_here(w, op, "w");
  require_here(rstd, op, "rstd");
  require_here(dx, op, "dx");
  require_here(dw, op, "dw");
  ZT_ASSERT(x.dim() == 2, "%s: x %s must be (N, C)", op, x.str().c_str());
  const int64_t n = x.size(0), c = x.size(1);
  require_rows(x, n, c, op, "x");
  require_rows(dout, n, c, op, "dout");
  require_rows(dx, n, c, op, "dx");
  require_float(w, op, "w");
  ZT_ASSERT(w.shape() == Shape({c}) && w.is_contiguous(), "%s: w %s must be contiguous [%lld]",
            op, w.str().c_str(), (long long)c);
  require_exact(rstd, {n}, DType::F32, op, "rstd");
  require_exact(dw, {c}, DType::F32, op, "dw");
  if (n == 0 || c == 0) return;
  activate();
  const size_t bytes = rmsnorm_backward_scratch_bytes(n, c);
  Tensor scratch = scratch_tensor(*this, bytes);
  launch_rmsnorm_backward(dout.data_ptr(), dout.dtype(), dout.stride(0), x.data_ptr(), x.dtype(),
                          x.stride(0), w.data_ptr(), w.dtype(), rstd.data<float>(), dx.data_ptr(),
                          dx.dtype(), dx.stride(0), dw.data<float>(), n, c, scratch.data_ptr(),
                          bytes, stream_);
}

void CudaBackend::rope(Tensor& x, const Tensor& positions, const Tensor& cos, const Tensor& sin,
                       bool interleaved, bool inverse) {
  const char* op = "rope";
  require_here(x, op, "x");
  require_here(positions, op, "positions");
  require_here(cos, op, "cos");
  require_here(sin, op, "sin");
  require_float(x, op, "x");
  ZT_ASSERT(x.dim() == 3 && x.size(2) % 2 == 0, "%s: x %s must be (N, H, D) with D even", op,
            x.str().c_str());
  const int64_t n = x.size(0), heads = x.size(1), d = x.size(2);
  ZT_ASSERT(d == 0 || x.stride(2) == 1, "%s: x %s needs a contiguous last dimension", op,
            x.str().c_str());
  require_exact(positions, {n}, DType::I32, op, "positions");
  ZT_ASSERT(cos.dim() == 2 && cos.size(1) == d / 2, "%s: cos %s must be (P, %lld)", op,
            cos.str().c_str(), (long long)(d / 2));
  const int64_t max_pos = cos.size(0);
  require_exact(cos, {max_pos, d / 2}, DType::F32, op, "cos");
  require_exact(sin, {max_pos, d / 2}, DType::F32, op, "sin");
  activate();
  launch_rope(x.data_ptr(), x.dtype(), x.stride(0), x.stride(1), positions.data<int32_t>(),
              cos.data<float>(), sin.data<float>(), n, heads, d, max_pos, interleaved, inverse,
              stream_);
}

void CudaBackend::swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) {
  const char* op = "swiglu_forward";
  require_here(gate, op, "gate");
  require_here(up, op, "up");
  require_here(out, op, "out");
  require_elementwise(gate, gate, op, "gate");
  require_elementwise(up, gate, op, "up");
  require_elementwise(out, gate, op, "out");
  activate();
  launch_swiglu_forward(gate.data_ptr(), gate.dtype(), up.data_ptr(), up.dtype(), out.data_ptr(),
                        out.dtype(), gate.numel(), stream_);
}

void CudaBackend::swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up,
                                  Tensor& dgate, Tensor& dup) {
  const char* op = "swiglu_backward";
  require_here(dout, op, "dout");
  require_here(gate, op, "gate");
  require_here(up, op, "up");
  require_here(dgate, op, "dgate");
  require_here(dup, op, "dup");
  require_elementwise(dout, gate, op, "dout");
  require_elementwise(gate, gate, op, "gate");
  require_elementwise(up, gate, op, "up");
  require_elementwise(dgate, gate, op, "dgate");
  require_elementwise(dup, gate, op, "dup");
  ZT_ASSERT(dgate.data_ptr() != dup.data_ptr() || gate.numel() == 0,
            "%s: dgate and dup alias", op);
  activate();
  launch_swiglu_backward(dout.data_ptr(), dout.dtype(), gate.data_ptr(), gate.dtype(),
                         up.data_ptr(), up.dtype(), dgate.data_ptr(), dgate.dtype(),
                         dup.data_ptr(), dup.dtype(), gate.numel(), stream_);
}

void CudaBackend::logprob_forward(const Tensor& logits, const Tensor& targets, float temperature,
                                  Tensor& logprob, Tensor& lse, Tensor& entropy) {
  const char* op = "logprob_forward";
  require_here(logits, op, "logits");
  require_here(targets, op, "targets");
  require_here(logprob, op, "logprob");
  require_here(lse, op, "lse");
  require_float(logits, op, "logits");
  ZT_ASSERT(logits.dim() == 2 && logits.is_contiguous(), "%s: logits %s must be contiguous (N, V)",
            op, logits.str().c_str());
  ZT_ASSERT(temperature > 0.0f, "%s: temperature %g must be positive", op, double(temperature));
  const int64_t n = logits.size(0), v = logits.size(1);
  ZT_ASSERT(v > 0 || n == 0, "%s: logits %s has an empty vocabulary", op, logits.str().c_str());
  require_exact(targets, {n}, DType::I32, op, "targets");
  require_exact(logprob, {n}, DType::F32, op, "logprob");
  require_exact(lse, {n}, DType::F32, op, "lse");
  float* entropy_ptr = nullptr;
  if (entropy.defined()) {
    require_here(entropy, op, "entropy");
    require_exact(entropy, {n}, DType::F32, op, "entropy");
    entropy_ptr = entropy.data<float>();
  }
  activate();
  launch_logprob_forward(logits.data_ptr(), logits.dtype(), targets.data<int32_t>(), temperature,
                         logprob.data<float>(), lse.data<float>(), entropy_ptr, n, v, stream_);
}

void CudaBackend::logprob_backward(const Tensor& logits, const Tensor& targets, float temperature,
                                   const Tensor& lse, const Tensor& dlogprob,
                                   const Tensor& dentropy, Tensor& dlogits) {
  const char* op = "logprob_backward";
  require_here(logits, op, "logits");
  require_here(targets, op, "targets");
  require_here(lse, op, "lse");
  require_here(dlogprob, op, "dlogprob");
  require_here(dlogits, op, "dlogits");
  require_float(logits, op, "logits");
  require_float(dlogits, op, "dlogits");
  ZT_ASSERT(logits.dim() == 2 && logits.is_contiguous(), "%s: logits %s must be contiguous (N, V)",
            op, logits.str().c_str());
  ZT_ASSERT(temperature > 0.0f, "%s: temperature %g must be positive", op, double(temperature));
  const int64_t n = logits.size(0), v = logits.size(1);
  ZT_ASSERT(dlogits.shape() == logits.shape() && dlogits.is_contiguous(),
            "%s: dlogits %s must be contiguous like logits %s", op, dlogits.str().c_str(),
            logits.str().c_str());
  ZT_ASSERT(dlogits.data_ptr() != logits.data_ptr() || n * v == 0,
            "%s: dlogits aliases logits (the entropy pass rereads them)", op);
  require_exact(targets, {n}, DType::I32, op, "targets");
  require_exact(lse, {n}, DType::F32, op, "lse");
  require_exact(dlogprob, {n}, DType::F32, op, "dlogprob");
  const float* dentropy_ptr = nullptr;
  if (dentropy.defined()) {
    require_here(dentropy, op, "dentropy");
    require_exact(dentropy, {n}, DType::F32, op, "dentropy");
    dentropy_ptr = dentropy.data<float>();
  }
  activate();
  launch_logprob_backward(logits.data_ptr(), logits.dtype(), targets.data<int32_t>(), temperature,
                          lse.data<float>(), dlogprob.data<float>(), dentropy_ptr,
                          dlogits.data_ptr(), dlogits.dtype(), n, v, stream_);
}

}  // namespace zeroth
