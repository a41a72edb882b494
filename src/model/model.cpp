// Model: the DeepSeek-V3 forward and backward, layer after layer (llm.c style).
// Owns: the per-(B, T) activation buffers (ModelActivations), the order of layers in
// forward and in reverse, logits -> log-probabilities / cross-entropy, MoE statistics
// and the router-bias update. Must not: implement any layer math (src/model/layer_*.cpp)
// or call BLAS/CUDA; communicate (the MoE layers use the expert group handed to them).
#include "zeroth/model.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "model/layers.h"
#include "zeroth/comm.h"
#include "zeroth/error.h"

namespace zeroth {

struct LayerActivations {
  Tensor in_normed;    // (N, C) input_layernorm(x)
  Tensor in_rstd;      // (N)
  model::AttentionActs attn;
  Tensor x_mid;        // (N, C) x + attention
  Tensor post_normed;  // (N, C)
  Tensor post_rstd;    // (N)
  model::MlpActs mlp;  // dense layers
  model::MoeActs moe;  // MoE layers
};

struct ModelActivations {
  int64_t B = 0, T = 0, N = 0;
  Tensor ids;                   // I32 (N) copy of the last forward's ids
  model::RopeTables rope;
  std::vector<Tensor> resid;    // L+1 x (N, C): input of layer l; resid[L] the last output
  bool recompute = false;       // one shared LayerActivations, refilled per layer
  std::vector<LayerActivations> layers;  // L, or 1 with recompute
  std::vector<std::vector<int64_t>> moe_load;  // (L) expert loads of the last forward
  std::vector<int64_t> row_lengths;  // (B) of the last forward, when it had them
  bool has_row_lengths = false;
  LayerActivations& layer(size_t l) { return layers[recompute ? 0 : l]; }
  Tensor branch_out;            // (N, C) attention / MLP output before the residual add
  Tensor final_normed;          // (N, C)
  Tensor final_rstd;            // (N)
  Tensor logits;                // F32 (N, V) (fp32 output of the lm_head GEMM)
  Tensor targets;               // I32 (N) of the last token_logprobs
  Tensor lse;                   // F32 (N)
  Tensor logprob, no_entropy;   // F32 (N) (cross_entropy_step), undefined
  Tensor dlogprob;              // F32 (N)
  Tensor dlogits;               // (N, V) activation dtype
  // backward scratch
  Tensor dres, dnormed, dtmp;   // F32 (N, C)
  Tensor dres_c;                // (N, C) dres in the activation dtype (a GEMM operand);
                                // aliases dres when that is F32
  model::AttentionScratch attn_s;
  model::MlpScratch mlp_s;
  model::MoeScratch moe_s;
};

Model::Model(const ModelConfig& config, Backend& backend, DType compute_dtype,
             Communicator* expert_group)
    : config_(config), be_(backend), compute_dtype_(compute_dtype) {
  config_.validate("model config");
  ZT_ASSERT(compute_dtype == DType::F32 || compute_dtype == DType::BF16,
            "Model: compute dtype must be F32 or BF16, got %s", dtype_name(compute_dtype));
  ExpertShard shard;
  if (expert_group && expert_group->size() > 1) {
    ZT_ASSERT(expert_group->device() == be_.device(),
              "Model: expert group on %s, backend on %s", expert_group->device().str().c_str(),
              be_.device().str().c_str());
    ep_comm_ = expert_group;
    shard = ExpertShard::of(config_, expert_group->rank(), expert_group->size());
  }
  params_ = make_param_set(config_, be_, DType::F32, shard);
  grads_ = make_param_set(config_, be_, DType::F32, shard);
  if (compute_dtype_ != DType::F32) compute_ = make_param_set(config_, be_, compute_dtype_, shard);
  zero_grad();
}

Communicator* Model::expert_group() const { return ep_comm_; }

model::ExpertGroup Model::expert_group_args() const {
  model::ExpertGroup eg;
  if (ep_comm_) {
    eg.comm = ep_comm_;
    eg.first = params_.experts.first;
    eg.count = params_.experts.local(config_);
  }
  return eg;
}

const ModelParams& Model::compute_params() {
  if (compute_dtype_ == DType::F32) return params_.params;
  if (compute_stale_) {
    be_.copy(params_.flat, compute_.flat);  // round the fp32 masters to the compute dtype
    compute_stale_ = false;
  }
  return compute_.params;
}

Model::~Model() = default;

void Model::zero_grad() {
  ZT_ASSERT(has_grads(), "zero_grad() on a model whose gradients were released");
  be_.fill(grads_.flat, 0.0);
}

void Model::release_grads() { grads_ = ParamSet{}; }

void Model::set_aux_loss_alpha(float alpha) {
  ZT_ASSERT(alpha >= 0.0f && std::isfinite(alpha), "aux loss alpha must be >= 0, got %g",
            double(alpha));
  aux_alpha_ = alpha;
}

void Model::set_aux_loss_sequences(int64_t sequences) {
  ZT_ASSERT(sequences >= 0, "aux loss sequences must be >= 0, got %lld", (long long)sequences);
  aux_sequences_ = sequences;
}

void Model::set_recompute(bool on) {
  if (on == recompute_) return;
  recompute_ = on;
  act_.reset();  // buffers are reallocated for the new layout at the next forward
  have_forward_ = have_logprob_ = false;
}

void Model::ensure_shape(int64_t B, int64_t T) {
  if (act_ && act_->B == B && act_->T == T) return;
  act_.reset();  // free the old shape's buffers first
  auto a = std::make_unique<ModelActivations>();
  const ModelConfig& c = config_;
  const DType ad = compute_dtype_;
  const int64_t N = B * T, C = c.hidden_size, L = c.num_hidden_layers, V = c.vocab_size;
  a->B = B;
  a->T = T;
  a->N = N;
  a->ids = Tensor::empty(be_, {N}, DType::I32);
  model::build_rope_tables(be_, c, B, T, a->rope);
  for (int64_t l = 0; l <= L; ++l) a->resid.push_back(Tensor::empty(be_, {N, C}, DType::F32));
  a->recompute = recompute_;
  a->layers.resize(recompute_ ? 1 : size_t(L));
  a->moe_load.assign(size_t(L), {});
  int64_t wmax = 0;
  bool any_moe = false, any_dense = false;
  for (int64_t l = 0; l < L; ++l) {
    if (c.is_moe_layer(l)) {
      wmax = std::max(wmax, c.moe_intermediate_size * c.n_shared_experts);
      any_moe = true;
    } else {
      wmax = std::max(wmax, c.intermediate_size);
      any_dense = true;
    }
  }
  for (size_t i = 0; i < a->layers.size(); ++i) {
    LayerActivations& la = a->layers[i];
    // Per-layer buffers, or (recompute) one set that serves every layer of either kind.
    const bool moe = recompute_ ? any_moe : c.is_moe_layer(int64_t(i));
    const bool dense = recompute_ ? any_dense : !moe;
    la.in_normed = Tensor::empty(be_, {N, C}, ad);
    la.in_rstd = Tensor::empty(be_, {N}, DType::F32);
    model::alloc_attention(be_, c, B, T, la.attn, ad);
    la.x_mid = Tensor::empty(be_, {N, C}, DType::F32);
    la.post_normed = Tensor::empty(be_, {N, C}, ad);
    la.post_rstd = Tensor::empty(be_, {N}, DType::F32);
    if (moe) model::alloc_moe(be_, c, N, la.moe, ad, ep_comm_ != nullptr);
    if (dense) model::alloc_mlp(be_, N, c.intermediate_size, la.mlp, ad);
  }
  a->branch_out = Tensor::empty(be_, {N, C}, DType::F32);
  a->final_normed = Tensor::empty(be_, {N, C}, ad);
  a->final_rstd = Tensor::empty(be_, {N}, DType::F32);
  a->logits = Tensor::empty(be_, {N, V}, DType::F32);
  a->targets = Tensor::empty(be_, {N}, DType::I32);
  a->lse = Tensor::empty(be_, {N}, DType::F32);
  a->logprob = Tensor::empty(be_, {N}, DType::F32);
  a->dlogprob = Tensor::empty(be_, {N}, DType::F32);
  a->dlogits = Tensor::empty(be_, {N, V}, ad);
  a->dres = Tensor::empty(be_, {N, C}, DType::F32);
  a->dnormed = Tensor::empty(be_, {N, C}, DType::F32);
  a->dtmp = Tensor::empty(be_, {N, C}, DType::F32);
  a->dres_c = ad == DType::F32 ? a->dres : Tensor::empty(be_, {N, C}, ad);
  model::alloc_attention_scratch(be_, c, B, T, a->attn_s, ad);
  if (wmax > 0) model::alloc_mlp_scratch(be_, N, wmax, a->mlp_s, ad);
  if (any_moe) model::alloc_moe_scratch(be_, c, N, a->moe_s, ad, ep_comm_ != nullptr);
  act_ = std::move(a);
}

// Layer l's forward from resid[l] into its activations (the shared set with
// recomputation) and resid[l + 1]. Deterministic, so a recomputation in the backward
// reproduces the forward's values bit for bit.
void Model::layer_forward(const ModelParams& p, size_t l) {
  const ModelConfig& c = config_;
  ModelActivations& a = *act_;
  const float eps = float(c.rms_norm_eps);
  const LayerParams& lp = layer_compute_params(p, l);
  LayerActivations& la = a.layer(l);
  be_.rmsnorm_forward(a.resid[l], lp.input_norm, eps, la.in_normed, la.in_rstd);
  model::attention_forward(be_, c, a.B, a.T, lp.attn, a.rope, la.in_normed, la.attn, a.attn_s,
                           a.branch_out);
  be_.add(a.resid[l], a.branch_out, la.x_mid);
  be_.rmsnorm_forward(la.x_mid, lp.post_attn_norm, eps, la.post_normed, la.post_rstd);
  if (lp.is_moe)
    model::moe_forward(be_, c, a.B, a.T, lp.moe, la.post_normed, la.moe,
                       model::BalanceLoss(aux_alpha_, a.has_row_lengths ? &a.row_lengths : nullptr,
                                          aux_sequences_),
                       a.branch_out, expert_group_args());
  else
    model::mlp_forward(be_, lp.mlp, la.post_normed, la.mlp, a.branch_out);
  be_.add(la.x_mid, a.branch_out, a.resid[l + 1]);
}

void Model::forward(const Tensor& ids, const std::vector<int64_t>* row_lengths) {
  ZT_ASSERT(ids.dim() == 2 && ids.dtype() == DType::I32 && ids.is_contiguous(),
            "forward: ids must be contiguous I32 (B, T), got %s", ids.str().c_str());
  const ModelConfig& c = config_;
  const float eps = float(c.rms_norm_eps);
  const int64_t B = ids.size(0), T = ids.size(1);
  if (row_lengths) {
    ZT_ASSERT(int64_t(row_lengths->size()) == B, "forward: %zu row lengths for %lld rows", row_lengths->size(),
              (long long)B);
    for (int64_t len : *row_lengths)
      ZT_ASSERT(len >= 0 && len <= T, "forward: row length %lld outside [0, %lld]", (long long)len, (long long)T);
  }
  std::vector<int32_t> topk;  // host copy of a layer's top-k ids (row_lengths only)
  ensure_shape(B, T);
  ModelActivations& a = *act_;
  const ModelParams& p = compute_params();
  be_.copy(ids.view({a.N}), a.ids);
  a.has_row_lengths = row_lengths != nullptr;
  if (row_lengths) a.row_lengths = *row_lengths;

  // The lookup reads the fp32 table (no GEMM; the residual stream is fp32).
  be_.embedding_forward(a.ids, params_.params.embed, a.resid[0]);
  aux_loss_ = 0.0f;
  for (size_t l = 0; l < size_t(c.num_hidden_layers); ++l) {
    layer_forward(p, l);
    LayerActivations& la = a.layer(l);
    if (p.layers[l].is_moe) {
      aux_loss_ += la.moe.aux_loss;
      a.moe_load[l] = la.moe.load;
      if (row_lengths) {  // the loads of the real tokens: recount their top-k ids
        const int64_t k = c.num_experts_per_tok;
        topk.resize(size_t(a.N * k));
        la.moe.topk_idx.copy_to_host(topk.data(), topk.size() * sizeof(int32_t));
        std::vector<int64_t>& load = a.moe_load[l];
        std::fill(load.begin(), load.end(), 0);
        for (int64_t b = 0; b < B; ++b)
          for (int64_t i = b * T * k, end = (b * T + (*row_lengths)[size_t(b)]) * k; i < end; ++i)
            ++load[size_t(topk[size_t(i)])];
      }
    }
  }
  be_.rmsnorm_forward(a.resid.back(), p.final_norm, eps, a.final_normed, a.final_rstd);
  model::linear_forward(be_, a.final_normed, p.lm_head, a.logits);
  have_forward_ = true;
  have_logprob_ = false;
}

// The compute copy of layer l, except the router bias, which is always the fp32 master
// (it is added to fp32 scores, and update_router_bias changes it between steps).
const LayerParams& Model::layer_compute_params(const ModelParams& p, size_t l) {
  if (compute_dtype_ == DType::F32 || !p.layers[l].is_moe) return p.layers[l];
  layer_scratch_ = p.layers[l];
  layer_scratch_.moe.router_bias = params_.params.layers[l].moe.router_bias;
  return layer_scratch_;
}

const Tensor& Model::logits() const {
  ZT_ASSERT(have_forward_, "logits() before forward()");
  return act_->logits;
}

void Model::token_logprobs(const Tensor& targets, float temperature, Tensor& logprob,
                           Tensor* entropy) {
  ZT_ASSERT(have_forward_, "token_logprobs() before forward()");
  ZT_ASSERT(temperature > 0.0f, "temperature must be > 0, got %g", double(temperature));
  ModelActivations& a = *act_;
  ZT_ASSERT(targets.numel() == a.N && targets.dtype() == DType::I32,
            "targets must be I32 (%lld), got %s", (long long)a.N, targets.str().c_str());
  be_.copy(targets.view({a.N}), a.targets);
  Tensor none;
  be_.logprob_forward(a.logits, a.targets, temperature, logprob, a.lse, entropy ? *entropy : none);
  temperature_ = temperature;
  have_logprob_ = true;
}

void Model::backward_from_logprob_grad(const Tensor& dlogprob, const Tensor* dentropy) {
  ZT_ASSERT(have_logprob_, "backward_from_logprob_grad() without token_logprobs()");
  ZT_ASSERT(has_grads(), "backward on a model whose gradients were released");
  ModelActivations& a = *act_;
  Tensor none;
  be_.logprob_backward(a.logits, a.targets, temperature_, a.lse, dlogprob,
                       dentropy ? *dentropy : none, a.dlogits);
  backward_from_logits_grad();
}

void Model::backward_from_logits_grad() {
  const ModelConfig& c = config_;
  ModelActivations& a = *act_;
  const ModelParams& p = compute_params();
  ModelParams& g = grads_.params;
  const bool with_aux = aux_alpha_ > 0.0f;
  const bool cast_dres = a.dres_c.data_ptr() != a.dres.data_ptr();

  model::linear_backward(be_, a.dlogits, a.final_normed, p.lm_head, g.lm_head, &a.dnormed, false);
  be_.rmsnorm_backward(a.dnormed, a.resid.back(), p.final_norm, a.final_rstd, a.dres,
                       g.final_norm);
  for (size_t li = size_t(c.num_hidden_layers); li-- > 0;) {
    if (a.recompute) layer_forward(p, li);  // refill the shared activations from resid[li]
    const LayerParams& lp = layer_compute_params(p, li);
    LayerParams& lg = g.layers[li];
    LayerActivations& la = a.layer(li);
    // dres = d resid[l+1]: through the MLP / MoE branch, then its norm.
    if (cast_dres) be_.copy(a.dres, a.dres_c);
    if (lp.is_moe)
      model::moe_backward(be_, c, lp.moe, lg.moe, la.post_normed, la.moe, a.moe_s, a.mlp_s,
                          with_aux, a.dres_c, a.dnormed, expert_group_args());
    else
      model::mlp_backward(be_, lp.mlp, lg.mlp, la.post_normed, la.mlp, a.mlp_s, a.dres_c,
                          a.dnormed, false);
    be_.rmsnorm_backward(a.dnormed, la.x_mid, lp.post_attn_norm, la.post_rstd, a.dtmp,
                         lg.post_attn_norm);
    be_.add(a.dres, a.dtmp, a.dres);  // dres = d x_mid
    if (cast_dres) be_.copy(a.dres, a.dres_c);
    model::attention_backward(be_, c, a.B, a.T, lp.attn, lg.attn, a.rope, la.in_normed, la.attn,
                              a.attn_s, a.dres_c, a.dnormed);
    be_.rmsnorm_backward(a.dnormed, a.resid[li], lp.input_norm, la.in_rstd, a.dtmp,
                         lg.input_norm);
    be_.add(a.dres, a.dtmp, a.dres);  // dres = d resid[l]
  }
  be_.embedding_backward(a.ids, a.dres, g.embed);
}

float Model::cross_entropy_step(const Tensor& ids, const Tensor& loss_mask) {
  ZT_ASSERT(ids.dim() == 2 && loss_mask.shape() == ids.shape() &&
                loss_mask.dtype() == DType::F32,
            "cross_entropy_step: ids I32 (B, T) and loss_mask F32 (B, T), got %s and %s",
            ids.str().c_str(), loss_mask.str().c_str());
  const int64_t B = ids.size(0), T = ids.size(1), N = B * T;
  forward(ids);
  ModelActivations& a = *act_;
  // Targets: token t+1 of the same row; the last position of each row is ignored.
  std::vector<int32_t> h_ids(static_cast<size_t>(N)), h_targets(static_cast<size_t>(N));
  std::vector<float> h_mask(static_cast<size_t>(N));
  ids.copy_to_host(h_ids.data(), h_ids.size() * sizeof(int32_t));
  loss_mask.copy_to_host(h_mask.data(), h_mask.size() * sizeof(float));
  double mask_sum = 0.0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const int64_t n = b * T + t;
      if (t + 1 < T) {
        h_targets[size_t(n)] = h_ids[size_t(n + 1)];
        mask_sum += h_mask[size_t(n)];
      } else {
        h_targets[size_t(n)] = -1;
        h_mask[size_t(n)] = 0.0f;
      }
    }
  ZT_ASSERT(mask_sum > 0.0, "cross_entropy_step: the loss mask selects no target");
  Tensor targets = Tensor::empty(be_, {N}, DType::I32);
  targets.copy_from_host(h_targets.data(), h_targets.size() * sizeof(int32_t));
  token_logprobs(targets, 1.0f, a.logprob, nullptr);
  std::vector<float> h_lp(static_cast<size_t>(N)), h_dlp(static_cast<size_t>(N));
  a.logprob.copy_to_host(h_lp.data(), h_lp.size() * sizeof(float));
  double nll = 0.0;
  for (int64_t n = 0; n < N; ++n) {
    nll -= double(h_mask[size_t(n)]) * h_lp[size_t(n)];
    h_dlp[size_t(n)] = float(-double(h_mask[size_t(n)]) / mask_sum);
  }
  ce_loss_ = float(nll / mask_sum);
  a.dlogprob.copy_from_host(h_dlp.data(), h_dlp.size() * sizeof(float));
  backward_from_logprob_grad(a.dlogprob, nullptr);
  return ce_loss_ + aux_loss_;
}

