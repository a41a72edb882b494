// CudaBackend's mixture-of-experts ops: router forward/backward, the stable sort of
// slots by expert, gather and combine with their backwards (backend.h, "mixture of
// experts"). Argument checks, then launchers from kernels/moe_router.h and
// kernels/moe_permute.h on the backend's stream.
//
// Owns: validating shapes, dtypes, devices and layouts as backend.h documents them
// (misuse aborts via ZT_ASSERT) and the sort's stream-ordered scratch. Must not: do
// math on the host or synchronise (the caller copies expert_counts to the host itself).
#include <cstdint>
#include <initializer_list>

#include "cuda/cuda_backend_impl.h"
#include "cuda/cuda_check.h"
#include "moe_permute.h"
#include "moe_router.h"

namespace zeroth {

namespace {

using TensorList = std::initializer_list<const Tensor*>;

void require_shape(const Tensor& t, const Shape& shape, const char* op, const char* arg) {
  ZT_ASSERT(t.shape() == shape, "%s: %s is %s, expected shape %s", op, arg, t.str().c_str(),
            shape_str(shape).c_str());
}

void require_dtype(const Tensor& t, DType dt, const char* op, const char* arg) {
  ZT_ASSERT(t.dtype() == dt, "%s: %s %s must be %s", op, arg, t.str().c_str(), dtype_name(dt));
}

void require_contiguous(const Tensor& t, const char* op, const char* arg) {
  ZT_ASSERT(t.is_contiguous(), "%s: %s %s must be contiguous", op, arg, t.str().c_str());
}

// A float 2-D tensor whose rows may be strided but whose last dimension is
// contiguous; returns its row stride in elements.
int64_t row_stride(const Tensor& t, const char* op, const char* arg) {
  ZT_ASSERT(t.dim() == 2 && dtype_is_float(t.dtype()), "%s: %s %s must be a 2-D float tensor",
            op, arg, t.str().c_str());
  ZT_ASSERT(t.size(1) <= 1 || t.stride(1) == 1, "%s: %s %s needs a contiguous last dimension",
            op, arg, t.str().c_str());
  return t.stride(0);
}

}  // namespace

void CudaBackend::moe_router_forward(const Tensor& logits, const Tensor& bias, int n_group,
                                     int topk_group, int top_k, bool norm_topk_prob,
                                     float scaling, Tensor& scores, Tensor& topk_idx,
                                     Tensor& topk_weight) {
  const char* op = "moe_router_forward";
  for (const Tensor* t : TensorList{&logits, &bias, &scores, &topk_idx, &topk_weight})
    require_here(*t, op, "argument");
  ZT_ASSERT(logits.dim() == 2 && dtype_is_float(logits.dtype()),
            "%s: logits %s must be a 2-D float tensor (N, E)", op, logits.str().c_str());
  const int64_t N = logits.size(0), E = logits.size(1);
  ZT_ASSERT(E >= 1 && E <= kRouterMaxExperts, "%s: %lld experts, expected 1..%d", op,
            (long long)E, kRouterMaxExperts);
  ZT_ASSERT(n_group >= 1 && E % n_group == 0, "%s: n_group %d must divide the %lld experts", op,
            n_group, (long long)E);
  const int64_t per_group = E / n_group;
  ZT_ASSERT(per_group >= 2,
            "%s: %lld experts in %d groups: a group's score is the sum of its top 2, so each "
            "group needs at least 2 experts", op, (long long)E, n_group);
  ZT_ASSERT(topk_group >= 1 && topk_group <= n_group, "%s: topk_group %d not in [1, %d]", op,
            topk_group, n_group);
  ZT_ASSERT(top_k >= 1 && top_k <= topk_group * per_group,
            "%s: top_k %d not in [1, %lld] (topk_group * experts per group)", op, top_k,
            (long long)(topk_group * per_group));
  require_shape(bias, {E}, op, "bias");
  require_shape(scores, {N, E}, op, "scores");
  require_shape(topk_idx, {N, top_k}, op, "topk_idx");
  require_shape(topk_weight, {N, top_k}, op, "topk_weight");
  require_dtype(bias, DType::F32, op, "bias");
  require_dtype(scores, DType::F32, op, "scores");
  require_dtype(topk_idx, DType::I32, op, "topk_idx");
  require_dtype(topk_weight, DType::F32, op, "topk_weight");
  for (const Tensor* t : TensorList{&logits, &bias, &scores, &topk_idx, &topk_weight})
    require_contiguous(*t, op, "argument");
  activate();
  launch_moe_router_forward(logits.data_ptr(), logits.dtype(), bias.data<float>(), N, int(E),
                            n_group, topk_group, top_k, norm_topk_prob, scaling,
                            scores.data<float>(), topk_idx.data<int32_t>(),
                            topk_weight.data<float>(), stream_);
}

void CudaBackend::moe_router_backward(const Tensor& scores, const Tensor& topk_idx,
                                      const Tensor& dtopk_weight, bool norm_topk_prob,
                                      float scaling, Tensor& dlogits) {
  const char* op = "moe_router_backward";
  for (const Tensor* t : TensorList{&scores, &topk_idx, &dtopk_weight, &dlogits})
    require_here(*t, op, "argument");
  ZT_ASSERT(scores.dim() == 2 && topk_idx.dim() == 2,
            "%s: scores %s and topk_idx %s must be 2-D", op, scores.str().c_str(),
            topk_idx.str().c_str());
  const int64_t N = scores.size(0), E = scores.size(1), k = topk_idx.size(1);
  ZT_ASSERT(E <= INT32_MAX && k >= 1 && k <= E, "%s: top_k %lld with %lld experts", op,
            (long long)k, (long long)E);
  require_shape(topk_idx, {N, k}, op, "topk_idx");
  require_shape(dtopk_weight, {N, k}, op, "dtopk_weight");
  require_shape(dlogits, {N, E}, op, "dlogits");
  require_dtype(scores, DType::F32, op, "scores");
  require_dtype(topk_idx, DType::I32, op, "topk_idx");
  require_dtype(dtopk_weight, DType::F32, op, "dtopk_weight");
  require_dtype(dlogits, DType::F32, op, "dlogits");
  for (const Tensor* t : TensorList{&scores, &topk_idx, &dtopk_weight, &dlogits})
    require_contiguous(*t, op, "argument");
  activate();
  launch_moe_router_backward(scores.data<float>(), topk_idx.data<int32_t>(),
                             dtopk_weight.data<float>(), N, int(E), int(k), norm_topk_prob,
                             scaling, dlogits.data<float>(), stream_);
}

void CudaBackend::moe_sort_by_expert(const Tensor& topk_idx, int num_experts,
                                     Tensor& sorted_to_slot, Tensor& slot_to_sorted,
                                     Tensor& expert_counts) {
  const char* op = "moe_sort_by_expert";
  for (const Tensor* t : TensorList{&topk_idx, &sorted_to_slot, &slot_to_sorted, &expert_counts})
    require_here(*t, op, "argument");
  ZT_ASSERT(topk_idx.dim() == 2, "%s: topk_idx %s must be (N, k)", op, topk_idx.str().c_str());
  ZT_ASSERT(num_experts >= 1 && num_experts <= kSortMaxExperts, "%s: %d experts, expected 1..%d",
            op, num_experts, kSortMaxExperts);
  const int64_t slots = topk_idx.numel();
  ZT_ASSERT(slots <= INT32_MAX, "%s: %lld slots exceed I32 positions", op, (long long)slots);
  require_shape(sorted_to_slot, {slots}, op, "sorted_to_slot");
  require_shape(slot_to_sorted, {slots}, op, "slot_to_sorted");
  require_shape(expert_counts, {int64_t(num_experts)}, op, "expert_counts");
  for (const Tensor* t : TensorList{&topk_idx, &sorted_to_slot, &slot_to_sorted, &expert_counts}) {
    require_dtype(*t, DType::I32, op, "argument");
    require_contiguous(*t, op, "argument");
  }
  activate();
  void* scratch = slots > 0 ? allocate(moe_sort_scratch_bytes(slots, num_experts)) : nullptr;
  try {
    launch_moe_sort_by_expert(topk_idx.data<int32_t>(), slots, num_experts,
                              sorted_to_slot.data<int32_t>(), slot_to_sorted.data<int32_t>(),
                              expert_counts.data<int32_t>(), scratch, stream_);
  } catch (...) {
    if (scratch != nullptr) deallocate(scratch);
    throw;
  }
  if (scratch != nullptr) deallocate(scratch);  // stream-ordered: after the kernels
}

void CudaBackend::moe_gather(const Tensor& x, const Tensor& sorted_to_slot, int k, Tensor& out) {
  const char* op = "moe_gather";
  for (const Tensor* t : TensorList{&x, &sorted_to_slot, &out}) require_here(*t, op, "argument");
  const int64_t x_ld = row_stride(x, op, "x");
  const int64_t out_ld = row_stride(out, op, "out");
  const int64_t N = x.size(0), C = x.size(1);
  ZT_ASSERT(k >= 1, "%s: k %d must be >= 1", op, k);
  require_shape(out, {N * k, C}, op, "out");
  require_shape(sorted_to_slot, {N * k}, op, "sorted_to_slot");
  require_dtype(sorted_to_slot, DType::I32, op, "sorted_to_slot");
  require_contiguous(sorted_to_slot, op, "sorted_to_slot");
  activate();
  launch_moe_gather(x.data_ptr(), x.dtype(), x_ld, sorted_to_slot.data<int32_t>(), k,
                    out.data_ptr(), out.dtype(), out_ld, N * k, C, stream_);
}

void CudaBackend::moe_gather_backward(const Tensor& dsorted, const Tensor& slot_to_sorted, int k,
                                      Tensor& dx) {
  const char* op = "moe_gather_backward";
  for (const Tensor* t : TensorList{&dsorted, &slot_to_sorted, &dx}) require_here(*t, op, "argument");
  const int64_t ds_ld = row_stride(dsorted, op, "dsorted");
  const int64_t dx_ld = row_stride(dx, op, "dx");
  const int64_t N = dx.size(0), C = dx.size(1);
  ZT_ASSERT(k >= 1, "%s: k %d must be >= 1", op, k);
  require_shape(dsorted, {N * k, C}, op, "dsorted");
  require_shape(slot_to_sorted, {N * k}, op, "slot_to_sorted");
  require_dtype(slot_to_sorted, DType::I32, op, "slot_to_sorted");
  require_contiguous(slot_to_sorted, op, "slot_to_sorted");
  activate();
  launch_moe_gather_backward(dsorted.data_ptr(), dsorted.dtype(), ds_ld,
                             slot_to_sorted.data<int32_t>(), k, dx.data_ptr(), dx.dtype(), dx_ld,
                             N, C, stream_);
}

void CudaBackend::moe_combine(const Tensor& expert_out, const Tensor& slot_to_sorted,
                              const Tensor& weight, Tensor& out, bool accumulate) {
  const char* op = "moe_combine";
  for (const Tensor* t : TensorList{&expert_out, &slot_to_sorted, &weight, &out})
    require_here(*t, op, "argument");
  const int64_t eo_ld = row_stride(expert_out, op, "expert_out");
  const int64_t out_ld = row_stride(out, op, "out");
  ZT_ASSERT(weight.dim() == 2, "%s: weight %s must be (N, k)", op, weight.str().c_str());
  const int64_t N = out.size(0), C = out.size(1), k = weight.size(1);
  ZT_ASSERT(k >= 1 && k <= INT32_MAX, "%s: weight %s needs k >= 1", op, weight.str().c_str());
  require_shape(weight, {N, k}, op, "weight");
  require_shape(expert_out, {N * k, C}, op, "expert_out");
  require_shape(slot_to_sorted, {N * k}, op, "slot_to_sorted");
  require_dtype(weight, DType::F32, op, "weight");
  require_dtype(slot_to_sorted, DType::I32, op, "slot_to_sorted");
  require_contiguous(weight, op, "weight");
  require_contiguous(slot_to_sorted, op, "slot_to_sorted");
  activate();
  launch_moe_combine(expert_out.data_ptr(), expert_out.dtype(), eo_ld,
                     slot_to_sorted.data<int32_t>(), weight.data<float>(), int(k),
                     out.data_ptr(), out.dtype(), out_ld, accumulate, N, C, stream_);
}

void CudaBackend::moe_combine_backward(const Tensor& dout, const Tensor& expert_out,
                                       const Tensor& slot_to_sorted, const Tensor& weight,
                                       Tensor& dexpert_out, Tensor& dweight) {
  const char* op = "moe_combine_backward";
  for (const Tensor* t : TensorList{&dout, &expert_out, &slot_to_sorted, &weight, &dexpert_out, &dweight})
    require_here(*t, op, "argument");
  const int64_t dout_ld = row_stride(dout, op, "dout");
  const int64_t eo_ld = row_stride(expert_out, op, "expert_out");
  const int64_t dexp_ld = row_stride(dexpert_out, op, "dexpert_out");
  ZT_ASSERT(weight.dim() == 2, "%s: weight %s must be (N, k)", op, weight.str().c_str());
  const int64_t N = dout.size(0), C = dout.size(1), k = weight.size(1);
  ZT_ASSERT(k >= 1 && k <= INT32_MAX, "%s: weight %s needs k >= 1", op, weight.str().c_str());
  require_shape(weight, {N, k}, op, "weight");
  require_shape(expert_out, {N * k, C}, op, "expert_out");
  require_shape(dexpert_out, {N * k, C}, op, "dexpert_out");
  require_shape(slot_to_sorted, {N * k}, op, "slot_to_sorted");
  require_shape(dweight, {N, k}, op, "dweight");
  require_dtype(weight, DType::F32, op, "weight");
  require_dtype(dweight, DType::F32, op, "dweight");
  require_dtype(slot_to_sorted, DType::I32, op, "slot_to_sorted");
  for (const Tensor* t : TensorList{&weight, &dweight, &slot_to_sorted})
    require_contiguous(*t, op, "argument");
  activate();
  launch_moe_combine_backward(dout.data_ptr(), dout.dtype(), dout_ld, expert_out.data_ptr(),
                              expert_out.dtype(), eo_ld, slot_to_sorted.data<int32_t>(),
                              weight.data<float>(), int(k), dexpert_out.data_ptr(),
                              dexpert_out.dtype(), dexp_ld, dweight.data<float>(), N, C, stream_);
}

}  // namespace zeroth
