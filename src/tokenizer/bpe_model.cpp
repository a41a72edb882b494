// BPE vocabulary, merges and merge loop (see bpe_model.h). The merge order is Hugging
// Face's: repeatedly merge the adjacent pair of lowest rank, leftmost first. Must not
// depend on the rest of the pipeline.
#include "tokenizer/bpe_model.h"

#include <functional>
#include <nlohmann/json.hpp>
#include <queue>

#include "tokenizer/unicode.h"
#include "zeroth/error.h"

namespace zeroth {
namespace tok {
namespace {

// Words up to this many symbols use the quadratic loop over a small vector; longer ones
// a heap (Hugging Face's algorithm), which is O(n log n).
constexpr size_t kShortWordSymbols = 96;

std::string optional_string(const nlohmann::json& m, const char* key, const std::string& file) {
  auto it = m.find(key);
  if (it == m.end() || it->is_null()) return "";
  ZT_THROW_IF_NOT(it->is_string(), DataError, "%s: model.%s: expected a string or null, found %s",
                  file.c_str(), key, it->type_name());
  return it->get<std::string>();
}

bool optional_bool(const nlohmann::json& m, const char* key, const std::string& file) {
  auto it = m.find(key);
  if (it == m.end() || it->is_null()) return false;
  ZT_THROW_IF_NOT(it->is_boolean(), DataError, "%s: model.%s: expected a boolean, found %s",
                  file.c_str(), key, it->type_name());
  return it->get<bool>();
}

}  // namespace

BpeModel::BpeModel(const nlohmann::json& m, const std::string& file) {
  ZT_THROW_IF_NOT(m.is_object(), DataError, "%s: model: expected an object, found %s",
                  file.c_str(), m.type_name());
  const std::string type = optional_string(m, "type", file);
  ZT_THROW_IF_NOT(type == "BPE", DataError,
                  "%s: model.type: expected \"BPE\" (or \"ZerothBytes\"), found \"%s\"",
                  file.c_str(), type.c_str());
  if (m.contains("dropout") && !m["dropout"].is_null()) {
    ZT_THROW_IF_NOT(m["dropout"].is_number() && m["dropout"].get<double>() == 0.0, DataError,
                    "%s: model.dropout: BPE dropout is not supported (found %s)", file.c_str(),
                    m["dropout"].dump().c_str());
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const std::string v = optional_string(m, key, file);
    ZT_THROW_IF_NOT(v.empty(), DataError, "%s: model.%s: \"%s\" is not supported (expected null or \"\")",
                    file.c_str(), key, v.c_str());
  }
  ignore_merges_ = optional_bool(m, "ignore_merges", file);
  fuse_unk_ = optional_bool(m, "fuse_unk", file);
  const bool byte_fallback = optional_bool(m, "byte_fallback", file);

  // Vocabulary.
  auto vit = m.find("vocab");
  ZT_THROW_IF_NOT(vit != m.end() && vit->is_object(), DataError,
                  "%s: model.vocab: expected an object of token -> id", file.c_str());
  vocab_.reserve(vit->size());
  int32_t max_id = -1;
  for (auto it = vit->begin(); it != vit->end(); ++it) {
    ZT_THROW_IF_NOT(it.value().is_number_integer() && it.value().get<int64_t>() >= 0 &&
                        it.value().get<int64_t>() < (int64_t(1) << 30),
                    DataError, "%s: model.vocab[\"%s\"]: expected a non-negative integer id, found %s",
                    file.c_str(), it.key().c_str(), it.value().dump().c_str());
    const int32_t id = it.value().get<int32_t>();
    vocab_.emplace(it.key(), id);
    if (id > max_id) max_id = id;
  }
  id_to_token_.assign(size_t(max_id + 1), std::string());
  has_id_.assign(size_t(max_id + 1), false);
  for (const auto& kv : vocab_) {
    ZT_THROW_IF_NOT(!has_id_[kv.second], DataError, "%s: model.vocab: id %d is used by \"%s\" and \"%s\"",
                    file.c_str(), kv.second, id_to_token_[kv.second].c_str(), kv.first.c_str());
    id_to_token_[kv.second] = kv.first;
    has_id_[kv.second] = true;
  }

  const std::string unk = optional_string(m, "unk_token", file);
  if (!unk.empty()) {
    unk_id_ = token_to_id(unk);
    ZT_THROW_IF_NOT(unk_id_ >= 0, DataError, "%s: model.unk_token \"%s\" is not in model.vocab",
                    file.c_str(), unk.c_str());
  }

  // Merges: "a b" strings or [a, b] pairs; rank = position.
  auto mit = m.find("merges");
  ZT_THROW_IF_NOT(mit != m.end() && mit->is_array(), DataError,
                  "%s: model.merges: expected an array", file.c_str());
  merges_.reserve(mit->size() * 2);
  for (size_t r = 0; r < mit->size(); ++r) {
    const nlohmann::json& e = (*mit)[r];
    std::string a, b;
    if (e.is_string()) {
      const std::string& s = e.get_ref<const std::string&>();
      const size_t sp = s.find(' ');
      ZT_THROW_IF_NOT(sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos, DataError,
                      "%s: model.merges[%zu]: expected \"left right\", found \"%s\"", file.c_str(), r,
                      s.c_str());
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      a = e[0].get<std::string>();
      b = e[1].get<std::string>();
    } else {
      throw DataError(strformat("%s: model.merges[%zu]: expected \"left right\" or [left, right], found %s",
                                file.c_str(), r, e.dump().c_str()));
    }
    const int32_t ia = token_to_id(a), ib = token_to_id(b), ic = token_to_id(a + b);
    ZT_THROW_IF_NOT(ia >= 0 && ib >= 0 && ic >= 0, DataError,
                    "%s: model.merges[%zu]: \"%s\" + \"%s\": %s is not in model.vocab", file.c_str(), r,
                    a.c_str(), b.c_str(),
                    ia < 0 ? ("\"" + a + "\"").c_str() : ib < 0 ? ("\"" + b + "\"").c_str()
                                                             : ("\"" + a + b + "\"").c_str());
    merges_.emplace(pair_key(ia, ib), Merge{static_cast<int32_t>(r), ic});  // first rank wins
  }

  // Byte-level initial symbols.
  for (int byte = 0; byte < 256; ++byte) {
    std::string ch;
    utf8_append(byte_to_unicode(static_cast<uint8_t>(byte)), &ch);
    byte_chars_[byte] = ch;
    const int32_t id = token_to_id(ch);
    if (id >= 0) {
      byte_ids_[byte] = {id};
      continue;
    }
    if (byte_fallback) {  // the character's UTF-8 bytes as <0xXX> tokens
      std::vector<int32_t> ids;
      for (unsigned char c : ch) {
        const int32_t fid = token_to_id(strformat("<0x%02X>", c));
        if (fid < 0) {
          ids.clear();
          break;
        }
        ids.push_back(fid);
      }
      if (!ids.empty()) {
        byte_ids_[byte] = ids;
        continue;
      }
    }
    ZT_THROW_IF_NOT(unk_id_ >= 0, DataError,
                    "%s: model.vocab has no token for byte 0x%02X (\"%s\") and neither unk_token nor "
                    "byte_fallback can stand in for it",
                    file.c_str(), byte, ch.c_str());
    byte_ids_[byte] = {unk_id_};
  }
}

int32_t BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(std::string(token));
  return it == vocab_.end() ? -1 : it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || size_t(id) >= id_to_token_.size() || !has_id_[id]) return nullptr;
  return &id_to_token_[id];
}

