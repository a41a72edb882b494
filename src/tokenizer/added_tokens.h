// Added (and special) tokens: matched in text before pre-tokenization and never split.
// Leftmost-longest matching over a byte trie, honouring single_word / lstrip / rstrip as
// Hugging Face's AddedVocabulary::find_matches does. Knows nothing about the model.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace zeroth {
namespace tok {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
};

// A piece of text after added-token extraction: either a token id, or text to tokenize.
struct Segment {
  std::string_view text;  // the text, or the matched token's span (with stripped spaces)
  int32_t id = -1;        // >= 0 for an added token
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  // `patterns[i]` is matched for `tokens[i]` (they differ for normalized tokens, whose
  // pattern is the normalized content).
  void build(const std::vector<AddedToken>& tokens, const std::vector<std::string>& patterns);
  bool empty() const { return tokens_.empty(); }

  // Splits `text` into segments covering it, in order. Empty text gives no segment.
  void split(std::string_view text, std::vector<Segment>* out) const;

 private:
  // Longest token matching at text[pos]; -1 if none (index into tokens_).
  int longest_at(std::string_view text, size_t pos, size_t* len) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<uint64_t, int32_t> edges_;  // (node << 8 | byte) -> child node
  std::vector<int32_t> terminal_;                // node -> token index or -1
  bool first_byte_[256] = {};
};

}  // namespace tok
}  // namespace zeroth
