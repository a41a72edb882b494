// Expert parallelism for the DeepSeekMoE layer: rank r of an expert group of P ranks
// holds experts [r E/P, (r+1) E/P); every token row travels to the rank of each of its
// k experts and its output travels back (GShard / DeepSeek-V3 dispatch and combine).
//
// Forward, per MoE layer (a.xs: this rank's N*k rows sorted by global expert, so the
// rows for rank q's experts are one contiguous chunk):
//   1. counts: one host all-reduce of a (P, E) matrix whose row r is rank r's expert
//      counts; every rank then knows how many rows it sends to and receives from each
//      peer, and how many rows each of its experts gets (from every source).
//   2. dispatch: all_to_all_v of a.xs -> ep.xr, in (source rank, expert) order;
//   3. a row gather regroups them by local expert (source order kept within an expert),
//      the grouped SwiGLU GEMMs run on the local experts, a second gather restores
//      (source, expert) order;
//   4. combine: all_to_all_v back into a.eo, which then holds exactly what the
//      single-rank layer computes there (same rows, same order), so routing, the
//      weighted combine and the router's backward are unchanged.
// Backward mirrors it: the output gradients go to the experts' ranks, the local
// experts' weight gradients accumulate there (their rows from every rank of the group),
// the input gradients come back.
// With ExpertGroup::rows (the CPU decode) step 3 is per-row products
// (Backend::expert_rows_gemm) in the received order: no regrouping, and each row's
// output is what the single-rank decode computes for it.
//
// Owns: the count exchange, the permutations and the EP buffers (grown to the largest R
// seen). Must not: know about data parallelism (the caller reduces expert gradients
// over the ranks that hold the same experts, GradSync) or allocate per call once the
// buffers have grown.
#include <algorithm>
#include <vector>

#include "model/layers.h"
#include "zeroth/error.h"

