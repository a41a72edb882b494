// SwiGLU MLP (dense layers and the MoE's shared experts): forward and backward.
// Owns: y = down(silu(gate x) * up x) as Backend ops. Must not: allocate per call.
#include "model/layers.h"
#include "zeroth/error.h"

namespace zeroth {
namespace model {

void alloc_mlp(Backend& be, int64_t N, int64_t W, MlpActs& a, DType ad) {
  a.gate = Tensor::empty(be, {N, W}, ad);
  a.up = Tensor::empty(be, {N, W}, ad);
  a.h = Tensor::empty(be, {N, W}, ad);
}

void alloc_mlp_scratch(Backend& be, int64_t N, int64_t Wmax, MlpScratch& s, DType ad) {
  s.dh = Tensor::empty(be, {N * Wmax}, ad);
  s.dgate = Tensor::empty(be, {N * Wmax}, ad);
  s.dup = Tensor::empty(be, {N * Wmax}, ad);
}

void mlp_forward(Backend& be, const MlpParams& p, const Tensor& x, MlpActs& a, Tensor& y) {
  linear_forward(be, x, p.gate, a.gate);
  linear_forward(be, x, p.up, a.up);
  be.swiglu_forward(a.gate, a.up, a.h);
  linear_forward(be, a.h, p.down, y);
}

void mlp_backward(Backend& be, const MlpParams& p, MlpParams& g, const Tensor& x, const MlpActs& a,
                  MlpScratch& s, const Tensor& dy, Tensor& dx, bool accumulate_dx) {
  const int64_t N = a.h.size(0), W = a.h.size(1);
  ZT_ASSERT(s.dh.numel() >= N * W, "MLP scratch too small: %lld < %lld", (long long)s.dh.numel(),
            (long long)(N * W));
  Tensor dh = s.dh.narrow(0, 0, N * W).view({N, W});
  Tensor dgate = s.dgate.narrow(0, 0, N * W).view({N, W});
  Tensor dup = s.dup.narrow(0, 0, N * W).view({N, W});
  linear_backward(be, dy, a.h, p.down, g.down, &dh, false);
  be.swiglu_backward(dh, a.gate, a.up, dgate, dup);
  linear_backward(be, dgate, x, p.gate, g.gate, &dx, accumulate_dx);
  linear_backward(be, dup, x, p.up, g.up, &dx, true);
}

}  // namespace model
}  // namespace zeroth
