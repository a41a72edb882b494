// make_param_set: the layout of every parameter of a DeepSeek-V3 model in one flat
// buffer, the views into it (ModelParams) and the HF-named entries.
//
// Layout (offsets aligned to kParamAlignElems): embed, then per layer in HF module
// order (self_attn, mlp, input_layernorm, post_attention_layernorm), final norm,
// lm_head (untied only). Routed experts are stacked (E, ...) tensors; each HF tensor
// mlp.experts.{e}.* is an entry whose view is row e.
// Must not: initialise, load or compute anything (params_init.cpp, params_checkpoint.cpp).
#include "zeroth/error.h"
#include "zeroth/model_params.h"

namespace zeroth {

namespace {

// Collects (name, shape) slots first, then carves views from one allocation.
class LayoutBuilder {
 public:
  // Reserves a tensor of `shape`; returns its slot index.
  size_t reserve(const Shape& shape) {
    const int64_t offset = (total_ + kParamAlignElems - 1) / kParamAlignElems * kParamAlignElems;
    slots_.push_back({offset, shape});
    total_ = offset + shape_numel(shape);
    return slots_.size() - 1;
  }
  int64_t total() const { return total_; }
  Tensor view(const Tensor& flat, size_t slot) const {
    const Slot& s = slots_[slot];
    return flat.narrow(0, s.offset, shape_numel(s.shape)).view(s.shape);
  }

 private:
  struct Slot {
    int64_t offset;
    Shape shape;
  };
  std::vector<Slot> slots_;
  int64_t total_ = 0;
};

// Slot indices of one layer's tensors (SIZE_MAX where absent).
constexpr size_t kNone = size_t(-1);
struct LayerSlots {
  size_t q_proj = kNone, q_a_proj = kNone, q_a_norm = kNone, q_b_proj = kNone;
  size_t kv_a_proj = kNone, kv_a_norm = kNone, kv_b_proj = kNone, o_proj = kNone;
  size_t mlp_gate = kNone, mlp_up = kNone, mlp_down = kNone;
  size_t router = kNone, router_bias = kNone, experts_gate = kNone, experts_up = kNone,
         experts_down = kNone;
  size_t shared_gate = kNone, shared_up = kNone, shared_down = kNone;
  size_t input_norm = kNone, post_attn_norm = kNone;
};

}  // namespace

ExpertShard ExpertShard::of(const ModelConfig& c, int rank, int size) {
  ZT_ASSERT(size >= 1 && rank >= 0 && rank < size, "ExpertShard::of: rank %d of %d", rank, size);
  ZT_THROW_IF_NOT(c.n_routed_experts % size == 0, ConfigError,
                  "expert parallelism over %d ranks needs n_routed_experts (%lld) to be a multiple "
                  "of %d",
                  size, (long long)c.n_routed_experts, size);
  const int64_t n = c.n_routed_experts / size;
  return ExpertShard{int64_t(rank) * n, n};
}

ParamSet make_param_set(const ModelConfig& c, Backend& backend, DType dtype, ExpertShard shard) {
  c.validate("make_param_set");
  ZT_ASSERT(dtype_is_float(dtype), "parameters must be a float dtype, got %s", dtype_name(dtype));
  const int64_t V = c.vocab_size, C = c.hidden_size, H = c.num_attention_heads;
  const int64_t Dqk = c.qk_head_dim(), Dn = c.qk_nope_head_dim, Dv = c.v_head_dim;
  const int64_t Dr = c.qk_rope_head_dim, Rkv = c.kv_lora_rank, E = shard.local(c);
  ZT_ASSERT(shard.first >= 0 && shard.count >= 0 && shard.first + E <= c.n_routed_experts,
            "make_param_set: experts [%lld, %lld) of %lld", (long long)shard.first,
            (long long)(shard.first + E), (long long)c.n_routed_experts);
  const int64_t I = c.intermediate_size, Im = c.moe_intermediate_size;
  const int64_t Ws = Im * c.n_shared_experts;

  LayoutBuilder lb;
  const size_t embed = lb.reserve({V, C});
  std::vector<LayerSlots> ls(size_t(c.num_hidden_layers));
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    LayerSlots& s = ls[size_t(l)];
    if (c.q_lora_rank) {
      const int64_t Rq = *c.q_lora_rank;
      s.q_a_proj = lb.reserve({Rq, C});
      s.q_a_norm = lb.reserve({Rq});
      s.q_b_proj = lb.reserve({H * Dqk, Rq});
    } else {
      s.q_proj = lb.reserve({H * Dqk, C});
    }
    s.kv_a_proj = lb.reserve({Rkv + Dr, C});
    s.kv_a_norm = lb.reserve({Rkv});
    s.kv_b_proj = lb.reserve({H * (Dn + Dv), Rkv});
    s.o_proj = lb.reserve({C, H * Dv});
    if (c.is_moe_layer(l)) {
      s.experts_gate = lb.reserve({E, Im, C});
      s.experts_up = lb.reserve({E, Im, C});
      s.experts_down = lb.reserve({E, C, Im});
      s.router = lb.reserve({c.n_routed_experts, C});
      s.router_bias = lb.reserve({c.n_routed_experts});
      if (Ws > 0) {
        s.shared_gate = lb.reserve({Ws, C});
        s.shared_up = lb.reserve({Ws, C});
        s.shared_down = lb.reserve({C, Ws});
      }
    } else {
      s.mlp_gate = lb.reserve({I, C});
      s.mlp_up = lb.reserve({I, C});
      s.mlp_down = lb.reserve({C, I});
    }
    s.input_norm = lb.reserve({C});
    s.post_attn_norm = lb.reserve({C});
  }
  const size_t final_norm = lb.reserve({C});
  const size_t lm_head = c.tie_word_embeddings ? kNone : lb.reserve({V, C});

