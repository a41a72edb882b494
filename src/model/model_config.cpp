// ModelConfig: HF config.json of DeepseekV3ForCausalLM <-> struct, validation, derived
// sizes, RoPE/yarn tables and parameter counts.
//
// Owns: the HF key names and defaults (those of HF DeepseekV3Config, mirrored by
// scripts/reference/deepseek_v3_ref.py's CONFIG_DEFAULTS), type checks while reading,
// ModelConfig::validate, and the yarn rules of HF's _compute_yarn_parameters.
// Must not: know about weights, backends or training settings.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/io_util.h"
#include "zeroth/error.h"
#include "zeroth/log.h"
#include "zeroth/model_config.h"

namespace zeroth {

using nlohmann::json;

namespace {

// Keys a real config.json may carry that must hold exactly these values (absent is fine).
struct RequiredValue {
  const char* key;
  json value;
};

const std::vector<RequiredValue>& required_if_present() {
  static const std::vector<RequiredValue> kRequired = {
      {"model_type", "deepseek_v3"}, {"scoring_func", "sigmoid"}, {"topk_method", "noaux_tc"},
      {"moe_layer_freq", 1},         {"hidden_act", "silu"},      {"attention_bias", false},
  };
  return kRequired;
}

// Keys HF's config knows that do not change the model zeroth builds (read and dropped).
bool is_ignored_key(const std::string& k) {
  static const char* const kIgnored[] = {
      "architectures", "model_type", "use_cache", "pretraining_tp", "attention_dropout",
      "transformers_version", "auto_map", "scoring_func", "topk_method", "moe_layer_freq",
      "aux_loss_alpha", "seq_aux", "ep_size", "rope_parameters", "head_dim", "mlp_bias",
      "_name_or_path", "dtype"};
  for (const char* i : kIgnored)
    if (k == i) return true;
  return false;
}

// quantization_config: block-quantized FP8 (DeepSeek-V3/R1's published weights) is the
// one zeroth loads; returns weight_block_size (default 128 x 128).
std::array<int64_t, 2> read_fp8_quantization(const json& q, const std::string& file) {
  auto fail = [&](const char* key, const char* expected, const json& found) {
    throw ConfigError(strformat("%s: key 'quantization_config%s%s': expected %s, found %s", file.c_str(),
                                *key ? "." : "", key, expected, io::json_brief(found).c_str()));
  };
  if (!q.is_object()) fail("", "an object", q);
  auto it = q.find("quant_method");
  if (it == q.end() || *it != "fp8")
    fail("quant_method", "\"fp8\" (block-quantized FP8 weights, the one quantization zeroth loads)",
         it == q.end() ? json("nothing") : *it);
  it = q.find("fmt");
  if (it != q.end() && *it != "e4m3") fail("fmt", "\"e4m3\"", *it);
  std::array<int64_t, 2> block = {128, 128};
  it = q.find("weight_block_size");
  if (it != q.end() && !it->is_null()) {
    const json& w = *it;
    if (!w.is_array() || w.size() != 2 || !w[0].is_number_integer() || !w[1].is_number_integer() ||
        w[0].get<int64_t>() <= 0 || w[1].get<int64_t>() <= 0)
      fail("weight_block_size", "[rows, cols] of two positive integers", w);
    block = {w[0].get<int64_t>(), w[1].get<int64_t>()};
  }
  return block;
}

class Reader {
 public:
  Reader(const json& obj, std::string source, std::string prefix = "")
      : obj_(obj), source_(std::move(source)), prefix_(std::move(prefix)) {}