static const model::MoeActs& moe_acts(const ModelConfig& c, const ModelActivations* a,
                                      int64_t layer) {
  ZT_ASSERT(a != nullptr, "routing queried before forward()");
  ZT_ASSERT(layer >= 0 && layer < c.num_hidden_layers && c.is_moe_layer(layer),
            "layer %lld is not a MoE layer", (long long)layer);
  ZT_ASSERT(!a->recompute,
            "routing of layer %lld is not kept with activation recomputation (set_recompute(false))",
            (long long)layer);
  return a->layers[size_t(layer)].moe;
}

const Tensor& Model::routing_topk_idx(int64_t layer) const {
  return moe_acts(config_, act_.get(), layer).topk_idx;
}
const Tensor& Model::routing_topk_weight(int64_t layer) const {
  return moe_acts(config_, act_.get(), layer).topk_weight;
}
const Tensor& Model::routing_scores(int64_t layer) const {
  return moe_acts(config_, act_.get(), layer).scores;
}

std::vector<MoeLayerStats> Model::moe_stats() const {
  std::vector<MoeLayerStats> out;
  if (!have_forward_) return out;
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
    if (!config_.is_moe_layer(l)) continue;
    MoeLayerStats s;
    s.layer = l;
    s.load = act_->moe_load[size_t(l)];
    int64_t sum = 0;
    s.min_load = s.load.empty() ? 0 : s.load[0];
    for (int64_t x : s.load) {
      sum += x;
      s.min_load = std::min(s.min_load, x);
      s.max_load = std::max(s.max_load, x);
    }
    double mean = s.load.empty() ? 0.0 : double(sum) / double(s.load.size());
    s.imbalance = mean > 0.0 ? double(s.max_load) / mean : 0.0;
    out.push_back(std::move(s));
  }
  return out;
}

