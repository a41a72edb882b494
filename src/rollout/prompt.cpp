// Prompt templates (prompt.h): parsing `{field}` templates, rendering, encoding.
// Must not: read datasets or know a dataset's schema.
#include "zeroth/prompt.h"

#include <cctype>

#include "zeroth/error.h"

namespace zeroth {

static bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
}

PromptTemplate::PromptTemplate(const std::string& text, const std::string& source) : text_(text) {
  std::string lit;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '{' && i + 1 < text.size() && text[i + 1] == '{') {
      lit += '{';
      ++i;
    } else if (c == '}' && i + 1 < text.size() && text[i + 1] == '}') {
      lit += '}';
      ++i;
    } else if (c == '{') {
      const size_t end = text.find('}', i + 1);
      ZT_THROW_IF_NOT(end != std::string::npos, ConfigError,
                      "%s: offset %zu: expected '}' closing the field opened here (write '{{' "
                      "for a literal brace), found the end of the template",
                      source.c_str(), i);
      const std::string name = text.substr(i + 1, end - i - 1);
      bool ok = !name.empty();
      for (char n : name) ok = ok && is_name_char(n);
      ZT_THROW_IF_NOT(ok, ConfigError,
                      "%s: offset %zu: expected a field name of letters, digits, '_', '.', '-' "
                      "inside braces, found '{%s}'",
                      source.c_str(), i, name.c_str());
      if (!lit.empty()) pieces_.push_back({false, lit});
      lit.clear();
      pieces_.push_back({true, name});
      bool seen = false;
      for (const std::string& f : fields_) seen = seen || f == name;
      if (!seen) fields_.push_back(name);
      i = end;
    } else if (c == '}') {
      throw ConfigError(strformat("%s: offset %zu: found a lone '}' (write '}}' for a literal "
                                  "brace)",
                                  source.c_str(), i));
    } else {
      lit += c;
    }
  }
  if (!lit.empty()) pieces_.push_back({false, lit});
  ZT_THROW_IF_NOT(!fields_.empty(), ConfigError,
                  "%s: expected at least one {field} of the dataset record, e.g. {prompt}, found '%s' (every "
                  "prompt would render as the same text)",
                  source.c_str(), text.c_str());
}

std::string PromptTemplate::render(const std::map<std::string, std::string>& fields,
                                   const std::string& where) const {
  std::string out;
  for (const Piece& p : pieces_) {
    if (!p.is_field) {
      out += p.text;
      continue;
    }
    auto it = fields.find(p.text);
    if (it == fields.end()) {
      std::string have;
      for (const auto& kv : fields) have += (have.empty() ? "" : ", ") + kv.first;
      throw DataError(strformat("%s: the prompt template needs field '%s', found only [%s]",
                                where.c_str(), p.text.c_str(), have.c_str()));
    }
    out += it->second;
  }
  return out;
}

std::vector<int32_t> encode_prompt(const Tokenizer& tokenizer, const std::string& text,
                                   bool add_special_tokens, const std::string& where) {
  std::vector<int32_t> ids = tokenizer.encode(text, add_special_tokens);
  ZT_THROW_IF_NOT(!ids.empty(), DataError, "%s: expected a prompt of at least one token, found none",
                  where.c_str());
  return ids;
}

}  // namespace zeroth
