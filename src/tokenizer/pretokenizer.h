// Hugging Face pre-tokenizers for byte-level BPE: `Split` (regex or literal pattern,
// with its behaviour and invert flag), `ByteLevel` (add_prefix_space, the GPT-2 regex)
// and `Sequence` of these. Splits text into pre-tokens (raw UTF-8 bytes; the byte-level
// character map is applied by the model). Owns the PCRE2 patterns; knows nothing about
// vocabularies or added tokens.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace zeroth {
namespace tok {

// A PCRE2 pattern compiled with UTF and UCP, JIT-compiled. `\s` and `\S` are rewritten to
// Oniguruma's Unicode White_Space set, which Hugging Face tokenizers match with.
class Regex {
 public:
  // `where` names the file and key for error messages.
  Regex(const std::string& pattern, const std::string& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Finds the first match in subject at or after byte `start`; false if none.
  bool find(std::string_view subject, size_t start, size_t* match_begin, size_t* match_end) const;

 private:
  void* code_ = nullptr;  // pcre2_code_8*
};

// Rewrites `\s`/`\S` in a pattern to explicit Oniguruma White_Space classes. Throws
// DataError (naming `where`) for constructs that cannot be translated (`\S` in a class).
std::string translate_onig_pattern(const std::string& pattern, const std::string& where);

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

class PreTokenizer {
 public:
  // Parses the `pre_tokenizer` value of tokenizer.json (may be null). Throws DataError for
  // unsupported types and malformed fields; `file` names the file in messages.
  PreTokenizer(const nlohmann::json& j, const std::string& file);
  ~PreTokenizer();

  // True when the pipeline ends with a ByteLevel step (required for byte-level BPE).
  bool byte_level() const { return byte_level_; }

  // Splits `text` into pre-tokens appended to *out. Views point into `text` or into
  // *arena (for pieces given a prefix space), which must outlive them.
  void split(std::string_view text, std::vector<std::string_view>* out,
             std::deque<std::string>* arena) const;

 private:
  struct Step {
    bool is_byte_level = false;
    std::unique_ptr<Regex> regex;  // Split with a Regex pattern, or ByteLevel with use_regex
    std::string literal;           // Split with a String pattern
    SplitBehavior behavior = SplitBehavior::kIsolated;
    bool invert = false;
    bool add_prefix_space = false;
  };
  void parse(const nlohmann::json& j, const std::string& file, const std::string& key);
  void apply_split(const Step& step, std::string_view piece, std::vector<std::string_view>* out) const;

  std::vector<Step> steps_;
  bool byte_level_ = false;
};

}  // namespace tok
}  // namespace zeroth