  [[noreturn]] void fail(const std::string& key, const char* expected, const json& found) const {
    throw ConfigError(strformat("%s: key '%s%s': expected %s, found %s", source_.c_str(),
                                prefix_.c_str(), key.c_str(), expected,
                                io::json_brief(found).c_str()));
  }
  const json* find(const char* key) const {
    auto it = obj_.find(key);
    return it == obj_.end() ? nullptr : &*it;
  }
  void integer(const char* key, int64_t* out) const {
    const json* v = find(key);
    if (!v) return;
    if (!v->is_number_integer()) fail(key, "an integer", *v);
    *out = v->get<int64_t>();
  }
  void optional_integer(const char* key, std::optional<int64_t>* out) const {
    const json* v = find(key);
    if (!v) return;
    if (v->is_null()) {
      out->reset();
      return;
    }
    if (v->is_array() && !v->empty() && (*v)[0].is_number_integer()) {
      // HF allows a list of ids (e.g. several EOS tokens); the model uses the first.
      ZT_LOG_DEBUG("%s: key '%s': a list; using its first id", source_.c_str(), key);
      *out = (*v)[0].get<int64_t>();
      return;
    }
    if (!v->is_number_integer()) fail(key, "an integer or null", *v);
    *out = v->get<int64_t>();
  }
  void number(const char* key, double* out) const {
    const json* v = find(key);
    if (!v) return;
    if (!v->is_number()) fail(key, "a number", *v);
    *out = v->get<double>();
  }
  void boolean(const char* key, bool* out) const {
    const json* v = find(key);
    if (!v) return;
    if (!v->is_boolean()) fail(key, "true or false", *v);
    *out = v->get<bool>();
  }
  void string(const char* key, std::string* out) const {
    const json* v = find(key);
    if (!v) return;
    if (!v->is_string()) fail(key, "a string", *v);
    *out = v->get<std::string>();
  }

