// load_hf_weights / save_hf_weights: a ParamSet <-> a Hugging Face model directory
// (config.json + model.safetensors or sharded model-*.safetensors with its index).
//
// Owns: matching HF tensor names to ParamSet entries, the checks on a directory's
// config.json and tensors (missing, unexpected, mis-shaped: CheckpointErrors naming
// the tensor and both shapes), dtype conversion on the way in and out (FP8 block
// dequantization on the way in), and which
// tensors HF tolerates (multi-token-prediction layers, tied lm_head, rotary buffers),
// reading only a shard's experts, and the per-part writer and index of an expert group.
// Must not: parse safetensors itself (zeroth/safetensors.h) or know the layout
// (model_params.cpp).
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "io/io_util.h"
#include "zeroth/error.h"
#include "zeroth/log.h"
#include "zeroth/model_params.h"
#include "zeroth/safetensors.h"

namespace zeroth {

namespace {

// Differences in the keys that define the model's shapes and computation.
std::vector<std::string> config_differences(const ModelConfig& want, const ModelConfig& got) {
  std::vector<std::string> diffs;
  auto cmp = [&](const char* key, const std::string& a, const std::string& b) {
    if (a != b) diffs.push_back(strformat("%s: expected %s, found %s", key, a.c_str(), b.c_str()));
  };
  auto i = [](int64_t v) { return std::to_string(v); };
  auto d = [](double v) { return strformat("%.17g", v); };
  auto b = [](bool v) { return std::string(v ? "true" : "false"); };
  auto oi = [](const std::optional<int64_t>& v) { return v ? std::to_string(*v) : std::string("null"); };
  cmp("vocab_size", i(want.vocab_size), i(got.vocab_size));
  cmp("hidden_size", i(want.hidden_size), i(got.hidden_size));
  cmp("intermediate_size", i(want.intermediate_size), i(got.intermediate_size));
  cmp("moe_intermediate_size", i(want.moe_intermediate_size), i(got.moe_intermediate_size));
  cmp("num_hidden_layers", i(want.num_hidden_layers), i(got.num_hidden_layers));
  cmp("num_attention_heads", i(want.num_attention_heads), i(got.num_attention_heads));
  cmp("n_shared_experts", i(want.n_shared_experts), i(got.n_shared_experts));
  cmp("n_routed_experts", i(want.n_routed_experts), i(got.n_routed_experts));
  cmp("routed_scaling_factor", d(want.routed_scaling_factor), d(got.routed_scaling_factor));
  cmp("kv_lora_rank", i(want.kv_lora_rank), i(got.kv_lora_rank));
  cmp("q_lora_rank", oi(want.q_lora_rank), oi(got.q_lora_rank));
  cmp("qk_rope_head_dim", i(want.qk_rope_head_dim), i(got.qk_rope_head_dim));
  cmp("v_head_dim", i(want.v_head_dim), i(got.v_head_dim));
  cmp("qk_nope_head_dim", i(want.qk_nope_head_dim), i(got.qk_nope_head_dim));
  cmp("n_group", i(want.n_group), i(got.n_group));
  cmp("topk_group", i(want.topk_group), i(got.topk_group));
  cmp("num_experts_per_tok", i(want.num_experts_per_tok), i(got.num_experts_per_tok));
  cmp("first_k_dense_replace", i(want.first_k_dense_replace), i(got.first_k_dense_replace));
  cmp("norm_topk_prob", b(want.norm_topk_prob), b(got.norm_topk_prob));
  cmp("rms_norm_eps", d(want.rms_norm_eps), d(got.rms_norm_eps));
  cmp("tie_word_embeddings", b(want.tie_word_embeddings), b(got.tie_word_embeddings));
  cmp("rope_theta", d(want.rope_theta), d(got.rope_theta));
  cmp("rope_interleave", b(want.rope_interleave), b(got.rope_interleave));
  cmp("rope_scaling", want.rope_scaling ? "yarn" : "null", got.rope_scaling ? "yarn" : "null");
  if (want.rope_scaling && got.rope_scaling) {
    // With yarn the context length sets the frequencies; without, it changes nothing.
    cmp("max_position_embeddings", i(want.max_position_embeddings), i(got.max_position_embeddings));
    const RopeScaling &x = *want.rope_scaling, &y = *got.rope_scaling;
    cmp("rope_scaling.factor", d(x.factor), d(y.factor));
    cmp("rope_scaling.original_max_position_embeddings", i(x.original_max_position_embeddings),
        i(y.original_max_position_embeddings));
    cmp("rope_scaling.beta_fast", d(x.beta_fast), d(y.beta_fast));
    cmp("rope_scaling.beta_slow", d(x.beta_slow), d(y.beta_slow));
    cmp("rope_scaling.mscale", d(x.mscale), d(y.mscale));
    cmp("rope_scaling.mscale_all_dim", d(x.mscale_all_dim), d(y.mscale_all_dim));
    cmp("rope_scaling.attention_factor", x.attention_factor ? d(*x.attention_factor) : "null",
        y.attention_factor ? d(*y.attention_factor) : "null");
    cmp("rope_scaling.truncate", b(x.truncate), b(y.truncate));
  }
  return diffs;
}

// model.layers.{i}.* with num_hidden_layers <= i < num_hidden_layers + MTP layers.
bool is_mtp_tensor(const std::string& name, const ModelConfig& c) {
  static const std::string kPrefix = "model.layers.";
  if (name.compare(0, kPrefix.size(), kPrefix) != 0) return false;
  size_t pos = kPrefix.size();
  int64_t layer = 0;
  size_t digits = 0;
  while (pos < name.size() && name[pos] >= '0' && name[pos] <= '9' && digits < 9) {
    layer = layer * 10 + (name[pos] - '0');
    ++pos;
    ++digits;
  }
  if (digits == 0 || pos >= name.size() || name[pos] != '.') return false;
  return layer >= c.num_hidden_layers && layer < c.num_hidden_layers + c.num_nextn_predict_layers;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// True for `model.layers.{l}.mlp.experts.{e}.*` of a MoE layer l when e is a valid
// expert outside `shard` (expert parallelism: another rank loads it).
bool other_shards_expert(const std::string& name, const ModelConfig& config, const ExpertShard& shard) {
  if (shard.whole(config)) return false;
  const std::string prefix = "model.layers.";
  const std::string mid = ".mlp.experts.";
  if (name.compare(0, prefix.size(), prefix) != 0) return false;
  const size_t m = name.find(mid, prefix.size());
  if (m == std::string::npos) return false;
  const char* p = name.c_str() + prefix.size();
  char* end = nullptr;
  const long layer = std::strtol(p, &end, 10);
  if (end != name.c_str() + m || layer < 0 || layer >= config.num_hidden_layers ||
      !config.is_moe_layer(layer))
    return false;
  const long e = std::strtol(name.c_str() + m + mid.size(), &end, 10);
  if (*end != '.' || e < 0 || e >= config.n_routed_experts) return false;
  return e < shard.first || e >= shard.first + shard.local(config);
}

}  // namespace

namespace {

// FP8 checkpoints (DeepSeek-V3/R1 as published): config.json's quantization_config
// {quant_method: fp8, fmt: e4m3, weight_block_size: [128, 128]}; every F8_E4M3 weight W
// (R, C) comes with W_scale_inv (ceil(R / br), ceil(C / bc)), and its value is
// fp8(W[r, c]) * scale_inv[r / br, c / bc].
struct Fp8Blocks {
  int64_t rows = 128, cols = 128;  // HF's default weight_block_size
};

// A `*_scale_inv` tensor whose weight is in the file as F8_E4M3: read with its weight.
bool is_fp8_scale(const std::string& name, const ShardedSafetensors& st) {
  static const std::string kSuffix = "_scale_inv";
  if (!ends_with(name, kSuffix)) return false;
  const std::string weight = name.substr(0, name.size() - kSuffix.size());
  return st.has(weight) && st.info(weight).dtype == DType::F8E4M3;
}

// Non-finite values among n floats of `dtype` (F32, BF16, F16; 0 for other dtypes): NaN
// and infinity have every exponent bit set.
int64_t count_nonfinite(const void* data, DType dtype, int64_t n) {
  // (memcpy: a tensor mapped from a safetensors file need not be aligned)
  const unsigned char* p = static_cast<const unsigned char*>(data);
  int64_t bad = 0;
  // (threads for large tensors: a 100B-parameter load scans ~200 GB)
  const bool par = n >= (int64_t(1) << 20);
  if (dtype == DType::F32) {
#pragma omp parallel for reduction(+ : bad) if (par)
    for (int64_t i = 0; i < n; ++i) {
      uint32_t v;
      std::memcpy(&v, p + 4 * i, 4);
      bad += (v & 0x7f800000u) == 0x7f800000u;
    }
  } else if (dtype == DType::BF16 || dtype == DType::F16) {
    const uint16_t mask = dtype == DType::BF16 ? 0x7f80u : 0x7c00u;
#pragma omp parallel for reduction(+ : bad) if (par)
    for (int64_t i = 0; i < n; ++i) {
      uint16_t v;
      std::memcpy(&v, p + 2 * i, 2);
      bad += (v & mask) == mask;
    }
  }
  return bad;
}

// A checkpoint with NaN or infinite weights is refused when it loads (a diverged model
// would otherwise sample from NaN logits and score NaN log-probs without a word).
void check_loaded_finite(const std::string& path, const std::string& name, int64_t bad, int64_t n) {
  if (bad > 0)
    throw CheckpointError(strformat("%s: tensor '%s' has %lld non-finite value(s) of %lld: the model has "
                                    "diverged (use an earlier checkpoint)",
                                    path.c_str(), name.c_str(), (long long)bad, (long long)n));
}

// Dequantizes the F8_E4M3 weight `name` with its block scales into `dst` (same shape).
void load_fp8_weight(const ShardedSafetensors& st, const std::string& name, const Fp8Blocks& blocks,
                     Tensor& dst) {
  const SafetensorsInfo& info = st.info(name);
  if (info.shape.size() != 2)
    throw CheckpointError(strformat("%s: tensor '%s': an F8_E4M3 tensor must be a 2-D weight with block scales, "
                                    "found shape %s", st.path().c_str(), name.c_str(), shape_str(info.shape).c_str()));
  const std::string scale_name = name + "_scale_inv";
  if (!st.has(scale_name))
    throw CheckpointError(strformat("%s: tensor '%s' is F8_E4M3 but its block scales '%s' are missing",
                                    st.path().c_str(), name.c_str(), scale_name.c_str()));
  const int64_t R = info.shape[0], C = info.shape[1];
  const int64_t nbr = (R + blocks.rows - 1) / blocks.rows, nbc = (C + blocks.cols - 1) / blocks.cols;
  const Shape want = {nbr, nbc};
  const SafetensorsInfo& si = st.info(scale_name);
  if (!dtype_is_float(si.dtype) || si.shape != want)
    throw CheckpointError(strformat("%s: tensor '%s': expected F32/BF16/F16 block scales of shape %s (weight %s in "
                                    "blocks of %lld x %lld, quantization_config.weight_block_size), found %s %s",
                                    st.path().c_str(), scale_name.c_str(), shape_str(want).c_str(),
                                    shape_str(info.shape).c_str(), (long long)blocks.rows, (long long)blocks.cols,
                                    dtype_name(si.dtype), shape_str(si.shape).c_str()));
  std::vector<float> scale(size_t(nbr * nbc));
  st.read_into_converting(scale_name, scale.data(), DType::F32, want);
  float decode[256];
  for (int v = 0; v < 256; ++v) decode[v] = f8e4m3_to_float(uint8_t(v));
  const uint8_t* q = static_cast<const uint8_t*>(st.data(name));
  std::vector<float> w(size_t(R * C));
  for (int64_t r = 0; r < R; ++r) {
    const float* srow = &scale[size_t((r / blocks.rows) * nbc)];
    for (int64_t c = 0; c < C; ++c) w[size_t(r * C + c)] = decode[q[r * C + c]] * srow[c / blocks.cols];
  }
  check_loaded_finite(st.path(), name, count_nonfinite(w.data(), DType::F32, R * C), R * C);
  if (dst.dtype() == DType::F32) {
    dst.copy_from_host(w.data(), w.size() * sizeof(float));
    return;
  }
  std::vector<uint8_t> conv(size_t(R * C) * dtype_size(dst.dtype()));
  io::convert_floats(w.data(), DType::F32, conv.data(), dst.dtype(), uint64_t(R * C));
  dst.copy_from_host(conv.data(), conv.size());
}

}  // namespace

void load_hf_weights(const std::string& dir, const ModelConfig& config, ParamSet& params) {
  const std::string config_file = io::join_path(dir, "config.json");
  Fp8Blocks fp8_blocks;  // without a config.json: HF's default
  if (io::is_directory(dir) && io::is_regular_file(config_file)) {
    const ModelConfig found = read_model_config(config_file);
    if (found.fp8_weight_block) fp8_blocks = {(*found.fp8_weight_block)[0], (*found.fp8_weight_block)[1]};
    const std::vector<std::string> diffs = config_differences(config, found);
    if (!diffs.empty()) {
      std::string msg = strformat(
          "%s: this checkpoint is a different model from the one expected (%zu key%s differ%s):",
          config_file.c_str(), diffs.size(), diffs.size() == 1 ? "" : "s", diffs.size() == 1 ? "s" : "");
      for (const auto& d : diffs) msg += "\n  " + d;
      throw CheckpointError(msg);
    }
  }
  const ShardedSafetensors st = ShardedSafetensors::open(dir);
  int64_t fp8_tensors = 0;
  std::map<std::string, ParamEntry*> wanted;
  for (ParamEntry& e : params.entries) wanted[e.name] = &e;

  std::vector<std::string> unexpected;
  std::set<std::string> seen;
  for (const std::string& name : st.names()) {
    auto it = wanted.find(name);
    if (it == wanted.end()) {
      if (is_mtp_tensor(name, config) || ends_with(name, ".rotary_emb.inv_freq")) continue;
      if (other_shards_expert(name, config, params.experts)) continue;  // another rank's
      if (name == "lm_head.weight" && config.tie_word_embeddings) {
        // Some writers keep the tied head; HF re-ties it to the embedding after loading.
        ZT_LOG_DEBUG("%s: ignoring lm_head.weight of a tied model", st.path().c_str());
        continue;
      }
      if (is_fp8_scale(name, st)) continue;  // read with its weight
      unexpected.push_back(name);
      continue;
    }
    Tensor& dst = it->second->view;
    const SafetensorsInfo& info = st.info(name);
    if (info.shape != dst.shape())
      throw CheckpointError(strformat("%s: tensor '%s': expected shape %s, found %s",
                                      st.path().c_str(), name.c_str(), shape_str(dst.shape()).c_str(),
                                      shape_str(info.shape).c_str()));
    if (info.dtype == DType::F8E4M3) {
      load_fp8_weight(st, name, fp8_blocks, dst);
      seen.insert(name);
      ++fp8_tensors;
      continue;
    }
    if (!dtype_is_float(info.dtype))
      throw CheckpointError(strformat("%s: tensor '%s': expected a float dtype (F32, BF16, F16, or F8_E4M3 "
                                      "with block scales), found %s",
                                      st.path().c_str(), name.c_str(), dtype_name(info.dtype)));
    check_loaded_finite(st.path(), name, count_nonfinite(st.data(name), info.dtype, dst.numel()), dst.numel());
    st.read_into_converting(name, dst);
    seen.insert(name);
  }
  if (fp8_tensors > 0)
    ZT_LOG_INFO("%s: dequantized %lld FP8 (e4m3) weights with their %lld x %lld block scales", st.path().c_str(),
                (long long)fp8_tensors, (long long)fp8_blocks.rows, (long long)fp8_blocks.cols);
  if (!unexpected.empty()) {
    std::string list;
    for (size_t i = 0; i < unexpected.size() && i < 5; ++i)
      list += (i ? ", '" : "'") + unexpected[i] + "' " + shape_str(st.info(unexpected[i]).shape);
    throw CheckpointError(strformat("%s: %zu unexpected tensor%s for this model config: %s%s",
                                    st.path().c_str(), unexpected.size(),
                                    unexpected.size() == 1 ? "" : "s", list.c_str(),
                                    unexpected.size() > 5 ? ", ..." : ""));
  }
  if (seen.size() != params.entries.size()) {
    std::string list;
    size_t n = 0;
    for (const ParamEntry& e : params.entries) {
      if (seen.count(e.name)) continue;
      if (n < 5) list += (n ? ", '" : "'") + e.name + "' (expected " + shape_str(e.view.shape()) + ")";
      ++n;
    }
    throw CheckpointError(strformat("%s: %zu missing tensor%s: %s%s", st.path().c_str(), n,
                                    n == 1 ? "" : "s", list.c_str(), n > 5 ? ", ..." : ""));
  }
}

namespace {

// A diverged model is not saved: a CheckpointError naming the tensor, before any file is
// written (the previous checkpoint stays the newest).
void check_finite(const std::string& dir, const ParamEntry& e, const void* host) {
  const int64_t n = e.view.numel();
  const int64_t bad = count_nonfinite(host, e.view.dtype(), n);
  if (bad > 0)
    throw CheckpointError(strformat("%s: tensor '%s' has %lld non-finite value(s) of %lld: the model has "
                                    "diverged; not saving it (lower optim.lr, or resume from the last checkpoint)",
                                    dir.c_str(), e.name.c_str(), (long long)bad, (long long)n));
}

// Adds one parameter to `writer` in `dtype` (a host tensor already in that dtype is
// referenced, not copied: keep it unchanged until the write).
void add_entry(SafetensorsWriter& writer, const std::string& dir, const ParamEntry& e, DType dtype) {
  const Tensor& t = e.view;
  if (t.dtype() == dtype && t.device().is_cpu()) {
    check_finite(dir, e, t.data_ptr());
    writer.add(e.name, dtype, t.shape(), t.data_ptr());
    return;
  }
  std::vector<uint8_t> host(t.nbytes());
  t.copy_to_host(host.data(), host.size());
  check_finite(dir, e, host.data());
  if (t.dtype() == dtype) {
    writer.add_copy(e.name, dtype, t.shape(), host.data());
  } else {
    std::vector<uint8_t> conv(size_t(t.numel()) * dtype_size(dtype));
    io::convert_floats(host.data(), t.dtype(), conv.data(), dtype, uint64_t(t.numel()));
    writer.add_copy(e.name, dtype, t.shape(), conv.data());
  }
}

// config.json with torch_dtype set, written last: a directory with a config has complete weights.
void write_config_last(const std::string& dir, const ModelConfig& config, DType dtype) {
  ModelConfig out = config;
  out.torch_dtype = dtype == DType::BF16 ? "bfloat16" : "float32";
  write_model_config(out, io::join_path(dir, "config.json"));
}

}  // namespace

void save_hf_weights(const std::string& dir, const ModelConfig& config, const ParamSet& params,
                     DType dtype, uint64_t max_shard_bytes) {
  ZT_THROW_IF_NOT(dtype == DType::F32 || dtype == DType::BF16, CheckpointError,
                  "%s: weights are saved as F32 or BF16, not %s", dir.c_str(), dtype_name(dtype));
  SafetensorsWriter writer;
  for (const ParamEntry& e : params.entries) add_entry(writer, dir, e, dtype);
  writer.write_sharded(dir, max_shard_bytes);
  write_config_last(dir, config, dtype);
}

std::string shift_expert_name(const std::string& name, int64_t shift) {
  const std::string mid = ".mlp.experts.";
  const size_t at = name.find(mid);
  ZT_ASSERT(at != std::string::npos, "not an expert tensor: %s", name.c_str());
  const size_t b = at + mid.size(), end = name.find('.', b);
  const long long e = std::stoll(name.substr(b, end - b));
  return name.substr(0, b) + std::to_string(e + shift) + name.substr(end);
}

std::string hf_part_file_name(int part, int parts) {
  return strformat("model-%05d-of-%05d.safetensors", part + 1, parts);
}

void save_hf_weights_part(const std::string& dir, const ModelConfig& config, const ParamSet& params,
                          int part, int parts, DType dtype) {
  ZT_THROW_IF_NOT(dtype == DType::F32 || dtype == DType::BF16, CheckpointError,
                  "%s: weights are saved as F32 or BF16, not %s", dir.c_str(), dtype_name(dtype));
  const ExpertShard want = ExpertShard::of(config, part, parts);
  ZT_ASSERT(params.experts.first == want.first && params.experts.local(config) == want.count,
            "save_hf_weights_part: part %d of %d holds experts [%lld, +%lld), expected [%lld, +%lld)",
            part, parts, (long long)params.experts.first, (long long)params.experts.local(config),
            (long long)want.first, (long long)want.count);
  SafetensorsWriter writer;  // this part's experts; part 0 also every other tensor
  for (const ParamEntry& e : params.entries)
    if (e.expert || part == 0) add_entry(writer, dir, e, dtype);
  writer.write(io::join_path(dir, hf_part_file_name(part, parts)));
}

void save_hf_parts_index(const std::string& dir, const ModelConfig& config, const ParamSet& part0,
                         int parts, DType dtype) {
  const int64_t per = ExpertShard::of(config, 0, parts).count;
  nlohmann::json weight_map = nlohmann::json::object();
  uint64_t total = 0;
  for (const ParamEntry& e : part0.entries) {
    const uint64_t bytes = uint64_t(e.view.numel()) * dtype_size(dtype);
    if (!e.expert) {
      weight_map[e.name] = hf_part_file_name(0, parts);
      total += bytes;
      continue;
    }
    for (int q = 0; q < parts; ++q) {
      weight_map[shift_expert_name(e.name, q * per)] = hf_part_file_name(q, parts);
      total += bytes;
    }
  }
  const nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  const std::string path = io::join_path(dir, "model.safetensors.index.json");
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << index.dump(2) << "\n";
  out.flush();
  if (!out) throw CheckpointError(strformat("%s: cannot write", path.c_str()));
  out.close();
  write_config_last(dir, config, dtype);
}

}  // namespace zeroth