const BpeModel::Merge* BpeModel::find_merge(int32_t a, int32_t b) const {
  auto it = merges_.find(pair_key(a, b));
  return it == merges_.end() ? nullptr : &it->second;
}

void BpeModel::initial_symbols(std::string_view bytes, std::vector<int32_t>* syms) const {
  syms->clear();
  for (unsigned char c : bytes) {
    for (int32_t id : byte_ids_[c]) {
      if (fuse_unk_ && id == unk_id_ && !syms->empty() && syms->back() == unk_id_) continue;
      syms->push_back(id);
    }
  }
}

void BpeModel::merge_short(std::vector<int32_t>* syms) const {
  std::vector<int32_t>& s = *syms;
  // ranks[i] = merge of (s[i], s[i+1]); INT32_MAX where none.
  int32_t ranks[kShortWordSymbols];
  int32_t results[kShortWordSymbols];
  size_t n = s.size();
  auto lookup = [&](size_t i) {
    const Merge* m = find_merge(s[i], s[i + 1]);
    ranks[i] = m ? m->rank : INT32_MAX;
    results[i] = m ? m->id : -1;
  };
  for (size_t i = 0; i + 1 < n; ++i) lookup(i);
  while (n > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < n; ++i)
      if (ranks[i] < ranks[best]) best = i;
    if (ranks[best] == INT32_MAX) break;
    s[best] = results[best];
    for (size_t i = best + 1; i + 1 < n; ++i) {
      s[i] = s[i + 1];
      ranks[i] = ranks[i + 1];
      results[i] = results[i + 1];
    }
    --n;
    if (best + 1 < n) lookup(best);
    if (best > 0) lookup(best - 1);
  }
  s.resize(n);
}

