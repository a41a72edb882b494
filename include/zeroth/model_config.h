// ModelConfig: the architecture of a DeepSeek-V3-style MoE transformer, exactly the
// Hugging Face `config.json` of `DeepseekV3ForCausalLM` (`model_type: deepseek_v3`).
//
// Owns: the architecture's hyper-parameters, their HF key names and defaults, their
// validation, reading/writing config.json, and derived sizes (head dims, parameter
// and FLOP counts). Must not: hold weights or training settings (optimizer, aux-free
// bias speed, aux-loss weight live in the training config).
#pragma once

#include <cstdint>
#include <array>
#include <optional>
#include <string>
#include <vector>

namespace zeroth {

// HF `rope_scaling` (only "yarn" is supported besides none). HF reads several keys by
// truthiness, so absent keys are stored as 0 here and written back as absent:
// original_max_position_embeddings 0 = absent (then the yarn factor is `factor` and the
// original length is max_position_embeddings; else the factor is
// max_position_embeddings / original_max_position_embeddings, as in HF's
// _compute_yarn_parameters); mscale / mscale_all_dim 0 = absent (attention factor
// m(f, mscale) / m(f, mscale_all_dim) only when both are non-zero, else m(f, 1)).
// Use ModelConfig::rope_inv_freq() / rope_attention_factor() rather than re-deriving.
struct RopeScaling {
  std::string type = "yarn";
  double factor = 1.0;
  int64_t original_max_position_embeddings = 4096;
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double mscale = 1.0;
  double mscale_all_dim = 0.0;
  std::optional<double> attention_factor;  // overrides the mscale rule when set
  bool truncate = true;                    // floor/ceil of the yarn correction range
};

struct ModelConfig {
  int64_t vocab_size = 129280;
  int64_t hidden_size = 7168;              // C
  int64_t intermediate_size = 18432;       // dense MLP width
  int64_t moe_intermediate_size = 2048;    // routed expert width
  int64_t num_hidden_layers = 61;          // L
  int64_t num_attention_heads = 128;       // H
  int64_t num_key_value_heads = 128;       // must equal H (MLA)
  int64_t n_shared_experts = 1;
  int64_t n_routed_experts = 256;          // E
  double routed_scaling_factor = 2.5;
  int64_t kv_lora_rank = 512;              // Rkv
  std::optional<int64_t> q_lora_rank = 1536;  // Rq; null: plain q_proj
  int64_t qk_rope_head_dim = 64;           // Dr
  int64_t v_head_dim = 128;                // Dv
  int64_t qk_nope_head_dim = 128;          // Dn
  int64_t n_group = 8;
  int64_t topk_group = 4;
  int64_t num_experts_per_tok = 8;         // k
  int64_t first_k_dense_replace = 3;
  bool norm_topk_prob = true;
  std::string hidden_act = "silu";
  int64_t max_position_embeddings = 4096;
  double initializer_range = 0.02;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  double rope_theta = 10000.0;
  std::optional<RopeScaling> rope_scaling;
  bool rope_interleave = true;
  bool attention_bias = false;             // must be false
  std::optional<int64_t> bos_token_id = 0;
  std::optional<int64_t> eos_token_id = 1;
  std::optional<int64_t> pad_token_id;
  std::string torch_dtype = "bfloat16";
  int64_t num_nextn_predict_layers = 0;    // MTP layers in HF checkpoints: ignored on load
  // An FP8 checkpoint's quantization_config (quant_method fp8, fmt e4m3): the weight
  // block (rows, cols) of its *_scale_inv tensors (HF's default 128 x 128). Read only:
  // load_hf_weights dequantizes, and zeroth saves F32/BF16 (config.json without it).
  std::optional<std::array<int64_t, 2>> fp8_weight_block;

  int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }  // Dqk
  bool is_moe_layer(int64_t layer) const { return layer >= first_k_dense_replace; }
  // 1/sqrt(Dqk), times yarn's mscale^2 when rope_scaling is set.
  double softmax_scale() const;
  // RoPE inverse frequencies (Dr/2), float64: theta^(-2j/Dr), blended by yarn's ramp
  // when rope_scaling is set (HF _compute_yarn_parameters).
  std::vector<double> rope_inv_freq() const;
  // Multiplies cos and sin (HF attention_scaling): 1 without rope_scaling.
  double rope_attention_factor() const;
  // Throws ConfigError naming `source` and the key for any invalid or unsupported
  // value (e.g. heads not divisible, topk_group > n_group, unknown hidden_act).
  void validate(const std::string& source) const;
  // All weights (every expert, router_bias included, lm_head once when tied, MTP
  // layers excluded): the numel of every tensor of a ParamSet.
  int64_t num_parameters() const;
  // Weights one token uses: all of the above except the routed experts it is not
  // routed to (embedding and lm_head counted whole, as DeepSeek counts "activated").
  int64_t num_active_parameters() const;
};

// Reads a HF config.json (a file or a model directory). Unknown keys are ignored as HF
// does (with a debug log); missing keys take HF's defaults above; wrong types and
// invalid values are ConfigErrors naming the file and key.
ModelConfig read_model_config(const std::string& path);
// Writes config.json with HF key names, "architectures": ["DeepseekV3ForCausalLM"] and
// "model_type": "deepseek_v3" (atomically: temp file + rename).
void write_model_config(const ModelConfig& config, const std::string& path);

}  // namespace zeroth