void Model::update_router_bias(float gamma,
                               const std::vector<std::vector<int64_t>>& global_loads) {
  const int64_t E = config_.n_routed_experts;
  size_t i = 0;
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
    if (!config_.is_moe_layer(l)) continue;
    ZT_ASSERT(i < global_loads.size(), "update_router_bias: %zu load vectors for more MoE layers",
              global_loads.size());
    const std::vector<int64_t>& load = global_loads[i++];
    ZT_ASSERT(int64_t(load.size()) == E, "update_router_bias: %zu loads, expected %lld",
              load.size(), (long long)E);
    double mean = 0.0;
    for (int64_t x : load) mean += double(x);
    mean /= double(E);
    Tensor& bias = params_.params.layers[size_t(l)].moe.router_bias;
    std::vector<float> b(static_cast<size_t>(E));
    bias.copy_to_host(b.data(), b.size() * sizeof(float));
    for (int64_t e = 0; e < E; ++e) {
      const double d = mean - double(load[size_t(e)]);
      b[size_t(e)] += gamma * float((d > 0.0) - (d < 0.0));
    }
    bias.copy_from_host(b.data(), b.size() * sizeof(float));
  }
  ZT_ASSERT(i == global_loads.size(), "update_router_bias: %zu load vectors for %zu MoE layers",
            global_loads.size(), i);
}

}  // namespace zeroth