void BpeModel::merge_long(std::vector<int32_t>* syms) const {
  std::vector<int32_t>& s = *syms;
  const size_t n = s.size();
  std::vector<int32_t> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<int32_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
  }
  struct Cand {
    int32_t rank, pos, left, right;  // left/right: ids when queued, to detect stale entries
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int32_t i) {
    if (i < 0 || next[i] < 0) return;
    const Merge* m = find_merge(s[i], s[next[i]]);
    if (m) heap.push({m->rank, i, s[i], s[next[i]]});
  };
  for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int32_t>(i));
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    const int32_t i = c.pos;
    if (!alive[i] || next[i] < 0 || s[i] != c.left || s[next[i]] != c.right) continue;
    const int32_t j = next[i];
    s[i] = find_merge(c.left, c.right)->id;
    alive[j] = false;
    next[i] = next[j];
    if (next[j] >= 0) prev[next[j]] = i;
    push(prev[i]);
    push(i);
  }
  size_t w = 0;
  for (size_t i = 0; i < n; ++i)
    if (alive[i]) s[w++] = s[i];
  s.resize(w);
}

void BpeModel::encode_word(std::string_view bytes, std::vector<int32_t>* out) const {
  if (bytes.empty()) return;
  const bool cacheable = bytes.size() <= kCacheMaxWordBytes;
  CacheShard* shard = nullptr;
  if (cacheable) {
    shard = &cache_[std::hash<std::string_view>()(bytes) % kCacheShards];
    std::lock_guard<std::mutex> lock(shard->mu);
    auto it = shard->map.find(std::string(bytes));
    if (it != shard->map.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  thread_local std::vector<int32_t> syms;
  bool done = false;
  if (ignore_merges_) {
    std::string word;
    for (unsigned char c : bytes) word += byte_chars_[c];
    const int32_t id = token_to_id(word);
    if (id >= 0) {
      syms.assign(1, id);
      done = true;
    }
  }
  if (!done) {
    initial_symbols(bytes, &syms);
    if (syms.size() <= kShortWordSymbols) merge_short(&syms);
    else merge_long(&syms);
  }
  out->insert(out->end(), syms.begin(), syms.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(shard->mu);
    if (shard->map.size() >= kCacheShardCapacity) shard->map.clear();
    shard->map.emplace(std::string(bytes), syms);
  }
}

}  // namespace tok
}  // namespace zeroth
