// `zeroth ckpt init|info|export`: make a fresh HF model directory (config.json, initialised
// safetensors weights, tokenizer files), describe one, or export a model or training
// checkpoint as a plain HF model directory (one dtype, no optimizer or trainer files).
// Must not: define the weight layout, init or file formats (zeroth/model_params.h,
// zeroth/safetensors.h, zeroth/tokenizer.h do); errors propagate to main(), which
// maps UsageError/ConfigError to exit code 2 and the rest to 1.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "zeroth/train.h"  // byte_tokenizer_json
#include "zeroth/backend.h"
#include "zeroth/error.h"
#include "zeroth/model_config.h"
#include "zeroth/model_params.h"
#include "zeroth/safetensors.h"
#include "zeroth/tokenizer.h"

namespace zeroth {
namespace cli {

namespace fs = std::filesystem;

static const char kCkptUsage[] =
    "usage: zeroth ckpt init --config MODEL_CONFIG.json --seed S --out DIR\n"
    "                        [--dtype f32|bf16] [--tokenizer PATH|bytes] [--force]\n"
    "       zeroth ckpt info DIR\n"
    "       zeroth ckpt export DIR --out OUT [--dtype bf16|f32] [--force]\n"
    "\n"
    "  init  write a Hugging Face model directory: DIR/config.json, weights initialised\n"
    "        from seed S (normal(0, initializer_range), norms 1, router bias 0) as\n"
    "        model.safetensors (sharded above 5 GB), and the tokenizer:\n"
    "          --tokenizer PATH   copy tokenizer.json (+ tokenizer_config.json) from a\n"
    "                             file or directory\n"
    "          --tokenizer bytes  write a byte tokenizer (ids 0-255 = bytes, then\n"
    "                             <|bos|> <|eos|> <|pad|>)\n"
    "        The tokenizer must fit the model's vocab_size and agree with its\n"
    "        bos/eos/pad ids. An existing DIR/config.json is kept unless --force.\n"
    "  info  print DIR's architecture, parameter counts (total, active per token) and\n"
    "        the bytes and dtypes of its tensors\n"
    "  export  write the model in DIR (any HF model directory zeroth reads: a run's\n"
    "        final/, a checkpoints/step_N/ of any expert-parallel or ZeRO layout, sharded\n"
    "        or FP8 weights) to OUT as a plain HF model for serving or sharing: the\n"
    "        weights in --dtype (default bf16, round to nearest even; f32 copies them\n"
    "        exactly), config.json (torch_dtype set), the tokenizer files and\n"
    "        generation_config.json when DIR has them; optimizer and trainer files are\n"
    "        left behind. OUT must not be DIR; an existing OUT/config.json is kept\n"
    "        unless --force\n";

static void write_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw RuntimeError(strformat("%s: cannot write", tmp.c_str()));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw RuntimeError(strformat("renaming %s to %s: %s", tmp.c_str(), path.c_str(), ec.message().c_str()));
}

static std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(strformat("%s: cannot read", path.c_str()));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// ConfigError unless `tok` fits `config` (vocabulary and special ids).
static void check_tokenizer_fits(const Tokenizer& tok, const ModelConfig& config,
                                 const std::string& config_path, const std::string& tok_path) {
  if (tok.vocab_size() > config.vocab_size)
    throw ConfigError(strformat("%s: key 'vocab_size': expected >= %d (the tokenizer %s has %d ids), "
                                "found %lld",
                                config_path.c_str(), tok.vocab_size(), tok_path.c_str(),
                                tok.vocab_size(), (long long)config.vocab_size));
  const struct {
    const char* key;
    const std::optional<int64_t>& model_id;
    int32_t tok_id;
  } ids[] = {{"bos_token_id", config.bos_token_id, tok.special_ids().bos},
             {"eos_token_id", config.eos_token_id, tok.special_ids().eos},
             {"pad_token_id", config.pad_token_id, tok.special_ids().pad}};
  for (const auto& t : ids)
    if (t.model_id && t.tok_id >= 0 && *t.model_id != t.tok_id)
      throw ConfigError(strformat("%s: key '%s': expected %d (the id in the tokenizer %s), found %lld",
                                  config_path.c_str(), t.key, t.tok_id, tok_path.c_str(),
                                  (long long)*t.model_id));
}

static uint64_t parse_seed(const std::string& s) {
  size_t used = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(s, &used, 0);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != s.size() || s[0] == '-')
    throw UsageError(strformat("--seed: expected a non-negative integer, found '%s'", s.c_str()));
  return uint64_t(v);
}

static std::string human_bytes(uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(b);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  return u == 0 ? strformat("%llu B", (unsigned long long)b) : strformat("%.2f %s", v, units[u]);
}