 private:
  const json& obj_;
  std::string source_, prefix_;
};

// rope_scaling (or the newer rope_parameters without rope_theta) -> RopeScaling, or
// nullopt for type "default".
std::optional<RopeScaling> read_rope_scaling(const json& rs, const std::string& source,
                                             const char* key) {
  Reader r(rs, source, std::string(key) + ".");
  if (!rs.is_object()) Reader(json::object(), source).fail(key, "null or an object", rs);
  std::string type;
  r.string("rope_type", &type);
  if (type.empty()) r.string("type", &type);
  if (type == "default") return std::nullopt;
  if (type != "yarn") r.fail("type", "\"yarn\" or \"default\"", type);
  RopeScaling s;
  s.original_max_position_embeddings = 0;  // absent unless given
  s.mscale = 0.0;
  s.mscale_all_dim = 0.0;
  if (!r.find("factor")) r.fail("factor", "a number (yarn needs it)", nullptr);
  r.number("factor", &s.factor);
  r.integer("original_max_position_embeddings", &s.original_max_position_embeddings);
  r.number("beta_fast", &s.beta_fast);
  r.number("beta_slow", &s.beta_slow);
  const json* ms = r.find("mscale");
  if (ms && !ms->is_null()) r.number("mscale", &s.mscale);
  const json* msa = r.find("mscale_all_dim");
  if (msa && !msa->is_null()) r.number("mscale_all_dim", &s.mscale_all_dim);
  const json* af = r.find("attention_factor");
  if (af && !af->is_null()) {
    double v = 0;
    r.number("attention_factor", &v);
    s.attention_factor = v;
  }
  r.boolean("truncate", &s.truncate);
  return s;
}

double yarn_mscale(double scale, double mscale) {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

// HF _compute_yarn_parameters: the factor used for frequencies and attention factor.
double yarn_effective_factor(const ModelConfig& c) {
  const RopeScaling& rs = *c.rope_scaling;
  if (rs.original_max_position_embeddings > 0)
    return double(c.max_position_embeddings) / double(rs.original_max_position_embeddings);
  return rs.factor;
}

std::string json_number(double v) { return json(v).dump(); }

}  // namespace

double ModelConfig::softmax_scale() const {
  double scale = 1.0 / std::sqrt(double(qk_head_dim()));
  // HF modeling_deepseek_v3: mscale from rope_scaling["factor"] and mscale_all_dim.
  if (rope_scaling && rope_scaling->mscale_all_dim != 0.0) {
    const double m = yarn_mscale(rope_scaling->factor, rope_scaling->mscale_all_dim);
    scale *= m * m;
  }
  return scale;
}

std::vector<double> ModelConfig::rope_inv_freq() const {
  const int64_t dim = qk_rope_head_dim;
  const double base = rope_theta;
  std::vector<double> pos(size_t(dim / 2)), inv(size_t(dim / 2));
  for (int64_t j = 0; j < dim / 2; ++j) pos[j] = std::pow(base, double(2 * j) / double(dim));
  if (!rope_scaling) {
    for (size_t j = 0; j < pos.size(); ++j) inv[j] = 1.0 / pos[j];
    return inv;
  }
  const RopeScaling& rs = *rope_scaling;
  const double factor = yarn_effective_factor(*this);
  const double orig = rs.original_max_position_embeddings > 0
                          ? double(rs.original_max_position_embeddings)
                          : double(max_position_embeddings);
  const double beta_fast = rs.beta_fast != 0.0 ? rs.beta_fast : 32.0;
  const double beta_slow = rs.beta_slow != 0.0 ? rs.beta_slow : 1.0;
  auto corr_dim = [&](double rot) {
    return double(dim) * std::log(orig / (rot * 2.0 * M_PI)) / (2.0 * std::log(base));
  };
  double low = corr_dim(beta_fast), high = corr_dim(beta_slow);
  if (rs.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, double(dim - 1));
  if (low == high) high += 0.001;
  for (int64_t j = 0; j < dim / 2; ++j) {
    double ramp = (double(j) - low) / (high - low);
    ramp = std::min(1.0, std::max(0.0, ramp));
    const double extrap = 1.0 - ramp;
    inv[j] = (1.0 / (factor * pos[j])) * (1.0 - extrap) + (1.0 / pos[j]) * extrap;
  }
  return inv;
}

double ModelConfig::rope_attention_factor() const {
  if (!rope_scaling) return 1.0;
  const RopeScaling& rs = *rope_scaling;
  if (rs.attention_factor) return *rs.attention_factor;
  const double f = yarn_effective_factor(*this);
  if (rs.mscale != 0.0 && rs.mscale_all_dim != 0.0)
    return yarn_mscale(f, rs.mscale) / yarn_mscale(f, rs.mscale_all_dim);
  return yarn_mscale(f, 1.0);
}

void ModelConfig::validate(const std::string& source) const {
  const char* src = source.c_str();
  auto fail = [&](const char* key, const std::string& expected, const std::string& found) {
    throw ConfigError(strformat("%s: key '%s': expected %s, found %s", src, key, expected.c_str(),
                                found.c_str()));
  };
  auto positive = [&](const char* key, int64_t v) {
    if (v <= 0) fail(key, "a positive integer", std::to_string(v));
  };
  positive("vocab_size", vocab_size);
  positive("hidden_size", hidden_size);
  positive("intermediate_size", intermediate_size);
  positive("moe_intermediate_size", moe_intermediate_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("n_routed_experts", n_routed_experts);
  positive("kv_lora_rank", kv_lora_rank);
  positive("qk_rope_head_dim", qk_rope_head_dim);
  positive("v_head_dim", v_head_dim);
  positive("qk_nope_head_dim", qk_nope_head_dim);
  positive("n_group", n_group);
  positive("topk_group", topk_group);
  positive("num_experts_per_tok", num_experts_per_tok);
  positive("max_position_embeddings", max_position_embeddings);
  if (q_lora_rank && *q_lora_rank <= 0)
    fail("q_lora_rank", "null or a positive integer", std::to_string(*q_lora_rank));
  if (num_key_value_heads != num_attention_heads)
    fail("num_key_value_heads",
         strformat("== num_attention_heads (%lld) for MLA", (long long)num_attention_heads),
         std::to_string(num_key_value_heads));
  if (qk_rope_head_dim % 2) fail("qk_rope_head_dim", "an even number", std::to_string(qk_rope_head_dim));
  if (n_routed_experts % n_group)
    fail("n_group", strformat("a divisor of n_routed_experts (%lld)", (long long)n_routed_experts),
         std::to_string(n_group));
  const int64_t per_group = n_routed_experts / n_group;
  if (per_group < 2)
    fail("n_group", "at most n_routed_experts / 2 (a group's score is the sum of its top-2)",
         std::to_string(n_group));
  if (topk_group > n_group)
    fail("topk_group", strformat("<= n_group (%lld)", (long long)n_group), std::to_string(topk_group));
  if (num_experts_per_tok > topk_group * per_group)
    fail("num_experts_per_tok",
         strformat("<= topk_group * experts per group (%lld)", (long long)(topk_group * per_group)),
         std::to_string(num_experts_per_tok));
  if (first_k_dense_replace < 0 || first_k_dense_replace > num_hidden_layers)
    fail("first_k_dense_replace", strformat("in [0, %lld]", (long long)num_hidden_layers),
         std::to_string(first_k_dense_replace));
  if (n_shared_experts < 0) fail("n_shared_experts", ">= 0", std::to_string(n_shared_experts));
  if (num_nextn_predict_layers < 0)
    fail("num_nextn_predict_layers", ">= 0", std::to_string(num_nextn_predict_layers));
  if (!(routed_scaling_factor > 0))
    fail("routed_scaling_factor", "a positive number", json_number(routed_scaling_factor));
  if (!(rms_norm_eps > 0)) fail("rms_norm_eps", "a positive number", json_number(rms_norm_eps));
  if (!(initializer_range >= 0))
    fail("initializer_range", "a number >= 0", json_number(initializer_range));
  if (!(rope_theta > 1)) fail("rope_theta", "a number > 1", json_number(rope_theta));
  if (hidden_act != "silu") fail("hidden_act", "\"silu\"", "\"" + hidden_act + "\"");
  if (attention_bias) fail("attention_bias", "false (MLA projections have no bias)", "true");
  const struct {
    const char* key;
    const std::optional<int64_t>& id;
  } ids[] = {{"bos_token_id", bos_token_id}, {"eos_token_id", eos_token_id}, {"pad_token_id", pad_token_id}};
  for (const auto& t : ids)
    if (t.id && (*t.id < 0 || *t.id >= vocab_size))
      fail(t.key, strformat("null or an id in [0, vocab_size = %lld)", (long long)vocab_size),
           std::to_string(*t.id));
  if (rope_scaling) {
    const RopeScaling& rs = *rope_scaling;
    if (rs.type != "yarn") fail("rope_scaling.type", "\"yarn\"", "\"" + rs.type + "\"");
    if (!(rs.factor >= 1.0)) fail("rope_scaling.factor", "a number >= 1", json_number(rs.factor));
    if (rs.original_max_position_embeddings < 0)
      fail("rope_scaling.original_max_position_embeddings", "a positive integer (or absent)",
           std::to_string(rs.original_max_position_embeddings));
    if (!(rs.beta_fast > rs.beta_slow && rs.beta_slow > 0))
      fail("rope_scaling.beta_fast", strformat("> beta_slow (%g) > 0", rs.beta_slow),
           json_number(rs.beta_fast));
    if (rs.attention_factor && !(*rs.attention_factor > 0))
      fail("rope_scaling.attention_factor", "a positive number", json_number(*rs.attention_factor));
  }
}

static int64_t attention_params(const ModelConfig& c) {
  const int64_t C = c.hidden_size, H = c.num_attention_heads;
  int64_t n = 0;
  if (c.q_lora_rank) {
    const int64_t rq = *c.q_lora_rank;
    n += rq * C + rq + H * c.qk_head_dim() * rq;
  } else {
    n += H * c.qk_head_dim() * C;
  }
  n += (c.kv_lora_rank + c.qk_rope_head_dim) * C + c.kv_lora_rank;
  n += H * (c.qk_nope_head_dim + c.v_head_dim) * c.kv_lora_rank;
  n += C * H * c.v_head_dim;
  return n;
}

// Parameters of all layers, counting `experts_used` routed experts per MoE layer.
static int64_t count_parameters(const ModelConfig& c, int64_t experts_used) {
  const int64_t C = c.hidden_size, V = c.vocab_size;
  int64_t n = V * C + C + (c.tie_word_embeddings ? 0 : V * C);
  const int64_t n_moe = c.num_hidden_layers - c.first_k_dense_replace;
  const int64_t n_dense = c.first_k_dense_replace;
  const int64_t per_layer = 2 * C + attention_params(c);
  n += c.num_hidden_layers * per_layer;
  n += n_dense * 3 * c.intermediate_size * C;
  const int64_t moe = c.n_routed_experts * C + c.n_routed_experts +
                      experts_used * 3 * c.moe_intermediate_size * C +
                      3 * c.moe_intermediate_size * c.n_shared_experts * C;
  n += n_moe * moe;
  return n;
}

int64_t ModelConfig::num_parameters() const { return count_parameters(*this, n_routed_experts); }

int64_t ModelConfig::num_active_parameters() const {
  return count_parameters(*this, num_experts_per_tok);
}

static json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(strformat("%s: cannot open the model config (expected a HF config.json)",
                                       path.c_str()));
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return json::parse(ss.str());
  } catch (const json::parse_error& e) {
    throw ConfigError(strformat("%s: not valid JSON: %s", path.c_str(), e.what()));
  }
}

ModelConfig read_model_config(const std::string& path) {
  const std::string file = io::is_directory(path) ? io::join_path(path, "config.json") : path;
  const json j = read_json_file(file);
  if (!j.is_object())
    throw ConfigError(strformat("%s: expected a JSON object, found %s", file.c_str(),
                                io::json_brief(j).c_str()));
  for (const auto& req : required_if_present()) {
    auto it = j.find(req.key);
    if (it != j.end() && *it != req.value)
      throw ConfigError(strformat("%s: key '%s': expected %s, found %s", file.c_str(), req.key,
                                  req.value.dump().c_str(), io::json_brief(*it).c_str()));
  }
  ModelConfig c;
  if (j.contains("quantization_config") && !j["quantization_config"].is_null())
    c.fp8_weight_block = read_fp8_quantization(j["quantization_config"], file);
  Reader r(j, file);
  r.integer("vocab_size", &c.vocab_size);
  r.integer("hidden_size", &c.hidden_size);
  r.integer("intermediate_size", &c.intermediate_size);
  r.integer("moe_intermediate_size", &c.moe_intermediate_size);
  r.integer("num_hidden_layers", &c.num_hidden_layers);
  r.integer("num_attention_heads", &c.num_attention_heads);
  c.num_key_value_heads = c.num_attention_heads;  // HF: None -> num_attention_heads
  if (const json* v = r.find("num_key_value_heads"); v && !v->is_null())
    r.integer("num_key_value_heads", &c.num_key_value_heads);
  if (const json* v = r.find("n_shared_experts"); v && v->is_null()) c.n_shared_experts = 0;
  else r.integer("n_shared_experts", &c.n_shared_experts);
  r.integer("n_routed_experts", &c.n_routed_experts);
  r.number("routed_scaling_factor", &c.routed_scaling_factor);
  r.integer("kv_lora_rank", &c.kv_lora_rank);
  r.optional_integer("q_lora_rank", &c.q_lora_rank);
  r.integer("qk_rope_head_dim", &c.qk_rope_head_dim);
  r.integer("v_head_dim", &c.v_head_dim);
  r.integer("qk_nope_head_dim", &c.qk_nope_head_dim);
  r.integer("n_group", &c.n_group);
  r.integer("topk_group", &c.topk_group);
  r.integer("num_experts_per_tok", &c.num_experts_per_tok);
  r.integer("first_k_dense_replace", &c.first_k_dense_replace);
  r.boolean("norm_topk_prob", &c.norm_topk_prob);
  r.string("hidden_act", &c.hidden_act);
  r.integer("max_position_embeddings", &c.max_position_embeddings);
  r.number("initializer_range", &c.initializer_range);
  r.number("rms_norm_eps", &c.rms_norm_eps);
  r.boolean("tie_word_embeddings", &c.tie_word_embeddings);
  r.number("rope_theta", &c.rope_theta);
  r.boolean("rope_interleave", &c.rope_interleave);
  r.boolean("attention_bias", &c.attention_bias);
  r.optional_integer("bos_token_id", &c.bos_token_id);
  r.optional_integer("eos_token_id", &c.eos_token_id);
  r.optional_integer("pad_token_id", &c.pad_token_id);
  if (const json* v = r.find("torch_dtype"); v && !v->is_null()) r.string("torch_dtype", &c.torch_dtype);
  if (const json* v = r.find("num_nextn_predict_layers"); v && !v->is_null())
    r.integer("num_nextn_predict_layers", &c.num_nextn_predict_layers);
  if (const json* rs = r.find("rope_scaling"); rs && !rs->is_null()) {
    c.rope_scaling = read_rope_scaling(*rs, file, "rope_scaling");
  } else if (const json* rp = r.find("rope_parameters"); rp && rp->is_object()) {
    // Newer transformers: rope_theta and the scaling in one object.
    Reader(*rp, file, "rope_parameters.").number("rope_theta", &c.rope_theta);
    json rest = *rp;
    rest.erase("rope_theta");
    if (!rest.contains("rope_type") && !rest.contains("type")) rest["rope_type"] = "default";
    c.rope_scaling = read_rope_scaling(rest, file, "rope_parameters");
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    static const char* const kKnown[] = {
        "vocab_size", "hidden_size", "intermediate_size", "moe_intermediate_size",
        "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "n_shared_experts",
        "n_routed_experts", "routed_scaling_factor", "kv_lora_rank", "q_lora_rank",
        "qk_rope_head_dim", "v_head_dim", "qk_nope_head_dim", "n_group", "topk_group",
        "num_experts_per_tok", "first_k_dense_replace", "norm_topk_prob", "hidden_act",
        "max_position_embeddings", "initializer_range", "rms_norm_eps", "tie_word_embeddings",
        "rope_theta", "rope_scaling", "rope_interleave", "attention_bias", "bos_token_id",
        "eos_token_id", "pad_token_id", "torch_dtype", "num_nextn_predict_layers",
        "quantization_config"};  // (FP8 weights: read by load_hf_weights)
    bool known = is_ignored_key(it.key());
    for (const char* k : kKnown) known = known || it.key() == k;
    if (!known) ZT_LOG_DEBUG("%s: ignoring key '%s' (not used by zeroth)", file.c_str(), it.key().c_str());
  }
  c.validate(file);
  return c;
}

static json config_to_json(const ModelConfig& c) {
  auto opt = [](const std::optional<int64_t>& v) { return v ? json(*v) : json(nullptr); };
  json j = json::object();
  j["architectures"] = json::array({"DeepseekV3ForCausalLM"});
  j["model_type"] = "deepseek_v3";
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["moe_intermediate_size"] = c.moe_intermediate_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["n_shared_experts"] = c.n_shared_experts;
  j["n_routed_experts"] = c.n_routed_experts;
  j["routed_scaling_factor"] = c.routed_scaling_factor;
  j["kv_lora_rank"] = c.kv_lora_rank;
  j["q_lora_rank"] = opt(c.q_lora_rank);
  j["qk_rope_head_dim"] = c.qk_rope_head_dim;
  j["v_head_dim"] = c.v_head_dim;
  j["qk_nope_head_dim"] = c.qk_nope_head_dim;
  j["n_group"] = c.n_group;
  j["topk_group"] = c.topk_group;
  j["num_experts_per_tok"] = c.num_experts_per_tok;
  j["first_k_dense_replace"] = c.first_k_dense_replace;
  j["norm_topk_prob"] = c.norm_topk_prob;
  j["hidden_act"] = c.hidden_act;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["initializer_range"] = c.initializer_range;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["rope_theta"] = c.rope_theta;
  j["rope_interleave"] = c.rope_interleave;
  j["attention_bias"] = c.attention_bias;
  j["attention_dropout"] = 0.0;
  j["bos_token_id"] = opt(c.bos_token_id);
  j["eos_token_id"] = opt(c.eos_token_id);
  j["pad_token_id"] = opt(c.pad_token_id);
  j["torch_dtype"] = c.torch_dtype;
  j["use_cache"] = true;
  j["pretraining_tp"] = 1;
  // HF-written DeepSeek-V3 configs carry these; they state zeroth's routing exactly.
  j["scoring_func"] = "sigmoid";
  j["topk_method"] = "noaux_tc";
  j["moe_layer_freq"] = 1;
  if (c.num_nextn_predict_layers > 0) j["num_nextn_predict_layers"] = c.num_nextn_predict_layers;
  if (c.rope_scaling) {
    const RopeScaling& rs = *c.rope_scaling;
    json r = json::object();
    r["type"] = rs.type;
    r["factor"] = rs.factor;
    if (rs.original_max_position_embeddings > 0)
      r["original_max_position_embeddings"] = rs.original_max_position_embeddings;
    r["beta_fast"] = rs.beta_fast;
    r["beta_slow"] = rs.beta_slow;
    if (rs.mscale != 0.0) r["mscale"] = rs.mscale;
    if (rs.mscale_all_dim != 0.0) r["mscale_all_dim"] = rs.mscale_all_dim;
    if (rs.attention_factor) r["attention_factor"] = *rs.attention_factor;
    if (!rs.truncate) r["truncate"] = false;
    j["rope_scaling"] = r;
  } else {
    j["rope_scaling"] = nullptr;
  }
  return j;
}

void write_model_config(const ModelConfig& config, const std::string& path) {
  config.validate(path);
  const std::string file = io::is_directory(path) ? io::join_path(path, "config.json") : path;
  const std::string text = config_to_json(config).dump(2) + "\n";
  const std::string tmp = file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw RuntimeError(strformat("%s: cannot write the model config", tmp.c_str()));
    out << text;
    out.flush();
    if (!out) throw RuntimeError(strformat("%s: write failed", tmp.c_str()));
  }
  if (std::rename(tmp.c_str(), file.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw RuntimeError(strformat("renaming %s to %s: %s", tmp.c_str(), file.c_str(),
                                io::errno_message(err, file).c_str()));
  }
}

}  // namespace zeroth
