// Prompt templates: dataset fields -> prompt text -> token ids.
//
// Owns: the R1-Zero template (DeepSeek-R1 paper, Table 1) as the default, parsing of
// `{field}` templates ("{{" and "}}" are literal braces), rendering with a record's
// fields, and encoding with the tokenizer's special tokens (BOS etc. exactly where its
// configuration puts them: Tokenizer::encode(text, add_special_tokens)). Must not: read
// datasets (callers pass the fields of one record) or know any dataset's schema.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "zeroth/tokenizer.h"

namespace zeroth {

// DeepSeek-R1 Table 1, with the question in {prompt}.
inline constexpr char kR1ZeroTemplate[] =
    "A conversation between User and Assistant. The user asks a question, and the Assistant "
    "solves it. The assistant first thinks about the reasoning process in the mind and then "
    "provides the user with the answer. The reasoning process and answer are enclosed within "
    "<think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning "
    "process here </think> <answer> answer here </answer>. User: {prompt}. Assistant:";

class PromptTemplate {
 public:
  // Parses `text`; an unmatched brace, an empty or malformed field name, or no field at
  // all (every prompt would render the same) is a
  // ConfigError naming `source` (e.g. "config.yaml: key 'rollout.prompt_template'")
  // and the character offset.
  explicit PromptTemplate(const std::string& text = kR1ZeroTemplate,
                          const std::string& source = "prompt template");

  // Field names used, in order of first use.
  const std::vector<std::string>& fields() const { return fields_; }
  const std::string& text() const { return text_; }

  // The template with every {field} replaced by fields.at(field). A missing field is a
  // DataError naming `where` (e.g. "data.jsonl:12"), the field and the fields present.
  std::string render(const std::map<std::string, std::string>& fields,
                     const std::string& where) const;

 private:
  struct Piece {
    bool is_field;
    std::string text;  // literal text, or the field name
  };
  std::string text_;
  std::vector<Piece> pieces_;
  std::vector<std::string> fields_;
};

// Token ids of a rendered prompt: tokenizer.encode(text, add_special_tokens), so BOS is
// added exactly when the tokenizer's configuration asks for it (DeepSeek-V3 yes, Qwen3
// no). Throws DataError for an empty encoding.
std::vector<int32_t> encode_prompt(const Tokenizer& tokenizer, const std::string& text,
                                   bool add_special_tokens, const std::string& where);

}  // namespace zeroth