// --dtype of the saved weights: f32 or bf16 (`fallback` when absent).
static DType weight_dtype(const Args& args, const char* fallback) {
  const std::string s = args.get("dtype", fallback);
  if (s == "f32") return DType::F32;
  if (s == "bf16") return DType::BF16;
  throw UsageError(strformat("--dtype: expected f32 or bf16, found '%s'", s.c_str()));
}

// UsageError when `out` already holds a model (config.json) and --force was not given.
static void refuse_existing_model(const Args& args, const std::string& out) {
  if (fs::exists(fs::path(out) / "config.json") && !args.has("force"))
    throw UsageError(strformat("%s already holds a model (config.json); pass --force to overwrite it",
                               out.c_str()));
}

static int ckpt_init(const Args& args) {
  const std::string config_path = args.required("config");
  const uint64_t seed = parse_seed(args.required("seed"));
  const std::string out = args.required("out");
  const DType dtype = weight_dtype(args, "f32");

  const ModelConfig config = read_model_config(config_path);
  // The tokenizer is checked before anything is written.
  const std::string tok_arg = args.get("tokenizer");
  std::string tok_json, tok_config_json;
  if (tok_arg == "bytes") {
    check_tokenizer_fits(*make_byte_tokenizer(zeroth_byte_tokenizer_config()), config, config_path, "bytes");
    tok_json = byte_tokenizer_json();
  } else if (!tok_arg.empty()) {
    const bool is_dir = fs::is_directory(tok_arg);
    const std::string file = is_dir ? tok_arg + "/tokenizer.json" : tok_arg;
    const std::string dir = is_dir ? tok_arg : fs::path(tok_arg).parent_path().string();
    check_tokenizer_fits(*load_tokenizer(tok_arg), config, config_path, tok_arg);
    tok_json = read_file(file);
    const std::string cfg = (dir.empty() ? std::string(".") : dir) + "/tokenizer_config.json";
    if (fs::is_regular_file(cfg)) tok_config_json = read_file(cfg);
  }

  refuse_existing_model(args, out);
  // The weights first: a model too large for this machine fails before DIR is made.
  std::unique_ptr<Backend> cpu = make_cpu_backend();
  std::optional<ParamSet> made;
  try {
    made.emplace(make_param_set(config, *cpu, DType::F32));
  } catch (const RuntimeError& e) {
    throw RuntimeError(strformat("%s: the model's %lld parameters need %s in fp32: %s", config_path.c_str(),
                                 (long long)config.num_parameters(),
                                 human_bytes(uint64_t(config.num_parameters()) * 4).c_str(), e.what()));
  }
  ParamSet& params = *made;
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) throw RuntimeError(strformat("%s: cannot create the directory: %s", out.c_str(), ec.message().c_str()));
  init_params(config, params, seed);
  if (!tok_json.empty()) write_file(out + "/tokenizer.json", tok_json);
  if (!tok_config_json.empty()) write_file(out + "/tokenizer_config.json", tok_config_json);
  save_hf_weights(out, config, params, dtype);
  std::printf("wrote %s: %lld parameters (%lld active per token), %s, seed %llu%s\n", out.c_str(),
              (long long)config.num_parameters(), (long long)config.num_active_parameters(),
              dtype == DType::F32 ? "f32" : "bf16", (unsigned long long)seed,
              tok_json.empty() ? ", no tokenizer" : "");
  return 0;
}

static int ckpt_export(const Args& args) {
  if (args.positional().size() != 2) throw UsageError("expected: zeroth ckpt export DIR --out OUT");
  const std::string dir = args.positional()[1];
  const std::string out = args.required("out");
  const DType dtype = weight_dtype(args, "bf16");
  if (!fs::is_directory(dir)) throw DataError(strformat("%s: not a directory (expected an HF model directory)", dir.c_str()));
  std::error_code ec;
  if (fs::exists(out) && fs::equivalent(dir, out, ec))
    throw UsageError(strformat("--out %s is the model directory itself; export into another directory",
                               out.c_str()));
  refuse_existing_model(args, out);
  // Everything is read before OUT is touched.
  const ModelConfig config = read_model_config(dir);
  std::unique_ptr<Backend> cpu = make_cpu_backend();
  ParamSet params = make_param_set(config, *cpu, DType::F32);
  load_hf_weights(dir, config, params);
  std::vector<std::pair<std::string, std::string>> extras;  // file name, contents
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"})
    if (fs::is_regular_file(fs::path(dir) / f)) extras.push_back({f, read_file(dir + "/" + f)});
  if (!extras.empty() && extras[0].first == "tokenizer.json") load_tokenizer(dir);  // a bad one fails here

  fs::create_directories(out, ec);
  if (ec) throw RuntimeError(strformat("%s: cannot create the directory: %s", out.c_str(), ec.message().c_str()));
  fs::remove(fs::path(out) / "config.json", ec);  // --force: the model is incomplete until config.json
  for (const auto& [name, text] : extras) write_file(out + "/" + name, text);
  save_hf_weights(out, config, params, dtype);  // config.json last
  const ShardedSafetensors st = ShardedSafetensors::open(out);
  uint64_t bytes = 0;
  for (const std::string& name : st.names()) bytes += st.info(name).nbytes;
  std::printf("wrote %s: %lld parameters, %s, %s in %zu file%s%s (from %s)\n", out.c_str(),
              (long long)config.num_parameters(), dtype == DType::F32 ? "f32" : "bf16", human_bytes(bytes).c_str(),
              st.shard_files().size(), st.shard_files().size() == 1 ? "" : "s",
              extras.empty() ? ", no tokenizer" : "", dir.c_str());
  return 0;
}

