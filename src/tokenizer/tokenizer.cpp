// The Tokenizer interface's shared methods, the streaming decoder, the byte tokenizer,
// and load_tokenizer() (file reading, JSON parsing, dispatch on model.type). Must not
// contain BPE logic (bpe_tokenizer.cpp).
#include "zeroth/tokenizer.h"

#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/unicode.h"
#include "zeroth/error.h"

namespace zeroth {

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::string out;
  tok::utf8_append_lossy(decode_bytes(ids.data(), ids.size(), skip_special_tokens), &out);
  return out;
}

std::string TokenStreamDecoder::push(int32_t id) {
  pending_ += tokenizer_.decode_bytes(&id, 1, skip_special_);
  const size_t n = tok::utf8_complete_prefix(pending_);
  std::string out;
  tok::utf8_append_lossy(std::string_view(pending_).substr(0, n), &out);
  pending_.erase(0, n);
  return out;
}

std::string TokenStreamDecoder::finish() {
  std::string out;
  tok::utf8_append_lossy(pending_, &out);
  pending_.clear();
  return out;
}

namespace {

class ByteTokenizer : public Tokenizer {
 public:
  explicit ByteTokenizer(const ByteTokenizerConfig& c) {
    std::vector<tok::AddedToken> tokens;
    for (size_t i = 0; i < c.special_tokens.size(); ++i) {
      const std::string& s = c.special_tokens[i];
      ZT_THROW_IF_NOT(!s.empty() && tok::utf8_find_invalid(s) == std::string::npos, DataError,
                      "byte tokenizer: special_tokens[%zu]: expected a non-empty UTF-8 string",
                      i);
      const int32_t id = 256 + static_cast<int32_t>(i);
      ZT_THROW_IF_NOT(by_content_.emplace(s, id).second, DataError,
                      "byte tokenizer: special token \"%s\" is listed twice", s.c_str());
      tok::AddedToken t;
      t.content = s;
      t.id = id;
      t.special = true;
      tokens.push_back(t);
      specials_.push_back(s);
    }
    matcher_.build(tokens, c.special_tokens);
    const std::string* names[3] = {&c.bos_token, &c.eos_token, &c.pad_token};
    int32_t* slots[3] = {&special_ids_.bos, &special_ids_.eos, &special_ids_.pad};
    const char* keys[3] = {"bos_token", "eos_token", "pad_token"};
    for (int k = 0; k < 3; ++k) {
      if (names[k]->empty()) continue;
      auto it = by_content_.find(*names[k]);
      ZT_THROW_IF_NOT(it != by_content_.end(), DataError,
                      "byte tokenizer: %s \"%s\" is not one of the special tokens", keys[k],
                      names[k]->c_str());
      *slots[k] = it->second;
    }
    ZT_THROW_IF_NOT(!c.add_bos || special_ids_.bos >= 0, DataError,
                    "byte tokenizer: add_bos is true but bos_token is not set");
    ZT_THROW_IF_NOT(!c.add_eos || special_ids_.eos >= 0, DataError,
                    "byte tokenizer: add_eos is true but eos_token is not set");
    add_bos_ = c.add_bos;
    add_eos_ = c.add_eos;
  }

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const override {
    const size_t bad = tok::utf8_find_invalid(text);
    ZT_THROW_IF_NOT(bad == std::string_view::npos, DataError,
                    "tokenizer: text to encode is not valid UTF-8 (at byte offset %zu)", bad);
    std::vector<int32_t> ids;
    ids.reserve(text.size() + 2);
    if (add_special_tokens && add_bos_) ids.push_back(special_ids_.bos);
    std::vector<tok::Segment> segs;
    if (matcher_.empty()) segs.push_back({text, -1});
    else matcher_.split(text, &segs);
    for (const tok::Segment& s : segs) {
      if (s.id >= 0) ids.push_back(s.id);
      else
        for (unsigned char b : s.text) ids.push_back(b);
    }
    if (add_special_tokens && add_eos_) ids.push_back(special_ids_.eos);
    return ids;
  }

  std::string decode_bytes(const int32_t* ids, size_t n, bool skip_special_tokens) const override {
    std::string out;
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const int32_t id = ids[i];
      if (id >= 0 && id < 256) out.push_back(static_cast<char>(id));
      else if (id >= 256 && id < vocab_size() && !skip_special_tokens) out += specials_[id - 256];
    }
    return out;
  }

  int32_t token_to_id(std::string_view token) const override {
    auto it = by_content_.find(std::string(token));
    if (it != by_content_.end()) return it->second;
    if (token.size() == 1) return static_cast<uint8_t>(token[0]);
    return -1;
  }
  std::string id_to_token(int32_t id) const override {
    if (id >= 0 && id < 256) return std::string(1, static_cast<char>(id));
    if (id >= 256 && id < vocab_size()) return specials_[id - 256];
    return "";
  }
  int32_t vocab_size() const override { return 256 + static_cast<int32_t>(specials_.size()); }
  bool is_special(int32_t id) const override { return id >= 256 && id < vocab_size(); }

