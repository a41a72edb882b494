// The Hugging Face byte-level BPE pipeline: added tokens -> normalizer -> normalized
// added tokens -> pre-tokenizer -> BPE model -> BOS/EOS; decoding through the ByteLevel
// decoder. Parses tokenizer.json and tokenizer_config.json; every feature it does not
// implement is a DataError at load time, never a silent difference in ids.
#include "tokenizer/bpe_tokenizer.h"

#include <deque>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode.h"
#include "zeroth/error.h"

namespace zeroth {
namespace tok {
namespace {

// Byte-level decoding of a vocabulary string: mapped characters become their byte, any
// other character passes through as UTF-8 (as the Hugging Face ByteLevel decoder does).
std::string byte_level_decode(const std::string& token) {
  std::string out;
  for (size_t i = 0; i < token.size();) {
    const size_t start = i;
    const uint32_t cp = utf8_next(token, &i);
    const int b = unicode_to_byte(cp);
    if (b >= 0) out.push_back(static_cast<char>(b));
    else out.append(token, start, i - start);
  }
  return out;
}

bool parse_normalizer(const nlohmann::json& j, const std::string& file, const std::string& key) {
  if (j.is_null()) return false;
  ZT_THROW_IF_NOT(j.is_object() && j.contains("type") && j["type"].is_string(), DataError,
                  "%s: %s: expected null or an object with a string \"type\", found %s",
                  file.c_str(), key.c_str(), j.dump().substr(0, 200).c_str());
  const std::string t = j["type"].get<std::string>();
  if (t == "NFC") return true;
  if (t == "Sequence") {
    const auto it = j.find("normalizers");
    ZT_THROW_IF_NOT(it != j.end() && it->is_array(), DataError,
                    "%s: %s.normalizers: expected an array", file.c_str(), key.c_str());
    bool nfc = false;
    for (size_t i = 0; i < it->size(); ++i)
      nfc = parse_normalizer((*it)[i], file, key + ".normalizers[" + std::to_string(i) + "]") || nfc;
    return nfc;
  }
  throw DataError(strformat("%s: %s.type: normalizer '%s' is not supported (supported: NFC, "
                            "Sequence)",
                            file.c_str(), key.c_str(), t.c_str()));
}

void check_decoder(const nlohmann::json& j, const std::string& file, const std::string& key) {
  ZT_THROW_IF_NOT(j.is_object() && j.contains("type") && j["type"].is_string(), DataError,
                  "%s: %s: expected a ByteLevel decoder, found %s", file.c_str(), key.c_str(),
                  j.dump().substr(0, 200).c_str());
  const std::string t = j["type"].get<std::string>();
  if (t == "ByteLevel") return;
  if (t == "Sequence" && j.contains("decoders") && j["decoders"].is_array()) {
    for (size_t i = 0; i < j["decoders"].size(); ++i)
      check_decoder(j["decoders"][i], file, key + ".decoders[" + std::to_string(i) + "]");
    return;
  }
  throw DataError(strformat("%s: %s.type: decoder '%s' is not supported (expected ByteLevel)",
                            file.c_str(), key.c_str(), t.c_str()));
}

bool json_bool(const nlohmann::json& j, const char* key, bool dflt, const std::string& file,
               const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  ZT_THROW_IF_NOT(it->is_boolean(), DataError, "%s: %s%s: expected a boolean, found %s",
                  file.c_str(), where.c_str(), key, it->dump().c_str());
  return it->get<bool>();
}

class BpeTokenizer : public Tokenizer {
 public:
  BpeTokenizer(const nlohmann::json& tj, const std::string& file, const nlohmann::json& config,
               const std::string& config_file);

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const override;
  std::string decode_bytes(const int32_t* ids, size_t n, bool skip_special_tokens) const override;
  int32_t token_to_id(std::string_view token) const override;
  std::string id_to_token(int32_t id) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(id_bytes_.size()); }
  bool is_special(int32_t id) const override {
    return id >= 0 && size_t(id) < special_.size() && special_[id];
  }