static int ckpt_info(const Args& args) {
  if (args.positional().size() != 2)
    throw UsageError("expected: zeroth ckpt info DIR");
  const std::string dir = args.positional()[1];
  const ModelConfig c = read_model_config(dir);
  std::printf("model: %s (deepseek_v3)\n", dir.c_str());
  std::printf("  layers %lld (%lld dense, %lld MoE), hidden %lld, heads %lld, vocab %lld\n",
              (long long)c.num_hidden_layers, (long long)c.first_k_dense_replace,
              (long long)(c.num_hidden_layers - c.first_k_dense_replace), (long long)c.hidden_size,
              (long long)c.num_attention_heads, (long long)c.vocab_size);
  std::printf("  attention: MLA, q_lora_rank %s, kv_lora_rank %lld, head dims qk %lld+%lld, v %lld\n",
              c.q_lora_rank ? std::to_string(*c.q_lora_rank).c_str() : "none",
              (long long)c.kv_lora_rank, (long long)c.qk_nope_head_dim,
              (long long)c.qk_rope_head_dim, (long long)c.v_head_dim);
  std::printf("  moe: %lld routed experts (width %lld), %lld shared, top-%lld in %lld of %lld groups\n",
              (long long)c.n_routed_experts, (long long)c.moe_intermediate_size,
              (long long)c.n_shared_experts, (long long)c.num_experts_per_tok,
              (long long)c.topk_group, (long long)c.n_group);
  std::printf("  rope: theta %g%s, max positions %lld; embeddings %s\n", c.rope_theta,
              c.rope_scaling ? strformat(", yarn factor %g", c.rope_scaling->factor).c_str() : "",
              (long long)c.max_position_embeddings, c.tie_word_embeddings ? "tied" : "untied");
  std::printf("parameters: %lld total, %lld active per token\n", (long long)c.num_parameters(),
              (long long)c.num_active_parameters());
  const ShardedSafetensors st = ShardedSafetensors::open(dir);
  uint64_t bytes = 0;
  std::set<std::string> dtypes;
  for (const std::string& name : st.names()) {
    bytes += st.info(name).nbytes;
    dtypes.insert(dtype_name(st.info(name).dtype));
  }
  std::string dts;
  for (const auto& d : dtypes) dts += (dts.empty() ? "" : ", ") + d;
  std::printf("tensors: %zu in %zu file%s, %llu bytes (%s), dtype %s\n", st.size(),
              st.shard_files().size(), st.shard_files().size() == 1 ? "" : "s",
              (unsigned long long)bytes, human_bytes(bytes).c_str(), dts.c_str());
  if (fs::is_regular_file(fs::path(dir) / "tokenizer.json")) {
    std::unique_ptr<Tokenizer> tok = load_tokenizer(dir);
    std::printf("tokenizer: %d ids (bos %d, eos %d, pad %d)\n", tok->vocab_size(),
                tok->special_ids().bos, tok->special_ids().eos, tok->special_ids().pad);
  } else {
    std::printf("tokenizer: none\n");
  }
  return 0;
}

int cmd_ckpt(const std::vector<std::string>& argv) {
  Args args("ckpt", argv, {"config", "seed", "out", "dtype", "tokenizer"}, {"force"});
  if (args.help()) {
    std::printf("%s", kCkptUsage);
    return 0;
  }
  const auto& pos = args.positional();
  if (pos.empty()) throw UsageError("expected an action: init, info or export (see 'zeroth ckpt --help')");
  if (pos[0] == "init") {
    if (pos.size() > 1)
      throw UsageError(strformat("unexpected argument '%s' for 'ckpt init'", pos[1].c_str()));
    return ckpt_init(args);
  }
  if (pos[0] == "info") {
    if (args.has("config") || args.has("seed") || args.has("out") || args.has("dtype") ||
        args.has("tokenizer") || args.has("force"))
      throw UsageError("'ckpt info' takes only a directory");
    return ckpt_info(args);
  }
  if (pos[0] == "export") {
    if (args.has("config") || args.has("seed") || args.has("tokenizer"))
      throw UsageError("'ckpt export' takes DIR, --out, --dtype and --force");
    return ckpt_export(args);
  }
  throw UsageError(strformat("unknown action '%s' (expected init, info or export)", pos[0].c_str()));
}

}  // namespace cli
}  // namespace zeroth
