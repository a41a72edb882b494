// CudaBackend::adamw_step: argument checks, then kernels/adamw.h's fused launcher.
//
// Owns: validating the optimizer state's dtypes and sizes as backend.h documents them
// (misuse aborts via ZT_ASSERT). Must not: do math on the host or synchronise.
#include "adamw.h"
#include "cuda/cuda_backend_impl.h"
#include "zeroth/error.h"

namespace zeroth {

void CudaBackend::adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                             const AdamWArgs& args, Tensor& param_copy) {
  const char* op = "adamw_step";
  require_here(param, op, "param");
  require_here(grad, op, "grad");
  require_here(m, op, "m");
  require_here(v, op, "v");
  const int64_t n = param.numel();
  ZT_ASSERT(param.dtype() == DType::F32 && m.dtype() == DType::F32 && v.dtype() == DType::F32,
            "%s: param %s, m %s and v %s must be F32", op, param.str().c_str(), m.str().c_str(),
            v.str().c_str());
  ZT_ASSERT(grad.dtype() == DType::F32 || grad.dtype() == DType::BF16,
            "%s: grad %s must be F32 or BF16", op, grad.str().c_str());
  ZT_ASSERT(grad.numel() == n && m.numel() == n && v.numel() == n,
            "%s: sizes differ: param %s, grad %s, m %s, v %s", op, param.str().c_str(),
            grad.str().c_str(), m.str().c_str(), v.str().c_str());
  ZT_ASSERT(param.is_contiguous() && grad.is_contiguous() && m.is_contiguous() &&
                v.is_contiguous(),
            "%s: param %s, grad %s, m %s and v %s must be contiguous", op, param.str().c_str(),
            grad.str().c_str(), m.str().c_str(), v.str().c_str());
  ZT_ASSERT(args.bias_correction1 > 0.0f && args.bias_correction2 > 0.0f,
            "%s: bias corrections %g, %g must be > 0", op, double(args.bias_correction1),
            double(args.bias_correction2));
  void* copy_ptr = nullptr;
  DType copy_dtype = DType::BF16;
  if (param_copy.defined()) {
    require_here(param_copy, op, "param_copy");
    ZT_ASSERT(param_copy.dtype() == DType::BF16 && param_copy.numel() == n &&
                  param_copy.is_contiguous(),
              "%s: param_copy %s must be a contiguous BF16 tensor of %lld elements", op,
              param_copy.str().c_str(), (long long)n);
    copy_ptr = param_copy.data_ptr();
    copy_dtype = param_copy.dtype();
  }
  activate();
  launch_adamw(param.data<float>(), grad.data_ptr(), grad.dtype(), m.data<float>(),
               v.data<float>(), n, args.lr, args.beta1, args.beta2, args.eps, args.weight_decay,
               args.grad_scale, args.bias_correction1, args.bias_correction2, copy_ptr,
               copy_dtype, stream_);
}

}  // namespace zeroth