 private:
  void parse_added_tokens(const nlohmann::json& tj, const std::string& file);
  void parse_post_processor(const nlohmann::json& j, const std::string& file, const std::string& key);
  void encode_text(std::string_view text, std::vector<int32_t>* out) const;

  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<PreTokenizer> pre_;
  bool nfc_ = false;
  std::vector<AddedToken> added_;
  std::unordered_map<std::string, int32_t> added_by_content_;
  std::unordered_map<int32_t, size_t> added_by_id_;  // id -> index in added_
  AddedTokenMatcher raw_matcher_, normalized_matcher_;
  std::vector<int32_t> prefix_ids_, suffix_ids_;  // added by add_special_tokens
  std::vector<std::string> id_bytes_;             // decoded bytes per id
  std::vector<bool> special_;
};

BpeTokenizer::BpeTokenizer(const nlohmann::json& tj, const std::string& file,
                           const nlohmann::json& config, const std::string& config_file) {
  ZT_THROW_IF_NOT(tj.is_object(), DataError, "%s: expected a JSON object at top level, found %s",
                  file.c_str(), tj.type_name());
  for (const char* key : {"truncation", "padding"}) {
    ZT_THROW_IF_NOT(!tj.contains(key) || tj[key].is_null(), DataError,
                    "%s: %s: only null is supported (truncation and padding are the caller's job)",
                    file.c_str(), key);
  }
  ZT_THROW_IF_NOT(tj.contains("model"), DataError, "%s: missing key 'model'", file.c_str());
  model_ = std::make_unique<BpeModel>(tj["model"], file);
  nfc_ = parse_normalizer(tj.value("normalizer", nlohmann::json()), file, "normalizer");
  pre_ = std::make_unique<PreTokenizer>(tj.value("pre_tokenizer", nlohmann::json()), file);
  ZT_THROW_IF_NOT(pre_->byte_level(), DataError,
                  "%s: pre_tokenizer: expected a ByteLevel pre-tokenizer (alone or last in a "
                  "Sequence); only byte-level BPE is supported",
                  file.c_str());
  ZT_THROW_IF_NOT(tj.contains("decoder"), DataError, "%s: missing key 'decoder'", file.c_str());
  check_decoder(tj["decoder"], file, "decoder");
  parse_added_tokens(tj, file);
  parse_post_processor(tj.value("post_processor", nlohmann::json()), file, "post_processor");

  // Ids and their decoded bytes.
  int32_t max_id = model_->max_id();
  for (const AddedToken& t : added_) max_id = std::max(max_id, t.id);
  id_bytes_.assign(size_t(max_id + 1), std::string());
  special_.assign(size_t(max_id + 1), false);
  for (int32_t id = 0; id <= model_->max_id(); ++id)
    if (const std::string* t = model_->id_to_token(id)) id_bytes_[id] = byte_level_decode(*t);
  for (const AddedToken& t : added_) {
    id_bytes_[t.id] = byte_level_decode(t.content);
    special_[t.id] = t.special;
  }

  // tokenizer_config.json: special token ids, and add_bos_token / add_eos_token, which
  // (as in transformers' Llama-style tokenizers) replace the post-processor's template.
  if (!config.is_null()) {
    ZT_THROW_IF_NOT(config.is_object(), DataError, "%s: expected a JSON object, found %s",
                    config_file.c_str(), config.type_name());
    int32_t* slots[3] = {&special_ids_.bos, &special_ids_.eos, &special_ids_.pad};
    const char* keys[3] = {"bos_token", "eos_token", "pad_token"};
    for (int k = 0; k < 3; ++k) {
      const std::string content = config_token_content(config, keys[k], config_file);
      if (content.empty()) continue;
      *slots[k] = token_to_id(content);
      ZT_THROW_IF_NOT(*slots[k] >= 0, DataError, "%s: %s: \"%s\" is not a token of %s",
                      config_file.c_str(), keys[k], content.c_str(), file.c_str());
    }
    const bool has_bos_flag = config.contains("add_bos_token") && !config["add_bos_token"].is_null();
    const bool has_eos_flag = config.contains("add_eos_token") && !config["add_eos_token"].is_null();
    if (has_bos_flag || has_eos_flag) {
      prefix_ids_.clear();
      suffix_ids_.clear();
      if (json_bool(config, "add_bos_token", false, config_file, "")) {
        ZT_THROW_IF_NOT(special_ids_.bos >= 0, DataError,
                        "%s: add_bos_token is true but bos_token is not set", config_file.c_str());
        prefix_ids_.push_back(special_ids_.bos);
      }
      if (json_bool(config, "add_eos_token", false, config_file, "")) {
        ZT_THROW_IF_NOT(special_ids_.eos >= 0, DataError,
                        "%s: add_eos_token is true but eos_token is not set", config_file.c_str());
        suffix_ids_.push_back(special_ids_.eos);
      }
    }
  }
}

void BpeTokenizer::parse_added_tokens(const nlohmann::json& tj, const std::string& file) {
  auto it = tj.find("added_tokens");
  if (it == tj.end() || it->is_null()) return;
  ZT_THROW_IF_NOT(it->is_array(), DataError, "%s: added_tokens: expected an array, found %s",
                  file.c_str(), it->type_name());
  for (size_t i = 0; i < it->size(); ++i) {
    const nlohmann::json& e = (*it)[i];
    const std::string where = "added_tokens[" + std::to_string(i) + "].";
    ZT_THROW_IF_NOT(e.is_object() && e.contains("id") && e["id"].is_number_integer() &&
                        e["id"].get<int64_t>() >= 0 && e["id"].get<int64_t>() < (int64_t(1) << 30) &&
                        e.contains("content") && e["content"].is_string(),
                    DataError, "%s: added_tokens[%zu]: expected {\"id\": int >= 0, \"content\": string, ...}, found %s",
                    file.c_str(), i, e.dump().substr(0, 200).c_str());
    AddedToken t;
    t.id = e["id"].get<int32_t>();
    t.content = e["content"].get<std::string>();
    ZT_THROW_IF_NOT(!t.content.empty(), DataError, "%s: added_tokens[%zu]: empty content",
                    file.c_str(), i);
    ZT_THROW_IF_NOT(utf8_find_invalid(t.content) == std::string::npos, DataError,
                    "%s: added_tokens[%zu]: content is not valid UTF-8", file.c_str(), i);
    t.special = json_bool(e, "special", false, file, where);
    t.single_word = json_bool(e, "single_word", false, file, where);
    t.lstrip = json_bool(e, "lstrip", false, file, where);
    t.rstrip = json_bool(e, "rstrip", false, file, where);
    t.normalized = json_bool(e, "normalized", !t.special, file, where);
    const std::string* in_vocab = model_->id_to_token(t.id);
    ZT_THROW_IF_NOT(!in_vocab || *in_vocab == t.content, DataError,
                    "%s: added_tokens[%zu]: id %d is \"%s\" in model.vocab but \"%s\" here",
                    file.c_str(), i, t.id, in_vocab ? in_vocab->c_str() : "", t.content.c_str());
    ZT_THROW_IF_NOT(added_by_id_.count(t.id) == 0, DataError,
                    "%s: added_tokens[%zu]: id %d appears twice", file.c_str(), i, t.id);
    added_by_id_[t.id] = added_.size();
    added_by_content_.emplace(t.content, t.id);
    added_.push_back(t);
  }
  // Hugging Face matches special tokens first, then the others, each in file order; with
  // leftmost-longest matching only equal contents are affected, and the first one wins.
  std::vector<AddedToken> raw, norm;
  std::vector<std::string> raw_pat, norm_pat;
  for (int pass = 0; pass < 2; ++pass) {
    for (const AddedToken& t : added_) {
      if (t.special != (pass == 0)) continue;
      if (t.normalized) {
        norm.push_back(t);
        std::string p;
        if (nfc_) nfc_normalize(t.content, &p);
        else p = t.content;
        norm_pat.push_back(p);
      } else {
        raw.push_back(t);
        raw_pat.push_back(t.content);
      }
    }
  }
  raw_matcher_.build(raw, raw_pat);
  normalized_matcher_.build(norm, norm_pat);
}

void BpeTokenizer::parse_post_processor(const nlohmann::json& j, const std::string& file,
                                        const std::string& key) {
  if (j.is_null()) return;
  ZT_THROW_IF_NOT(j.is_object() && j.contains("type") && j["type"].is_string(), DataError,
                  "%s: %s: expected an object with a string \"type\"", file.c_str(), key.c_str());
  const std::string t = j["type"].get<std::string>();
  if (t == "ByteLevel") return;  // offsets only
  if (t == "Sequence") {
    ZT_THROW_IF_NOT(j.contains("processors") && j["processors"].is_array(), DataError,
                    "%s: %s.processors: expected an array", file.c_str(), key.c_str());
    for (size_t i = 0; i < j["processors"].size(); ++i)
      parse_post_processor(j["processors"][i], file, key + ".processors[" + std::to_string(i) + "]");
    return;
  }
  if (t == "TemplateProcessing") {
    const auto single = j.find("single");
    const auto specials = j.find("special_tokens");
    ZT_THROW_IF_NOT(single != j.end() && single->is_array() && specials != j.end() &&
                        specials->is_object(),
                    DataError, "%s: %s: expected arrays 'single' and an object 'special_tokens'",
                    file.c_str(), key.c_str());
    bool seen_sequence = false;
    for (const nlohmann::json& piece : *single) {
      if (piece.contains("Sequence")) {
        ZT_THROW_IF_NOT(!seen_sequence, DataError, "%s: %s.single: two sequences", file.c_str(),
                        key.c_str());
        seen_sequence = true;
        continue;
      }
      ZT_THROW_IF_NOT(piece.contains("SpecialToken") && piece["SpecialToken"].contains("id"),
                      DataError, "%s: %s.single: expected Sequence or SpecialToken, found %s",
                      file.c_str(), key.c_str(), piece.dump().c_str());
      const std::string name = piece["SpecialToken"]["id"].get<std::string>();
      const auto st = specials->find(name);
      ZT_THROW_IF_NOT(st != specials->end() && st->contains("ids") && (*st)["ids"].is_array(),
                      DataError, "%s: %s.special_tokens: no ids for \"%s\"", file.c_str(),
                      key.c_str(), name.c_str());
      for (const nlohmann::json& id : (*st)["ids"])
        (seen_sequence ? suffix_ids_ : prefix_ids_).push_back(id.get<int32_t>());
    }
    return;
  }
  throw DataError(strformat("%s: %s.type: post-processor '%s' is not supported (supported: "
                            "ByteLevel, TemplateProcessing, Sequence)",
                            file.c_str(), key.c_str(), t.c_str()));
}

void BpeTokenizer::encode_text(std::string_view text, std::vector<int32_t>* out) const {
  thread_local std::vector<std::string_view> pieces;
  pieces.clear();
  std::deque<std::string> arena;
  pre_->split(text, &pieces, &arena);
  for (std::string_view p : pieces) model_->encode_word(p, out);
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const size_t bad = utf8_find_invalid(text);
  ZT_THROW_IF_NOT(bad == std::string_view::npos, DataError,
                  "tokenizer: text to encode is not valid UTF-8 (invalid byte 0x%02X at offset %zu)",
                  bad == std::string_view::npos ? 0u : unsigned(static_cast<uint8_t>(text[bad])), bad);
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special_tokens) ids.insert(ids.end(), prefix_ids_.begin(), prefix_ids_.end());
  std::vector<Segment> raw_segments, norm_segments;
  if (raw_matcher_.empty()) raw_segments.push_back({text, -1});
  else raw_matcher_.split(text, &raw_segments);
  std::string normalized;
  for (const Segment& seg : raw_segments) {
    if (seg.id >= 0) {
      ids.push_back(seg.id);
      continue;
    }
    std::string_view norm = seg.text;
    if (nfc_) {
      nfc_normalize(seg.text, &normalized);
      norm = normalized;
    }
    norm_segments.clear();
    if (normalized_matcher_.empty()) norm_segments.push_back({norm, -1});
    else normalized_matcher_.split(norm, &norm_segments);
    for (const Segment& s : norm_segments) {
      if (s.id >= 0) ids.push_back(s.id);
      else if (!s.text.empty()) encode_text(s.text, &ids);
    }
  }
  if (add_special_tokens) ids.insert(ids.end(), suffix_ids_.begin(), suffix_ids_.end());
  return ids;
}

std::string BpeTokenizer::decode_bytes(const int32_t* ids, size_t n, bool skip_special_tokens) const {
  std::string out;
  out.reserve(n * 4);
  for (size_t i = 0; i < n; ++i) {
    const int32_t id = ids[i];
    if (id < 0 || size_t(id) >= id_bytes_.size()) continue;
    if (skip_special_tokens && special_[id]) continue;
    out += id_bytes_[id];
  }
  return out;
}

int32_t BpeTokenizer::token_to_id(std::string_view token) const {
  auto it = added_by_content_.find(std::string(token));
  if (it != added_by_content_.end()) return it->second;
  return model_->token_to_id(token);
}

std::string BpeTokenizer::id_to_token(int32_t id) const {
  auto it = added_by_id_.find(id);
  if (it != added_by_id_.end()) return added_[it->second].content;
  const std::string* t = model_->id_to_token(id);
  return t ? *t : std::string();
}

}  // namespace

std::string config_token_content(const nlohmann::json& config, const char* key,
                                 const std::string& config_file) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  throw DataError(strformat("%s: %s: expected a string, an object with \"content\", or null; found %s",
                            config_file.c_str(), key, it->dump().substr(0, 200).c_str()));
}

std::unique_ptr<Tokenizer> make_bpe_tokenizer(const nlohmann::json& tokenizer_json,
                                              const std::string& file, const nlohmann::json& config,
                                              const std::string& config_file) {
  return std::make_unique<BpeTokenizer>(tokenizer_json, file, config, config_file);
}

}  // namespace tok
}  // namespace zeroth
