// CpuBackend optimizer step: adamw_step on fp32 master weights, with an optional
// bf16 compute copy.
//
// Owns: one blocked elementwise loop (each element depends only on its own state,
// so results never depend on the thread count).
// Must not: compute the step count, bias corrections or clipping scale (the
// optimizer passes them in AdamWArgs).
#include <cmath>

#include "tensor/cpu_backend.h"
#include "zeroth/error.h"

namespace zeroth {
namespace {

void check_state(const Tensor& t, int64_t n, const char* arg) {
  cpu::check_cpu(t, "adamw_step", arg);
  cpu::check_contiguous(t, "adamw_step", arg);
  ZT_ASSERT(t.dtype() == DType::F32 && t.numel() == n,
            "adamw_step: %s is %s, expected F32 with %lld elements", arg, t.str().c_str(),
            (long long)n);
}

}  // namespace

void CpuBackend::adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                            const AdamWArgs& args, Tensor& param_copy) {
  const char* op = "adamw_step";
  const int64_t n = param.numel();
  check_state(param, n, "param");
  check_state(m, n, "m");
  check_state(v, n, "v");
  cpu::check_float(grad, op, "grad");
  cpu::check_contiguous(grad, op, "grad");
  ZT_ASSERT(grad.numel() == n && grad.dtype() != DType::F16,
            "adamw_step: grad is %s, expected F32 or BF16 with %lld elements", grad.str().c_str(),
            (long long)n);
  const bool copy = param_copy.defined();
  if (copy) {
    cpu::check_cpu(param_copy, op, "param_copy");
    cpu::check_contiguous(param_copy, op, "param_copy");
    ZT_ASSERT(param_copy.dtype() == DType::BF16 && param_copy.numel() == n,
              "adamw_step: param_copy is %s, expected BF16 with %lld elements",
              param_copy.str().c_str(), (long long)n);
  }
  ZT_ASSERT(args.bias_correction1 > 0.0f && args.bias_correction2 > 0.0f,
            "adamw_step: bias corrections %g, %g must be > 0", double(args.bias_correction1),
            double(args.bias_correction2));
  float* p = param.data<float>();
  float* mp = m.data<float>();
  float* vp = v.data<float>();
  uint16_t* pc = copy ? static_cast<uint16_t*>(param_copy.data_ptr()) : nullptr;
  const float b1 = args.beta1, b2 = args.beta2, lr = args.lr, wd = args.weight_decay;
  const float gs = args.grad_scale, eps = args.eps;
  const float inv_bc1 = 1.0f / args.bias_correction1, inv_bc2 = 1.0f / args.bias_correction2;
  cpu::parallel_blocks(threads_, n, cpu::kBlock, [&](int64_t b, int64_t e) {
    float gbuf[cpu::kBlock];
    const float* g = grad.dtype() == DType::F32 ? grad.data<float>() + b : gbuf;
    if (grad.dtype() != DType::F32)
      cpu::to_f32(static_cast<const char*>(grad.data_ptr()) + size_t(b) * grad.element_size(),
                  grad.dtype(), e - b, gbuf);
    for (int64_t i = 0; i < e - b; ++i) {
      const int64_t k = b + i;
      const float gi = g[i] * gs;
      const float mi = b1 * mp[k] + (1.0f - b1) * gi;
      const float vi = b2 * vp[k] + (1.0f - b2) * gi * gi;
      mp[k] = mi;
      vp[k] = vi;
      p[k] -= lr * (mi * inv_bc1 / (std::sqrt(vi * inv_bc2) + eps) + wd * p[k]);
    }
    if (pc) cpu::from_f32(p + b, DType::BF16, e - b, pc + b);
  });
}

}  // namespace zeroth
