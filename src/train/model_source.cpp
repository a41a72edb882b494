// Where a run's model comes from (train.h, "model source"): model.init and
// model.tokenizer resolved into an architecture, a weights directory and a tokenizer with
// the files every saved model directory copies. Shared by `zeroth pretrain` / `sft` and
// the GRPO trainer. Must not: load weights (the caller does, into its Model).
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>

#include "zeroth/error.h"
#include "zeroth/log.h"
#include "zeroth/model_config.h"
#include "zeroth/tokenizer.h"
#include "zeroth/train.h"

namespace zeroth {

namespace fs = std::filesystem;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(strformat("%s: cannot read", path.c_str()));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

void load_source_tokenizer(const std::string& path, ModelSource& src) {
  const bool is_dir = fs::is_directory(path);
  const std::string file = is_dir ? path + "/tokenizer.json" : path;
  fs::path dir = is_dir ? fs::path(path) : fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  src.tokenizer = load_tokenizer(path);
  src.files.tokenizer_json = read_text(file);
  src.files.tokenizer_config_json.clear();
  if (fs::is_regular_file(dir / "tokenizer_config.json"))
    src.files.tokenizer_config_json = read_text((dir / "tokenizer_config.json").string());
}

ModelSource resolve_model_source(const std::string& init, const std::string& tokenizer_key,
                                 const std::string& command) {
  if (init.empty())
    throw ConfigError(strformat("key 'model.init': required by zeroth %s (a model config.json or a "
                                "Hugging Face model directory), found nothing", command.c_str()));
  if (!fs::exists(init))
    throw ConfigError(strformat("key 'model.init': expected a model config.json or model directory, "
                                "found '%s', which does not exist", init.c_str()));
  ModelSource src;
  const bool is_dir = fs::is_directory(init);
  src.config = read_model_config(init);
  if (is_dir) src.weights_dir = init;
  if (tokenizer_key == "bytes" || (tokenizer_key == "auto" && !is_dir)) {
    src.tokenizer = make_byte_tokenizer(zeroth_byte_tokenizer_config());
    src.files = {byte_tokenizer_json(), ""};
  } else if (tokenizer_key == "auto") {
    if (!fs::exists(fs::path(init) / "tokenizer.json"))
      throw ConfigError(strformat("key 'model.tokenizer': 'auto' expected %s/tokenizer.json, found none; "
                                  "set model.tokenizer to 'bytes' or a path", init.c_str()));
    load_source_tokenizer(init, src);
  } else {
    if (!fs::exists(tokenizer_key))
      throw ConfigError(strformat("key 'model.tokenizer': expected 'auto', 'bytes' or an existing path, "
                                  "found '%s'", tokenizer_key.c_str()));
    if (fs::is_directory(tokenizer_key) && !fs::exists(fs::path(tokenizer_key) / "tokenizer.json"))
      throw ConfigError(strformat("key 'model.tokenizer': expected a tokenizer.json or a directory holding one, "
                                  "found the directory '%s' without tokenizer.json", tokenizer_key.c_str()));
    load_source_tokenizer(tokenizer_key, src);
  }
  check_tokenizer_fits(src, init);
  return src;
}

void check_tokenizer_fits(const ModelSource& src, const std::string& init) {
  if (src.tokenizer->vocab_size() > src.config.vocab_size)
    throw ConfigError(strformat("key 'model.tokenizer': expected a tokenizer of at most vocab_size = %lld "
                                "ids (%s), found one with %d",
                                (long long)src.config.vocab_size, init.c_str(),
                                src.tokenizer->vocab_size()));
  // Pretraining appends the tokenizer's EOS, generation stops on config.json's: when the two
  // disagree, a model never learns the EOS that ends its completions.
  const SpecialTokenIds& sp = src.tokenizer->special_ids();
  const struct {
    const char* name;
    int32_t tok;
    const std::optional<int64_t>& cfg;
  } roles[] = {{"bos", sp.bos, src.config.bos_token_id}, {"eos", sp.eos, src.config.eos_token_id}};
  for (const auto& r : roles)
    if (r.tok >= 0 && r.cfg && *r.cfg != r.tok)
      ZT_LOG_WARN("model %s: config.json %s_token_id is %lld but the tokenizer's %s is id %d; "
                  "set %s_token_id to %d (pretraining uses the tokenizer's, generation config.json's)",
                  init.c_str(), r.name, (long long)*r.cfg, r.name, r.tok, r.name, r.tok);
}

}  // namespace zeroth