  ParamSet ps;
  ps.experts = shard;
  const int64_t total = (lb.total() + kParamAlignElems - 1) / kParamAlignElems * kParamAlignElems;
  ps.flat = Tensor::zeros(backend, {total}, dtype);
  auto view = [&](size_t slot) { return slot == kNone ? Tensor() : lb.view(ps.flat, slot); };
  auto add = [&](const std::string& name, const Tensor& t, bool trainable, bool decay) {
    ps.entries.push_back({name, t, trainable, decay});
  };

  ModelParams& p = ps.params;
  p.embed = view(embed);
  add("model.embed_tokens.weight", p.embed, true, true);
  p.layers.resize(ls.size());
  for (size_t l = 0; l < ls.size(); ++l) {
    const LayerSlots& s = ls[l];
    LayerParams& lp = p.layers[l];
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    AttentionParams& a = lp.attn;
    a.q_proj = view(s.q_proj);
    a.q_a_proj = view(s.q_a_proj);
    a.q_a_norm = view(s.q_a_norm);
    a.q_b_proj = view(s.q_b_proj);
    a.kv_a_proj = view(s.kv_a_proj);
    a.kv_a_norm = view(s.kv_a_norm);
    a.kv_b_proj = view(s.kv_b_proj);
    a.o_proj = view(s.o_proj);
    const std::string at = pre + "self_attn.";
    if (a.q_proj.defined()) {
      add(at + "q_proj.weight", a.q_proj, true, true);
    } else {
      add(at + "q_a_proj.weight", a.q_a_proj, true, true);
      add(at + "q_a_layernorm.weight", a.q_a_norm, true, false);
      add(at + "q_b_proj.weight", a.q_b_proj, true, true);
    }
    add(at + "kv_a_proj_with_mqa.weight", a.kv_a_proj, true, true);
    add(at + "kv_a_layernorm.weight", a.kv_a_norm, true, false);
    add(at + "kv_b_proj.weight", a.kv_b_proj, true, true);
    add(at + "o_proj.weight", a.o_proj, true, true);

    lp.is_moe = c.is_moe_layer(int64_t(l));
    const std::string mp = pre + "mlp.";
    if (lp.is_moe) {
      MoeParams& m = lp.moe;
      m.experts_gate = view(s.experts_gate);
      m.experts_up = view(s.experts_up);
      m.experts_down = view(s.experts_down);
      m.router = view(s.router);
      m.router_bias = view(s.router_bias);
      for (int64_t e = 0; e < E; ++e) {
        const std::string ep = mp + "experts." + std::to_string(shard.first + e) + ".";
        add(ep + "gate_proj.weight", m.experts_gate.select(0, e), true, true);
        add(ep + "up_proj.weight", m.experts_up.select(0, e), true, true);
        add(ep + "down_proj.weight", m.experts_down.select(0, e), true, true);
        for (size_t i = ps.entries.size() - 3; i < ps.entries.size(); ++i) ps.entries[i].expert = true;
      }
      add(mp + "gate.weight", m.router, true, true);
      add(mp + "gate.e_score_correction_bias", m.router_bias, false, false);
      if (Ws > 0) {
        m.shared.gate = view(s.shared_gate);
        m.shared.up = view(s.shared_up);
        m.shared.down = view(s.shared_down);
        add(mp + "shared_experts.gate_proj.weight", m.shared.gate, true, true);
        add(mp + "shared_experts.up_proj.weight", m.shared.up, true, true);
        add(mp + "shared_experts.down_proj.weight", m.shared.down, true, true);
      }
    } else {
      lp.mlp.gate = view(s.mlp_gate);
      lp.mlp.up = view(s.mlp_up);
      lp.mlp.down = view(s.mlp_down);
      add(mp + "gate_proj.weight", lp.mlp.gate, true, true);
      add(mp + "up_proj.weight", lp.mlp.up, true, true);
      add(mp + "down_proj.weight", lp.mlp.down, true, true);
    }
    lp.input_norm = view(s.input_norm);
    lp.post_attn_norm = view(s.post_attn_norm);
    add(pre + "input_layernorm.weight", lp.input_norm, true, false);
    add(pre + "post_attention_layernorm.weight", lp.post_attn_norm, true, false);
  }
  p.final_norm = view(final_norm);
  add("model.norm.weight", p.final_norm, true, false);
  if (c.tie_word_embeddings) {
    p.lm_head = p.embed;  // HF saves tied models without lm_head.weight
  } else {
    p.lm_head = view(lm_head);
    add("lm_head.weight", p.lm_head, true, true);
  }
  return ps;
}

}  // namespace zeroth
