// ModelParams: the weights of a DeepSeek-V3 model as flat structs of tensor views
// (llm.c style), their Hugging Face names, initialisation, and HF checkpoint I/O.
//
// Owns: the layout of every parameter (one contiguous buffer per ParamSet, so the
// optimizer and the data-parallel all-reduce see one flat vector), the mapping to HF
// tensor names (routed experts are stored stacked, (E, ...), and each HF tensor
// `mlp.experts.{e}.*` is a view of row e), init (`initializer_range`), and loading /
// saving HF safetensors (sharded when large). Must not: compute anything (layers do).
//
// Shapes use: V vocab, C hidden, H heads, Dqk = Dn + Dr, Dv, Rq q_lora_rank,
// Rkv kv_lora_rank, I intermediate_size, Im moe_intermediate_size, Ns n_shared_experts,
// E n_routed_experts. Linear weights are (out, in) as in nn.Linear.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "zeroth/backend.h"
#include "zeroth/model_config.h"
#include "zeroth/tensor.h"

namespace zeroth {

struct AttentionParams {
  Tensor q_proj;     // (H*Dqk, C)      only when q_lora_rank is null
  Tensor q_a_proj;   // (Rq, C)         only with q_lora_rank
  Tensor q_a_norm;   // (Rq)            q_a_layernorm
  Tensor q_b_proj;   // (H*Dqk, Rq)
  Tensor kv_a_proj;  // (Rkv + Dr, C)   kv_a_proj_with_mqa
  Tensor kv_a_norm;  // (Rkv)           kv_a_layernorm
  Tensor kv_b_proj;  // (H*(Dn+Dv), Rkv)
  Tensor o_proj;     // (C, H*Dv)
};

struct MlpParams {  // SwiGLU: down(silu(gate x) * up x)
  Tensor gate;  // (W, C)
  Tensor up;    // (W, C)
  Tensor down;  // (C, W)
};

struct MoeParams {
  Tensor router;        // (E, C)      mlp.gate.weight
  Tensor router_bias;   // (E)         mlp.gate.e_score_correction_bias; not trained by
                        //             gradient (aux-loss-free balancing updates it)
  Tensor experts_gate;  // (E, Im, C)  mlp.experts.{e}.gate_proj.weight = row e
  Tensor experts_up;    // (E, Im, C)
  Tensor experts_down;  // (E, C, Im)
  MlpParams shared;     // W = Im*Ns   mlp.shared_experts.*
};

struct LayerParams {
  Tensor input_norm;      // (C)  input_layernorm
  AttentionParams attn;
  Tensor post_attn_norm;  // (C)  post_attention_layernorm
  bool is_moe = false;
  MlpParams mlp;          // W = I, dense layers only
  MoeParams moe;          // MoE layers only
};

struct ModelParams {
  Tensor embed;       // (V, C)  model.embed_tokens.weight
  std::vector<LayerParams> layers;
  Tensor final_norm;  // (C)     model.norm.weight
  Tensor lm_head;     // (V, C)  lm_head.weight; the same storage as embed when tied
};

// Each parameter's offset in ParamSet::flat is a multiple of this (elements).
constexpr int64_t kParamAlignElems = 32;

// One named parameter: its HF name, a view into the flat buffer, and how the
// optimizer treats it.
struct ParamEntry {
  std::string name;   // HF name, e.g. "model.layers.0.self_attn.kv_b_proj.weight"
  Tensor view;
  bool trainable;     // false for router_bias
  bool weight_decay;  // false for norms and biases
  bool expert = false;  // a routed expert's weight: sharded under expert parallelism
};

// The routed experts a ParamSet holds: experts [first, first + count) of every MoE
// layer (expert parallelism: rank r of an expert group of size P holds
// [r E/P, (r+1) E/P)). count 0 means all E. The stacked tensors then have `count`
// rows, row i is HF expert first + i, and every other parameter is whole.
struct ExpertShard {
  int64_t first = 0;
  int64_t count = 0;
  // Rank `rank` of `size`; E must be a multiple of size (else ConfigError naming
  // n_routed_experts and the expert-parallel size).
  static ExpertShard of(const ModelConfig& config, int rank, int size);
  int64_t local(const ModelConfig& config) const { return count > 0 ? count : config.n_routed_experts; }
  bool whole(const ModelConfig& config) const { return first == 0 && local(config) == config.n_routed_experts; }
};

// Elements [offset, offset + numel) of a ParamSet's flat buffer.
struct FlatRange {
  int64_t offset = 0;
  int64_t numel = 0;
};

// A model's parameters (or gradients, or optimizer moments: same layout) in one
// contiguous buffer of `dtype` on `backend`'s device.
struct ParamSet {
  Tensor flat;                     // (P) every parameter, one after another (aligned)
  ModelParams params;              // views into flat
  std::vector<ParamEntry> entries; // in HF order; stacked experts appear once per expert
  ExpertShard experts;             // the routed experts held (make_param_set's shard)
};

// Allocates a ParamSet for `config`, filled with zeros; tied embeddings share storage.
// Every parameter starts at a multiple of kParamAlignElems elements of `flat` (the gaps
// stay zero), so the layout is the same for every dtype and vector loads are aligned.
// `shard` selects the routed experts held (default: all).
ParamSet make_param_set(const ModelConfig& config, Backend& backend, DType dtype = DType::F32,
                        ExpertShard shard = {});

// HF init: normal(0, initializer_range) for linear and embedding weights, ones for
// norms, zeros for router_bias; deterministic from `seed` (independent of backend and
// thread count).
void init_params(const ModelConfig& config, ParamSet& params, uint64_t seed);

// Loads HF safetensors weights (model.safetensors, or the sharded index) from `dir`
// into `params` (a shard of the experts reads only its experts' tensors; the others'
// are skipped, not unexpected): every parameter must be present with the right shape (F32/BF16/F16
// converted; F8_E4M3 weights of an FP8 checkpoint, as DeepSeek-V3/R1 are published, dequantized
// with their `*_scale_inv` block scales and config.json's quantization_config.weight_block_size); missing, extra (other than ignored MTP layers) or mis-shaped tensors are
// CheckpointErrors naming the tensor and both shapes. When `dir` holds a config.json it
// must describe the same architecture as `config` (else a CheckpointError listing each
// differing key, expected and found). A tied model's lm_head.weight, if present, and
// `*.rotary_emb.inv_freq` buffers are ignored, as HF does.
void load_hf_weights(const std::string& dir, const ModelConfig& config, ParamSet& params);

// Writes the weights (F32 or BF16) in HF format to `dir`, sharded above
// `max_shard_bytes`, then config.json (torch_dtype set to the saved dtype) last.
void save_hf_weights(const std::string& dir, const ModelConfig& config, const ParamSet& params,
                     DType dtype = DType::F32, uint64_t max_shard_bytes = 5000000000ull);

// Expert parallelism: an HF checkpoint written by the `parts` ranks of an expert group
// together, into the existing directory `dir`. Part q (params holds
// ExpertShard::of(config, q, parts)) writes `model-{q+1}-of-{parts}.safetensors` (HF's
// shard names, 5 digits) with its experts, part 0 also every other tensor. Once every
// part is written, one rank calls save_hf_parts_index with part 0's params: it writes
// model.safetensors.index.json, then config.json (last: the weights are complete).
// load_hf_weights reads the result like any sharded HF checkpoint, whole or by shard.
void save_hf_weights_part(const std::string& dir, const ModelConfig& config, const ParamSet& params,
                          int part, int parts, DType dtype = DType::F32);
void save_hf_parts_index(const std::string& dir, const ModelConfig& config, const ParamSet& part0,
                         int parts, DType dtype = DType::F32);
// "model-00002-of-00004.safetensors" for part 1 of 4.
std::string hf_part_file_name(int part, int parts);
// A routed expert's HF name (`...mlp.experts.{e}.*`) with e + shift: the name in the
// whole model of a shard's expert (shift = the shard's first expert).
std::string shift_expert_name(const std::string& name, int64_t shift);

}  // namespace zeroth