 private:
  std::vector<std::string> specials_;
  std::unordered_map<std::string, int32_t> by_content_;
  tok::AddedTokenMatcher matcher_;
  bool add_bos_ = false, add_eos_ = false;
};

bool is_directory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool file_exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ZT_THROW_IF_NOT(in.good(), DataError, "%s: cannot open tokenizer file", path.c_str());
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::parse_error& e) {
    throw DataError(strformat("%s: not valid JSON: %s", path.c_str(), e.what()));
  }
}

std::unique_ptr<Tokenizer> make_byte_tokenizer_from_json(const nlohmann::json& m,
                                                         const std::string& file) {
  ByteTokenizerConfig c;
  if (m.contains("special_tokens")) {
    const nlohmann::json& list = m["special_tokens"];
    ZT_THROW_IF_NOT(list.is_array(), DataError, "%s: model.special_tokens: expected an array of strings",
                    file.c_str());
    for (size_t i = 0; i < list.size(); ++i) {
      ZT_THROW_IF_NOT(list[i].is_string(), DataError,
                      "%s: model.special_tokens[%zu]: expected a string, found %s", file.c_str(), i,
                      list[i].dump().c_str());
      c.special_tokens.push_back(list[i].get<std::string>());
    }
  }
  static const char* const kKnown[] = {"type", "special_tokens", "bos_token", "eos_token",
                                       "pad_token", "add_bos", "add_eos"};
  for (auto it = m.begin(); it != m.end(); ++it) {
    bool known = false;
    for (const char* k : kKnown) known = known || it.key() == k;
    ZT_THROW_IF_NOT(known, DataError,
                    "%s: model.%s: unknown key for a ZerothBytes model (expected type, "
                    "special_tokens, bos_token, eos_token, pad_token, add_bos, add_eos)",
                    file.c_str(), it.key().c_str());
  }
  std::string* names[3] = {&c.bos_token, &c.eos_token, &c.pad_token};
  const char* keys[3] = {"bos_token", "eos_token", "pad_token"};
  for (int k = 0; k < 3; ++k) {
    if (!m.contains(keys[k]) || m[keys[k]].is_null()) continue;
    ZT_THROW_IF_NOT(m[keys[k]].is_string(), DataError, "%s: model.%s: expected a string",
                    file.c_str(), keys[k]);
    *names[k] = m[keys[k]].get<std::string>();
  }
  bool* flags[2] = {&c.add_bos, &c.add_eos};
  const char* fkeys[2] = {"add_bos", "add_eos"};
  for (int k = 0; k < 2; ++k) {
    if (!m.contains(fkeys[k])) continue;
    ZT_THROW_IF_NOT(m[fkeys[k]].is_boolean(), DataError, "%s: model.%s: expected a boolean",
                    file.c_str(), fkeys[k]);
    *flags[k] = m[fkeys[k]].get<bool>();
  }
  try {
    return make_byte_tokenizer(c);
  } catch (const DataError& e) {
    throw DataError(file + ": " + e.what());
  }
}

}  // namespace

ByteTokenizerConfig zeroth_byte_tokenizer_config() {
  ByteTokenizerConfig c;
  c.special_tokens = {"<|bos|>", "<|eos|>", "<|pad|>"};
  c.bos_token = "<|bos|>";
  c.eos_token = "<|eos|>";
  c.pad_token = "<|pad|>";
  c.add_bos = true;
  return c;
}

std::unique_ptr<Tokenizer> make_byte_tokenizer(const ByteTokenizerConfig& config) {
  return std::make_unique<ByteTokenizer>(config);
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  std::string file = path;
  std::string dir;
  if (is_directory(path)) {
    dir = path;
    file = path + "/tokenizer.json";
    ZT_THROW_IF_NOT(file_exists(file), DataError,
                    "%s: model directory has no tokenizer.json (expected %s)", path.c_str(),
                    file.c_str());
  } else {
    const size_t slash = path.find_last_of('/');
    dir = slash == std::string::npos ? "." : path.substr(0, slash);
  }
  const nlohmann::json tj = read_json(file);
  ZT_THROW_IF_NOT(tj.is_object() && tj.contains("model") && tj["model"].is_object(), DataError,
                  "%s: expected a tokenizer.json object with a 'model' object", file.c_str());
  const nlohmann::json& model = tj["model"];
  const std::string type =
      model.contains("type") && model["type"].is_string() ? model["type"].get<std::string>() : "";
  if (type == "ZerothBytes") return make_byte_tokenizer_from_json(model, file);
  ZT_THROW_IF_NOT(type == "BPE", DataError,
                  "%s: model.type: expected \"BPE\" or \"ZerothBytes\", found \"%s\"", file.c_str(),
                  type.c_str());
  const std::string config_file = dir + "/tokenizer_config.json";
  nlohmann::json config;
  if (file_exists(config_file)) config = read_json(config_file);
  return tok::make_bpe_tokenizer(tj, file, config, config_file);
}

}  // namespace zeroth