namespace zeroth {
namespace model {

namespace {

// t holds at least `rows` rows of `cols` (cols 0: a vector); grows with headroom.
void ensure_rows(Backend& be, Tensor& t, int64_t rows, int64_t cols, DType dt) {
  if (t.defined() && t.size(0) >= rows) return;
  const int64_t cap = std::max<int64_t>(rows + rows / 4, 16);
  t = cols > 0 ? Tensor::empty(be, {cap, cols}, dt) : Tensor::empty(be, {cap}, dt);
}

Tensor rows_of(const Tensor& t, int64_t rows) { return t.narrow(0, 0, rows); }

std::vector<int64_t> times(const std::vector<int64_t>& v, int64_t c) {
  std::vector<int64_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = v[i] * c;
  return out;
}

}  // namespace

void moe_ep_experts_forward(Backend& be, const ModelConfig& cfg, const MoeParams& p,
                            const ExpertGroup& eg, MoeActs& a) {
  Communicator& comm = *eg.comm;
  const int P = comm.size(), me = comm.rank();
  const int64_t E = cfg.n_routed_experts, El = eg.count, C = cfg.hidden_size;
  const int64_t Im = cfg.moe_intermediate_size;
  ZT_ASSERT(El * P == E && eg.first == El * me, "expert group: rank %d of %d holds [%lld, +%lld) of %lld",
            me, P, (long long)eg.first, (long long)El, (long long)E);
  ZT_ASSERT(p.experts_gate.size(0) == El, "expert group: %lld local experts, parameters hold %lld",
            (long long)El, (long long)p.experts_gate.size(0));
  MoeEpActs& ep = a.ep;

  // 1. Every rank's per-expert counts, on every rank: m[q * E + e].
  std::vector<int64_t> m(size_t(P * E), 0);
  std::copy(a.load.begin(), a.load.end(), m.begin() + int64_t(me) * E);
  comm.all_reduce_host(m.data(), m.size(), ReduceOp::Sum);
  auto count = [&](int q, int64_t e) { return m[size_t(int64_t(q) * E + e)]; };
  ep.send_rows.assign(size_t(P), 0);
  ep.recv_rows.assign(size_t(P), 0);
  ep.load.assign(size_t(El), 0);
  for (int q = 0; q < P; ++q)
    for (int64_t j = 0; j < El; ++j) {
      ep.send_rows[size_t(q)] += count(me, int64_t(q) * El + j);
      ep.recv_rows[size_t(q)] += count(q, eg.first + j);
      ep.load[size_t(j)] += count(q, eg.first + j);
    }
  int64_t R = 0;
  for (int64_t x : ep.load) R += x;
  ep.rows = R;

  // The received rows come in (source q, expert j) order. Grouped GEMMs want them by
  // expert: idx holds to_expert | to_source (R each). Per-row products take them as they
  // come: idx holds each row's local expert.
  std::vector<int32_t> idx(size_t(eg.rows ? R : 2 * R));
  if (eg.rows) {
    int64_t i = 0;
    for (int q = 0; q < P; ++q)
      for (int64_t j = 0; j < El; ++j)
        for (int64_t n = count(q, eg.first + j); n > 0; --n) idx[size_t(i++)] = int32_t(j);
  } else {
    std::vector<int64_t> src_start(size_t(P), 0);  // first received row of source q
    for (int q = 1; q < P; ++q) src_start[size_t(q)] = src_start[size_t(q - 1)] + ep.recv_rows[size_t(q - 1)];
    std::vector<int64_t> within(size_t(P), 0);  // rows of source q before expert j
    int64_t i = 0;
    for (int64_t j = 0; j < El; ++j)
      for (int q = 0; q < P; ++q) {
        const int64_t n = count(q, eg.first + j);
        for (int64_t r = 0; r < n; ++r, ++i) {
          const int64_t src_row = src_start[size_t(q)] + within[size_t(q)] + r;
          idx[size_t(i)] = int32_t(src_row);
          idx[size_t(R + src_row)] = int32_t(i);
        }
        within[size_t(q)] += n;
      }
    ZT_ASSERT(i == R, "expert-parallel permutation covers %lld of %lld rows", (long long)i, (long long)R);
  }

  const DType ad = a.xs.dtype();
  ensure_rows(be, ep.to_expert, R, 0, DType::I32);
  ensure_rows(be, ep.xr, R, C, ad);
  ensure_rows(be, ep.gate, R, Im, ad);
  ensure_rows(be, ep.up, R, Im, ad);
  ensure_rows(be, ep.h, R, Im, ad);
  if (!eg.rows) {
    ensure_rows(be, ep.to_source, R, 0, DType::I32);
    ensure_rows(be, ep.xe, R, C, ad);
    ensure_rows(be, ep.eo, R, C, ad);
  }
  Tensor to_expert = rows_of(ep.to_expert, R), xr = rows_of(ep.xr, R);
  if (R > 0) to_expert.copy_from_host(idx.data(), size_t(R) * sizeof(int32_t));

  // 2-4: dispatch, experts, combine.
  comm.all_to_all_v(a.xs, times(ep.send_rows, C), xr, times(ep.recv_rows, C));
  if (R > 0) {
    Tensor gate = rows_of(ep.gate, R), up = rows_of(ep.up, R), h = rows_of(ep.h, R);
    if (eg.rows) {
      be.expert_rows_gemm(xr, p.experts_gate, to_expert, 1, gate);
      be.expert_rows_gemm(xr, p.experts_up, to_expert, 1, up);
      be.swiglu_forward(gate, up, h);
      be.expert_rows_gemm(h, p.experts_down, to_expert, 1, xr);  // the outputs, in source order
    } else {
      Tensor to_source = rows_of(ep.to_source, R), xe = rows_of(ep.xe, R), eo = rows_of(ep.eo, R);
      to_source.copy_from_host(idx.data() + R, size_t(R) * sizeof(int32_t));
      be.moe_gather(xr, to_expert, 1, xe);
      be.grouped_gemm(xe, p.experts_gate, true, ep.load, gate);
      be.grouped_gemm(xe, p.experts_up, true, ep.load, up);
      be.swiglu_forward(gate, up, h);
      be.grouped_gemm(h, p.experts_down, true, ep.load, eo);
      be.moe_gather(eo, to_source, 1, xr);  // xr now holds the outputs, in source order
    }
  }
  comm.all_to_all_v(xr, times(ep.recv_rows, C), a.eo, times(ep.send_rows, C));
}

void moe_ep_experts_backward(Backend& be, const MoeParams& p, MoeParams& g,
                             const ExpertGroup& eg, const MoeActs& a, MoeScratch& s) {
  Communicator& comm = *eg.comm;
  ZT_ASSERT(!eg.rows, "expert-parallel backward after a per-row (inference) forward");
  const MoeEpActs& ep = a.ep;
  const int64_t R = ep.rows, C = a.xs.size(1), Im = p.experts_gate.size(1);
  MoeEpScratch& es = s.ep;
  const DType ad = s.deo.dtype();
  ensure_rows(be, es.d_r, R, C, ad);
  ensure_rows(be, es.d_e, R, C, ad);
  ensure_rows(be, es.dh, R, Im, ad);
  ensure_rows(be, es.dgate, R, Im, ad);
  ensure_rows(be, es.dup, R, Im, ad);
  ensure_rows(be, es.dx_e, R, C, DType::F32);
  ensure_rows(be, es.dx_r, R, C, DType::F32);
  Tensor d_r = rows_of(es.d_r, R), dx_r = rows_of(es.dx_r, R);

  comm.all_to_all_v(s.deo, times(ep.send_rows, C), d_r, times(ep.recv_rows, C));
  if (R > 0) {
    const Tensor to_expert = rows_of(ep.to_expert, R), to_source = rows_of(ep.to_source, R);
    const Tensor xe = rows_of(ep.xe, R), gate = rows_of(ep.gate, R), up = rows_of(ep.up, R);
    const Tensor h = rows_of(ep.h, R);
    Tensor d_e = rows_of(es.d_e, R), dh = rows_of(es.dh, R), dgate = rows_of(es.dgate, R);
    Tensor dup = rows_of(es.dup, R), dx_e = rows_of(es.dx_e, R);
    be.moe_gather(d_r, to_expert, 1, d_e);
    be.grouped_gemm_wgrad(d_e, h, ep.load, g.experts_down, true);
    be.grouped_gemm(d_e, p.experts_down, false, ep.load, dh);
    be.swiglu_backward(dh, gate, up, dgate, dup);
    be.grouped_gemm_wgrad(dgate, xe, ep.load, g.experts_gate, true);
    be.grouped_gemm_wgrad(dup, xe, ep.load, g.experts_up, true);
    be.grouped_gemm(dgate, p.experts_gate, false, ep.load, dx_e);
    be.grouped_gemm(dup, p.experts_up, false, ep.load, dx_e, 1.0f, 1.0f);
    be.moe_gather(dx_e, to_source, 1, dx_r);
  }
  comm.all_to_all_v(dx_r, times(ep.recv_rows, C), s.dxs, times(ep.send_rows, C));
}

}  // namespace model
}  // namespace zeroth
