// The BPE model of a byte-level tokenizer.json: vocabulary, merge ranks, and the merge
// loop that turns one pre-token (raw bytes) into ids, with a cache of pre-token -> ids.
// Knows nothing about normalizers, pre-tokenizers or added tokens.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace zeroth {
namespace tok {

class BpeModel {
 public:
  // Parses the `model` object of tokenizer.json (type BPE). Throws DataError naming
  // `file` for malformed or unsupported content.
  BpeModel(const nlohmann::json& model, const std::string& file);

  int32_t token_to_id(std::string_view token) const;  // -1 if absent
  // Vocabulary string of an id, or nullptr.
  const std::string* id_to_token(int32_t id) const;
  int32_t max_id() const { return static_cast<int32_t>(id_to_token_.size()) - 1; }

  // Appends the ids of one pre-token given as raw UTF-8 bytes (before the byte-level
  // character map).
  void encode_word(std::string_view bytes, std::vector<int32_t>* out) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t id;  // id of the merged token
  };
  static uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  const Merge* find_merge(int32_t a, int32_t b) const;
  void initial_symbols(std::string_view bytes, std::vector<int32_t>* syms) const;
  void merge_short(std::vector<int32_t>* syms) const;
  void merge_long(std::vector<int32_t>* syms) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;     // "" where no token has the id
  std::vector<bool> has_id_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::array<std::vector<int32_t>, 256> byte_ids_;  // ids for one byte (fallback may give several)
  std::array<std::string, 256> byte_chars_;         // byte -> its byte-level character (UTF-8)
  bool ignore_merges_ = false;
  bool fuse_unk_ = false;
  int32_t unk_id_ = -1;

  // Cache of pre-token bytes -> ids, sharded to keep lock contention low.
  static constexpr size_t kCacheShards = 16;
  static constexpr size_t kCacheShardCapacity = 16384;
  static constexpr size_t kCacheMaxWordBytes = 64;
  struct CacheShard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>> map;
  };
  mutable std::array<CacheShard, kCacheShards> cache_;
};

}  // namespace tok
}  // namespace zeroth
